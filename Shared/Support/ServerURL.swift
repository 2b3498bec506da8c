import Foundation

/// The parts of a `scheme://user:pass@host:port/path` URL, percent-decoded.
///
/// Both `CSS_AMQP_URL` and `CSS_DATABASE_URL` have this shape; parsing it once keeps
/// their rules (percent-decoding, default ports, IPv6 brackets) from drifting apart.
public struct ServerURL: Sendable, Equatable {
    public var scheme: String
    public var user: String?
    public var password: String?
    public var host: String
    public var port: Int?
    /// The path without its leading slash, percent-decoded (`%2F` → `/`).
    public var path: String
    public var query: [String: String]

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }

        /// Lets callers that interpret a URL's parts (query keys, say) report problems as parse errors too.
        public init(message: String) { self.message = message }
    }

    public init(parsing text: String, schemes: Set<String>) throws {
        guard let schemeEnd = text.range(of: "://") else {
            throw ParseError(message: "\"\(text)\" is not a URL of the form scheme://user:pass@host:port/path")
        }
        scheme = String(text[..<schemeEnd.lowerBound]).lowercased()
        guard schemes.contains(scheme) else {
            throw ParseError(message: "scheme \"\(scheme)\" is not one of \(schemes.sorted().joined(separator: ", "))")
        }
        var rest = Substring(text[schemeEnd.upperBound...])
        var queryItems: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                let key = try Self.decode(String(kv[0]))
                queryItems[key] = kv.count > 1 ? try Self.decode(String(kv[1])) : ""
            }
            rest = rest[..<q]
        }
        query = queryItems
        var authority = rest
        var rawPath: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            rawPath = rest[rest.index(after: slash)...]
        }
        path = try Self.decode(String(rawPath))
        var hostPort = authority
        user = nil
        password = nil
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.decode(String(userInfo[..<colon]))
                password = try Self.decode(String(userInfo[userInfo.index(after: colon)...]))
            } else {
                user = try Self.decode(String(userInfo))
            }
        }
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw ParseError(message: "unclosed IPv6 bracket in \"\(text)\"")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            port = try Self.port(after.hasPrefix(":") ? after.dropFirst() : nil, in: text)
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            port = try Self.port(hostPort[hostPort.index(after: colon)...], in: text)
        } else {
            host = String(hostPort)
            port = nil
        }
        if host.isEmpty {
            throw ParseError(message: "\"\(text)\" has no host")
        }
    }

    private static func port(_ text: Substring?, in url: String) throws -> Int? {
        guard let text, !text.isEmpty else { return nil }
        guard let value = Int(text), (1...65535).contains(value) else {
            throw ParseError(message: "port \"\(text)\" in \"\(url)\" is not a number from 1 to 65535")
        }
        return value
    }

    /// Percent-decodes `text`, refusing malformed escapes and invalid UTF-8.
    static func decode(_ text: String) throws -> String {
        guard text.contains("%") else { return text }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let h = iterator.next(), let l = iterator.next(), let hi = hex(h), let lo = hex(l) else {
                    throw ParseError(message: "malformed percent escape in \"\(text)\"")
                }
                bytes.append(hi << 4 | lo)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw ParseError(message: "percent escapes in \"\(text)\" are not valid UTF-8")
        }
        return decoded
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
