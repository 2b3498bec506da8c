import Foundation

/// Converts between `Date` and PostgreSQL's text forms of `timestamptz`.
///
/// Done by hand with civil-date arithmetic (Howard Hinnant's `days_from_civil`) rather
/// than `DateFormatter`/`ISO8601DateFormatter`: those drop microseconds, cost a lot per
/// row, and their thread-safety differs between platforms.
enum PostgresTimestamp {
    /// RFC 3339 in UTC with microseconds (`2026-03-02T08:00:00.000000Z`), PostgreSQL's precision.
    ///
    /// Returns `nil` for dates PostgreSQL's text form cannot carry here (not finite, or
    /// outside years 1 to 9999).
    static func format(_ date: Date) -> String? {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite, seconds > -62_135_596_800, seconds < 253_402_300_800 else { return nil }
        let micros = Int64((seconds * 1_000_000).rounded())
        let wholeSeconds = floorDiv(micros, 1_000_000)
        let fraction = micros - wholeSeconds * 1_000_000
        let days = floorDiv(wholeSeconds, 86_400)
        let secondOfDay = wholeSeconds - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        var text = ""
        text.reserveCapacity(27)
        append(&text, year, width: 4)
        text += "-"
        append(&text, month, width: 2)
        text += "-"
        append(&text, day, width: 2)
        text += "T"
        append(&text, secondOfDay / 3600, width: 2)
        text += ":"
        append(&text, secondOfDay / 60 % 60, width: 2)
        text += ":"
        append(&text, secondOfDay % 60, width: 2)
        text += "."
        append(&text, fraction, width: 6)
        text += "Z"
        return text
    }

    /// Parses PostgreSQL's ISO output (`2026-03-02 08:00:00.5+00`, `+05:30`), RFC 3339
    /// (`2026-03-02T08:00:00Z`), a zone-less `timestamp` (taken as UTC) or a bare `date`.
    ///
    /// Returns `nil` for anything else, including `infinity` and BC dates.
    static func parse(_ text: String) -> Date? {
        var s = Scanner(Array(text.utf8))
        guard let year = s.digits(min: 4, max: 6), s.skip("-"),
              let month = s.digits(min: 2, max: 2), s.skip("-"),
              let day = s.digits(min: 2, max: 2),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        var seconds = days(fromYear: year, month: month, day: day) * 86_400
        var micros: Int64 = 0
        if s.skip(" ") || s.skip("T") || s.skip("t") {
            guard let hour = s.digits(min: 2, max: 2), s.skip(":"),
                  let minute = s.digits(min: 2, max: 2), s.skip(":"),
                  let second = s.digits(min: 2, max: 2),
                  hour < 24, minute < 60, second < 61
            else { return nil }
            seconds += hour * 3600 + minute * 60 + second
            if s.skip(".") {
                var scale: Int64 = 100_000
                var count = 0
                while let digit = s.digit() {
                    // Digits past microseconds cannot be stored in PostgreSQL anyway; ignore them.
                    micros += Int64(digit) * scale
                    scale /= 10
                    count += 1
                }
                guard count > 0 else { return nil }
            }
            if s.skip("Z") || s.skip("z") {
                // UTC.
            } else if let sign = s.sign() {
                guard let hours = s.digits(min: 2, max: 2) else { return nil }
                var offset = hours * 3600
                _ = s.skip(":")
                if let minutes = s.digits(min: 2, max: 2) {
                    offset += minutes * 60
                    _ = s.skip(":")
                    if let secs = s.digits(min: 2, max: 2) { offset += secs }
                }
                seconds -= sign * offset
            }
        }
        guard s.atEnd else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    private static func append(_ text: inout String, _ value: Int64, width: Int) {
        let digits = String(value)
        if digits.count < width { text += String(repeating: "0", count: width - digits.count) }
        text += digits
    }

    private static func isLeap(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    private static func days(fromYear year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func skip(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }

        mutating func digit() -> Int64? {
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
            defer { index += 1 }
            return Int64(bytes[index] - UInt8(ascii: "0"))
        }

        mutating func digits(min: Int, max: Int) -> Int64? {
            var value: Int64 = 0
            var count = 0
            while count < max, let d = digit() {
                value = value * 10 + d
                count += 1
            }
            return count >= min ? value : nil
        }

        mutating func sign() -> Int64? {
            if skip("+") { return 1 }
            if skip("-") { return -1 }
            return nil
        }
    }
}
