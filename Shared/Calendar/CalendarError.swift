/// A calendar failure with a stable machine-readable code and a human message.
///
/// The `code` is what goes on the wire (`cssctl calendar due` prints it) and into
/// metric labels, so it never changes once published:
/// `unknown_time_zone`, `unknown_region`, `empty_opening_hours`,
/// `invalid_opening_hours`, `malformed_ics`, `unsupported_ics`, `invalid_request`,
/// `invalid_date`, `out_of_range`.
public struct CalendarError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    static func unknownTimeZone(_ id: String) -> CalendarError {
        CalendarError(code: "unknown_time_zone", message: "unknown IANA time zone '\(id)'")
    }

    static func unknownRegion(_ code: String) -> CalendarError {
        CalendarError(code: "unknown_region", message: "unknown holiday region '\(code)'; supported: \(HolidayRegion.supportedCodes.joined(separator: ", ")), or 'none' with explicit holiday dates")
    }

    static func outOfRange(_ what: String) -> CalendarError {
        CalendarError(code: "out_of_range", message: what)
    }

    static func invalidRequest(_ message: String) -> CalendarError {
        CalendarError(code: "invalid_request", message: message)
    }
}
