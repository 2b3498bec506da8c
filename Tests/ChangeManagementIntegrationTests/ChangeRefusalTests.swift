import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import Testing

/// Every refusal of change management over the real broker and database: the exact `code` and
/// `field` of each error, and that nothing changed (`change.get` shows the change as it was, and
/// no event about it was published).
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ChangeRefusalTests {
    // R-CHG-1, R-CHG-2, R-CHG-3: change.request validation reports every problem of the body at once
    // and refuses the command whole; nothing is stored and nothing is announced.
    @Test("R-CHG-1/2/3: change.request with missing and invalid fields is refused whole, every problem at once")
    func requestFieldProblemsAreReportedTogether() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            // Standard without templateId, an incident on a non-emergency change, environments without test,
            // a negative cost and a currency that is not three capital letters: five errors in one reply.
            try await h.expectRequestRefused("standard", [
                "templateId": .null, "incident": "INC-000001", "environments": ["production"],
                "cost": ["amount": -5, "currency": "cad"],
            ], ["missing_field@templateId", "invalid_field@incident", "invalid_field@environments",
                "invalid_field@cost.amount", "invalid_field@cost.currency"])
            // A templateId on a Normal change, an emergency without its incident.
            try await h.expectRequestRefused("normal", ["templateId": "db-minor-patch"], ["invalid_field@templateId"])
            try await h.expectRequestRefused("emergency", [:], ["missing_field@incident"])
            // An unknown environment, a window that ends before it starts, no component, a type that is none.
            let backwards: JSONValue = ["start": window(days: 20)["end"]!, "end": window(days: 20)["start"]!]
            try await h.expectRequestRefused("normal", ["environments": ["test", "staging"], "requestedWindow": backwards, "components": []],
                                             ["unknown_value@environments[1]", "invalid_field@requestedWindow.end", "invalid_field@components"])
            try await h.expectRequestRefused("urgent", [:], ["unknown_value@type"])
            // Required fields absent or null.
            try await h.expectRequestRefused("normal", ["title": .null, "work": "  ", "cost": .null, "by": .null],
                                             ["missing_field@title", "empty_field@work", "missing_field@cost", "missing_field@by"])

            try await h.settle()
            #expect(try await h.count("SELECT count(*) FROM change.changes") == 0)
            #expect(h.client.events(ofType: EventType.changeRequested).isEmpty)
            // The same body without its problems is accepted: the refusals were about the fields named.
            #expect(try await h.requestChange("normal").hasPrefix("CHG-"))
        }
    }

    // R-CUS-4: only an Authorized Change Contact of the customer requests a change; R-CHG-1: a Standard
    // change names a template of the catalogue; the customer must be known.
    @Test("R-CUS-4, R-CHG-1: not a change contact, unknown template, unknown customer")
    func requestByStrangersOrForUnknownThingsIsRefused() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            // Ana is a Point of Contact of acme but not one of its change contacts; staff are neither.
            try await h.expectRequestRefused("normal", ["by": "ana@acme.example"], ["not_a_change_contact@by"])
            try await h.expectRequestRefused("normal", ["by": .string(staff)], ["not_a_change_contact@by"])
            // Both business problems of one request are reported together.
            try await h.expectRequestRefused("standard", ["by": "ana@acme.example", "templateId": "no-such-template"],
                                             ["not_a_change_contact@by", "unknown_template@templateId"])
            try await h.expectRequestRefused("standard", ["templateId": "no-such-template"], ["unknown_template@templateId"])
            try await h.expectRequestRefused("normal", ["customerId": "globex"], ["unknown_customer@customerId"])
            let directory = try await h.client.send(CommandName.changeDirectoryGet, ["customerId": "globex"])
            #expect(directory.errors.map(key) == ["unknown_customer@customerId"])

            try await h.settle()
            #expect(try await h.count("SELECT count(*) FROM change.changes") == 0)
            #expect(h.client.events(ofType: EventType.changeRequested).isEmpty)
            // Change contacts are compared case-insensitively: the CIO in capitals may request.
            let id = try await h.requestChange("standard", ["by": "CIO@Acme.Example"])
            #expect(try await h.get(id)?["requestedBy"] == .string(cio))
        }
    }

    // R-CHG-1: an Emergency change addresses an open P1 or P2 production incident of the same customer.
    // Real tickets through intake and classification: one never seen, a P3 of acme, a P1 of another customer.
    @Test("R-CHG-1: an Emergency change referencing no open P1/P2 production incident of its customer is unknown_incident")
    func emergencyChangeNeedsAnOpenCriticalOrHighIncidentOfItsCustomer() async throws {
        try await changeSystem([.classification(env: classificationProducts)]) { h in
            try await h.onboardForChanges()
            #expect(try await h.onboard("globex", extra: ["name": "Globex", "changeContacts": ["cio@globex.example"]]).isOK)
            let p3 = try await h.classifiedIncident(["impact": "minor", "summary": "Search is slow"], priority: "P3")
            let otherP1 = try await h.classifiedIncident(["customerId": "globex"], priority: "P1")
            let p1 = try await h.classifiedIncident([:], priority: "P1")
            let p2 = try await h.classifiedIncident(["impact": "degraded", "summary": "Portal is slow"], priority: "P2")

            try await h.expectRequestRefused("emergency", ["incident": "INC-999999"], ["unknown_incident@incident"])
            try await h.expectRequestRefused("emergency", ["incident": .string(p3)], ["unknown_incident@incident"])
            try await h.expectRequestRefused("emergency", ["incident": .string(otherP1)], ["unknown_incident@incident"])
            try await h.settle()
            #expect(try await h.count("SELECT count(*) FROM change.changes") == 0)
            #expect(h.client.events(ofType: EventType.changeRequested).isEmpty)

            // Open P1 and P2 production incidents of acme are accepted (tracking numbers compared case-insensitively).
            let emergency = try await h.requestChange("emergency", ["incident": .string(p1.lowercased())])
            #expect(try await h.get(emergency)?["incident"] == .string(p1))
            #expect(try await h.requestChange("emergency", ["incident": .string(p2)]).hasPrefix("CHG-"))
        }
    }

    // R-CUS-4: only an Authorized Change Contact agrees or verifies a change, or agrees maintenance outside
    // the windows; R-CHG-1: only support staff assess (a contact is not_support_staff).
    @Test("R-CUS-4: agree, verify and agreedBy by someone who is not a change contact; assess by a contact")
    func onlyChangeContactsAgreeAndVerifyAndOnlyStaffAssess() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            let id = try await h.requestChange("standard")
            try await h.expectStepRefused(CommandName.changeAgree, id, by: "ana@acme.example", ["not_a_change_contact@by"])
            try await h.expectStepRefused(CommandName.changeAgree, id, by: staff, ["not_a_change_contact@by"])
            #expect(try await h.accept(CommandName.changeAgree, id, by: cio) == "approved")
            try await h.accept(CommandName.changeSchedule, id, ["environment": "test", "start": window(days: 1)["start"]!, "end": window(days: 1)["end"]!])
            try await h.accept(CommandName.changeDeploy, id)
            try await h.expectStepRefused(CommandName.changeVerify, id, ["accepted": true], by: "ana@acme.example", ["not_a_change_contact@by"])
            try await h.expectStepRefused(CommandName.changeVerify, id, ["accepted": true], by: staff, ["not_a_change_contact@by"])
            #expect(try await h.accept(CommandName.changeVerify, id, ["accepted": true], by: cio) == "verified_test")
            // Maintenance outside the windows must be agreed by a change contact, who must be named.
            let production = window(days: 14)
            try await h.expectStepRefused(CommandName.changeSchedule, id, [
                "environment": "production", "start": production["start"]!, "end": production["end"]!, "maintenance": "agreed",
                "agreedBy": "ana@acme.example"], ["not_a_change_contact@agreedBy"])
            try await h.expectStepRefused(CommandName.changeSchedule, id, [
                "environment": "production", "start": production["start"]!, "end": production["end"]!, "maintenance": "agreed"],
                                          ["missing_field@agreedBy"])
            #expect(try await h.accept(CommandName.changeSchedule, id, [
                "environment": "production", "start": production["start"]!, "end": production["end"]!, "maintenance": "agreed",
                "agreedBy": .string(cio)]) == "scheduled_production")

            // A Normal change is assessed by support staff only: neither a change contact nor a Point of Contact.
            let normal = try await h.requestChange("normal", ["components": ["portal-load-balancer"]])
            #expect(try await h.accept(CommandName.changeAgree, normal, by: cio) == "agreed")
            let assessment: [String: JSONValue] = ["risk": "low", "plan": "Swap the node, roll back by swapping it back."]
            try await h.expectStepRefused(CommandName.changeAssess, normal, assessment, by: cio, ["not_support_staff@by"])
            try await h.expectStepRefused(CommandName.changeAssess, normal, assessment, by: "bo@acme.example", ["not_support_staff@by"])
            #expect(try await h.accept(CommandName.changeAssess, normal, assessment) == "assessed")

            // acme names another change contact (a new customer.onboarded): the CIO may no longer request or agree.
            #expect(try await h.onboard(extra: ["changeContacts": ["cto@acme.example"]]).isOK)
            #expect(try await eventually {
                try await h.count("SELECT count(*) FROM change.customers WHERE customer_id = 'acme' AND profile->'changeContacts' ? 'cto@acme.example'") == 1
            }, "change management never learned acme's new change contacts")
            try await h.expectRequestRefused("normal", [:], ["not_a_change_contact@by"])
            let byCTO = try await h.requestChange("normal", ["by": "cto@acme.example", "components": ["mail-relay"]])
            try await h.expectStepRefused(CommandName.changeAgree, byCTO, by: cio, ["not_a_change_contact@by"])
            #expect(try await h.accept(CommandName.changeAgree, byCTO, by: "cto@acme.example") == "agreed")

            try await h.expectEvents(id, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled,
                                          EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled])
            try await h.expectEvents(normal, [EventType.changeRequested, EventType.changeAgreed, EventType.changeAssessed])
        }
    }

    // R-CHG-1, R-CHG-2, R-CHG-3: commands ahead of the change's stage are refused illegal_transition (or
    // test_not_verified before the customer verified on Test) and change nothing.
    @Test("R-CHG-1/2/3: illegal transitions and Production before Test verification")
    func commandsAheadOfTheStageAreRefused() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            let id = try await h.requestChange("standard")
            // R-CHG-2: nothing happens before the customer agrees.
            try await h.expectStepRefused(CommandName.changeSchedule, id, h.testWindow(window(days: 1)), ["illegal_transition@changeId"])
            // R-CHG-1: a Standard change is never voted on (not agreed yet: illegal; once approved by its template: ok as it is).
            try await h.expectStepRefused(CommandName.changeVote, id, ["approve": true, "reason": "fine"], by: "lchen@support.example",
                                          ["illegal_transition@changeId"])
            try await h.expectStepRefused(CommandName.changeAssess, id, ["risk": "low", "plan": "none"], ["illegal_transition@changeId"])
            #expect(try await h.accept(CommandName.changeAgree, id, by: cio) == "approved")
            try await h.expectUnchanged(CommandName.changeVote, id, ["approve": true, "reason": "fine"], by: "lchen@support.example")
            // R-CHG-3: deploy before the Test schedule, close and complete before the implementation.
            try await h.expectStepRefused(CommandName.changeDeploy, id, [:], ["illegal_transition@changeId"])
            try await h.expectStepRefused(CommandName.changeClose, id, [:], ["illegal_transition@changeId"])
            try await h.expectStepRefused(CommandName.changeComplete, id, ["outcome": "implemented", "installed": [
                ["component": "document-store-db", "kind": "patch", "version": "16.2"]]], ["illegal_transition@changeId"])
            try await h.expectStepRefused(CommandName.changeVerify, id, ["accepted": true], by: cio, ["illegal_transition@changeId"])
            // R-CHG-3: Production and its implementation only after the customer verified the change on Test.
            let production = window(days: 14)
            let productionFields: [String: JSONValue] = ["environment": "production", "start": production["start"]!, "end": production["end"]!]
            try await h.expectStepRefused(CommandName.changeSchedule, id, productionFields, ["test_not_verified@environment"])
            try await h.expectStepRefused(CommandName.changeImplement, id, [:], ["test_not_verified@changeId"])
            try await h.accept(CommandName.changeSchedule, id, h.testWindow(window(days: 1)))
            try await h.expectStepRefused(CommandName.changeSchedule, id, productionFields, ["test_not_verified@environment"])
            try await h.accept(CommandName.changeDeploy, id)
            try await h.expectStepRefused(CommandName.changeSchedule, id, productionFields, ["test_not_verified@environment"])
            try await h.expectStepRefused(CommandName.changeImplement, id, [:], ["test_not_verified@changeId"])
            // A verification that does not accept the change keeps it on Test.
            #expect(try await h.accept(CommandName.changeVerify, id, ["accepted": false, "notes": "two saved searches are empty"], by: cio) == "deployed_test")
            try await h.expectStepRefused(CommandName.changeSchedule, id, productionFields, ["test_not_verified@environment"])
            #expect(try await h.accept(CommandName.changeDeploy, id) == "deployed_test")
            #expect(try await h.accept(CommandName.changeVerify, id, ["accepted": true], by: cio) == "verified_test")
            // Verified but not scheduled for Production: implement is illegal_transition.
            try await h.expectStepRefused(CommandName.changeImplement, id, [:], ["illegal_transition@changeId"])
            #expect(try await h.accept(CommandName.changeSchedule, id, productionFields) == "scheduled_production")

            // A Normal change: assessed before the board votes, agreed before it is assessed.
            let normal = try await h.requestChange("normal", ["components": ["portal-load-balancer"]])
            try await h.setBoard("normal", members: ["lchen@support.example"], quorum: 1)
            try await h.expectStepRefused(CommandName.changeAssess, normal, ["risk": "low", "plan": "Swap it."], ["illegal_transition@changeId"])
            try await h.accept(CommandName.changeAgree, normal, by: cio)
            try await h.expectStepRefused(CommandName.changeVote, normal, ["approve": true, "reason": "fine"], by: "lchen@support.example",
                                          ["illegal_transition@changeId"])
            // An ended change takes no further command; the same end again is answered as it is.
            #expect(try await h.accept(CommandName.changeCancel, normal, ["reason": "Not needed any more"]) == "cancelled")
            try await h.expectUnchanged(CommandName.changeCancel, normal, ["reason": "Not needed any more"])
            try await h.expectStepRefused(CommandName.changeAssess, normal, ["risk": "low", "plan": "Swap it."], ["illegal_transition@changeId"])
            try await h.expectStepRefused(CommandName.changeAgree, normal, by: cio, ["illegal_transition@changeId"])
            // A change being implemented can no longer be cancelled.
            #expect(try await h.accept(CommandName.changeImplement, id) == "implementing")
            try await h.expectStepRefused(CommandName.changeCancel, id, ["reason": "Too late"], ["illegal_transition@changeId"])

            try await h.expectEvents(id, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled,
                                          EventType.changeDeployed, EventType.changeVerified, EventType.changeDeployed, EventType.changeVerified,
                                          EventType.changeScheduled, EventType.changeImplementing, EventType.slaExclusionAdded])
            try await h.expectEvents(normal, [EventType.changeRequested, EventType.changeAgreed, EventType.changeCancelled])
        }
    }

    // R-CHG-4: a Production implementation is not in the past, lies inside the customer's routine windows (the
    // refusal names them) and, when it interrupts service, starts at least 5 business days ahead.
    @Test("R-CHG-4: window_in_past, outside_window naming the windows, insufficient_notice")
    func productionSchedulesRespectWindowsAndNotice() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            // R-CHG-4: routine maintenance that interrupts service, 1 day ahead, inside the (all-week) windows.
            let interrupting = try await h.requestChange("standard", ["interruptsService": true])
            try await h.throughVerification(interrupting)
            let soon = window(days: 1, hours: 1)
            let reply = try await h.expectStepRefused(CommandName.changeSchedule, interrupting, h.productionWindow(soon), ["insufficient_notice@start"])
            // The message names the earliest allowed start: at least 5 days from now.
            let named = reply.errors.first.map { timestamps(in: $0.message) } ?? []
            #expect(named.contains { $0 > Date().addingTimeInterval(5 * 86_400 - 60) && $0 < Date().addingTimeInterval(30 * 86_400) },
                    "insufficient_notice does not name the earliest allowed start: \(reply)")
            // In the past, on Production and on Test.
            let past: JSONValue = ["start": .string(RFC3339.format(Date().addingTimeInterval(-7200).rounded)),
                                   "end": .string(RFC3339.format(Date().addingTimeInterval(-3600).rounded))]
            // (Agreed maintenance, so that only the time is wrong: routine maintenance would also lack notice.)
            try await h.expectStepRefused(CommandName.changeSchedule, interrupting, h.productionWindow(past, maintenance: "agreed", agreedBy: .string(cio)),
                                          ["window_in_past@start"])
            let onTest = try await h.requestChange("standard", ["components": ["portal-load-balancer"]])
            #expect(try await h.accept(CommandName.changeAgree, onTest, by: cio) == "approved")
            try await h.expectStepRefused(CommandName.changeSchedule, onTest, h.testWindow(past), ["window_in_past@start"])
            // Agreed maintenance needs no notice of 5 business days (announced when scheduled).
            #expect(try await h.accept(CommandName.changeSchedule, interrupting, h.productionWindow(soon, maintenance: "agreed", agreedBy: .string(cio)))
                    == "scheduled_production")
            let announced = try #require(try await h.awaitChangeEvents(EventType.maintenanceAnnounced, interrupting).first)
            #expect(announced.data["addressedTo"] == [.string(cio)])
            #expect(announced.data["maintenance"] == "agreed")

            // A window is a window on a public holiday too: Christmas Day (a statutory holiday in Ontario), all-week windows.
            let holiday = try await h.requestChange("standard", ["components": ["holiday-widget"]])
            try await h.throughVerification(holiday, test: window(days: 4))
            #expect(try await h.accept(CommandName.changeSchedule, holiday, h.productionWindow(torontoChristmas(hour: 10, afterDays: 14)))
                    == "scheduled_production")

            // Only Wednesday evenings and Saturday nights (across midnight), in Toronto.
            let windows: JSONValue = [["weekday": "wednesday", "start": "19:00", "end": "23:00"], ["weekday": "saturday", "start": "22:00", "end": "04:00"]]
            #expect(try await h.setWindows(windows).isOK)
            let routine = try await h.requestChange("standard", ["components": ["search-index"]])
            try await h.throughVerification(routine, test: window(days: 2))
            let monday = toronto(weekday: 2, hour: 12, afterDays: 14)
            let outside = try await h.expectStepRefused(CommandName.changeSchedule, routine, h.productionWindow(monday), ["outside_window@start"])
            let message = outside.errors.first?.message ?? ""
            for named in ["wednesday", "19:00", "23:00", "saturday", "22:00", "04:00"] {
                #expect(message.contains(named), "outside_window does not name the windows (\(named)): \(message)")
            }
            // Partly inside (Wednesday 22:30 to 23:30) is outside too.
            try await h.expectStepRefused(CommandName.changeSchedule, routine, h.productionWindow(toronto(weekday: 4, hour: 22, minute: 30, afterDays: 14)),
                                          ["outside_window@start"])
            // Every rule a schedule breaks is reported at once: an interrupting change on the coming Monday (less than
            // 5 business days ahead whatever today is).
            let both = try await h.requestChange("standard", ["components": ["mail-relay"], "interruptsService": true])
            try await h.throughVerification(both, test: window(days: 3))
            try await h.expectStepRefused(CommandName.changeSchedule, both, h.productionWindow(toronto(weekday: 2, hour: 12, afterDays: 0.01)),
                                          ["outside_window@start", "insufficient_notice@start"])
            // Inside a window it is accepted, the Saturday-night window across midnight included.
            #expect(try await h.accept(CommandName.changeSchedule, routine, h.productionWindow(toronto(weekday: 4, hour: 19, minute: 30, afterDays: 14)))
                    == "scheduled_production")
            #expect(try await h.accept(CommandName.changeSchedule, both, h.productionWindow(toronto(weekday: 7, hour: 23, afterDays: 14, hours: 3)))
                    == "scheduled_production")

            try await h.expectEvents(interrupting, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled,
                                                    EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled, EventType.maintenanceAnnounced])
            try await h.expectEvents(onTest, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved])
            try await h.expectEvents(routine, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled,
                                               EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled])
            try await h.expectEvents(both, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled,
                                            EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled, EventType.maintenanceAnnounced])
        }
    }

    // R-CHG-4: no change is scheduled in a freeze, on Test or in Production, unless it is an Emergency change
    // (R-CHG-1: for an open P1 incident, approved by the emergency board, which must be set first).
    @Test("R-CHG-4, R-CHG-1: in_freeze naming the freeze; an Emergency change is allowed in it; unknown_board")
    func freezesRefuseAllButEmergencyChanges() async throws {
        try await changeSystem([.classification(env: classificationProducts)]) { h in
            let freezes: JSONValue = [
                ["start": window(days: 2)["start"]!, "end": window(days: 3)["start"]!, "reason": "Quarter-end reporting"],
                ["start": window(days: 12)["start"]!, "end": window(days: 17)["start"]!, "reason": "Acme's year-end close"],
            ]
            try await h.onboardForChanges(freezes: freezes)
            try await h.setTemplate()
            let id = try await h.requestChange("standard")
            #expect(try await h.accept(CommandName.changeAgree, id, by: cio) == "approved")
            let refusedTest = try await h.expectStepRefused(CommandName.changeSchedule, id, h.testWindow(window(days: 2.5)), ["in_freeze@start"])
            #expect(refusedTest.errors.first?.message.contains("Quarter-end reporting") == true, "in_freeze does not name the freeze: \(refusedTest)")
            try await h.throughVerification(id, test: window(days: 1), agreed: true)
            let frozen = try await h.expectStepRefused(CommandName.changeSchedule, id, h.productionWindow(window(days: 14)), ["in_freeze@start"])
            #expect(frozen.errors.first?.message.contains("Acme's year-end close") == true, "in_freeze does not name the freeze: \(frozen)")
            // Freezes are [start, end): a window ending exactly when the freeze starts is not in it (checked on a second change).
            let edge = try await h.requestChange("standard", ["components": ["mail-relay"]])
            try await h.throughVerification(edge, test: window(days: 1.5))
            let freezeStart = RFC3339.parse(freezes.arrayValue![1]["start"]!.stringValue!)!
            let beforeFreeze: JSONValue = ["start": .string(RFC3339.format(freezeStart.addingTimeInterval(-3600))), "end": .string(RFC3339.format(freezeStart))]
            #expect(try await h.accept(CommandName.changeSchedule, edge, h.productionWindow(beforeFreeze)) == "scheduled_production")
            // Agreed maintenance does not lift a freeze either.
            try await h.expectStepRefused(CommandName.changeSchedule, id, h.productionWindow(window(days: 14), maintenance: "agreed", agreedBy: .string(cio)),
                                          ["in_freeze@start"])

            // An Emergency change for an open P1 incident: the emergency board must be set before it votes.
            let incident = try await h.classifiedIncident([:], priority: "P1")
            let emergency = try await h.requestChange("emergency", ["incident": .string(incident), "components": ["portal-load-balancer"]])
            #expect(try await h.accept(CommandName.changeAgree, emergency, by: cio) == "agreed")
            try await h.expectStepRefused(CommandName.changeVote, emergency, ["approve": true, "reason": "Restores the portal"], by: "duty@vendor.example",
                                          ["unknown_board@changeId"])
            try await h.setBoard("emergency", members: ["duty@vendor.example"], quorum: 1)
            #expect(try await h.accept(CommandName.changeVote, emergency, ["approve": true, "reason": "Restores the portal"], by: "duty@vendor.example")
                    == "approved")
            // In both freezes: Test and Production.
            #expect(try await h.accept(CommandName.changeSchedule, emergency, h.testWindow(window(days: 2.5))) == "scheduled_test")
            try await h.accept(CommandName.changeDeploy, emergency)
            try await h.accept(CommandName.changeVerify, emergency, ["accepted": true], by: cio)
            #expect(try await h.accept(CommandName.changeSchedule, emergency, h.productionWindow(window(days: 14))) == "scheduled_production")
            #expect(try await h.get(emergency)?["production"]?["maintenance"] == "emergency")
            // maintenance emergency is for Emergency changes only.
            try await h.expectStepRefused(CommandName.changeSchedule, id, h.productionWindow(window(days: 20), maintenance: "emergency"),
                                          ["invalid_field@maintenance"])

            try await h.expectEvents(id, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled,
                                          EventType.changeDeployed, EventType.changeVerified])
            try await h.expectEvents(emergency, [EventType.changeRequested, EventType.changeAgreed, EventType.changeVoteRecorded, EventType.changeApproved,
                                                 EventType.changeScheduled, EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled])
        }
    }

    // R-CHG-5: overlapping Production implementations of one customer conflict (the refusal names the other
    // change), as do Test deployments touching one component at once, unless one of the two is Emergency.
    @Test("R-CHG-5: change_conflict naming the other change; an Emergency change may overlap")
    func overlappingImplementationsConflictUnlessEmergency() async throws {
        try await changeSystem([.classification(env: classificationProducts)]) { h in
            try await h.onboardForChanges()
            try await h.setBoard("normal", members: ["lchen@support.example"], quorum: 1)
            try await h.setBoard("emergency", members: ["duty@vendor.example"], quorum: 1)
            let first = try await h.requestChange("normal", ["components": ["document-store-db"]])
            try await h.approveChange(first, "normal")
            try await h.throughVerification(first, agreed: true)
            let production = window(days: 14, hours: 2)
            #expect(try await h.accept(CommandName.changeSchedule, first, h.productionWindow(production)) == "scheduled_production")

            // Another Normal change of acme, other components, overlapping the first one's Production window.
            let second = try await h.requestChange("normal", ["components": ["portal-load-balancer"]])
            try await h.approveChange(second, "normal")
            try await h.throughVerification(second, agreed: true)
            let overlapping = window(days: 14 + 1.0 / 24, hours: 2)
            let conflict = try await h.expectStepRefused(CommandName.changeSchedule, second, h.productionWindow(overlapping), ["change_conflict@start"])
            #expect(conflict.errors.first?.message.contains(first) == true, "change_conflict does not name \(first): \(conflict)")
            // Agreed maintenance does not lift the conflict.
            try await h.expectStepRefused(CommandName.changeSchedule, second, h.productionWindow(overlapping, maintenance: "agreed", agreedBy: .string(cio)),
                                          ["change_conflict@start"])
            // Right after the first one it is no conflict ([start, end) windows).
            let after: JSONValue = ["start": production["end"]!, "end": .string(RFC3339.format(RFC3339.parse(production["end"]!.stringValue!)!.addingTimeInterval(3600)))]
            #expect(try await h.accept(CommandName.changeSchedule, second, h.productionWindow(after)) == "scheduled_production")

            // On Test: two changes touching the same component at overlapping times conflict.
            let third = try await h.requestChange("normal", ["components": ["document-store-db", "search-index"]])
            try await h.approveChange(third, "normal")
            let fourth = try await h.requestChange("normal", ["components": ["search-index"]])
            try await h.approveChange(fourth, "normal")
            #expect(try await h.accept(CommandName.changeSchedule, third, h.testWindow(window(days: 3, hours: 2))) == "scheduled_test")
            let onTest = try await h.expectStepRefused(CommandName.changeSchedule, fourth, h.testWindow(window(days: 3 + 1.0 / 24)), ["change_conflict@start"])
            #expect(onTest.errors.first?.message.contains(third) == true, "change_conflict does not name \(third): \(onTest)")

            // An Emergency change overlaps the third one on Test and both others in Production.
            let incident = try await h.classifiedIncident([:], priority: "P1")
            let emergency = try await h.requestChange("emergency", ["incident": .string(incident), "components": ["document-store-db", "search-index"]])
            try await h.approveChange(emergency, "emergency")
            #expect(try await h.accept(CommandName.changeSchedule, emergency, h.testWindow(window(days: 3 + 1.0 / 24, hours: 2))) == "scheduled_test")
            // A Normal change overlapping only the Emergency one (the third one's Test ends before) is no conflict either.
            #expect(try await h.accept(CommandName.changeSchedule, fourth, h.testWindow(window(days: 3 + 2.5 / 24, hours: 0.25))) == "scheduled_test")
            try await h.accept(CommandName.changeDeploy, emergency)
            try await h.accept(CommandName.changeVerify, emergency, ["accepted": true], by: cio)
            #expect(try await h.accept(CommandName.changeSchedule, emergency, h.productionWindow(overlapping)) == "scheduled_production")

            // Rescheduling (R-CHG-5 checked the same way): into the first one's window it is refused and the old
            // schedule stays; over its own old window it is accepted and replaces it.
            try await h.expectStepRefused(CommandName.changeSchedule, second, h.productionWindow(production), ["change_conflict@start"])
            let shifted: JSONValue = ["start": .string(RFC3339.format(RFC3339.parse(after["start"]!.stringValue!)!.addingTimeInterval(1800))),
                                      "end": .string(RFC3339.format(RFC3339.parse(after["end"]!.stringValue!)!.addingTimeInterval(1800)))]
            #expect(try await h.accept(CommandName.changeSchedule, second, h.productionWindow(shifted)) == "scheduled_production")
            #expect(try await h.get(second)?["production"]?["start"] == shifted["start"])

            // A cancelled change no longer holds its window.
            let fifth = try await h.requestChange("normal", ["components": ["mail-relay"]])
            try await h.approveChange(fifth, "normal")
            try await h.throughVerification(fifth, agreed: true)
            let held = try await h.expectStepRefused(CommandName.changeSchedule, fifth, h.productionWindow(production), ["change_conflict@start"])
            #expect(held.errors.first?.message.contains(first) == true, "change_conflict does not name \(first): \(held)")
            #expect(try await h.accept(CommandName.changeCancel, first, ["reason": "Postponed to next quarter"]) == "cancelled")
            #expect(try await h.accept(CommandName.changeSchedule, fifth, h.productionWindow(production)) == "scheduled_production")

            let approved = [EventType.changeRequested, EventType.changeAgreed, EventType.changeAssessed, EventType.changeVoteRecorded, EventType.changeApproved]
            try await h.expectEvents(first, approved + [EventType.changeScheduled, EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled,
                                                        EventType.changeCancelled])
            try await h.expectEvents(fifth, approved + [EventType.changeScheduled, EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled])
            try await h.expectEvents(second, approved + [EventType.changeScheduled, EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled,
                                                         EventType.changeScheduled])
            try await h.expectEvents(third, approved + [EventType.changeScheduled])
            try await h.expectEvents(fourth, approved + [EventType.changeScheduled])
        }
    }

    // R-CHG-1: the Change Advisory Board votes on an assessed Normal change: members only, one vote each.
    @Test("R-CHG-1: unknown_board, not_a_board_member, already_voted")
    func boardVotesAreByMembersOnceEach() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            let id = try await h.requestChange("normal")
            try await h.accept(CommandName.changeAgree, id, by: cio)
            try await h.accept(CommandName.changeAssess, id, ["risk": "medium", "plan": "Snapshot, upgrade, smoke test; restore the snapshot to roll back."])
            let approve: [String: JSONValue] = ["approve": true, "reason": "Rollback rehearsed"]
            try await h.expectStepRefused(CommandName.changeVote, id, approve, by: "lchen@support.example", ["unknown_board@changeId"])
            try await h.setBoard("normal", members: ["lchen@support.example", "dwhitfield@support.example", "mnovak@support.example"], quorum: 2)
            try await h.expectStepRefused(CommandName.changeVote, id, approve, by: cio, ["not_a_board_member@by"])
            try await h.expectStepRefused(CommandName.changeVote, id, approve, by: staff, ["not_a_board_member@by"])
            // The emergency board's members do not vote on Normal changes.
            try await h.setBoard("emergency", members: ["duty@vendor.example"], quorum: 1)
            try await h.expectStepRefused(CommandName.changeVote, id, approve, by: "duty@vendor.example", ["not_a_board_member@by"])
            #expect(try await h.accept(CommandName.changeVote, id, approve, by: "LChen@support.example") == "assessed")
            try await h.expectStepRefused(CommandName.changeVote, id, ["approve": false, "reason": "Changed my mind"], by: "lchen@support.example",
                                          ["already_voted@by"])
            // The same vote again is answered with the change as it is and emits nothing.
            try await h.expectUnchanged(CommandName.changeVote, id, approve, by: "lchen@support.example")
            #expect(try await h.accept(CommandName.changeVote, id, approve, by: "mnovak@support.example") == "approved")
            let change = try #require(try await h.get(id))
            #expect(change["votes"]?.arrayValue?.map { $0["by"]?.stringValue ?? "" } == ["lchen@support.example", "mnovak@support.example"])
            #expect(change["quorum"] == 2)
            try await h.expectEvents(id, [EventType.changeRequested, EventType.changeAgreed, EventType.changeAssessed, EventType.changeVoteRecorded,
                                          EventType.changeVoteRecorded, EventType.changeApproved])

            // Rejected once the approvals can no longer reach the quorum; a rejected change is ended: no further vote.
            let doomed = try await h.requestChange("normal", ["components": ["portal-load-balancer"]])
            try await h.accept(CommandName.changeAgree, doomed, by: cio)
            try await h.accept(CommandName.changeAssess, doomed, ["risk": "high", "plan": "Replace the node in place."])
            let reject: [String: JSONValue] = ["approve": false, "reason": "The rollback has not been rehearsed"]
            #expect(try await h.accept(CommandName.changeVote, doomed, reject, by: "dwhitfield@support.example") == "assessed")
            #expect(try await h.accept(CommandName.changeVote, doomed, reject, by: "mnovak@support.example") == "rejected")
            try await h.expectStepRefused(CommandName.changeVote, doomed, approve, by: "lchen@support.example", ["illegal_transition@changeId"])
            try await h.expectStepRefused(CommandName.changeCancel, doomed, ["reason": "Rejected anyway"], ["illegal_transition@changeId"])
            try await h.expectEvents(doomed, [EventType.changeRequested, EventType.changeAgreed, EventType.changeAssessed, EventType.changeVoteRecorded,
                                              EventType.changeVoteRecorded, EventType.changeRejected])

            // The board changes: votes cast stay, but those of members no longer on the board do not count.
            let reshuffled = try await h.requestChange("normal", ["components": ["mail-relay"]])
            try await h.accept(CommandName.changeAgree, reshuffled, by: cio)
            try await h.accept(CommandName.changeAssess, reshuffled, ["risk": "low", "plan": "Swap the relay."])
            #expect(try await h.accept(CommandName.changeVote, reshuffled, approve, by: "lchen@support.example") == "assessed")
            try await h.setBoard("normal", members: ["dwhitfield@support.example", "mnovak@support.example"], quorum: 2)
            try await h.expectStepRefused(CommandName.changeVote, reshuffled, approve, by: "lchen@support.example", ["not_a_board_member@by"])
            #expect(try await h.accept(CommandName.changeVote, reshuffled, approve, by: "dwhitfield@support.example") == "assessed")
            #expect(try await h.accept(CommandName.changeVote, reshuffled, approve, by: "mnovak@support.example") == "approved")
            #expect(try await h.get(reshuffled)?["votes"]?.arrayValue?.count == 3)
            try await h.expectEvents(reshuffled, [EventType.changeRequested, EventType.changeAgreed, EventType.changeAssessed, EventType.changeVoteRecorded,
                                                  EventType.changeVoteRecorded, EventType.changeVoteRecorded, EventType.changeApproved])
        }
    }

    // Every lifecycle command and change.get about a change nobody requested.
    @Test("unknown_change for every command about a change that does not exist")
    func commandsAboutUnknownChangesAreRefused() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            let commands: [(String, [String: JSONValue], String)] = [
                (CommandName.changeAgree, [:], cio), (CommandName.changeAssess, ["risk": "low", "plan": "x"], staff),
                (CommandName.changeVote, ["approve": true, "reason": "x"], "lchen@support.example"),
                (CommandName.changeSchedule, h.testWindow(window(days: 1)), staff), (CommandName.changeDeploy, [:], staff),
                (CommandName.changeVerify, ["accepted": true], cio), (CommandName.changeImplement, [:], staff),
                (CommandName.changeComplete, ["outcome": "failed", "rollback": "restored"], staff), (CommandName.changeClose, [:], staff),
                (CommandName.changeCancel, ["reason": "x"], staff),
            ]
            for (command, fields, by) in commands {
                let reply = try await h.step(command, "CHG-999999", fields, by: by)
                #expect(reply.errors.map(key) == ["unknown_change@changeId"], "\(command): \(reply)")
            }
            let get = try await h.client.send(CommandName.changeGet, ["changeId": "CHG-999999"])
            #expect(get.errors.map(key) == ["unknown_change@changeId"])
            #expect(try await h.count("SELECT count(*) FROM change.changes") == 0)
        }
    }

    // Hostile input at this service's layer: text PostgreSQL cannot store, a body that is no object, over-long text.
    @Test("hostile change.request: NUL in title, not an object, a 300-character title")
    func hostileRequestsAreRefusedAndStoreNothing() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            let nulID = UUID().uuidString
            let nul = try await h.client.send(CommandName.changeRequest, SystemHarness.changeRequest("normal", ["title": "Upgrade\u{0000}the database"]),
                                              messageID: nulID)
            #expect(nul.errors.map(key) == ["invalid_field@title"], "\(nul)")
            #expect(nul.errors.first?.message.contains("NUL") == true)
            // The refusal is stored under its message_id: the same command again gets the same answer.
            let again = try await h.client.send(CommandName.changeRequest, SystemHarness.changeRequest("normal", ["title": "Upgrade\u{0000}the database"]),
                                                messageID: nulID)
            #expect(again == nul)
            let nested = try await h.client.send(CommandName.changeRequest, SystemHarness.changeRequest("normal", ["components": ["db", "x\u{0000}y"]]))
            #expect(nested.errors.map(key) == ["invalid_field@components[1]"], "\(nested)")

            for raw in ["[1, 2, 3]", "\"change\"", "42", "null"] {
                let reply = try await h.client.sendRaw(CommandName.changeRequest, body: Array(raw.utf8))
                #expect(reply.errors.map(\.code) == [ErrorCode.notAnObject], "\(raw): \(reply)")
            }
            let long = try await h.client.send(CommandName.changeRequest, SystemHarness.changeRequest("normal", ["title": .string(String(repeating: "T", count: 300))]))
            #expect(long.errors.map(key) == ["too_long@title"], "\(long)")
            // A lifecycle command with a NUL in its change id.
            let step = try await h.client.send(CommandName.changeAgree, ["changeId": "CHG-\u{0000}1", "by": .string(cio)])
            #expect(step.errors.map(key) == ["invalid_field@changeId"], "\(step)")

            // Announced by command.rejected, not dead-lettered, nothing stored.
            #expect(await eventually { h.client.events(ofType: EventType.commandRejected).contains { $0.data["messageId"]?.stringValue == nulID } })
            try await h.settle()
            #expect(!h.client.deadLetters.contains { ($0.properties.headers["x-css-error"] ?? "").hasPrefix(ErrorCode.invalidField) },
                    "an ordinary content refusal was dead-lettered")
            #expect(try await h.count("SELECT count(*) FROM change.rejections") >= 8)
            #expect(try await h.count("SELECT count(*) FROM change.changes") == 0)
            #expect(h.client.events(ofType: EventType.changeRequested).isEmpty)
        }
    }
}

