/// A half-open span of instants `[start, end)` in Unix seconds.
public struct InstantRange: Hashable, Sendable, Codable {
    public var start: Int64
    public var end: Int64

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }
}

/// Business time for SLA arithmetic: a time zone, weekly opening hours, holidays and
/// excluded intervals (customer pauses R-SLA-4, change windows R-SLA-5).
///
/// An instant is business time when its local wall-clock time lies in an opening window
/// of its local day, the day that window opened on is not a holiday, and it is not in
/// an excluded interval. So a business hour is an hour of wall-clock time inside a
/// window, and a window that a DST transition shortens or lengthens counts its real
/// length. All instants are Unix seconds (`Int64`); nothing here reads the clock.
///
/// Holidays and zone offsets are precomputed for `years` (local dates); asking about an
/// instant outside that range is an `out_of_range` error, never a guess.
public struct BusinessCalendar: Sendable {
    public let timeZone: String
    public let years: ClosedRange<Int>

    // Zone offset table: offset zOffsets[k-1] applies from zTimes[k-1] (zInitial before zTimes[0]).
    let zInitial: Int64
    let zTimes: [Int64]
    let zOffsets: [Int64]
    // Local day numbers covered, inclusive.
    let firstDay: Int64
    let lastDay: Int64
    // Holiday bit per local day, from firstDay - 1 (so the day before a window's owner is covered).
    let holidayBits: [UInt64]
    let pieces: [CompiledWeek.Piece]
    let bounds: [Int]
    let businessWeekdays: UInt8
    private(set) var exStart: [Int64]
    private(set) var exEnd: [Int64]

    /// - Parameters:
    ///   - zone: offset history of the calendar's time zone.
    ///   - openingHours: weekly windows; `OpeningHours.always` for 24x7.
    ///   - holidays: local dates that are closed (statutory, imported and extra days).
    ///   - excluded: instants that never count (pauses, change-implementation windows).
    ///   - years: the local years the calendar covers.
    /// - Throws: `empty_opening_hours`, `invalid_opening_hours`, `out_of_range`.
    public init(zone: ZoneRules, openingHours: OpeningHours, holidays: [LocalDate] = [], excluded: [InstantRange] = [],
                years: ClosedRange<Int> = BusinessCalendar.defaultYears) throws(CalendarError) {
        guard years.lowerBound >= 1, years.upperBound <= 9998, years.count <= 500 else {
            throw .outOfRange("calendar years \(years) must lie within 1...9998 and span at most 500 years")
        }
        let week = try CompiledWeek(openingHours)
        guard !week.isEmpty else {
            throw CalendarError(code: "empty_opening_hours", message: "the calendar has no opening hours, so no business target can ever be met")
        }
        self.timeZone = zone.identifier
        self.years = years
        firstDay = Civil.dayNumber(year: years.lowerBound, month: 1, day: 1)
        lastDay = Civil.dayNumber(year: years.upperBound, month: 12, day: 31)
        let table = zone.table(from: (firstDay - 2) * 86_400, to: (lastDay + 3) * 86_400)
        zInitial = Int64(table.initial)
        zTimes = table.times
        zOffsets = table.offsets.map(Int64.init)
        var bits = [UInt64](repeating: 0, count: Int((lastDay - firstDay + 3) / 64 + 1))
        for d in holidays where d.dayNumber >= firstDay - 1 && d.dayNumber <= lastDay + 1 {
            let i = Int(d.dayNumber - firstDay + 1)
            bits[i >> 6] |= 1 << UInt64(i & 63)
        }
        holidayBits = bits
        pieces = week.pieces
        bounds = week.bounds
        var mask: UInt8 = 0
        for w in 0..<7 where week.opens(on: w) { mask |= 1 << UInt8(w) }
        businessWeekdays = mask
        (exStart, exEnd) = Self.merge(excluded)
    }

    public static let defaultYears = 2000...2100

    /// A copy with more excluded intervals (a pause R-SLA-4, a change window R-SLA-5) added.
    public func excluding(_ more: [InstantRange]) -> BusinessCalendar {
        var copy = self
        let (starts, ends) = Self.merge(zip(exStart, exEnd).map { InstantRange(start: $0, end: $1) } + more)
        copy.exStart = starts
        copy.exEnd = ends
        return copy
    }

    /// Sorted, merged exclusion bounds, so the scan can carve them in one pass.
    static func merge(_ ranges: [InstantRange]) -> ([Int64], [Int64]) {
        var merged: [InstantRange] = []
        for r in ranges.filter({ $0.end > $0.start }).sorted(by: { $0.start < $1.start }) {
            if let last = merged.last, r.start <= last.end {
                merged[merged.count - 1].end = max(last.end, r.end)
            } else {
                merged.append(r)
            }
        }
        return (merged.map(\.start), merged.map(\.end))
    }

