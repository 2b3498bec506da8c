import Testing
@testable import CSSCalendar

@Suite struct BusinessCalendarTests {
    static let cache = CalendarCache()

    func toronto(extra: [String] = []) throws -> BusinessCalendar {
        try Self.cache.calendar(CalendarSpec(kind: .business, timeZone: "America/Toronto", region: "CA-ON", extraHolidays: extra.map(d)))
    }

    @Test func issueExampleCrossesWeekendDSTAndExtraHoliday() throws { // R-SLA-2
        // Friday 15:30 EST; 1.5 h on Friday, DST starts Sunday, Monday is an extra holiday,
        // the remaining 2.5 h run Tuesday 08:00–10:30 EDT.
        let cal = try toronto(extra: ["2026-03-09"])
        #expect(try cal.adding(businessSeconds: 14_400, to: t("2026-03-06T20:30:00Z")) == t("2026-03-10T14:30:00Z"))
    }

    @Test func dueAtClosingIsTheClosingNotTheNextOpening() throws { // R-SLA-2
        let cal = try toronto()
        // Monday 08:00 EST + 9 business hours is Monday 17:00 EST.
        #expect(try cal.adding(businessSeconds: 9 * 3600, to: t("2026-03-02T13:00:00Z")) == t("2026-03-02T22:00:00Z"))
        // One more second rolls to Tuesday 08:00:01.
        #expect(try cal.adding(businessSeconds: 9 * 3600 + 1, to: t("2026-03-02T13:00:00Z")) == t("2026-03-03T13:00:01Z"))
    }

    @Test func startOutsideBusinessHoursCountsFromNextOpening() throws { // R-SLA-2
        let cal = try toronto()
        // Saturday night → Monday 08:00 EST + 2 h.
        #expect(try cal.adding(businessSeconds: 7200, to: t("2026-02-28T23:00:00Z")) == t("2026-03-02T15:00:00Z"))
        // Monday 06:00 local.
        #expect(try cal.adding(businessSeconds: 60, to: t("2026-03-02T11:00:00Z")) == t("2026-03-02T13:01:00Z"))
        #expect(try cal.adding(businessSeconds: 0, to: t("2026-03-02T11:00:00Z")) == t("2026-03-02T11:00:00Z"))
    }

    @Test func slaTargetsOnBothCalendars() throws { // R-SLA-1
        let business = try toronto()
        let p1 = try Self.cache.calendar(CalendarSpec(kind: .twentyFourSeven, timeZone: "America/Toronto", region: "CA-ON"))
        let christmasEve = t("2026-12-24T21:00:00Z") // Thursday 16:00 EST
        // P1: 1 h response, 24x7, Christmas Day counts.
        #expect(try p1.adding(businessSeconds: 3600, to: christmasEve) == christmasEve + 3600)
        #expect(try p1.adding(businessSeconds: 8 * 3600, to: christmasEve) == christmasEve + 8 * 3600)
        // P3: 4 business hours: 1 h Thursday, then Christmas (Fri), weekend, Boxing Day observed (Mon 28)
        // → Tuesday 29 December 08:00–11:00.
        #expect(try business.adding(businessSeconds: 4 * 3600, to: christmasEve) == t("2026-12-29T16:00:00Z"))
    }

    @Test func onlyTheSupportRegionsHolidaysApply() throws { // R-SLA-2
        // US Thanksgiving (Thursday 26 November 2026) is an ordinary business day for an Ontario customer,
        // and Victoria Day (18 May 2026) is one for a US customer.
        let ontario = try toronto()
        #expect(try ontario.isBusinessDay(d("2026-11-26")))
        #expect(try !ontario.isBusinessDay(d("2026-05-18")))
        let us = try Self.cache.calendar(CalendarSpec(kind: .business, timeZone: "America/Toronto", region: "US"))
        #expect(try us.isBusinessDay(d("2026-05-18")))
        #expect(try !us.isBusinessDay(d("2026-11-26")))
        #expect(try ontario.isBusinessTime(t("2026-11-26T15:00:00Z")))
    }

    @Test func transitionsChangeTheRealLengthOfAWindow() throws { // R-SLA-2
        let ny = OpeningHours(days: Weekday.allCases, open: try TimeOfDay(parsing: "00:30"), close: try TimeOfDay(parsing: "03:30"))
        let cal = try Self.cache.calendar(CalendarSpec(kind: .business, timeZone: "America/New_York", openingHours: ny))
        // Fall back (1 November 2026): 01:00–02:00 happens twice, the window is 4 h long.
        #expect(try cal.businessSeconds(from: t("2026-11-01T00:00:00Z"), to: t("2026-11-01T12:00:00Z")) == 4 * 3600)
        // Spring forward (8 March 2026): 02:00–03:00 never happens, the window is 2 h long.
        #expect(try cal.businessSeconds(from: t("2026-03-08T00:00:00Z"), to: t("2026-03-08T12:00:00Z")) == 2 * 3600)
        #expect(try cal.adding(businessSeconds: 2 * 3600, to: t("2026-03-08T05:30:00Z")) == t("2026-03-08T07:30:00Z"))
    }

