import ClassificationService
import CSSCalendar
import CSSModel
import Foundation
import Testing

func instant(_ text: String) -> Int64 {
    Int64(RFC3339.parse(text)!.timeIntervalSince1970)
}

func date(_ y: Int, _ m: Int, _ d: Int) -> LocalDate {
    LocalDate(dayNumber: Civil.dayNumber(year: y, month: m, day: d))
}

@Suite struct ContractYearTests {
    // R-QTA-1: years roll on the contract's anniversary at midnight in the customer's zone.
    @Test(arguments: [
        ("America/Toronto", "2026-03-15T03:59:59Z", "2025-03-15T04:00:00Z", "2026-03-15T04:00:00Z"), // EDT starts 8 March: midnight is 04:00Z
        ("America/Toronto", "2026-03-15T04:00:00Z", "2026-03-15T04:00:00Z", "2027-03-15T04:00:00Z"),
        ("Asia/Tokyo", "2026-03-14T15:00:00Z", "2026-03-14T15:00:00Z", "2027-03-14T15:00:00Z"),
        ("Asia/Tokyo", "2026-03-14T14:59:59Z", "2025-03-14T15:00:00Z", "2026-03-14T15:00:00Z"),
        ("Pacific/Chatham", "2026-03-14T10:15:00Z", "2026-03-14T10:15:00Z", "2027-03-14T10:15:00Z"), // +13:45 in March
        ("UTC", "2026-03-15T00:00:00Z", "2026-03-15T00:00:00Z", "2027-03-15T00:00:00Z"),
    ])
    func yearsRollAtLocalMidnight(zone: String, at: String, start: String, end: String) throws {
        let rules = try ZoneRules.load(identifier: zone)
        let year = ContractYear.containing(instant(at), contractStart: date(2019, 3, 15), zone: rules)
        #expect(year.start == instant(start))
        #expect(year.end == instant(end))
    }

    // R-QTA-1: a 29 February start rolls on 1 March in common years, on 29 February in leap years.
    @Test func leapDayAnniversaries() throws {
        let utc = try ZoneRules.load(identifier: "UTC")
        let start = date(2024, 2, 29)
        #expect(ContractYear.anniversary(of: start, in: 2025) == date(2025, 3, 1))
        #expect(ContractYear.anniversary(of: start, in: 2028) == date(2028, 2, 29))
        let y2027 = ContractYear.containing(instant("2028-02-28T12:00:00Z"), contractStart: start, zone: utc)
        #expect(y2027.start == instant("2027-03-01T00:00:00Z"))
        #expect(y2027.end == instant("2028-02-29T00:00:00Z"))
        let y2028 = ContractYear.containing(instant("2028-02-29T00:00:00Z"), contractStart: start, zone: utc)
        #expect(y2028.start == instant("2028-02-29T00:00:00Z"))
        #expect(y2028.end == instant("2029-03-01T00:00:00Z"))
        // A year holding 29 February has 366 days.
        let plain = ContractYear.containing(instant("2028-06-01T00:00:00Z"), contractStart: date(2020, 1, 1), zone: utc)
        #expect(plain.end - plain.start == 366 * 86_400)
    }

    // R-QTA-1: where a DST change skips midnight, the year starts when the day does.
    @Test func aSkippedMidnightStartsTheYearAtTheTransition() throws {
        // America/Santiago springs forward at 24:00 on the first Saturday of September: 2026-09-06 has no 00:00.
        let santiago = try ZoneRules.load(identifier: "America/Santiago")
        let year = ContractYear.containing(instant("2026-10-01T00:00:00Z"), contractStart: date(2020, 9, 6), zone: santiago)
        #expect(year.start == instant("2026-09-06T04:00:00Z")) // 01:00 -03, the first instant of 6 September
        #expect(santiago.localDate(at: year.start) == date(2026, 9, 6))
        #expect(santiago.localDate(at: year.start - 1) == date(2026, 9, 5))
    }

    @Test func ticketsBeforeTheContractStartCountInTheYearBefore() throws {
        let utc = try ZoneRules.load(identifier: "UTC")
        let year = ContractYear.containing(instant("2025-12-31T23:59:59Z"), contractStart: date(2026, 1, 1), zone: utc)
        #expect(year.start == instant("2025-01-01T00:00:00Z"))
    }
}

@Suite struct QuotaTrendTests {
    let year = ContractYear(firstDay: date(2026, 1, 1), start: instant("2026-01-01T00:00:00Z"), end: instant("2027-01-01T00:00:00Z"))
    let trend = QuotaTrend()