    // MARK: Queries

    /// The instant at which `seconds` business seconds, counted from `start`, are used up: the due time.
    ///
    /// A start outside business time counts from the next opening. A due time that uses its last second
    /// exactly at a closing is that closing instant, not the next opening (R-SLA-2). Zero seconds is `start`.
    /// - Throws: `invalid_request` for a negative duration, `out_of_range` past the calendar's years.
    public func adding(businessSeconds seconds: Int64, to start: Int64) throws(CalendarError) -> Int64 {
        guard seconds >= 0 else { throw .invalidRequest("business seconds must not be negative (got \(seconds))") }
        if seconds == 0 { return start }
        var remaining = seconds
        var due: Int64 = 0
        try scan(from: start) { a, b in
            let length = b - a
            if remaining <= length {
                due = a + remaining
                return false
            }
            remaining -= length
            return true
        }
        return due
    }

    /// Business seconds in `[from, to)`; negative when `to` is before `from`.
    public func businessSeconds(from: Int64, to: Int64) throws(CalendarError) -> Int64 {
        if to < from { return try -businessSeconds(from: to, to: from) }
        if to == from { return 0 }
        var total: Int64 = 0
        try scan(from: from, until: to) { a, b in
            if a >= to { return false }
            if b >= to {
                total += to - a
                return false
            }
            total += b - a
            return true
        }
        return total
    }

    /// Whether `t` is business time.
    public func isBusinessTime(_ t: Int64) throws(CalendarError) -> Bool {
        var inside = false
        try scan(from: t, until: t + 1) { a, _ in
            inside = a == t
            return false
        }
        return inside
    }

    /// The first opening (an instant in business time whose previous second is not) at or after `t`,
    /// or nil when there is none within the calendar's years.
    public func nextOpening(atOrAfter t: Int64) throws(CalendarError) -> Int64? {
        var prevEnd = Int64.min
        var found: Int64?
        // Start one second early to learn whether t itself continues a span; at the very first
        // covered second there is nothing earlier to look at.
        let from = (try? localDay(of: t - 1)) != nil ? t - 1 : t
        do {
            try scan(from: from) { a, b in
                if a != prevEnd && a >= t {
                    found = a
                    return false
                }
                prevEnd = b
                return true
            }
        } catch where error.code == "out_of_range" && found == nil {
            _ = try localDay(of: t) // t itself out of range is an error; running out of years is "none"
        }
        return found
    }

    /// The first closing (the end of a business span) strictly after `t`, or nil when none
    /// within the calendar's years (a 24x7 calendar never closes).
    public func nextClosing(after t: Int64) throws(CalendarError) -> Int64? {
        var spanEnd: Int64?
        var found: Int64?
        do {
            try scan(from: t) { a, b in
                if let e = spanEnd, a != e {
                    found = e
                    return false
                }
                spanEnd = b
                return true
            }
        } catch where error.code == "out_of_range" && found == nil {
            _ = try localDay(of: t)
        }
        return found
    }

    /// Whether local date `day` is a business day: its weekday has a window that opens on it
    /// and it is not a holiday. Excluded intervals do not change business days.
    public func isBusinessDay(_ day: LocalDate) throws(CalendarError) -> Bool {
        guard day.dayNumber >= firstDay && day.dayNumber <= lastDay else { throw .outOfRange("\(day) is outside the calendar's years \(years)") }
        return businessWeekdays & (1 << UInt8(Civil.weekdayIndex(day.dayNumber))) != 0 && !isHoliday(day.dayNumber)
    }

    /// The `count`-th business day after `date` (count ≥ 1; count 0 returns `date`).
    public func businessDay(_ count: Int, after date: LocalDate) throws(CalendarError) -> LocalDate {
        guard count >= 0 else { throw .invalidRequest("business day count must not be negative") }
        var d = date
        var left = count
        while left > 0 {
            d = d.adding(days: 1)
            if try isBusinessDay(d) { left -= 1 }
        }
        return d
    }

    /// The same local wall-clock time `count` business days after `t`'s local date (R-CHG-4's
    /// 5-business-day notice). A wall time that the target day skips (DST gap) resolves to the
    /// instant the clock jumps; a repeated one to its first occurrence.
    public func adding(businessDays count: Int, to t: Int64) throws(CalendarError) -> Int64 {
        let day = try localDay(of: t)
        let wall = t + offset(at: t)
        let target = try businessDay(count, after: LocalDate(dayNumber: day))
        return instant(localWall: target.dayNumber * 86_400 + (wall - day * 86_400))
    }