    @Test func thirtyAndFortyFiveMinuteOffsets() throws { // R-SLA-2
        let allDay = OpeningHours(days: Weekday.allCases, open: try TimeOfDay(seconds: 0), close: try TimeOfDay(seconds: 86_400))
        let lordHowe = try Self.cache.calendar(CalendarSpec(kind: .business, timeZone: "Australia/Lord_Howe", openingHours: allDay))
        // 4 October 2026: clocks go from 02:00 to 02:30, the local day has 23.5 h.
        let dayStart = t("2026-10-03T13:30:00Z") // 00:00 +10:30
        let sundays = OpeningHours(days: [.sunday], open: try TimeOfDay(seconds: 0), close: try TimeOfDay(seconds: 86_400))
        let lordHoweSundays = try Self.cache.calendar(CalendarSpec(kind: .business, timeZone: "Australia/Lord_Howe", openingHours: sundays))
        #expect(try lordHoweSundays.businessSeconds(from: dayStart - 86_400, to: dayStart + 2 * 86_400) == 23 * 3600 + 1800)
        #expect(try lordHoweSundays.nextClosing(after: dayStart) == t("2026-10-04T13:00:00Z"))
        // 5 April 2026: clocks go back from 02:00 to 01:30, the local day has 24.5 h.
        #expect(try lordHoweSundays.businessSeconds(from: t("2026-04-03T00:00:00Z"), to: t("2026-04-06T00:00:00Z")) == 24 * 3600 + 1800)
        #expect(try lordHowe.localDate(of: dayStart + 23 * 3600 + 1800) == d("2026-10-05"))
        let kolkata = try Self.cache.calendar(CalendarSpec(kind: .business, timeZone: "Asia/Kolkata"))
        #expect(try kolkata.adding(businessSeconds: 4 * 3600, to: t("2026-03-02T02:30:00Z")) == t("2026-03-02T06:30:00Z"))
        let kathmandu = try Self.cache.calendar(CalendarSpec(kind: .business, timeZone: "Asia/Kathmandu"))
        // +05:45: Monday 08:00 local is 02:15Z.
        #expect(try kathmandu.nextOpening(atOrAfter: t("2026-03-01T12:00:00Z")) == t("2026-03-02T02:15:00Z"))
    }

    @Test func nextOpeningAndClosing() throws {
        let cal = try toronto()
        let fridayEvening = t("2026-03-06T23:00:00Z")
        #expect(try cal.nextOpening(atOrAfter: fridayEvening) == t("2026-03-09T12:00:00Z")) // Monday 08:00 EDT
        #expect(try cal.nextClosing(after: fridayEvening) == t("2026-03-09T21:00:00Z"))
        #expect(try cal.nextOpening(atOrAfter: t("2026-03-09T12:00:00Z")) == t("2026-03-09T12:00:00Z"))
        #expect(try cal.nextOpening(atOrAfter: t("2026-03-09T12:00:01Z")) == t("2026-03-10T12:00:00Z"))
        #expect(try cal.nextClosing(after: t("2026-03-09T21:00:00Z")) == t("2026-03-10T21:00:00Z"))
        #expect(try cal.isBusinessTime(t("2026-03-09T20:59:59Z")))
        #expect(try !cal.isBusinessTime(t("2026-03-09T21:00:00Z")))
        let always = try Self.cache.calendar(CalendarSpec(kind: .twentyFourSeven, timeZone: "UTC"))
        #expect(try always.nextClosing(after: t("2026-03-09T21:00:00Z")) == nil)
    }

    @Test func businessDaysForMaintenanceNotice() throws { // R-CHG-4
        let cal = try toronto()
        // Wednesday 1 April 2027 10:00 EDT + 5 business days: Thu 1? no — 2027-04-01 is a Thursday.
        // Thu 1 Apr + 5: Fri 2 Apr (Good Friday 2027? Easter 2027 is 28 March, so no), Mon 5, Tue 6, Wed 7, Thu 8.
        #expect(try cal.businessDay(5, after: d("2027-04-01")) == d("2027-04-08"))
        // 2026: Good Friday 3 April is skipped: Wed 1 → Thu 2, Mon 6, Tue 7, Wed 8, Thu 9.
        #expect(try cal.businessDay(5, after: d("2026-04-01")) == d("2026-04-09"))
        #expect(try cal.adding(businessDays: 5, to: t("2026-04-01T14:00:00Z")) == t("2026-04-09T14:00:00Z"))
        // Across DST start the wall-clock time is kept: Friday 6 March 10:00 EST → Friday 13 March 10:00 EDT.
        #expect(try cal.adding(businessDays: 5, to: t("2026-03-06T15:00:00Z")) == t("2026-03-13T14:00:00Z"))
    }