// MARK: - Helpers of this file

/// The classification service's product lists, as deployed in the other pipeline tests.
private let classificationProducts = ["CSS_CLOUD_PRODUCTS": "OT Cloud,Extended ECM", "CSS_THIRD_PARTY_PRODUCTS": "SAP,Microsoft Teams"]

/// An error as `code@field`, for exact comparisons.
private func key(_ e: CommandError) -> String { "\(e.code)@\(e.field ?? "null")" }

/// Every RFC 3339 UTC time in `text`.
private func timestamps(in text: String) -> [Date] {
    guard let regex = try? Regex(#"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"#) else { return [] }
    return text.matches(of: regex).compactMap { RFC3339.parse(String(text[$0.range])) }
}

/// The next Christmas Day at `hour`:00 in Toronto at least `afterDays` from now, one hour long.
private func torontoChristmas(hour: Int, afterDays: Double) -> JSONValue {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "America/Toronto")!
    let start = calendar.nextDate(after: Date().addingTimeInterval(afterDays * 86_400), matching: DateComponents(month: 12, day: 25, hour: hour, minute: 0),
                                  matchingPolicy: .nextTime)!
    return ["start": .string(RFC3339.format(start)), "end": .string(RFC3339.format(start.addingTimeInterval(3600)))]
}

