import Testing
@testable import CSSModel

func body(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

let onboardJSON = #"""
{"customerId": "acme", "name": "Acme Corp", "timeZone": "America/Toronto", "supportRegion": "CA-ON",
 "extraHolidays": ["2026-12-29"], "team": "cloud-ops", "contractYearStart": "2026-01-01", "maxContacts": 3,
 "contacts": [{"email": "Ana@Acme.example", "name": "Ana", "phone": "+1 555 0100", "primary": true}],
 "changeContacts": ["cio@acme.example"], "catalogue": ["password-reset", "add-user"],
 "quotas": {"standard": 120, "nonStandard": 12},
 "slaPolicy": {"P1": {"response": "PT1H", "restoration": "PT8H"}, "warnAt": [0.5, 0.75, 0.9]}}
"""#

@Suite struct OnboardTests {
    // R-CUS-1
    @Test func readsTheContractExample() throws {
        let c = try OnboardCustomer.parse(body(onboardJSON))
        #expect(c.customerId == "acme")
        #expect(c.contacts.first?.email == "ana@acme.example")
        #expect(c.quotas == .init(standard: 120, nonStandard: 12))
        #expect(c.slaPolicy?.targets[.p1]?.restoration == 28800)
        #expect(c.slaPolicy?.warnAt == [0.5, 0.75, 0.9])
        #expect(try OnboardCustomer.parse(c.json) == c)
    }

    // R-CUS-2
    @Test func refusesTooManyContactsAndTwoPrimariesTogether() throws {
        var v = try body(onboardJSON).objectValue!
        v["maxContacts"] = 1
        v["contacts"] = [["email": "a@x.example", "name": "A", "primary": true], ["email": "b@x.example", "name": "B", "primary": true]]
        #expect(throws: CommandRejection.self) { try OnboardCustomer.parse(.object(v)) }
        do {
            _ = try OnboardCustomer.parse(.object(v))
        } catch {
            #expect(Set(error.codes) == [ErrorCode.tooManyContacts, ErrorCode.primaryContact])
        }
    }

    // R-CUS-2
    @Test func refusesNoPrimaryAndDuplicateEmails() throws {
        var v = try body(onboardJSON).objectValue!
        v["contacts"] = [["email": "a@x.example", "name": "A"], ["email": "A@x.example", "name": "A2"]]
        do {
            _ = try OnboardCustomer.parse(.object(v))
            Issue.record("accepted")
        } catch {
            #expect(error.codes.contains(ErrorCode.primaryContact))
            #expect(error.errors.contains { $0.code == ErrorCode.duplicateContact && $0.field == "contacts[1].email" })
        }
    }

    @Test func reportsEveryBadFieldAtOnce() throws {
        let v = try body(#"{"customerId": "acme.corp", "name": "", "timeZone": "Mars/Olympus", "supportRegion": "canada", "team": 7, "contractYearStart": "2026-13-01", "contacts": [{"email": "nope", "name": "X", "primary": true}], "slaPolicy": {"warnAt": [0.9, 0.5]}}"#)
        do {
            _ = try OnboardCustomer.parse(v)
            Issue.record("accepted")
        } catch {
            let fields = Set(error.errors.compactMap(\.field))
            #expect(fields.isSuperset(of: ["customerId", "name", "timeZone", "supportRegion", "team", "contractYearStart", "contacts[0].email", "slaPolicy.warnAt"]))
            #expect(error.errors.first { $0.field == "team" }?.code == ErrorCode.wrongType)
            #expect(error.errors.first { $0.field == "name" }?.code == ErrorCode.emptyField)
        }
    }
}

/// A customer's own holidays as iCalendar text: a yearly national day and a one-off closure.
let holidayICS = """
BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Example//Holidays//EN\r
BEGIN:VEVENT\r
DTSTART;VALUE=DATE:20260907\r
RRULE:FREQ=YEARLY\r
SUMMARY:Independence Day\r
END:VEVENT\r
BEGIN:VEVENT\r
DTSTART;VALUE=DATE:20261228\r
DTEND;VALUE=DATE:20261231\r
SUMMARY:Year-end shutdown\r
END:VEVENT\r
END:VCALENDAR\r

"""

@Suite struct OnboardHolidayAndPolicyTests {
    func onboard(_ change: (inout JSONObject) -> Void) throws -> JSONObject {
        var v = try body(onboardJSON).objectValue!
        change(&v)
        return v
    }

    func refusal(_ v: JSONObject) -> CommandRejection? {
        do {
            _ = try OnboardCustomer.parse(.object(v))
            return nil
        } catch {
            return error
        }
    }

    // R-CUS-1, R-SLA-2: every supported region onboards, with or without extra holidays.
    @Test func acceptsEverySupportedRegion() throws {
        for code in ["US", "CA-ON", "GB-ENG", "DE", "FR", "NL", "AU-NSW"] {
            let v = try onboard { $0["supportRegion"] = .string(code); $0["extraHolidays"] = nil }
            #expect(try OnboardCustomer.parse(.object(v)).supportRegion == code)
        }
    }

    // R-CUS-1, R-SLA-2: a well-formed region without statutory rules here is refused with
    // unknown_region, naming the supported codes and how to bring one's own holidays.
    @Test func refusesARegionWithoutHolidayRules() throws {
        for extra in [nil, JSONValue.array([])] {
            let v = try onboard { $0["supportRegion"] = "BR"; $0["extraHolidays"] = extra }
            let error = try #require(refusal(v))
            #expect(error.errors.count == 1)
            let e = try #require(error.errors.first)
            #expect(e.code == ErrorCode.unknownRegion)
            #expect(e.field == "supportRegion")
            for code in ["US", "CA-ON", "GB-ENG", "DE", "FR", "NL", "AU-NSW"] { #expect(e.message.contains(code)) }
            #expect(e.message.contains("extraHolidays"))
            #expect(e.message.contains("holidayCalendar"))
        }
        // A malformed code stays invalid_field, not unknown_region.
        let bad = try onboard { $0["supportRegion"] = "brazil"; $0["extraHolidays"] = nil }
        #expect(refusal(bad)?.errors.map(\.code) == [ErrorCode.invalidField])
    }

    // R-CUS-1, R-SLA-2: a customer in another region onboards when it brings its holidays.
    @Test func acceptsAnotherRegionWithItsOwnHolidays() throws {
        let listed = try onboard { $0["supportRegion"] = "BR"; $0["extraHolidays"] = ["2026-09-07"] }
        let a = try OnboardCustomer.parse(.object(listed))
        #expect(a.supportRegion == "BR")
        #expect(a.extraHolidays == ["2026-09-07"])
        #expect(try OnboardCustomer.parse(a.json) == a)

        let ics = try onboard { $0["supportRegion"] = "BR"; $0["extraHolidays"] = nil; $0["holidayCalendar"] = .string(holidayICS) }
        let b = try OnboardCustomer.parse(.object(ics))
        #expect(b.supportRegion == "BR")
        #expect(b.holidayCalendar?.hasPrefix("BEGIN:VCALENDAR") == true)
        #expect(b.json["holidayCalendar"] == b.holidayCalendar.map { .string($0) })
        #expect(try OnboardCustomer.parse(b.json) == b, "customer.onboarded reads back the same")
    }

    // R-SLA-2: holidayCalendar is checked to parse; its absence is null in customer.onboarded.
    @Test func holidayCalendarMustParse() throws {
        let plain = try OnboardCustomer.parse(body(onboardJSON))
        #expect(plain.holidayCalendar == nil)
        #expect(plain.json["holidayCalendar"] == .null)

        let supported = try onboard { $0["holidayCalendar"] = .string(holidayICS) }
        #expect(try OnboardCustomer.parse(.object(supported)).holidayCalendar != nil, "a supported region may add its own calendar too")

        let dateTime = holidayICS.replacingOccurrences(of: "DTSTART;VALUE=DATE:20260907", with: "DTSTART:20260907T000000Z")
        // The calendar engine's own message, with its line number, is passed on.
        for (text, calendarMessage) in [("not a calendar", "line 1: expected BEGIN:VCALENDAR"),
                                        (dateTime, "line 5: DTSTART is a date-time; only all-day (VALUE=DATE) events are holidays"),
                                        ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR", "line 2: VEVENT without DTSTART")] {
            let v = try onboard { $0["holidayCalendar"] = .string(text) }
            let error = try #require(refusal(v))
            #expect(error.errors.count == 1)
            let e = try #require(error.errors.first)
            #expect(e.code == ErrorCode.invalidField)
            #expect(e.field == "holidayCalendar")
            #expect(e.message.contains(calendarMessage), "\(e.message)")
        }
        // R-SLA-2: a calendar with no holiday in it is no holidays brought.
        let empty = try onboard { $0["supportRegion"] = "BR"; $0["extraHolidays"] = nil
            $0["holidayCalendar"] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n" }
        #expect(refusal(empty)?.errors.map(\.field) == ["holidayCalendar"])
        #expect(refusal(empty)?.errors.first?.message.contains("lists no holidays") == true)
        // An unusable calendar still counts as bringing holidays: the one error is the calendar's.
        let unknownRegion = try onboard { $0["supportRegion"] = "BR"; $0["extraHolidays"] = nil; $0["holidayCalendar"] = "not a calendar" }
        #expect(refusal(unknownRegion)?.errors.map(\.field) == ["holidayCalendar"])

        let wrongType = try onboard { $0["holidayCalendar"] = 42 }
        #expect(refusal(wrongType)?.errors.first?.code == ErrorCode.wrongType)
    }

    // R-SLA-2: holidayCalendar is at most 200,000 characters.
    @Test func holidayCalendarHasALengthLimit() throws {
        let padding = String(repeating: "X-COMMENT:padding padding padding padding padding\r\n", count: 4100)
        let long = holidayICS.replacingOccurrences(of: "VERSION:2.0\r\n", with: "VERSION:2.0\r\n" + padding)
        #expect(long.count > OnboardCustomer.maxHolidayCalendarLength)
        let e = try #require(refusal(try onboard { $0["holidayCalendar"] = .string(long) })?.errors.first)
        #expect(e.field == "holidayCalendar")
        #expect(e.code == ErrorCode.tooLong)
        let shorter = String(repeating: "X-COMMENT:padding padding padding padding padding\r\n", count: 3000)
        let fits = holidayICS.replacingOccurrences(of: "VERSION:2.0\r\n", with: "VERSION:2.0\r\n" + shorter)
        #expect(fits.count <= OnboardCustomer.maxHolidayCalendarLength)
        #expect(try OnboardCustomer.parse(.object(onboard { $0["holidayCalendar"] = .string(fits) })).holidayCalendar != nil)
    }

    // R-SLA-1: slaPolicy.<P>.calendar overrides the handbook's calendar, 24x7 or business only.
    @Test func policyCalendarIs24x7OrBusiness() throws {
        let v = try onboard {
            $0["slaPolicy"] = ["P1": ["response": "PT1H", "calendar": "business"], "P3": ["restoration": "PT2S", "calendar": "24x7"], "P4": ["response": "PT4H"]]
        }
        let c = try OnboardCustomer.parse(.object(v))
        #expect(c.slaPolicy?.targets[.p1] == .init(response: 3600, calendar: "business"))
        #expect(c.slaPolicy?.targets[.p3] == .init(restoration: 2, calendar: "24x7"))
        #expect(c.slaPolicy?.targets[.p4]?.calendar == nil)
        #expect(c.json["slaPolicy"]?["P1"]?["calendar"] == "business")
        #expect(c.json["slaPolicy"]?["P4"]?["calendar"] == nil)
        #expect(try OnboardCustomer.parse(c.json) == c)

        for bad: JSONValue in ["5x8", "Business", "24/7"] {
            let w = try onboard { $0["slaPolicy"] = ["P2": ["response": "PT2H", "calendar": bad]] }
            let e = try #require(refusal(w)?.errors.first)
            #expect(e.code == ErrorCode.invalidField)
            #expect(e.field == "slaPolicy.P2.calendar")
        }
    }

    // R-SLA-1, R-SLA-2: the calendar counts whole seconds, so targets are whole seconds, at most 366 days.
    @Test func policyTargetsAreWholeSecondsUpTo366Days() throws {
        let fine = try onboard { $0["slaPolicy"] = ["P1": ["response": "PT2S", "restoration": "P366D"], "P2": ["response": "PT1.0S"]] }
        let c = try OnboardCustomer.parse(.object(fine))
        #expect(c.slaPolicy?.targets[.p1]?.restoration == OnboardCustomer.Targets.maximumSeconds)
        #expect(c.slaPolicy?.targets[.p2]?.response == 1.0)
        #expect(try OnboardCustomer.parse(c.json) == c)

        let fractional = try onboard { $0["slaPolicy"] = ["P1": ["response": "PT1.5S", "restoration": "PT0.25S"]] }
        let errors = try #require(refusal(fractional)).errors
        #expect(errors.map(\.field) == ["slaPolicy.P1.response", "slaPolicy.P1.restoration"])
        #expect(errors.allSatisfy { $0.code == ErrorCode.invalidField && $0.message.contains("must be a whole number of seconds") })

        for long in ["P367D", "PT8785H", "P53W", "P366DT1S"] {
            let v = try onboard { $0["slaPolicy"] = ["P3": ["restoration": .string(long)]] }
            let e = try #require(refusal(v)?.errors.first)
            #expect(e.code == ErrorCode.invalidField)
            #expect(e.field == "slaPolicy.P3.restoration")
            #expect(e.message.contains("366 days"))
        }
        let zero = try onboard { $0["slaPolicy"] = ["P3": ["response": "PT0S"]] }
        #expect(refusal(zero)?.errors.first?.message.contains("longer than zero") == true)
    }
}

@Suite struct SubmitTests {
    let incident = #"{"customerId": "acme", "contactEmail": "ana@acme.example", "kind": "incident", "environment": "production", "summary": "Portal down", "impact": "outage"}"#

    // R-TKT-2
    @Test func flagsCriticalIncidentsThatDidNotArriveByPhone() throws {
        let t = try SubmitTicket.parse(body(incident))
        #expect(t.channel == .api)
        #expect(t.phoneRequired)
        var v = try body(incident).objectValue!
        v["channel"] = "phone"
        #expect(try SubmitTicket.parse(.object(v)).phoneRequired == false)
        v["channel"] = "portal"
        v["impact"] = "minor"
        #expect(try SubmitTicket.parse(.object(v)).phoneRequired == false)
    }

    @Test func requiresImpactForIncidentsAndCatalogItemForRequests() throws {
        var v = try body(incident).objectValue!
        v["impact"] = nil
        do { _ = try SubmitTicket.parse(.object(v)); Issue.record("accepted") } catch {
            #expect(error.errors == [CommandError(code: ErrorCode.missingField, field: "impact", message: "impact is required")])
        }
        v["kind"] = "service_request"
        do { _ = try SubmitTicket.parse(.object(v)); Issue.record("accepted") } catch {
            #expect(error.errors.map(\.field) == ["catalogItem"])
        }
        v["catalogItem"] = "add-user"
        #expect(try SubmitTicket.parse(.object(v)).catalogItem == "add-user")
    }

    @Test func namesUnknownEnumValuesAndWrongTypes() throws {
        let v = try body(#"{"customerId": "acme", "contactEmail": "ana@acme.example", "kind": "complaint", "environment": true, "summary": "   ", "urgency": "asap"}"#)
        do { _ = try SubmitTicket.parse(v); Issue.record("accepted") } catch {
            let byField = Dictionary(error.errors.map { ($0.field ?? "", $0.code) }, uniquingKeysWith: { a, _ in a })
            #expect(byField["kind"] == ErrorCode.unknownValue)
            #expect(byField["environment"] == ErrorCode.wrongType)
            #expect(byField["summary"] == ErrorCode.emptyField)
            #expect(byField["urgency"] == ErrorCode.unknownValue)
            #expect(byField["impact"] == nil, "no cascade from the bad kind")
        }
    }

    @Test func refusesNonObjectsAndNulCharacters() throws {
        #expect(throws: CommandRejection.self) { try SubmitTicket.parse(body("[1,2]")) }
        var v = try body(incident).objectValue!
        v["summary"] = "a\u{0}b"
        do { _ = try SubmitTicket.parse(.object(v)); Issue.record("accepted") } catch {
            #expect(error.errors.first?.field == "summary")
        }
    }

    @Test func keepsEmojiAndSQLMetacharactersVerbatim() throws {
        var v = try body(incident).objectValue!
        v["summary"] = "🔥 Robert'); DROP TABLE tickets;-- \\ %"
        #expect(try SubmitTicket.parse(.object(v)).summary == "🔥 Robert'); DROP TABLE tickets;-- \\ %")
    }
}

@Suite struct ClassificationRuleTests {
    // R-CLS-1
    @Test func mapsImpactUrgencyAndEnvironmentToPriority() {
        #expect(PriorityRule.priority(kind: .incident, environment: .production, impact: .outage, urgency: .low) == .p1)
        #expect(PriorityRule.priority(kind: .incident, environment: .production, impact: .degraded, urgency: nil) == .p2)
        #expect(PriorityRule.priority(kind: .incident, environment: .production, impact: .degraded, urgency: .low) == .p3)
        #expect(PriorityRule.priority(kind: .incident, environment: .production, impact: .minor, urgency: .high) == .p3)
        #expect(PriorityRule.priority(kind: .incident, environment: .production, impact: .inquiry, urgency: .high) == .p4)
        #expect(PriorityRule.priority(kind: .incident, environment: .nonProduction, impact: .outage, urgency: .high) == .p4)
        #expect(PriorityRule.priority(kind: .serviceRequest, environment: .production, impact: nil, urgency: .high) == .p3)
        #expect(PriorityRule.priority(kind: .serviceRequest, environment: .nonProduction, impact: nil, urgency: nil) == .p4)
    }
}

@Suite struct LifecycleTests {
    // R-TKT-3
    @Test func followsTheHandbookLifecycle() throws {
        var s = TicketStatus.new
        for action: TicketAction in [.respond, .awaitCustomer, .customerReplied, .awaitCustomer, .customerReplied, .restore, .reopen, .restore, .close] {
            s = try TicketLifecycle.apply(action, to: s).get()
        }
        #expect(s == .closed)
    }

    // R-TKT-3
    @Test func refusesIllegalTransitionsWithTheAllowedStates() {
        guard case .failure(let e) = TicketLifecycle.apply(.close, to: .inProgress) else {
            Issue.record("close from in_progress was allowed")
            return
        }
        #expect(e.code == ErrorCode.illegalTransition)
        #expect(e.message.contains("restored"))
        for action in TicketAction.allCases {
            if case .success = TicketLifecycle.apply(action, to: .closed) { Issue.record("\(action) allowed from closed") }
        }
    }

    @Test func formatsTrackingNumbers() {
        #expect(TrackingNumber.make(kind: .incident, sequence: 42) == "INC-000042")
        #expect(TrackingNumber.make(kind: .serviceRequest, sequence: 12_345_678) == "SR-12345678")
        #expect(TrackingNumber.isWellFormed("INC-000042"))
        #expect(!TrackingNumber.isWellFormed("INC-42"))
    }
}

@Suite struct OnboardSuccessManagerTests {
    // R-ESC-4, R-CUS-5: the optional successManager (the vendor's Customer Success Manager) is read,
    // lower-cased like contacts, echoed in the settings (null when absent), and refused with the field named.
    @Test func successManagerIsOptionalAndChecked() throws {
        var v = try body(onboardJSON).objectValue!
        #expect(try OnboardCustomer.parse(.object(v)).successManager == nil)
        #expect(try OnboardCustomer.parse(.object(v)).json["successManager"] == .null)
        v["successManager"] = ["name": "Sam", "email": "Sam@Vendor.example", "phone": "+1 555 0150"]
        let c = try OnboardCustomer.parse(.object(v))
        #expect(c.successManager?.email == "sam@vendor.example")
        #expect(c.successManager?.name == "Sam" && c.successManager?.phone == "+1 555 0150")
        #expect(c.json["successManager"]?["email"] == "sam@vendor.example")
        #expect(try OnboardCustomer.parse(c.json) == c)
        v["successManager"] = ["name": "Sam", "email": "not-an-address"]
        do {
            _ = try OnboardCustomer.parse(.object(v))
            Issue.record("an invalid successManager e-mail was accepted")
        } catch {
            #expect(error.errors.map(\.field) == ["successManager.email"])
            #expect(error.errors.map(\.code) == [ErrorCode.invalidField])
        }
        v["successManager"] = "sam@vendor.example"
        do {
            _ = try OnboardCustomer.parse(.object(v))
            Issue.record("a successManager that is not an object was accepted")
        } catch {
            #expect(error.errors.map(\.code) == [ErrorCode.wrongType])
        }
    }
}
