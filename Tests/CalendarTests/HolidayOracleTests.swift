import Foundation
import Testing
@testable import CSSCalendar

/// R-SLA-2: statutory holidays of the support region, compared date by date with the
/// Python `holidays` oracle (Tools/oracles/gen_holidays.py) for 2020–2035.
@Suite struct HolidayOracleTests {
    struct Difference: Hashable {
        var region: String
        var date: String
        var kind: String // "extra" (we have it, oracle not) or "missing"
    }

    /// Intended differences with their reasons live in one file the due-time oracle reads too.
    static func intendedDifferences() throws -> Set<Difference> {
        let root = try #require(Fixtures.json("intended_differences.json") as? [String: Any])
        let rows = try #require(root["differences"] as? [[String: String]])
        var out = Set<Difference>()
        for r in rows {
            #expect(!(r["reason"] ?? "").isEmpty, "every intended difference needs a reason")
            out.insert(Difference(region: r["region"]!, date: r["date"]!, kind: r["kind"]!))
        }
        return out
    }

    @Test(arguments: HolidayRegion.supportedCodes)
    func matchesOracle(region code: String) throws { // R-SLA-2
        let root = try #require(Fixtures.json("holidays.json") as? [String: Any])
        let regions = try #require(root["regions"] as? [String: [[String]]])
        let rows = try #require(regions[code])
        let oracle = Set(rows.map { $0[0] })
        let region = try HolidayRegion(code: code)
        var ours = Set<String>()
        for y in 2020...2035 { for h in region.holidays(in: y) { ours.insert(h.date.description) } }
        let intended = try Self.intendedDifferences().filter { $0.region == code }
        let extra = ours.subtracting(oracle).map { Difference(region: code, date: $0, kind: "extra") }
        let missing = oracle.subtracting(ours).map { Difference(region: code, date: $0, kind: "missing") }
        #expect(Set(extra + missing) == intended, "unexpected differences: \(Set(extra + missing).symmetricDifference(intended).sorted { $0.date < $1.date })")
        #expect(oracle.count > 100)
    }

    @Test func namesFollowTheOracleForSampleDays() throws {
        let h = try HolidayRegion(code: "CA-ON").holidays(in: 2027)
        #expect(h.first == Holiday(date: d("2027-01-01"), name: "New Year's Day"))
        #expect(h.contains(Holiday(date: d("2027-12-28"), name: "Boxing Day (observed)")))
        let us = try HolidayRegion(code: "US").holidays(in: 2021)
        #expect(us.contains(Holiday(date: d("2021-12-31"), name: "New Year's Day (observed)")))
        #expect(us.contains(Holiday(date: d("2021-06-18"), name: "Juneteenth National Independence Day (observed)")))
    }

    @Test func unknownRegionIsAnError() {
        #expect(throws: CalendarError.self) { try HolidayRegion(code: "XX") }
        do {
            _ = try HolidayRegion(code: "DE-ZZ")
            Issue.record("expected unknown_region")
        } catch {
            #expect(error.code == "unknown_region")
        }
    }

    @Test func rulesDoNotRunOut() throws {
        // Easter 2100 is 28 March; Good Friday 26 March, Easter Monday 29 March.
        let gb = try HolidayRegion(code: "GB-ENG").holidays(in: 2100).map(\.date)
        #expect(gb.contains(d("2100-03-26")) && gb.contains(d("2100-03-29")))
        #expect(try HolidayRegion(code: "US").holidays(in: 2199).count >= 11)
    }
}