/// The first `weekday` (Calendar numbering: 1 Sunday, 2 Monday, ... 7 Saturday) at `hour`:`minute` in
/// Toronto (acme's zone) at least `afterDays` from now, `hours` long.
private func toronto(weekday: Int, hour: Int, minute: Int = 0, afterDays: Double, hours: Double = 1) -> JSONValue {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "America/Toronto")!
    let start = calendar.nextDate(after: Date().addingTimeInterval(afterDays * 86_400), matching: DateComponents(hour: hour, minute: minute, weekday: weekday),
                                  matchingPolicy: .nextTime)!
    return ["start": .string(RFC3339.format(start)), "end": .string(RFC3339.format(start.addingTimeInterval(hours * 3600)))]
}

private extension Date {
    var rounded: Date { Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down)) }
}

private extension SystemHarness {
    func get(_ id: String) async throws -> JSONValue? {
        try await client.send(CommandName.changeGet, ["changeId": .string(id)]).result
    }

    /// Lets events of commands already answered arrive before checking that none came.
    func settle() async throws {
        try await Task.sleep(for: .milliseconds(500))
    }

    func testWindow(_ w: JSONValue) -> [String: JSONValue] {
        ["environment": "test", "start": w["start"]!, "end": w["end"]!]
    }

    func productionWindow(_ w: JSONValue, maintenance: JSONValue = .null, agreedBy: JSONValue = .null) -> [String: JSONValue] {
        ["environment": "production", "start": w["start"]!, "end": w["end"]!, "maintenance": maintenance, "agreedBy": agreedBy]
    }