    /// The local date of instant `t` in the calendar's zone.
    public func localDate(of t: Int64) throws(CalendarError) -> LocalDate { LocalDate(dayNumber: try localDay(of: t)) }

    /// UTC offset in seconds at `t`.
    public func offset(at t: Int64) -> Int64 {
        let k = segmentIndex(t)
        return k == 0 ? zInitial : zOffsets[k - 1]
    }

    /// Bytes held by this calendar (struct plus array storage), for the memory budget.
    public var memoryFootprint: Int {
        func bytes<T>(_ a: [T]) -> Int { a.capacity * MemoryLayout<T>.stride + 32 }
        return MemoryLayout<BusinessCalendar>.size + timeZone.utf8.count + bytes(zTimes) + bytes(zOffsets) + bytes(holidayBits)
            + bytes(pieces) + bytes(bounds) + bytes(exStart) + bytes(exEnd)
    }

    // MARK: Core scan

    @inline(__always)
    func isHoliday(_ day: Int64) -> Bool {
        let i = Int(day - firstDay + 1)
        return (holidayBits[i >> 6] >> UInt64(i & 63)) & 1 != 0
    }

    @inline(__always)
    func segmentIndex(_ t: Int64) -> Int {
        var lo = 0, hi = zTimes.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if zTimes[mid] <= t { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func localDay(of t: Int64) throws(CalendarError) -> Int64 {
        let day = Civil.floorDiv(t + offset(at: t), 86_400)
        guard day >= firstDay && day <= lastDay else {
            throw .outOfRange("\(ISO8601.format(t)) is outside the calendar's years \(years) in \(timeZone)")
        }
        return day
    }

    /// The earliest instant whose local wall time is `wall` (or, in a gap, the jump instant).
    func instant(localWall wall: Int64) -> Int64 {
        ZoneRules.instant(localWall: wall, initial: zInitial, times: zTimes, offsets: zOffsets, from: segmentIndex(wall - 2 * 86_400))
    }

    /// Calls `body` with the business intervals `[a, b)` at or after `t`, in order, until it returns false.
    ///
    /// Offset segments (between zone transitions) partition UTC time; within one, wall time is UTC plus a
    /// constant, so each window maps exactly and a transition day is visited once per segment, clipped.
    @inline(__always)
    func scan(from t: Int64, until limit: Int64 = Int64.max, _ body: (Int64, Int64) -> Bool) throws(CalendarError) {
        var seg = segmentIndex(t)
        var off = seg == 0 ? zInitial : zOffsets[seg - 1]
        var segStart = seg == 0 ? Int64.min : zTimes[seg - 1]
        var segEnd = seg < zTimes.count ? zTimes[seg] : Int64.max
        var day = Civil.floorDiv(t + off, 86_400)
        guard day >= firstDay && day <= lastDay else {
            throw .outOfRange("\(ISO8601.format(t)) is outside the calendar's years \(years) in \(timeZone)")
        }
        let exCount = exStart.count
        var ex = 0
        if exCount > 0 {
            var lo = 0, hi = exCount
            while lo < hi { let mid = (lo + hi) >> 1; if exEnd[mid] <= t { lo = mid + 1 } else { hi = mid } }
            ex = lo
        }
        var weekday = Civil.weekdayIndex(day)
        while true {
            let base = day &* 86_400 &- off
            if base >= limit { return }
            var i = bounds[weekday]
            let iEnd = bounds[weekday + 1]
            while i < iEnd {
                let p = pieces[i]
                i += 1
                if isHoliday(day + Int64(p.owner)) { continue }
                var a = base + Int64(p.start)
                var b = base + Int64(p.end)
                if a < segStart { a = segStart }
                if b > segEnd { b = segEnd }
                if a < t { a = t }
                if a >= b { continue }
                if exCount == 0 {
                    if !body(a, b) { return }
                    continue
                }
                while a < b {
                    while ex < exCount && exEnd[ex] <= a { ex += 1 }
                    if ex < exCount && exStart[ex] < b {
                        let es = exStart[ex]
                        if es > a, !body(a, es) { return }
                        a = exEnd[ex]
                    } else {
                        if !body(a, b) { return }
                        break
                    }
                }
            }
            day += 1
            weekday = weekday == 6 ? 0 : weekday + 1
            if day &* 86_400 &- off >= segEnd {
                // This local day starts after the segment ends: continue in the next segment(s).
                seg += 1
                segStart = segEnd
                off = zOffsets[seg - 1]
                segEnd = seg < zTimes.count ? zTimes[seg] : Int64.max
                day = Civil.floorDiv(segStart + off, 86_400)
                weekday = Civil.weekdayIndex(day)
            }
            if day > lastDay {
                throw .outOfRange("business time runs past the calendar's years \(years) in \(timeZone)")
            }
        }
    }
}
