import Foundation
import Testing
@testable import CSSCalendar

/// The TZif reader and its POSIX-rule footer (which carries every zone past the last explicit
/// transition, 2037 in "fat" files and much earlier in "slim" ones), checked against Foundation.
@Suite struct ZoneRulesTests {
    static let zones = ["America/New_York", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata",
                        "America/Santiago", "Pacific/Chatham", "America/St_Johns", "Europe/Dublin", "Asia/Kathmandu", "UTC"]

    @Test(arguments: zones)
    func offsetsMatchFoundationThrough2100(zone: String) throws { // R-SLA-2
        let rules = try ZoneRules.load(identifier: zone)
        let foundation = try #require(TimeZone(identifier: zone))
        var rng = SplitMix64(state: 5)
        let lo = t("2000-01-01T00:00:00Z"), hi = t("2100-12-31T00:00:00Z")
        var mismatches: [String] = []
        for _ in 0..<3000 {
            let instant = Int64.random(in: lo..<hi, using: &rng)
            let ours = rules.offset(at: instant)
            let theirs = foundation.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
            if ours != theirs { mismatches.append("\(ISO8601.format(instant)): \(ours) vs \(theirs)") }
        }
        let count = mismatches.count
        #expect(count == 0, Comment(rawValue: mismatches.prefix(5).joined(separator: "; ")))
    }

    @Test func footerRulesAreParsed() throws {
        let us = try #require(PosixTZ("EST5EDT,M3.2.0,M11.1.0"))
        #expect(us.stdOffset == -18_000 && us.dst?.offset == -14_400)
        let lordHowe = try #require(PosixTZ("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"))
        #expect(lordHowe.stdOffset == 37_800 && lordHowe.dst?.offset == 39_600)
        let ireland = try #require(PosixTZ("IST-1GMT0,M10.5.0,M3.5.0/1"))
        #expect(ireland.stdOffset == 3600 && ireland.dst?.offset == 0)
        #expect(PosixTZ("IST-5:30")?.dst == nil)
        #expect(PosixTZ("EST5EDT,M13.1.0,M11.1.0") == nil)
        // Second Sunday of March 2026 is the 8th.
        #expect(PosixTZ.DateRule.monthWeekDay(3, 2, 0).day(in: 2026) == d("2026-03-08").dayNumber)
        #expect(PosixTZ.DateRule.monthWeekDay(10, 5, 0).day(in: 2026) == d("2026-10-25").dayNumber)
    }

    @Test func rejectsGarbage() {
        #expect(throws: CalendarError.self) { try ZoneRules(identifier: "x", tzif: Array("not a tzif file at all, not at all, really not".utf8)) }
        #expect(throws: CalendarError.self) { try ZoneRules.load(identifier: "posixrules/../../passwd") }
    }
}
