import CSSCalendar
import Foundation

/// Where rules get the current time from.
///
/// No rule reads the wall clock: services pass a clock in, tests pass a fixed or
/// stepping one, so a week of SLA time runs in a millisecond.
public protocol Clock: Sendable {
    func now() -> Date
}

/// The system's clock, truncated to microseconds so an instant survives a
/// round trip through PostgreSQL's `timestamptz` unchanged.
public struct SystemClock: Clock {
    public init() {}

    public func now() -> Date {
        Date().truncatedToMicroseconds
    }
}

/// A clock that always says the same instant (or what a test sets it to).
public final class FixedClock: Clock, @unchecked Sendable {
    private let lock = NSLock()
    private var instant: Date

    public init(_ instant: Date) {
        self.instant = instant
    }

    public func now() -> Date {
        lock.withLock { instant }
    }

    public func set(_ date: Date) {
        lock.withLock { instant = date }
    }

    public func advance(by seconds: TimeInterval) {
        lock.withLock { instant = instant.addingTimeInterval(seconds) }
    }
}

extension Date {
    /// This instant with sub-microsecond digits dropped.
    public var truncatedToMicroseconds: Date {
        let micros = (timeIntervalSince1970 * 1_000_000).rounded(.down)
        return Date(timeIntervalSince1970: micros / 1_000_000)
    }
}

/// RFC 3339 timestamps, as the contract writes them: UTC, `Z`, fractions allowed.
public enum RFC3339 {
    /// Parses `2026-03-02T08:00:00Z`, `2026-03-02T08:00:00.125Z` or an explicit
    /// offset (`+01:00`), returning the instant; nil when the text is not one.
    public static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                let c = b[i]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard let year = digits(0, 4), b[4] == UInt8(ascii: "-"),
              let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
              let day = digits(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
              let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
              let second = digits(17, 2)
        else { return nil }
        // Year 0000 is valid RFC 3339 but not a year PostgreSQL stores (22008): refused here.
        guard year >= 1, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 59 else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                fraction += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
            guard i > start, i - start <= 9 else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2),
                  oh <= 23, om <= 59 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = Int(Civil.dayNumber(year: year, month: month, day: day))
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    /// Formats an instant in UTC, with microseconds only when it has any.
    public static func format(_ date: Date) -> String {
        let total = (date.timeIntervalSince1970 * 1_000_000).rounded()
        var seconds = Int64((total / 1_000_000).rounded(.down))
        let micros = Int64(total) - seconds * 1_000_000
        let days = Int(seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400)
        seconds -= Int64(days) * 86400
        let (y, m, d) = Civil.civil(Int64(days))
        let hh = Int(seconds / 3600), mm = Int(seconds % 3600 / 60), ss = Int(seconds % 60)
        var out = pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T" + pad(hh, 2) + ":" + pad(mm, 2) + ":" + pad(ss, 2)
        if micros != 0 {
            var frac = pad(Int(micros), 6)
            while frac.hasSuffix("0") { frac.removeLast() }
            out += "." + frac
        }
        return out + "Z"
    }

    /// Parses a calendar date `YYYY-MM-DD`.
    public static func parseDate(_ text: String) -> (year: Int, month: Int, day: Int)? {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return nil }
        guard let y = Int(String(decoding: b[0..<4], as: UTF8.self)),
              let m = Int(String(decoding: b[5..<7], as: UTF8.self)),
              let d = Int(String(decoding: b[8..<10], as: UTF8.self)),
              b[0..<4].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              b[5..<7].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              b[8..<10].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              (1...12).contains(m), d >= 1, d <= daysIn(month: m, year: y) else { return nil }
        return (y, m, d)
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// ISO 8601 durations as the contract writes them (`PT4H`, `PT2S`, `P1DT30M`).
///
/// Years and months are refused: their length depends on the calendar, and an SLA
/// or escalation timeout must be an exact number of seconds.
public enum ISODuration {
    public static func parse(_ text: String) -> Double? {
        var b = Substring(text)
        guard b.first == "P" else { return nil }
        b = b.dropFirst()
        var total = 0.0
        var inTime = false
        var number = ""
        var sawComponent = false
        for c in b {
            if c == "T" {
                guard !inTime, number.isEmpty else { return nil }
                inTime = true
                continue
            }
            if c.isASCII, c.isNumber || c == "." {
                number.append(c)
                continue
            }
            guard let value = Double(number), value >= 0 else { return nil }
            if number.contains("."), !(inTime && c == "S") { return nil }
            number = ""
            sawComponent = true
            switch (inTime, c) {
            case (false, "W"): total += value * 604800
            case (false, "D"): total += value * 86400
            case (true, "H"): total += value * 3600
            case (true, "M"): total += value * 60
            case (true, "S"): total += value
            default: return nil
            }
        }
        guard number.isEmpty, sawComponent, total.isFinite else { return nil }
        return total
    }

    public static func format(seconds: Double) -> String {
        if seconds == 0 { return "PT0S" }
        var rest = seconds
        var out = "PT"
        let h = Int(rest / 3600)
        if h > 0 { out += "\(h)H"; rest -= Double(h) * 3600 }
        let m = Int(rest / 60)
        if m > 0 { out += "\(m)M"; rest -= Double(m) * 60 }
        if rest > 0 {
            out += rest == rest.rounded() ? "\(Int(rest))S" : "\(rest)S"
        }
        return out
    }
}

/// Whole seconds since the epoch, as the calendar engine and the services' pure cores count them.
public enum Instant {
    /// `date` rounded down to the second.
    public static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }
    public static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }
    /// RFC 3339 in UTC.
    public static func format(_ seconds: Int64) -> String { RFC3339.format(date(seconds)) }
}