    @Test func crossMidnightWindowBelongsToTheDayItOpens() throws {
        let nights = OpeningHours(days: [.monday, .tuesday, .wednesday, .thursday, .friday], open: try TimeOfDay(parsing: "22:00"), close: try TimeOfDay(parsing: "06:00"))
        let cal = try Self.cache.calendar(CalendarSpec(kind: .business, timeZone: "UTC", region: "GB-ENG", openingHours: nights))
        // Friday 2026-12-25 is Christmas: its night shift (Fri 22:00 – Sat 06:00) is closed.
        #expect(try !cal.isBusinessTime(t("2026-12-26T02:00:00Z")))
        // Thursday 24 December's night runs into Christmas morning and stays open.
        #expect(try cal.isBusinessTime(t("2026-12-25T05:59:59Z")))
        #expect(try cal.businessSeconds(from: t("2026-12-24T00:00:00Z"), to: t("2026-12-27T00:00:00Z")) == 8 * 3600 + 6 * 3600)
    }

    @Test func outOfRangeIsAnErrorNotAGuess() throws {
        let cal = try CalendarSpec(kind: .business, timeZone: "Europe/Paris", region: "FR", years: 2026...2026).build()
        // The first covered second (00:00 Paris on 1 January 2026, a holiday) still answers.
        #expect(try cal.nextOpening(atOrAfter: t("2025-12-31T23:00:00Z")) == t("2026-01-02T07:00:00Z"))
        #expect(try cal.adding(businessSeconds: 3600, to: t("2026-06-01T08:00:00Z")) == t("2026-06-01T09:00:00Z"))
        do {
            _ = try cal.adding(businessSeconds: 3600, to: t("2027-06-01T08:00:00Z"))
            Issue.record("expected out_of_range")
        } catch {
            #expect(error.code == "out_of_range")
        }
        do {
            _ = try cal.adding(businessSeconds: 9 * 3600 * 30, to: t("2026-12-01T08:00:00Z"))
            Issue.record("expected out_of_range")
        } catch {
            #expect(error.code == "out_of_range")
        }
    }

    @Test func memoryPerCalendarStaysSmall() throws {
        let decade = try CalendarSpec(kind: .business, timeZone: "America/New_York", region: "US", years: 2026...2035).build()
        #expect(decade.memoryFootprint <= 64 * 1024)
        let century = try CalendarSpec(kind: .business, timeZone: "Australia/Lord_Howe", region: "AU-NSW").build()
        #expect(century.memoryFootprint <= 64 * 1024)
    }
}

@Suite struct CalendarErrorTests {
    func code(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch let error as CalendarError { return error.code } catch { return "\(error)" }
    }

    @Test func unknownZoneNeverFallsBackToUTC() {
        for name in ["Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime", "America/New York"] {
            #expect(code { _ = try CalendarSpec(kind: .business, timeZone: name, region: "US").build() } == "unknown_time_zone", "\(name)")
        }
    }

    @Test func unknownRegionNeverFallsBackToNoHolidays() {
        #expect(code { _ = try CalendarSpec(kind: .business, timeZone: "Europe/Berlin", region: "DE-XX").build() } == "unknown_region")
        #expect(code { _ = try CalendarSpec(kind: .twentyFourSeven, timeZone: "Europe/Berlin", region: "ZZ").build() } == "unknown_region")
    }

    @Test func emptyOpeningHoursWithABusinessTarget() {
        #expect(code { _ = try CalendarSpec(kind: .business, timeZone: "UTC", openingHours: OpeningHours([])).build() } == "empty_opening_hours")
    }

    @Test func invalidInputs() {
        #expect(code { _ = try TimeOfDay(parsing: "25:00") } == "invalid_opening_hours")
        #expect(code { _ = try LocalDate(iso: "2026-02-29") } == "invalid_date")
        #expect(code { _ = try ISO8601.parse("2026-03-06 20:30") } == "invalid_date")
        #expect(code { _ = try ISO8601.parse("2026-03-06T20:30:00.5Z") } == "invalid_date")
        #expect(code {
            let cal = try CalendarSpec(kind: .business, timeZone: "UTC").build()
            _ = try cal.adding(businessSeconds: -1, to: 0)
        } == "invalid_request")
        #expect(throws: Never.self) { _ = try ISO8601.parse("2026-03-06T15:30:00-05:00") }
        #expect(try! ISO8601.parse("2026-03-06T15:30:00-05:00") == t("2026-03-06T20:30:00Z"))
        #expect(ISO8601.format(t("1969-12-31T23:59:59Z")) == "1969-12-31T23:59:59Z")
    }
}
