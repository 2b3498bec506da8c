#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Answers `cssctl calendar due` request lines: one JSON object in, one JSON object out.
///
/// Kept in the library (string in, string out) so it is tested without a process; the
/// command only moves lines between stdin and stdout. Calendars are cached per spec, so a
/// stream of requests for the same customer builds its calendar once.
public final class DueRequestHandler {
    struct Request: Decodable {
        var start: String
        var seconds: Int64
        var calendar: String?
        var timeZone: String
        var region: String?
        var extraHolidays: [String]?
        var ics: String?
        var excluded: [Range]?
        var hours: [Window]?

        struct Range: Decodable { var start: String; var end: String }
        struct Window: Decodable { var day: String; var open: String; var close: String }
    }

    private var cache: [CalendarSpec: BusinessCalendar] = [:]
    private let zoneDirectory: String
    private let decoder = JSONDecoder()

    public init(zoneDirectory: String = "/usr/share/zoneinfo") {
        self.zoneDirectory = zoneDirectory
    }

    /// One response line (without newline) for one request line. Never throws: a bad line
    /// becomes an error object so the stream goes on.
    public func respond(to line: String) -> String {
        do {
            let due = try dueAt(line)
            return #"{"dueAt":""# + ISO8601.format(due) + #""}"#
        } catch {
            return #"{"error":{"code":"# + Self.quote(error.code) + #","message":"# + Self.quote(error.message) + "}}"
        }
    }

    func dueAt(_ line: String) throws(CalendarError) -> Int64 {
        let request: Request
        do {
            request = try decoder.decode(Request.self, from: Data(line.utf8))
        } catch let DecodingError.keyNotFound(key, _) {
            throw .invalidRequest("missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw .invalidRequest("field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            throw .invalidRequest("field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' is null")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw .invalidRequest("field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has an invalid value")
        } catch {
            throw .invalidRequest("the line is not a JSON object")
        }
        guard request.seconds >= 0 else { throw .invalidRequest("seconds must not be negative") }
        let start = try ISO8601.parse(request.start)
        let spec = try spec(for: request)
        let calendar: BusinessCalendar
        if let cached = cache[spec] {
            calendar = cached
        } else {
            calendar = try spec.build(zoneDirectory: zoneDirectory)
            if cache.count >= 256 { cache.removeAll(keepingCapacity: true) }
            cache[spec] = calendar
        }
        return try calendar.adding(businessSeconds: request.seconds, to: start)
    }

    func spec(for r: Request) throws(CalendarError) -> CalendarSpec {
        let kind: CalendarSpec.Kind
        switch r.calendar {
        case "business": kind = .business
        case "24x7": kind = .twentyFourSeven
        case nil: throw .invalidRequest("missing field 'calendar' (business or 24x7)")
        case let other?: throw .invalidRequest("calendar must be 'business' or '24x7', got '\(other)'")
        }
        // A business calendar must name its region: an absent one would silently mean "no holidays".
        var region: String?
        switch r.region {
        case nil where kind == .business:
            throw .invalidRequest("missing field 'region' (an ISO 3166 code such as CA-ON, or 'none' with explicit holidays)")
        case "none"?, "NONE"?, nil: region = nil
        case let code?: region = code
        }
        var extra: [LocalDate] = []
        for s in r.extraHolidays ?? [] { extra.append(try LocalDate(iso: s)) }
        var excluded: [InstantRange] = []
        for e in r.excluded ?? [] {
            let range = InstantRange(start: try ISO8601.parse(e.start), end: try ISO8601.parse(e.end))
            guard range.end >= range.start else { throw .invalidRequest("excluded interval ends before it starts") }
            excluded.append(range)
        }
        var hours: OpeningHours?
        if let windows = r.hours {
            var list: [OpeningWindow] = []
            for w in windows {
                guard let day = Self.weekdays[w.day.lowercased()] else { throw CalendarError(code: "invalid_opening_hours", message: "unknown weekday '\(w.day)'") }
                list.append(OpeningWindow(day, open: try TimeOfDay(parsing: w.open), close: try TimeOfDay(parsing: w.close)))
            }
            hours = OpeningHours(list)
        }
        return CalendarSpec(kind: kind, timeZone: r.timeZone, region: region, extraHolidays: extra, icsHolidays: r.ics.map { [$0] } ?? [],
                            openingHours: hours, excluded: excluded)
    }

    static let weekdays: [String: Weekday] = [
        "mon": .monday, "monday": .monday, "tue": .tuesday, "tuesday": .tuesday, "wed": .wednesday, "wednesday": .wednesday,
        "thu": .thursday, "thursday": .thursday, "fri": .friday, "friday": .friday, "sat": .saturday, "saturday": .saturday,
        "sun": .sunday, "sunday": .sunday,
    ]

    /// A JSON string literal.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