    // R-QTA-2: used ÷ elapsed share of the year, projected to the limit.
    @Test func linearProjection() {
        // 60 of 120 used after a quarter of the year: at that rate the limit is reached at half the year.
        let now = year.start + (year.end - year.start) / 4
        let projected = trend.projectedExhaustion(used: 60, limit: 120, year: year, now: now)
        #expect(projected == year.start + (year.end - year.start) / 2)
        #expect(trend.projectedExhaustion(used: 0, limit: 120, year: year, now: now) == nil)
        #expect(trend.projectedExhaustion(used: 5, limit: nil, year: year, now: now) == nil)
        #expect(trend.projectedExhaustion(used: 5, limit: 0, year: year, now: now) == nil)
        #expect(trend.projectedExhaustion(used: 5, limit: 10, year: year, now: year.end) == nil)
    }

    // R-QTA-2: the trend window: no warning from the first days' noise unless half the quota is gone.
    @Test func trendWindow() {
        let day2 = year.start + 2 * 86_400
        #expect(trend.alerts(used: 1, limit: 120, year: year, now: day2, lastWarning: nil, exceededFlagged: false) == QuotaAlerts())
        let warned = trend.alerts(used: 60, limit: 120, year: year, now: day2, lastWarning: nil, exceededFlagged: false)
        #expect(warned.warning == year.start + 4 * 86_400)
        let day31 = year.start + 31 * 86_400
        #expect(trend.alerts(used: 11, limit: 120, year: year, now: day31, lastWarning: nil, exceededFlagged: false).warning != nil)
        // On track: 10 a month for 120 a year projects exhaustion after the year ends: no warning.
        #expect(trend.alerts(used: 10, limit: 120, year: year, now: day31, lastWarning: nil, exceededFlagged: false).warning == nil)
        #expect(QuotaTrend(minimumWindow: 0).alerts(used: 1, limit: 120, year: year, now: day2, lastWarning: nil, exceededFlagged: false).warning != nil)
    }

    // R-QTA-2: once per quota per year, again only when the projection moves earlier by more than 7 days.
    @Test func sevenDayRule() {
        let now = year.start + 100 * 86_400
        let first = trend.alerts(used: 50, limit: 100, year: year, now: now, lastWarning: nil, exceededFlagged: false).warning!
        #expect(first == year.start + 200 * 86_400)
        // The same projection, or one earlier by exactly 7 days, is not announced again.
        #expect(trend.alerts(used: 50, limit: 100, year: year, now: now, lastWarning: first, exceededFlagged: false).warning == nil)
        #expect(trend.alerts(used: 50, limit: 100, year: year, now: now, lastWarning: first + 7 * 86_400, exceededFlagged: false).warning == nil)
        #expect(trend.alerts(used: 50, limit: 100, year: year, now: now, lastWarning: first + 7 * 86_400 + 1, exceededFlagged: false).warning == first)
        // 51 used: 200 → 196.08 days: earlier by under 7 days, no warning; 54 used: 185.2 days, more than 7 earlier: warned.
        #expect(trend.alerts(used: 51, limit: 100, year: year, now: now, lastWarning: first, exceededFlagged: false).warning == nil)
        let later = trend.alerts(used: 54, limit: 100, year: year, now: now, lastWarning: first, exceededFlagged: false).warning
        #expect(later == year.start + 100 * 86_400 * 100 / 54)
        // A projection that moved later is never announced.
        #expect(trend.alerts(used: 40, limit: 100, year: year, now: now, lastWarning: first, exceededFlagged: false).warning == nil)
    }

    // R-QTA-2: going over is flagged once, never blocked.
    @Test func exceededIsFlaggedOnce() {
        let now = year.start + 200 * 86_400
        #expect(!trend.alerts(used: 12, limit: 12, year: year, now: now, lastWarning: nil, exceededFlagged: false).exceeded)
        #expect(trend.alerts(used: 13, limit: 12, year: year, now: now, lastWarning: nil, exceededFlagged: false).exceeded)
        #expect(!trend.alerts(used: 14, limit: 12, year: year, now: now, lastWarning: year.start, exceededFlagged: true).exceeded)
        #expect(trend.alerts(used: 1, limit: 0, year: year, now: now, lastWarning: nil, exceededFlagged: false) == QuotaAlerts(exceeded: true))
        #expect(trend.alerts(used: 500, limit: nil, year: year, now: now, lastWarning: nil, exceededFlagged: false) == QuotaAlerts())
    }
}
