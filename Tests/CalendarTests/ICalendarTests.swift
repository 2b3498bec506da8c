import Testing
@testable import CSSCalendar

@Suite struct ICalendarTests {
    static let feed = """
    BEGIN:VCALENDAR\r
    VERSION:2.0\r
    PRODID:-//Example//Holidays//EN\r
    BEGIN:VEVENT\r
    UID:1@example\r
    DTSTART;VALUE=DATE:20200101\r
    RRULE:FREQ=YEARLY\r
    SUMMARY:New Year\\, observed\r
    END:VEVENT\r
    BEGIN:VEVENT\r
    UID:2@example\r
    DTSTART;VALUE=DATE:20201126\r
    RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r
    SUMMARY:Thanks\r
     giving\r
    BEGIN:VALARM\r
    TRIGGER:-PT15M\r
    SUMMARY:not a holiday name\r
    END:VALARM\r
    END:VEVENT\r
    BEGIN:VEVENT\r
    DTSTART;VALUE=DATE:20260813\r
    DTEND;VALUE=DATE:20260815\r
    SUMMARY:Company shutdown\r
    END:VEVENT\r
    BEGIN:VEVENT\r
    DTSTART;VALUE=DATE:20210531\r
    RRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO;UNTIL=20280101\r
    EXDATE;VALUE=DATE:20260525\r
    SUMMARY:Last Monday of May\r
    END:VEVENT\r
    END:VCALENDAR\r

    """

    @Test func importsAllDayEventsAndYearlyRules() throws {
        let ics = try ICalendarHolidays(parsing: Self.feed)
        let days = ics.holidays(in: 2026...2027)
        let dates = Set(days.map(\.date))
        #expect(dates.contains(d("2026-01-01")) && dates.contains(d("2027-01-01")))
        #expect(dates.contains(d("2026-11-26")) && dates.contains(d("2027-11-25")))
        #expect(dates.contains(d("2026-08-13")) && dates.contains(d("2026-08-14")) && !dates.contains(d("2026-08-15")))
        #expect(!dates.contains(d("2026-05-25")) && dates.contains(d("2027-05-31")))
        #expect(days.contains(Holiday(date: d("2026-11-26"), name: "Thanksgiving")))
        #expect(days.contains(Holiday(date: d("2026-01-01"), name: "New Year, observed")))
        #expect(dates.count == 2 + 2 + 2 + 1)
        #expect(!ics.holidays(in: 2028...2028).contains { $0.name == "Last Monday of May" })
    }

    @Test func importedHolidaysCloseTheCalendar() throws { // R-SLA-2
        let cal = try CalendarSpec(kind: .business, timeZone: "Asia/Singapore", region: nil, icsHolidays: [Self.feed]).build()
        // Thursday 13 August 2026 is a shutdown day: Wednesday 16:00 + 2 h → Monday 17 August 09:00.
        #expect(try cal.adding(businessSeconds: 7200, to: t("2026-08-12T08:00:00Z")) == t("2026-08-17T01:00:00Z"))
    }

    @Test func malformedOrUnsupportedIsASpecificError() {
        func code(_ text: String) -> String? {
            do { _ = try ICalendarHolidays(parsing: text); return nil } catch { return error.code }
        }
        #expect(code("BEGIN:VEVENT\nEND:VEVENT") == "malformed_ics")
        #expect(code("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261301\nEND:VEVENT\nEND:VCALENDAR") == "malformed_ics")
        #expect(code("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR") == "malformed_ics")
        #expect(code("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\n") == "malformed_ics")
        #expect(code("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20260101T090000Z\nEND:VEVENT\nEND:VCALENDAR") == "unsupported_ics")
        #expect(code("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=WEEKLY\nEND:VEVENT\nEND:VCALENDAR") == "unsupported_ics")
        #expect(code("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nRRULE:BYMONTH=1\nEND:VEVENT\nEND:VCALENDAR") == "malformed_ics")
        #expect(code("BEGIN:VCALENDAR\nEND:VCALENDAR") == nil)
    }
}
