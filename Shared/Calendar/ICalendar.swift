/// Holidays imported from iCalendar (RFC 5545): all-day `VEVENT`s, optionally
/// repeating with a yearly `RRULE`.
///
/// This is how any region without built-in rules, or a customer's own extra days,
/// gets into a calendar. Anything the importer cannot interpret exactly is an error
/// (`malformed_ics` or `unsupported_ics`), never silently skipped.
public struct ICalendarHolidays: Sendable {
    public struct Event: Sendable, Hashable {
        public var start: LocalDate
        /// Number of days the event covers (DTEND is exclusive), at least 1.
        public var days: Int
        public var name: String
        public var rule: YearlyRule?
        public var exceptions: Set<LocalDate>
    }

    /// `RRULE:FREQ=YEARLY` with the parts holiday feeds use.
    public struct YearlyRule: Sendable, Hashable {
        public var interval = 1
        public var count: Int?
        public var until: LocalDate?
        public var byMonth: [Int] = []
        public var byMonthDay: [Int] = []
        /// (ordinal, weekday); ordinal 0 means every such weekday of the month.
        public var byDay: [ByDay] = []

        public struct ByDay: Sendable, Hashable {
            public var ordinal: Int
            public var weekday: Weekday
        }
    }

    public var events: [Event]

    /// - Throws: `malformed_ics` (with a line number) or `unsupported_ics`.
    public init(parsing text: String) throws(CalendarError) {
        // Unfold: a line starting with a space or tab continues the previous one.
        var lines: [(Int, String)] = []
        var lineNo = 0
        // Split on bytes: in a Swift String "\r\n" is one Character, so Character splitting would miss CRLF.
        for raw in text.utf8.split(separator: 10, omittingEmptySubsequences: false) {
            lineNo += 1
            let bytes = raw.last == 13 ? raw.dropLast() : raw[...]
            let line = Substring(String(decoding: bytes, as: UTF8.self))
            if let first = line.first, first == " " || first == "\t", !lines.isEmpty {
                lines[lines.count - 1].1 += line.dropFirst()
            } else if !line.isEmpty {
                lines.append((lineNo, String(line)))
            }
        }
        func malformed(_ n: Int, _ why: String) -> CalendarError {
            CalendarError(code: "malformed_ics", message: "line \(n): \(why)")
        }
        guard let first = lines.first, first.1.uppercased() == "BEGIN:VCALENDAR" else {
            throw malformed(lines.first?.0 ?? 1, "expected BEGIN:VCALENDAR")
        }
        var stack: [String] = []
        var events: [Event] = []
        var current: (start: LocalDate?, end: LocalDate?, name: String, rule: YearlyRule?, ex: Set<LocalDate>, line: Int)?
        for (n, line) in lines {
            guard let colon = line.firstIndex(of: ":") else { throw malformed(n, "no ':' in content line") }
            let head = line[..<colon]
            let value = String(line[line.index(after: colon)...])
            let headParts = head.split(separator: ";")
            guard let nameSub = headParts.first else { throw malformed(n, "empty property name") }
            let name = nameSub.uppercased()
            let params = headParts.dropFirst().map { $0.uppercased() }
            switch name {
            case "BEGIN":
                let comp = value.uppercased()
                stack.append(comp)
                if comp == "VEVENT" {
                    guard stack.count == 2, stack[0] == "VCALENDAR" else { throw malformed(n, "VEVENT outside VCALENDAR") }
                    current = (nil, nil, "Holiday", nil, [], n)
                }
                continue
            case "END":
                guard let top = stack.popLast(), top == value.uppercased() else { throw malformed(n, "END:\(value) does not close the open component") }
                if top == "VEVENT", let c = current {
                    guard let start = c.start else { throw malformed(c.line, "VEVENT without DTSTART") }
                    var days = 1
                    if let end = c.end {
                        days = Int(end.dayNumber - start.dayNumber)
                        guard days >= 1 else { throw malformed(c.line, "DTEND is not after DTSTART") }
                        guard days <= 366 else { throw malformed(c.line, "event longer than a year") }
                    }
                    events.append(Event(start: start, days: days, name: c.name, rule: c.rule, exceptions: c.ex))
                    current = nil
                }
                continue
            default:
                break
            }
            // Only properties directly inside a VEVENT matter (not VALARM etc.).
            guard current != nil, stack.last == "VEVENT" else { continue }
            switch name {
            case "DTSTART", "DTEND":
                let date = try Self.date(value, params: params, line: n, property: name)
                if name == "DTSTART" { current!.start = date } else { current!.end = date }
            case "SUMMARY":
                current!.name = Self.unescape(value)
            case "RRULE":
                current!.rule = try Self.rule(value, line: n)
            case "EXDATE":
                for v in value.split(separator: ",") {
                    current!.ex.insert(try Self.date(String(v), params: params, line: n, property: name))
                }
            case "RDATE":
                throw CalendarError(code: "unsupported_ics", message: "line \(n): RDATE is not supported; list the dates as separate events")
            default:
                continue
            }
        }
        guard stack.isEmpty else { throw malformed(lines.last?.0 ?? 1, "unterminated \(stack.last!)") }
        self.events = events
    }

    static func date(_ value: String, params: [String], line: Int, property: String) throws(CalendarError) -> LocalDate {
        if value.contains("T") || params.contains(where: { $0 == "VALUE=DATE-TIME" }) {
            throw CalendarError(code: "unsupported_ics", message: "line \(line): \(property) is a date-time; only all-day (VALUE=DATE) events are holidays")
        }
        do {
            return try LocalDate(iso: value, basic: true)
        } catch {
            throw CalendarError(code: "malformed_ics", message: "line \(line): \(property) '\(value)' is not a date (YYYYMMDD)")
        }
    }

