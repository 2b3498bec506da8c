import Testing
@testable import CSSCalendar

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Properties over random starts and durations in DST-heavy zones.
@Suite struct PropertyTests {
    static let cache = CalendarCache()
    static let specs: [CalendarSpec] = [
        CalendarSpec(kind: .business, timeZone: "America/New_York", region: "US"),
        CalendarSpec(kind: .business, timeZone: "Europe/London", region: "GB-ENG",
                     openingHours: OpeningHours([OpeningWindow(.monday, open: try! TimeOfDay(parsing: "22:00"), close: try! TimeOfDay(parsing: "02:00")),
                                                 OpeningWindow(.wednesday, open: try! TimeOfDay(parsing: "00:30"), close: try! TimeOfDay(parsing: "03:00")),
                                                 OpeningWindow(.sunday, open: try! TimeOfDay(parsing: "09:00"), close: try! TimeOfDay(parsing: "12:00"))])),
        CalendarSpec(kind: .business, timeZone: "Australia/Lord_Howe", region: "AU-NSW"),
        CalendarSpec(kind: .business, timeZone: "Asia/Kolkata", region: nil),
    ]
    static let lo = t("2020-01-01T00:00:00Z"), hi = t("2035-01-01T00:00:00Z")

    @Test(arguments: 0..<specs.count)
    func addThenMeasureMonotoneAndInsideBusinessTime(specIndex: Int) throws { // R-SLA-2
        let cal = try Self.cache.calendar(Self.specs[specIndex])
        var rng = SplitMix64(state: UInt64(specIndex) &+ 42)
        var failures: [String] = []
        for _ in 0..<1500 {
            let start = Int64.random(in: Self.lo..<Self.hi, using: &rng)
            let n = Int64.random(in: 1...(60 * 3600), using: &rng)
            let due = try cal.adding(businessSeconds: n, to: start)
            // Adding then measuring returns the duration.
            if try cal.businessSeconds(from: start, to: due) != n { failures.append("measure \(start) \(n)") }
            // The last second used is business time: the result never falls outside it.
            if try !cal.isBusinessTime(due - 1) { failures.append("outside \(start) \(n)") }
            // Monotone in the start and in the duration.
            let later = start + Int64.random(in: 0...(3 * 86_400), using: &rng)
            if try cal.adding(businessSeconds: n, to: later) < due { failures.append("start-monotone \(start) \(later) \(n)") }
            let more = n + Int64.random(in: 0...(8 * 3600), using: &rng)
            if try cal.adding(businessSeconds: more, to: start) < due { failures.append("duration-monotone \(start) \(n) \(more)") }
            // Splitting a duration composes.
            let k = Int64.random(in: 0...n, using: &rng)
            if try cal.adding(businessSeconds: n - k, to: cal.adding(businessSeconds: k, to: start)) != due { failures.append("compose \(start) \(n) \(k)") }
        }
        let count = failures.count
        #expect(count == 0, Comment(rawValue: failures.prefix(5).joined(separator: "; ")))
    }

    @Test(arguments: 0..<specs.count)
    func excludedIntervalsShiftDueTimesByTheirBusinessOverlap(specIndex: Int) throws { // R-SLA-4, R-SLA-5
        let cal = try Self.cache.calendar(Self.specs[specIndex])
        var rng = SplitMix64(state: UInt64(specIndex) &+ 7)
        var failures: [String] = []
        for _ in 0..<1000 {
            let start = Int64.random(in: Self.lo..<Self.hi, using: &rng)
            let n = Int64.random(in: 1...(48 * 3600), using: &rng)
            let due = try cal.adding(businessSeconds: n, to: start)
            // A pause somewhere between the start and the original due time.
            let a = Int64.random(in: start...due, using: &rng)
            let b = a + Int64.random(in: 1...(4 * 86_400), using: &rng)
            let overlap = try cal.businessSeconds(from: a, to: b)
            let paused = cal.excluding([InstantRange(start: a, end: b)])
            if try paused.adding(businessSeconds: n, to: start) != cal.adding(businessSeconds: n + overlap, to: start) {
                failures.append("shift \(start) \(n) [\(a),\(b))")
            }
            if try paused.businessSeconds(from: start, to: b) != cal.businessSeconds(from: start, to: b) - overlap {
                failures.append("measure \(start) [\(a),\(b))")
            }
            // A pause entirely before the start changes nothing.
            if try cal.excluding([InstantRange(start: start - 5 * 86_400, end: start)]).adding(businessSeconds: n, to: start) != due {
                failures.append("before \(start)")
            }
        }
        let count = failures.count
        #expect(count == 0, Comment(rawValue: failures.prefix(5).joined(separator: "; ")))
    }

    @Test func twentyFourSevenIsPlainArithmeticMinusExclusions() throws { // R-SLA-1, R-SLA-5
        let cal = try Self.cache.calendar(CalendarSpec(kind: .twentyFourSeven, timeZone: "Australia/Lord_Howe", region: "AU-NSW"))
        var rng = SplitMix64(state: 99)
        for _ in 0..<500 {
            let start = Int64.random(in: Self.lo..<Self.hi, using: &rng)
            let n = Int64.random(in: 1...(8 * 3600), using: &rng)
            #expect(try cal.adding(businessSeconds: n, to: start) == start + n)
            let window = InstantRange(start: start + 60, end: start + 60 + Int64.random(in: 1...7200, using: &rng))
            let expected = n > 60 ? start + n + (window.end - window.start) : start + n
            #expect(try cal.excluding([window]).adding(businessSeconds: n, to: start) == expected)
        }
    }
}
