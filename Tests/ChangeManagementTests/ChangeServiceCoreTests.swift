import CSSCalendar
import CSSModel
import Foundation
import Testing

@testable import ChangeManagementService

func requestBody(_ type: String, _ overrides: [String: JSONValue] = [:]) -> JSONValue {
    var body: JSONObject = [
        "customerId": "acme", "type": .string(type), "title": "Upgrade the document store", "reason": "End of support", "work": "Upgrade",
        "impact": "30 minutes read-only", "cost": ["amount": 1200, "currency": "CAD"], "environments": ["test", "production"],
        "requestedWindow": ["start": "2026-03-18T23:00:00Z", "end": "2026-03-19T00:30:00Z"], "components": ["docstore"],
        "interruptsService": true, "by": "CIO@acme.example",
    ]
    for (k, v) in overrides { body[k] = v }
    return .object(body)
}

func merged(_ a: JSONObject, _ b: JSONObject) -> JSONObject {
    var r = a
    for (k, v) in b { r[k] = v }
    return r
}

/// A ticket fact as intake or classification publishes it.
func fact(_ type: String, _ number: String, at: Date, _ data: JSONObject) -> CloudEvent {
    CloudEvent(id: UUID().uuidString, type: type, source: "/css/test", time: at, subject: number,
               data: .object(merged(["trackingNumber": .string(number), "customerId": "acme"], data)))
}

func refusal(_ body: () throws -> Any) -> [CommandError] {
    do {
        _ = try body()
        return []
    } catch let e as CommandRejection {
        return e.errors
    } catch {
        return [CommandError(code: "\(error)", field: nil, message: "")]
    }
}