    /// A `change.request` of `type` with `overrides` must be refused with exactly `expected` (`code@field`), storing nothing.
    func expectRequestRefused(_ type: String, _ overrides: [String: JSONValue], _ expected: Set<String>,
                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = try await count("SELECT count(*) FROM change.changes")
        let reply = try await client.send(CommandName.changeRequest, SystemHarness.changeRequest(type, overrides))
        #expect(Set(reply.errors.map(key)) == expected && reply.errors.count == expected.count, "change.request \(type) \(overrides): \(reply)",
                sourceLocation: sourceLocation)
        #expect(try await count("SELECT count(*) FROM change.changes") == before, "a refused change.request stored a change", sourceLocation: sourceLocation)
    }

    /// A lifecycle command must be refused with exactly `expected` (`code@field`), and the change must be exactly as it was.
    @discardableResult
    func expectStepRefused(_ command: String, _ id: String, _ fields: [String: JSONValue] = [:], by: String = staff, _ expected: Set<String>,
                           sourceLocation: SourceLocation = #_sourceLocation) async throws -> Reply {
        let before = try await get(id)
        #expect(before?["changeId"] == .string(id), "change.get of \(id) failed", sourceLocation: sourceLocation)
        let reply = try await step(command, id, fields, by: by)
        #expect(Set(reply.errors.map(key)) == expected && reply.errors.count == expected.count, "\(command) of \(id) by \(by): \(reply)",
                sourceLocation: sourceLocation)
        #expect(try await get(id) == before, "the refused \(command) changed \(id)", sourceLocation: sourceLocation)
        return reply
    }

    /// A command whose stage the change has passed: answered ok with the change exactly as it is.
    func expectUnchanged(_ command: String, _ id: String, _ fields: [String: JSONValue] = [:], by: String = staff,
                         sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = try await get(id)
        let reply = try await step(command, id, fields, by: by)
        #expect(reply.result != nil && reply.result == before, "\(command) of \(id) should be answered with the change as it is: \(reply)",
                sourceLocation: sourceLocation)
        #expect(try await get(id) == before, "\(command) changed \(id)", sourceLocation: sourceLocation)
    }

    /// The change's events (deduplicated by CloudEvent id), once quiet, are exactly `types` in order.
    func expectEvents(_ id: String, _ types: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(await eventually { Set(changeEvents(id).map(\.id)).count >= types.count }, "events of \(id): \(changeEvents(id).map(\.type))",
                sourceLocation: sourceLocation)
        try await settle()
        var seen = Set<String>()
        let unique = changeEvents(id).filter { seen.insert($0.id).inserted }
        #expect(unique.map(\.type) == types, "events of \(id)", sourceLocation: sourceLocation)
    }

    /// Agreed by acme's CIO and, for a Normal or Emergency change, approved by its board (set by the caller, one approval).
    func approveChange(_ id: String, _ type: String) async throws {
        #expect(try await accept(CommandName.changeAgree, id, by: cio) == (type == "standard" ? "approved" : "agreed"))
        if type == "normal" {
            try await accept(CommandName.changeAssess, id, ["risk": "low", "plan": "Snapshot first; restore it to roll back."])
        }
        if type != "standard" {
            let member = type == "normal" ? "lchen@support.example" : "duty@vendor.example"
            #expect(try await accept(CommandName.changeVote, id, ["approve": true, "reason": "Low risk"], by: member) == "approved")
        }
    }

    /// Agrees a Standard change (unless `agreed`) and takes it through Test to `verified_test`.
    func throughVerification(_ id: String, test: JSONValue = window(days: 1), agreed: Bool = false) async throws {
        if !agreed { #expect(try await accept(CommandName.changeAgree, id, by: cio) == "approved") }
        #expect(try await accept(CommandName.changeSchedule, id, testWindow(test)) == "scheduled_test")
        try await accept(CommandName.changeDeploy, id)
        #expect(try await accept(CommandName.changeVerify, id, ["accepted": true, "notes": "regression suite green"], by: cio) == "verified_test")
    }

    /// Submits an incident through intake and waits until change management knows its priority (from classification).
    func classifiedIncident(_ overrides: [String: JSONValue], priority: String) async throws -> String {
        let number = try await submit(overrides)
        #expect(try await eventually {
            try await count("SELECT count(*) FROM change.incidents WHERE tracking_number = $1 AND priority = $2 AND kind = 'incident'",
                            [.string(number), .string(priority)]) == 1
        }, "change management never learned that \(number) is \(priority)")
        return number
    }
}