    static func unescape(_ s: String) -> String {
        var out = ""
        var escaped = false
        for ch in s {
            if escaped {
                out.append(ch == "n" || ch == "N" ? "\n" : ch)
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else {
                out.append(ch)
            }
        }
        return out
    }

    static func rule(_ value: String, line: Int) throws(CalendarError) -> YearlyRule {
        func malformed(_ why: String) -> CalendarError { CalendarError(code: "malformed_ics", message: "line \(line): RRULE \(why)") }
        func unsupported(_ why: String) -> CalendarError { CalendarError(code: "unsupported_ics", message: "line \(line): RRULE \(why)") }
        var rule = YearlyRule()
        var freq: String?
        for part in value.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { throw malformed("part '\(part)' is not NAME=VALUE") }
            let key = kv[0].uppercased(), val = String(kv[1]).uppercased()
            func ints(_ range: ClosedRange<Int>) throws(CalendarError) -> [Int] {
                var out: [Int] = []
                for s in val.split(separator: ",") {
                    guard let v = Int(s), range.contains(v), v != 0 else { throw malformed("\(key) value '\(s)' is out of range") }
                    out.append(v)
                }
                return out
            }
            switch key {
            case "FREQ": freq = val
            case "INTERVAL":
                guard let v = Int(val), v >= 1 else { throw malformed("INTERVAL must be a positive integer") }
                rule.interval = v
            case "COUNT":
                guard let v = Int(val), v >= 1 else { throw malformed("COUNT must be a positive integer") }
                rule.count = v
            case "UNTIL":
                do { rule.until = try LocalDate(iso: val.prefix(8), basic: true) } catch { throw malformed("UNTIL '\(val)' is not a date") }
            case "BYMONTH": rule.byMonth = try ints(1...12)
            case "BYMONTHDAY": rule.byMonthDay = try ints(-31...31)
            case "BYDAY":
                for s in val.split(separator: ",") {
                    let code = s.suffix(2)
                    let ordText = s.dropLast(2)
                    let weekdays = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
                    guard let w = weekdays.firstIndex(of: String(code)) else { throw malformed("BYDAY '\(s)' has no weekday") }
                    var ord = 0
                    if !ordText.isEmpty {
                        guard let o = Int(ordText), o != 0, (-5...5).contains(o) else { throw malformed("BYDAY ordinal '\(ordText)' is invalid") }
                        ord = o
                    }
                    rule.byDay.append(.init(ordinal: ord, weekday: Weekday(rawValue: w)!))
                }
            case "WKST": continue
            default: throw unsupported("part \(key) is not supported for holidays")
            }
        }
        guard let f = freq else { throw malformed("has no FREQ") }
        guard f == "YEARLY" else { throw unsupported("FREQ=\(f) is not supported; holidays repeat yearly") }
        if !rule.byDay.isEmpty && rule.byMonth.isEmpty { throw unsupported("BYDAY without BYMONTH is not supported") }
        return rule
    }

    /// All holiday dates (with names) of the events, for occurrences starting in `years`.
    public func holidays(in years: ClosedRange<Int>) -> [Holiday] {
        var out: [Holiday] = []
        for e in events {
            for start in occurrences(of: e, in: years) where !e.exceptions.contains(start) {
                for k in 0..<e.days { out.append(Holiday(date: start.adding(days: k), name: e.name)) }
            }
        }
        return out.sorted()
    }

    func occurrences(of e: Event, in years: ClosedRange<Int>) -> [LocalDate] {
        guard let rule = e.rule else { return years.contains(e.start.year) ? [e.start] : [] }
        let (sy, sm, sd) = e.start.components
        var out: [LocalDate] = []
        var produced = 0
        var y = sy
        let last = min(years.upperBound, rule.until?.year ?? Int.max)
        while y <= last {
            var dates: [LocalDate] = []
            let months = rule.byMonth.isEmpty ? [sm] : rule.byMonth
            for m in months {
                let dim = Civil.daysInMonth(year: y, month: m)
                var candidates: [Int] = []
                if !rule.byDay.isEmpty {
                    let b = RuleBuilder(year: y)
                    for bd in rule.byDay {
                        if bd.ordinal == 0 {
                            var d = b.nth(1, bd.weekday, of: m)
                            while d.components.month == m { candidates.append(d.components.day); d = d.adding(days: 7) }
                        } else {
                            let d = b.nth(bd.ordinal > 0 ? bd.ordinal : -1, bd.weekday, of: m).adding(days: bd.ordinal < -1 ? 7 * (bd.ordinal + 1) : 0)
                            if d.components.month == m && d.components.year == y { candidates.append(d.components.day) }
                        }
                    }
                    if !rule.byMonthDay.isEmpty {
                        let allowed = Set(rule.byMonthDay.map { $0 > 0 ? $0 : dim + 1 + $0 })
                        candidates = candidates.filter { allowed.contains($0) }
                    }
                } else if !rule.byMonthDay.isEmpty {
                    candidates = rule.byMonthDay.map { $0 > 0 ? $0 : dim + 1 + $0 }.filter { $0 >= 1 && $0 <= dim }
                } else if sd <= dim {
                    candidates = [sd] // 29 February only repeats in leap years (RFC 5545 §3.3.10)
                }
                dates += candidates.map { LocalDate.ymd(y, m, $0) }
            }
            for d in Set(dates).sorted() where d >= e.start {
                if let u = rule.until, d > u { continue }
                if let c = rule.count, produced >= c { return out }
                produced += 1
                if years.contains(y) { out.append(d) }
            }
            y += rule.interval
        }
        return out
    }
}
