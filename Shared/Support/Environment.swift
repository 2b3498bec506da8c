#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A configuration value that is missing or malformed, named by its variable.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let variable: String
    public let message: String

    public init(variable: String, message: String) {
        self.variable = variable
        self.message = message
    }

    public var description: String { "\(variable): \(message)" }
}

/// Reads configuration from environment variables.
///
/// Every service documents its variables once, with defaults, and reads them through
/// this type so a malformed value fails at start with the variable's name.
public struct Environment: Sendable {
    public var values: [String: String]

    public init(_ values: [String: String]) {
        self.values = values
    }

    /// The process environment.
    public static var process: Environment {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let string = String(cString: entry)
            if let eq = string.firstIndex(of: "=") {
                result[String(string[..<eq])] = String(string[string.index(after: eq)...])
            }
            pointer += 1
        }
        return Environment(result)
    }

    public func string(_ name: String, default defaultValue: String) -> String {
        guard let value = values[name], !value.isEmpty else { return defaultValue }
        return value
    }

    public func requiredString(_ name: String) throws -> String {
        guard let value = values[name], !value.isEmpty else {
            throw ConfigurationError(variable: name, message: "is required but not set")
        }
        return value
    }

    public func int(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = values[name], !raw.isEmpty else { return defaultValue }
        guard let value = Int(raw) else {
            throw ConfigurationError(variable: name, message: "must be a whole number, got \"\(raw)\"")
        }
        guard range.contains(value) else {
            throw ConfigurationError(variable: name, message: "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    public func bool(_ name: String, default defaultValue: Bool) throws -> Bool {
        guard let raw = values[name], !raw.isEmpty else { return defaultValue }
        switch raw.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default:
            throw ConfigurationError(variable: name, message: "must be true or false, got \"\(raw)\"")
        }
    }
}
