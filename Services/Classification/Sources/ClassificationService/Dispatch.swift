import CSSModel
import Foundation
import CSSSupport

/// Where a ticket goes (R-CLS-6, handbook §4.5.1).
public enum Dispatch: String, CaseIterable, Sendable, Codable {
    /// The vendor's own cloud product: Success Services classify and restore it.
    case successServices = "success_services"
    /// A product developed by a third party: referred to that third party.
    case thirdParty = "third_party"
    /// The source is unclear: Success Services investigate, then dispatch it.
    case investigation
    /// Not related to the cloud: a workaround where possible, and a report to the vendor.
    case vendor
}

/// The products the dispatch rule knows: the vendor's cloud products and the
/// third-party products (configured with `CSS_CLOUD_PRODUCTS` and `CSS_THIRD_PARTY_PRODUCTS`).
///
/// Names compare by their words, case-insensitively (`"Extended  ECM"` is `"extended ecm"`).
public struct ProductCatalog: Sendable, Equatable {
    public let cloud: [[String]]
    public let thirdParty: [[String]]

    public static let defaultCloudProducts = "OT Cloud"

    public init(cloud: [String], thirdParty: [String]) {
        self.cloud = cloud.map(Self.words).filter { !$0.isEmpty }
        self.thirdParty = thirdParty.map(Self.words).filter { !$0.isEmpty }
    }

    /// Reads the two comma-separated lists.
    public static func fromEnvironment(_ env: Environment) throws -> ProductCatalog {
        func list(_ name: String, _ defaultValue: String) throws -> [String] {
            let raw = env.string(name, default: defaultValue)
            let items = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if let bad = items.first(where: { words($0).isEmpty || $0.count > 200 }) {
                throw ConfigurationError(variable: name, message: "each product must be a name of at most 200 characters with a letter or digit, got \"\(bad)\"")
            }
            return items
        }
        return ProductCatalog(cloud: try list("CSS_CLOUD_PRODUCTS", defaultCloudProducts), thirdParty: try list("CSS_THIRD_PARTY_PRODUCTS", ""))
    }

    /// The dispatch of a new ticket and, for `third_party`, the product it is referred to.
    ///
    /// A named product decides: third-party list, else cloud list, else `vendor` (a
    /// product that is not the cloud's). Without one, the summary is searched for listed
    /// names (whole words): exactly one kind found decides. Otherwise a service request
    /// goes to Success Services (its catalogue item is the vendor's service, a
    /// **Decision**) and an incident to `investigation`.
    public func dispatch(kind: TicketKind, product: String?, summary: String) -> (dispatch: Dispatch, thirdParty: String?) {
        if let product, !Self.words(product).isEmpty {
            let w = Self.words(product)
            if thirdParty.contains(w) { return (.thirdParty, product) }
            if cloud.contains(w) { return (.successServices, nil) }
            return (.vendor, nil)
        }
        let text = Self.words(summary)
        let third = thirdParty.filter { Self.contains(text, $0) }
        let ours = cloud.contains { Self.contains(text, $0) }
        if third.count == 1 && !ours { return (.thirdParty, third[0].joined(separator: " ")) }
        if ours && third.isEmpty { return (.successServices, nil) }
        return (kind == .serviceRequest ? .successServices : .investigation, nil)
    }

    /// Lower-cased words: runs of letters and digits.
    static func words(_ s: String) -> [String] {
        var out: [String] = []
        var current = ""
        for c in s.lowercased() {
            if c.isLetter || c.isNumber {
                current.append(c)
            } else if !current.isEmpty {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Whether `needle` occurs in `haystack` as consecutive words.
    static func contains(_ haystack: [String], _ needle: [String]) -> Bool {
        guard !needle.isEmpty, needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return true }
        }
        return false
    }
}
