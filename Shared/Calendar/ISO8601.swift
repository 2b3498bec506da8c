/// RFC 3339 timestamps to and from Unix seconds, exact to the second.
public enum ISO8601 {
    /// Parses `YYYY-MM-DDTHH:MM:SS` followed by `Z` or a `±HH:MM` offset.
    ///
    /// Fractional seconds are accepted only when they are zero, because the
    /// engine is exact to the second and silently dropping a fraction would move a due time.
    /// - Throws: `invalid_date` with the offending text.
    public static func parse(_ text: String) throws(CalendarError) -> Int64 {
        let b = Array(text.utf8)
        let bad = CalendarError(code: "invalid_date", message: "expected an RFC 3339 timestamp like 2026-03-06T20:30:00Z, got '\(text)'")
        guard b.count >= 20 else { throw bad }
        func num(_ i: Int, _ n: Int) throws(CalendarError) -> Int {
            var v = 0
            for k in i..<(i + n) {
                let c = b[k]
                guard c >= 48 && c <= 57 else { throw bad }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116 || b[10] == 32, b[13] == 58, b[16] == 58 else { throw bad }
        let year = try num(0, 4), month = try num(5, 2), day = try num(8, 2)
        let hour = try num(11, 2), minute = try num(14, 2), second = try num(17, 2)
        guard hour < 24, minute < 60, second < 60 else { throw bad }
        let date = try LocalDate(year: year, month: month, day: day)
        var i = 19
        if i < b.count, b[i] == 46 { // '.'
            i += 1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                guard b[i] == 48 else {
                    throw CalendarError(code: "invalid_date", message: "fractional seconds are not supported (the engine is exact to the second): '\(text)'")
                }
                i += 1
            }
            guard i > start else { throw bad }
        }
        guard i < b.count else { throw bad }
        var offset = 0
        if b[i] == 90 || b[i] == 122 { // Z
            i += 1
        } else if b[i] == 43 || b[i] == 45 { // + -
            let sign = b[i] == 45 ? -1 : 1
            guard i + 6 == b.count, b[i + 3] == 58 else { throw bad }
            let oh = try num(i + 1, 2), om = try num(i + 4, 2)
            guard oh < 24, om < 60 else { throw bad }
            offset = sign * (oh * 3600 + om * 60)
            i += 6
        } else {
            throw bad
        }
        guard i == b.count else { throw bad }
        return date.dayNumber * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset)
    }

    /// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
    public static func format(_ t: Int64) -> String {
        let day = Civil.floorDiv(t, 86_400)
        let sod = Int(t - day * 86_400)
        return LocalDate(dayNumber: day).description + "T" + pad(sod / 3600, 2) + ":" + pad(sod / 60 % 60, 2) + ":" + pad(sod % 60, 2) + "Z"
    }
}
