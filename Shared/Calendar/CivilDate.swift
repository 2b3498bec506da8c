/// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01).
///
/// Howard Hinnant's `days_from_civil` / `civil_from_days`: exact for every year,
/// no tables, no Foundation.
public enum Civil {
    @inlinable
    public static func dayNumber(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((month + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    @inlinable
    public static func civil(_ dayNumber: Int64) -> (year: Int, month: Int, day: Int) {
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(y + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    /// ISO weekday index, Monday = 0 … Sunday = 6.
    @inlinable
    static func weekdayIndex(_ dayNumber: Int64) -> Int {
        // 1970-01-01 was a Thursday (index 3).
        let r = (dayNumber + 3) % 7
        return Int(r < 0 ? r + 7 : r)
    }

    @inlinable
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    public static func isLeap(_ year: Int) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// Day of the week, ISO order.
public enum Weekday: Int, Sendable, CaseIterable, Hashable {
    case monday = 0, tuesday, wednesday, thursday, friday, saturday, sunday
}

/// A date on the proleptic Gregorian calendar, without a time zone.
public struct LocalDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Days since 1970-01-01.
    public let dayNumber: Int64

    public init(dayNumber: Int64) {
        self.dayNumber = dayNumber
    }

    /// - Throws: `invalid_date` when the month or day does not exist.
    public init(year: Int, month: Int, day: Int) throws(CalendarError) {
        guard (1...12).contains(month), day >= 1, day <= Civil.daysInMonth(year: year, month: month) else {
            throw CalendarError(code: "invalid_date", message: "no such date \(year)-\(month)-\(day)")
        }
        self.dayNumber = Civil.dayNumber(year: year, month: month, day: day)
    }

    /// Parses `YYYY-MM-DD` (or `YYYYMMDD` when `basic` is true).
    public init(iso text: some StringProtocol, basic: Bool = false) throws(CalendarError) {
        let bytes = Array(text.utf8)
        let bad = CalendarError(code: "invalid_date", message: "expected a date as \(basic ? "YYYYMMDD" : "YYYY-MM-DD"), got '\(text)'")
        let expected = basic ? 8 : 10
        guard bytes.count == expected else { throw bad }
        func num(_ r: Range<Int>) throws(CalendarError) -> Int {
            var v = 0
            for i in r {
                let c = bytes[i]
                guard c >= 48 && c <= 57 else { throw bad }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        if basic {
            try self.init(year: num(0..<4), month: num(4..<6), day: num(6..<8))
        } else {
            guard bytes[4] == 45, bytes[7] == 45 else { throw bad }
            try self.init(year: num(0..<4), month: num(5..<7), day: num(8..<10))
        }
    }

    public var components: (year: Int, month: Int, day: Int) { Civil.civil(dayNumber) }
    public var year: Int { components.year }
    public var weekday: Weekday { Weekday(rawValue: Civil.weekdayIndex(dayNumber))! }

    public func adding(days: Int) -> LocalDate { LocalDate(dayNumber: dayNumber + Int64(days)) }

    public static func < (lhs: LocalDate, rhs: LocalDate) -> Bool { lhs.dayNumber < rhs.dayNumber }

    public var description: String {
        let (y, m, d) = components
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2)
    }

    /// Unchecked construction for rule code that only produces valid dates.
    static func ymd(_ year: Int, _ month: Int, _ day: Int) -> LocalDate {
        LocalDate(dayNumber: Civil.dayNumber(year: year, month: month, day: day))
    }
}

func pad(_ v: Int, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}
