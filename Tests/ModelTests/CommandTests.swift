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
