import Testing
@testable import CSSCalendar

/// `cssctl calendar due`: one JSON line in, one JSON line out; a bad line never stops the stream.
@Suite struct DueRequestTests {
    let handler = DueRequestHandler()

    @Test func answersTheIssueExample() { // R-SLA-2
        let line = #"{"start": "2026-03-06T20:30:00Z", "seconds": 14400, "calendar": "business", "timeZone": "America/Toronto", "region": "CA-ON", "extraHolidays": ["2026-03-09"]}"#
        #expect(handler.respond(to: line) == #"{"dueAt":"2026-03-10T14:30:00Z"}"#)
    }

    @Test func pausesAndCustomHours() { // R-SLA-4
        // Monday 09:00 EST + 2 h with a 30-minute pause at 10:00 → 11:30.
        let line = #"{"start": "2026-03-02T14:00:00Z", "seconds": 7200, "calendar": "business", "timeZone": "America/New_York", "region": "US", "excluded": [{"start": "2026-03-02T15:00:00Z", "end": "2026-03-02T15:30:00Z"}]}"#
        #expect(handler.respond(to: line) == #"{"dueAt":"2026-03-02T16:30:00Z"}"#)
        let sat = #"{"start": "2026-02-28T14:00:00Z", "seconds": 3600, "calendar": "business", "timeZone": "UTC", "region": "none", "hours": [{"day": "sat", "open": "10:00", "close": "12:00"}]}"#
        #expect(handler.respond(to: sat) == #"{"dueAt":"2026-03-07T11:00:00Z"}"#)
    }

    @Test(arguments: [
        ("not json", "invalid_request"),
        (#"{"start": "2026-03-06T20:30:00Z", "seconds": 1, "calendar": "business", "timeZone": "Mars/Base", "region": "US"}"#, "unknown_time_zone"),
        (#"{"start": "2026-03-06T20:30:00Z", "seconds": 1, "calendar": "business", "timeZone": "UTC", "region": "XX"}"#, "unknown_region"),
        (#"{"start": "2026-03-06T20:30:00Z", "seconds": 1, "calendar": "business", "timeZone": "UTC"}"#, "invalid_request"),
        (#"{"start": "2026-03-06T20:30:00Z", "seconds": 1, "calendar": "5x8", "timeZone": "UTC", "region": "US"}"#, "invalid_request"),
        (#"{"start": "2026-03-06T20:30:00Z", "seconds": 1, "calendar": "business", "timeZone": "UTC", "region": "none", "hours": []}"#, "empty_opening_hours"),
        (#"{"start": "2026-03-06T20:30:00Z", "seconds": 1, "calendar": "business", "timeZone": "UTC", "region": "none", "ics": "BEGIN:VCALENDAR"}"#, "malformed_ics"),
        (#"{"start": "2026-03-06", "seconds": 1, "calendar": "24x7", "timeZone": "UTC"}"#, "invalid_date"),
        (#"{"start": "2026-03-06T20:30:00Z", "seconds": -5, "calendar": "24x7", "timeZone": "UTC"}"#, "invalid_request"),
        (#"{"start": "2026-03-06T20:30:00Z", "seconds": 1.5, "calendar": "24x7", "timeZone": "UTC"}"#, "invalid_request"),
    ])
    func badLinesGetASpecificError(line: String, code: String) {
        let out = handler.respond(to: line)
        #expect(out.hasPrefix(#"{"error":{"code":""# + code + #"","message":""#), "\(out)")
        // The stream goes on: the next good line is answered.
        #expect(handler.respond(to: #"{"start": "2026-03-06T20:30:00Z", "seconds": 60, "calendar": "24x7", "timeZone": "UTC"}"#) == #"{"dueAt":"2026-03-06T20:31:00Z"}"#)
    }

    @Test func jsonStringsAreEscaped() {
        #expect(DueRequestHandler.quote("a\"b\\c\n\u{1}") == #""a\"b\\c\n\u0001""#)
    }
}