@Suite("Change management's command bodies, wire shapes and facts") struct ChangeServiceCoreTests {
    // R-CHG-2: a request states the change, the work, its impact and cost; every problem is reported at once.
    @Test func requestReportsEveryProblemAtOnce() throws {
        let errors = refusal { try ChangeBodies.request(requestBody("standard", [
            "cost": ["amount": -1, "currency": "cad"], "environments": ["production"], "components": [], "incident": "INC-000001",
        ])) }
        let found = Set(errors.map { "\($0.code) \($0.field ?? "")" })
        #expect(found == ["missing_field templateId", "invalid_field incident", "invalid_field cost.amount", "invalid_field cost.currency",
                          "invalid_field environments", "invalid_field components"], "\(errors)")
        let ok = try ChangeBodies.request(requestBody("emergency", ["incident": "inc-000042"]))
        #expect(ok.by == "cio@acme.example" && ok.incident == "INC-000042" && ok.templateId == nil)
        #expect(ok.details.cost == Cost(amount: 1200, currency: "CAD") && ok.details.environments == [.test, .production])
        #expect(refusal { try ChangeBodies.request(requestBody("normal", ["title": "a\u{0}b"])) }.map(\.code) == [ErrorCode.invalidField])
        #expect(refusal { try ChangeBodies.request(.array([])) }.map(\.code) == [ErrorCode.notAnObject])
    }

    // R-CHG-3, R-CHG-4: what a schedule, a verification and a completion must say.
    @Test func lifecycleBodiesAreValidated() throws {
        func codes(_ command: String, _ fields: JSONObject) -> [String] {
            var body: JSONObject = ["changeId": "CHG-000001", "by": "eng@vendor.example"]
            for (k, v) in fields { body[k] = v }
            return refusal { try ChangeBodies.step(command, .object(body)) }.map { "\($0.code) \($0.field ?? "")" }
        }
        let span: JSONObject = ["start": "2026-03-18T23:00:00Z", "end": "2026-03-19T00:30:00Z"]
        #expect(codes(CommandName.changeSchedule, merged(span, ["environment": "test", "maintenance": "window"])) == ["invalid_field maintenance"])
        #expect(codes(CommandName.changeSchedule, merged(span, ["environment": "production", "maintenance": "agreed"])) == ["missing_field agreedBy"])
        #expect(codes(CommandName.changeSchedule, ["environment": "production", "start": "2026-03-18T23:00:00Z", "end": "2026-04-20T00:00:00Z"])
                == ["invalid_field end"])
        #expect(codes(CommandName.changeSchedule, ["environment": "production", "start": "2026-03-18T23:00:00Z", "end": "2026-03-18T22:00:00Z"])
                == ["invalid_field end"])
        #expect(codes(CommandName.changeComplete, ["outcome": "implemented"]) == ["missing_field installed"])
        #expect(codes(CommandName.changeComplete, ["outcome": "implemented", "installed": [], "rollback": "x"]).sorted()
                == ["invalid_field installed", "invalid_field rollback"])
        #expect(codes(CommandName.changeComplete, ["outcome": "failed"]) == ["missing_field rollback"])
        #expect(codes(CommandName.changeVerify, ["accepted": true, "by": "not an address"]) == ["invalid_field by"])
        let step = try ChangeBodies.step(CommandName.changeSchedule, .object(merged(span, ["changeId": "chg-000007", "environment": "production",
                                                                                     "maintenance": "agreed", "agreedBy": "CIO@acme.example", "by": "eng@vendor.example"])))
        #expect(step.changeId == "CHG-000007")
        #expect(step.action == .schedule(.production, Interval(start: at("2026-03-18T23:00:00Z"), end: at("2026-03-19T00:30:00Z")),
                                         maintenance: .agreed, agreedBy: "cio@acme.example"))
    }

    // R-CHG-4: weekly windows and freezes; a window from a time to the same time is a whole day.
    @Test func windowsAndFreezesAreValidated() throws {
        let body: JSONValue = [
            "customerId": "acme", "by": "cab@vendor.example",
            "windows": [["weekday": "saturday", "start": "22:00", "end": "22:00"], ["weekday": "funday", "start": "25:00", "end": "04:00"]],
            "freezes": [["start": "2026-12-20T00:00:00Z", "end": "2027-01-03T00:00:00Z", "reason": "year end"],
                        ["start": "2027-01-02T00:00:00Z", "end": "2027-01-05T00:00:00Z", "reason": "overlaps"],
                        ["start": "2027-02-01T00:00:00Z", "end": "2027-06-01T00:00:00Z", "reason": "too long"]],
        ]
        let found = Set(refusal { try ChangeBodies.windows(body) }.map { "\($0.code) \($0.field ?? "")" })
        #expect(found == ["unknown_value windows[1].weekday", "invalid_field windows[1].start", "invalid_field freezes[1]", "invalid_field freezes[2].end"])
        let parsed = try ChangeBodies.windows(["customerId": "acme", "by": "cab@vendor.example", "freezes": [],
                                               "windows": [["weekday": "saturday", "start": "22:00", "end": "22:00"]]])
        let plan = MaintenancePlan(timeZone: "America/Toronto", windows: parsed.windows)
        let calendar = try #require(try plan.windowCalendar())
        // Saturday 2026-03-14 22:00 EDT to Sunday 22:00 EDT: 24 hours, all inside the window.
        let day = Interval(start: at("2026-03-15T02:00:00Z"), end: at("2026-03-16T02:00:00Z"))
        #expect(try calendar.businessSeconds(from: day.start, to: day.end) == 86_400)
        #expect(try calendar.businessSeconds(from: day.end, to: day.end + 3600) == 0)
    }

    // The wire `Change` carries every field docs/asyncapi.yaml requires, `null` or `[]` for what has not happened.
    @Test func changeOnTheWireHasEveryRequiredField() throws {
        var c = change(.normal)
        c.details = RequestDetails(reason: "r", work: "w", impact: "i", cost: Cost(amount: 5, currency: "EUR"), environments: [.test, .production],
                                   requestedWindow: Interval(start: t0, end: t0 + 3600))
        let json = ChangeCoding.json(c)
        let required = ["changeId", "customerId", "type", "state", "title", "reason", "work", "impact", "cost", "environments", "requestedWindow",
                        "components", "interruptsService", "templateId", "incident", "requestedBy", "requestedAt", "assessment", "board", "quorum",
                        "votes", "test", "production", "verification", "implementationStartedAt", "implementationEndedAt", "installed",
                        "rollback", "cancellation", "history"]
        #expect(Set(json.objectValue?.keys.map { $0 } ?? []) == Set(required))
        #expect(json["board"] == "normal" && json["test"] == .null && json["votes"] == [] && json["cost"]?["currency"] == "EUR")
    }

    // A vote that decides is recorded in the state before the decision; the decision has its own event.
    @Test func voteEventShowsTheStateBeforeTheDecision() throws {
        var c = change(.normal)
        try move(&c, .agree, by: contact)
        try move(&c, .assess(risk: "low", plan: "p"))
        let board = Board(members: ["a@vendor.example"], quorum: 1)
        let before = c.state
        guard case .moved(let approved, let effects) = try ChangeLifecycle.apply(.vote(approve: true, reason: "ok"), to: c, by: "a@vendor.example", at: t0,
                                                                                 authority: ChangeAuthority(changeContacts: [contact], board: board)) else {
            Issue.record("the vote did not move the change")
            return
        }
        #expect(effects == [.event(EventType.changeVoteRecorded), .event(EventType.changeApproved)])
        let vote = ChangeCoding.data(EventType.changeVoteRecorded, approved, from: before, by: "a@vendor.example", at: t0, board: board)
        #expect(vote["state"] == "assessed" && vote["approvals"] == 1 && vote["members"] == 1 && vote["quorum"] == 1)
        let decision = ChangeCoding.data(EventType.changeApproved, approved, from: before, by: "a@vendor.example", at: t0, board: board)
        #expect(decision["state"] == "approved" && decision["from"] == "assessed" && decision["board"] == "normal")
    }

    // R-CHG-1: an Emergency change needs an open P1/P2 production incident, known from events that arrive in any order.
    @Test func incidentFactsKeepTheNewestOfEachFact() throws {
        let t = Date(timeIntervalSince1970: 1_780_000_000)
        let n = "INC-000001"
        func transitioned(_ action: String, _ status: String, after seconds: Double) -> CloudEvent {
            let when = t.addingTimeInterval(seconds)
            return fact(EventType.ticketTransitioned, n, at: when, ["action": .string(action), "status": .string(status), "at": .string(RFC3339.format(when))])
        }
        func reclassified(to: String, after seconds: Double) -> CloudEvent {
            let when = t.addingTimeInterval(seconds)
            return fact(EventType.ticketReclassified, n, at: when, ["from": "P1", "to": .string(to), "at": .string(RFC3339.format(when))])
        }
        let classified = fact(EventType.ticketClassified, n, at: t, ["priority": "P1"])
        var f = IncidentFacts(trackingNumber: n)
        try f.apply(classified)
        #expect(!f.isOpenCriticalOrHigh) // not known to be an incident yet
        try f.apply(fact(EventType.ticketReceived, n, at: t, ["kind": "incident", "environment": "production"]))
        #expect(f.isOpenCriticalOrHigh && f.customerId == "acme")
        try f.apply(transitioned("restore", "restored", after: 600))
        #expect(!f.isOpenCriticalOrHigh)
        // A late, older fact does not undo a newer one.
        try f.apply(transitioned("respond", "responded", after: 60))
        #expect(f.status == .restored && !f.isOpenCriticalOrHigh)
        try f.apply(transitioned("reopen", "in_progress", after: 900))
        #expect(f.isOpenCriticalOrHigh)
        try f.apply(reclassified(to: "P3", after: 1000))
        try f.apply(classified) // redelivered, older
        #expect(f.priority == .p3 && !f.isOpenCriticalOrHigh)
        #expect(refusal { try f.apply(reclassified(to: "P9", after: 2000)) }.map(\.code) == [ErrorCode.invalidField])
        var other = IncidentFacts(trackingNumber: "INC-000002")
        try other.apply(fact(EventType.ticketReceived, "INC-000002", at: t, ["kind": "incident", "environment": "non_production"]))
        try other.apply(fact(EventType.ticketClassified, "INC-000002", at: t, ["priority": "P2"]))
        #expect(!other.isOpenCriticalOrHigh) // not in Production
        // ticket.classified repeats the ticket's kind and environment: it alone makes an open P1 production
        // incident (the service no longer consumes ticket.received), and a redelivered received changes nothing.
        var alone = IncidentFacts(trackingNumber: "INC-000003")
        try alone.apply(fact(EventType.ticketClassified, "INC-000003", at: t, ["priority": "P1", "kind": "incident", "environment": "production"]))
        #expect(alone.isOpenCriticalOrHigh && alone.status == .classified)
        try alone.apply(fact(EventType.ticketReceived, "INC-000003", at: t, ["kind": "incident", "environment": "production"]))
        #expect(alone.isOpenCriticalOrHigh && alone.status == .classified)
    }

    // R-CHG-7: a year after the last update; 29 February goes to 28 February.
    @Test func serviceUpdateIsOverdueACalendarYearLater() {
        #expect(ServiceUpdates.overdueSince(at("2026-03-01T03:00:00Z")) == at("2027-03-01T03:00:00Z"))
        #expect(ServiceUpdates.overdueSince(at("2028-02-29T10:00:00Z")) == at("2029-02-28T10:00:00Z"))
        #expect(ServiceUpdates.isServiceUpdate([InstalledComponent(component: "db", kind: .patch, version: "2")]))
        #expect(!ServiceUpdates.isServiceUpdate([InstalledComponent(component: "db", kind: .configuration, version: "2")]))
    }

    // R-CHG-4: the notice maintenance.announced states, in the customer's business days (Canada Day is not one).
    @Test func noticeIsCountedInBusinessDays() {
        let monday = at("2026-06-22T14:00:00Z") // 10:00 EDT
        #expect(ChangePolicy.businessDaysOfNotice(from: monday, to: at("2026-06-29T14:00:00Z"), business: toronto) == 5)
        #expect(ChangePolicy.businessDaysOfNotice(from: monday, to: at("2026-06-29T13:59:59Z"), business: toronto) == 4)
        // Wednesday 1 July is Canada Day: Monday to Monday is 4 business days.
        #expect(ChangePolicy.businessDaysOfNotice(from: at("2026-06-29T14:00:00Z"), to: at("2026-07-06T14:00:00Z"), business: toronto) == 4)
        #expect(ChangePolicy.businessDaysOfNotice(from: monday, to: monday + 3600, business: toronto) == 0)
    }

    // R-SLA-5: an exclusion longer than the SLA timer's 31-day limit is published in pieces that cover it exactly.
    @Test func longExclusionsArePublishedInPiecesTheSLATimerAccepts() {
        let c = change(.normal)
        let long = Interval(start: t0, end: t0 + 40 * 86_400)
        let pieces = ChangeCoding.exclusions(c, long, part: "implementation", by: "eng@vendor.example")
        #expect(pieces.map(\.id) == ["CHG-000001-implementation", "CHG-000001-implementation-2"])
        #expect(pieces.first?.data["start"]?.stringValue == Instant.format(t0))
        #expect(pieces.first?.data["end"] == pieces.last?.data["start"])
        #expect(pieces.last?.data["end"]?.stringValue == Instant.format(t0 + 40 * 86_400))
        #expect(ChangeCoding.exclusions(c, Interval(start: t0, end: t0 + 3600), part: "overrun", by: "x").map(\.id) == ["CHG-000001-overrun"])
    }

    // R-CHG-1: votes count against the board as it is when a vote is recorded; a member who left no longer counts.
    @Test func votesOfFormerMembersDoNotCount() throws {
        var c = change(.normal)
        try move(&c, .agree, by: contact)
        try move(&c, .assess(risk: "low", plan: "p"))
        let before = ChangeAuthority(changeContacts: [contact], board: Board(members: ["a@x.example", "b@x.example", "c@x.example"], quorum: 2))
        guard case .moved(let voted, _) = try ChangeLifecycle.apply(.vote(approve: false, reason: "no"), to: c, by: "a@x.example", at: t0, authority: before) else {
            Issue.record("vote not recorded")
            return
        }
        // a left the board; the new board has two members and a quorum of 2: one rejection by a no longer rejects.
        let after = ChangeAuthority(changeContacts: [contact], board: Board(members: ["b@x.example", "c@x.example"], quorum: 2))
        guard case .moved(let next, _) = try ChangeLifecycle.apply(.vote(approve: true, reason: "ok"), to: voted, by: "b@x.example", at: t0, authority: after) else {
            Issue.record("vote not recorded")
            return
        }
        #expect(next.state == .assessed)
        guard case .moved(let approved, _) = try ChangeLifecycle.apply(.vote(approve: true, reason: "ok"), to: next, by: "c@x.example", at: t0, authority: after) else {
            Issue.record("vote not recorded")
            return
        }
        #expect(approved.state == .approved)
        let data = ChangeCoding.data(EventType.changeApproved, approved, from: .assessed, by: "c@x.example", at: t0, board: after.board)
        #expect(data["approvals"] == 2)
    }

    // R-CHG-6: the deployment timeline shows each schedule with the window it set, also after a reschedule.
    @Test func timelineKeepsEachScheduleWindow() throws {
        var c = change(.standard)
        try move(&c, .agree, by: contact)
        let first = Interval(start: t0 + 86_400, end: t0 + 90_000), second = Interval(start: t0 + 2 * 86_400, end: t0 + 2 * 86_400 + 3600)
        try move(&c, .schedule(.test, first, maintenance: nil, agreedBy: nil))
        try move(&c, .schedule(.test, second, maintenance: nil, agreedBy: nil))
        let timeline = ChangeCoding.timeline(c)
        #expect(timeline.map { $0["start"]?.stringValue } == [Instant.format(first.start), Instant.format(second.start)])
        #expect(timeline.allSatisfy { $0["environment"] == "test" && $0["state"] == "scheduled_test" })
    }
}
