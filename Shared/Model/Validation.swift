import Foundation

/// Collects every problem found while reading a command, so a refusal lists them all.
public final class ValidationErrors {
    public private(set) var errors: [CommandError] = []

    public init() {}

    public func add(_ code: String, _ field: String?, _ message: String) {
        errors.append(CommandError(code: code, field: field, message: message))
    }

    public var isEmpty: Bool { errors.isEmpty }

    /// Throws a ``CommandRejection`` with everything collected, if anything was.
    public func throwIfAny() throws(CommandRejection) {
        if !errors.isEmpty { throw CommandRejection(errors) }
    }
}

/// Reads typed fields out of a JSON object, recording a precise error for each
/// field that is missing, of the wrong type, empty or out of range.
///
/// Unknown fields are ignored: the contract lets publishers add fields freely.
public struct FieldReader {
    public let object: JSONObject
    public let prefix: String
    public let errors: ValidationErrors

    public init(_ object: JSONObject, prefix: String = "", errors: ValidationErrors) {
        self.object = object
        self.prefix = prefix
        self.errors = errors
    }

    /// Starts reading a command body, which must be a JSON object.
    public static func body(_ value: JSONValue, errors: ValidationErrors) throws(CommandRejection) -> FieldReader {
        guard let object = value.objectValue else {
            throw CommandRejection(code: ErrorCode.notAnObject, message: "the body must be a JSON object, got \(value.typeName)")
        }
        return FieldReader(object, errors: errors)
    }

    public func path(_ key: String) -> String { prefix + key }

    /// The raw value of `key`; records `missing_field` when required and absent or null.
    public func value(_ key: String, required: Bool) -> JSONValue? {
        let v = object[key]
        if v == nil || v == .null {
            if required { errors.add(ErrorCode.missingField, path(key), "\(path(key)) is required") }
            return nil
        }
        return v
    }

    /// A non-empty string of at most `maxLength` characters, trimmed of surrounding white space.
    public func string(_ key: String, required: Bool = true, maxLength: Int = 1000) -> String? {
        guard let v = value(key, required: required) else { return nil }
        guard case .string(let raw) = v else {
            errors.add(ErrorCode.wrongType, path(key), "\(path(key)) must be a string, got \(v.typeName)")
            return nil
        }
        let s = Self.trimmed(raw)
        if s.isEmpty {
            errors.add(ErrorCode.emptyField, path(key), "\(path(key)) must not be empty")
            return nil
        }
        if !StorableText.isStorable(s) {
            let e = StorableText.nulError(path(key))
            errors.add(e.code, e.field, e.message)
            return nil
        }
        if s.count > maxLength {
            errors.add(ErrorCode.tooLong, path(key), "\(path(key)) is \(s.count) characters long; the limit is \(maxLength)")
            return nil
        }
        return s
    }

    /// `raw` without surrounding white space; Foundation's trimming only when there is any
    /// (it bridges through NSString, which was a tenth of intake's CPU per ticket).
    static func trimmed(_ raw: String) -> String {
        let scalars = raw.unicodeScalars
        guard let first = scalars.first, let last = scalars.last else { return raw }
        if !first.properties.isWhitespace && !last.properties.isWhitespace { return raw }
        return raw.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func bool(_ key: String, required: Bool = true) -> Bool? {
        guard let v = value(key, required: required) else { return nil }
        guard case .bool(let b) = v else {
            errors.add(ErrorCode.wrongType, path(key), "\(path(key)) must be true or false, got \(v.typeName)")
            return nil
        }
        return b
    }

    public func integer(_ key: String, required: Bool = true, range: ClosedRange<Int>) -> Int? {
        guard let v = value(key, required: required) else { return nil }
        guard case .number(let n) = v else {
            errors.add(ErrorCode.wrongType, path(key), "\(path(key)) must be a whole number, got \(v.typeName)")
            return nil
        }
        guard n == n.rounded(), n >= Double(range.lowerBound), n <= Double(range.upperBound) else {
            errors.add(ErrorCode.invalidField, path(key), "\(path(key)) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \(n)")
            return nil
        }
        return Int(n)
    }

    public func number(_ key: String, required: Bool = true, range: ClosedRange<Double>) -> Double? {
        guard let v = value(key, required: required) else { return nil }
        guard case .number(let n) = v else {
            errors.add(ErrorCode.wrongType, path(key), "\(path(key)) must be a number, got \(v.typeName)")
            return nil
        }
        guard range.contains(n) else {
            errors.add(ErrorCode.invalidField, path(key), "\(path(key)) must be from \(range.lowerBound) to \(range.upperBound), got \(n)")
            return nil
        }
        return n
    }

    /// One of an enumeration's raw values; an unknown value lists the allowed ones.
    public func enumeration<E: RawRepresentable & CaseIterable>(_ key: String, _ type: E.Type, required: Bool = true) -> E? where E.RawValue == String {
        guard let v = value(key, required: required) else { return nil }
        guard case .string(let s) = v else {
            errors.add(ErrorCode.wrongType, path(key), "\(path(key)) must be a string, got \(v.typeName)")
            return nil
        }
        guard let e = E(rawValue: s) else {
            let allowed = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            errors.add(ErrorCode.unknownValue, path(key), "\(path(key)) must be one of \(allowed), got \"\(s)\"")
            return nil
        }
        return e
    }

    public func object(_ key: String, required: Bool = true) -> FieldReader? {
        guard let v = value(key, required: required) else { return nil }
        guard case .object(let o) = v else {
            errors.add(ErrorCode.wrongType, path(key), "\(path(key)) must be an object, got \(v.typeName)")
            return nil
        }
        return FieldReader(o, prefix: path(key) + ".", errors: errors)
    }

    public func array(_ key: String, required: Bool = true, maxCount: Int = 1000) -> [JSONValue]? {
        guard let v = value(key, required: required) else { return nil }
        guard case .array(let a) = v else {
            errors.add(ErrorCode.wrongType, path(key), "\(path(key)) must be an array, got \(v.typeName)")
            return nil
        }
        if a.count > maxCount {
            errors.add(ErrorCode.tooLong, path(key), "\(path(key)) has \(a.count) entries; the limit is \(maxCount)")
            return nil
        }
        return a
    }

    /// Each element of an array of objects, as a reader whose errors name the index.
    public func objects(_ key: String, required: Bool = true, maxCount: Int = 1000) -> [FieldReader]? {
        guard let a = array(key, required: required, maxCount: maxCount) else { return nil }
        var readers: [FieldReader] = []
        var ok = true
        for (i, element) in a.enumerated() {
            let p = "\(path(key))[\(i)]"
            guard case .object(let o) = element else {
                errors.add(ErrorCode.wrongType, p, "\(p) must be an object, got \(element.typeName)")
                ok = false
                continue
            }
            readers.append(FieldReader(o, prefix: p + ".", errors: errors))
        }
        return ok ? readers : nil
    }

    /// Each element of an array of strings, trimmed and non-empty.
    public func strings(_ key: String, required: Bool = true, maxCount: Int = 1000, maxLength: Int = 200) -> [String]? {
        guard let a = array(key, required: required, maxCount: maxCount) else { return nil }
        var out: [String] = []
        var ok = true
        for (i, element) in a.enumerated() {
            let p = "\(path(key))[\(i)]"
            guard case .string(let raw) = element else {
                errors.add(ErrorCode.wrongType, p, "\(p) must be a string, got \(element.typeName)")
                ok = false
                continue
            }
            let s = Self.trimmed(raw)
            if s.isEmpty || s.unicodeScalars.contains("\u{0}") || s.count > maxLength {
                errors.add(ErrorCode.invalidField, p, "\(p) must be a non-empty string of at most \(maxLength) characters without NUL")
                ok = false
                continue
            }
            out.append(s)
        }
        return ok ? out : nil
    }

    /// An RFC 3339 timestamp.
    public func timestamp(_ key: String, required: Bool = true) -> Date? {
        guard let s = string(key, required: required, maxLength: 64) else { return nil }
        guard let d = RFC3339.parse(s) else {
            errors.add(ErrorCode.invalidField, path(key), "\(path(key)) must be an RFC 3339 time such as 2026-03-02T08:00:00Z, got \"\(s)\"")
            return nil
        }
        return d
    }

    /// A calendar date `YYYY-MM-DD`, returned as written.
    public func date(_ key: String, required: Bool = true) -> String? {
        guard let s = string(key, required: required, maxLength: 10) else { return nil }
        guard RFC3339.parseDate(s) != nil else {
            errors.add(ErrorCode.invalidField, path(key), "\(path(key)) must be a date YYYY-MM-DD, got \"\(s)\"")
            return nil
        }
        return s
    }

    /// An ISO 8601 duration, in seconds.
    public func duration(_ key: String, required: Bool = true, maximum: Double = 366 * 86400) -> Double? {
        guard let s = string(key, required: required, maxLength: 64) else { return nil }
        guard let d = ISODuration.parse(s), d <= maximum else {
            errors.add(ErrorCode.invalidField, path(key), "\(path(key)) must be an ISO 8601 duration such as PT4H or PT2S (days, hours, minutes, seconds), got \"\(s)\"")
            return nil
        }
        return d
    }

    /// An e-mail address, lower-cased so look-ups do not depend on how it was typed.
    public func email(_ key: String, required: Bool = true) -> String? {
        guard let s = string(key, required: required, maxLength: 254) else { return nil }
        guard Self.isPlausibleEmail(s) else {
            errors.add(ErrorCode.invalidField, path(key), "\(path(key)) must be an e-mail address, got \"\(s)\"")
            return nil
        }
        return s.lowercased()
    }

    public static func isPlausibleEmail(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].count >= 3,
              parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
              !s.contains(where: { $0.isWhitespace }) else { return false }
        return true
    }
}
