import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// The escalation service alone, fed the other services' facts directly: early, late, twice, unreadable.
func escalationAlone(count: Int = 1, _ body: (SystemHarness) async throws -> Void) async throws {
    try await SystemHarness.with([.escalation(count: count)], body)
}

extension SystemHarness {
    func publish(_ events: CloudEvent...) async throws {
        for e in events { try await client.publish(event: e) }
    }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct EscalationResilienceTests {
    // Events that cannot be applied are dead-lettered with the reason and the queue goes on; hostile
    // commands are refused with a specific error and store nothing.
    @Test func unreadableFactsAreDeadLetteredAndHostileCommandsRefused() async throws {
        try await escalationAlone { h in
            try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"]], overrides: h.janeCovers())
            let intake = IntakeFacts(), sla = SLAFacts()
            try await h.publish(intake.onboarded(at: Date()))
            let due = Date().addingTimeInterval(600)
            var bad = sla.threshold("INC-000001", target: "lunch", dueAt: due)
            try await h.publish(bad)
            bad = sla.threshold("INC-000002", threshold: 0.5, dueAt: due)
            var data = bad.data.objectValue!
            data["threshold"] = nil
            bad.data = .object(data)
            try await h.publish(bad)
            try await h.publish(ClassificationFacts().classified("INC-000003", priority: "P9", receivedAt: Date()))
            try await h.publish(intake.transitioned("INC-000004", "teleport", status: "x", at: Date()))
            try await h.publish(intake.onboarded(at: Date().addingTimeInterval(1), extra: ["timeZone": "Mars/Olympus"]))
            try await h.publish(sla.threshold("INC-000005", dueAt: due))
            try await h.awaitPages("ESC-INC-000005-restoration-breached")
            #expect(await eventually { h.client.deadLetters.count == 5 })
            let reasons = h.client.deadLetters.compactMap { $0.properties.headers["x-css-error"] }
            for field in ["data.target", "data.threshold", "data.priority", "data.action", "Mars/Olympus"] {
                #expect(reasons.contains { $0.contains(field) }, "no dead letter names \(field): \(reasons)")
            }

            let nul = try await h.client.send(CommandName.escalationAck, ["escalationId": "ESC-\u{0}", "by": "x@y.example"])
            #expect(nul.errors.first?.code == ErrorCode.invalidField)
            let long = try await h.client.send(CommandName.escalationAck, ["escalationId": .string(String(repeating: "E", count: 201)), "by": "x@y.example"])
            #expect(long.errors.map(\.code) == [ErrorCode.tooLong])
            let missing = try await h.client.send(CommandName.escalationAck, ["by": "x@y.example"])
            #expect(missing.errors.map(\.field) == ["escalationId"])
            let badList = try await h.client.send(CommandName.escalationList, ["team": "cloud-ops", "state": "someday"])
            #expect(badList.errors.map(\.code) == [ErrorCode.unknownValue])
            let unknownTeam = try await h.client.send(CommandName.escalationList, ["team": "nobody"])
            #expect(unknownTeam.errors.map(\.code) == [ErrorCode.unknownTeam])
            let badTime = try await h.client.send(CommandName.oncallGet, ["team": "cloud-ops", "at": "yesterday"])
            #expect(badTime.errors.map(\.field) == ["at"])
            // The one good fact paged once; the refused ones opened nothing.
            let open = try await h.client.send(CommandName.escalationList, ["team": "cloud-ops"])
            #expect(open.result?["escalations"]?.arrayValue?.compactMap { $0["escalationId"]?.stringValue } == ["ESC-INC-000005-restoration-breached"])
        }
    }

    // R-CUS-5 with nothing else known of the ticket: its await_customer (which names the ticket's contact,
    // as intake publishes it) arrives before its ticket.classified, and the contact is then marked
    // unavailable: the customer escalation still opens, once, without ticket.received.
    @Test func awaitCustomerBeforeClassificationStillEscalatesAnUnavailableContact() async throws {
        try await escalationAlone { h in
            try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"]], overrides: h.janeCovers())
            let intake = IntakeFacts()
            try await h.publish(intake.onboarded(at: Date()))
            try await h.publish(intake.transitioned("INC-000050", "await_customer", status: "awaiting_customer", at: Date()))
            #expect(try await eventually {
                try await h.count("SELECT count(*) FROM escalation.tickets WHERE tracking_number = 'INC-000050' AND status = 'awaiting_customer'") == 1
            })
            try await h.publish(CloudEvent(id: UUID().uuidString, type: EventType.contactAvailabilityChanged, source: "/css/intake", time: Date(),
                                           subject: "acme", data: ["customerId": "acme", "email": "ana@acme.example", "available": false]))
            // Opened (its page waits for business hours unless it is known to be P1: priority unknown counts as P4).
            #expect(try await eventually {
                try await h.count("""
                    SELECT count(*) FROM escalation.escalations WHERE escalation_id = 'ESC-INC-000050-contact-1'
                    AND state = 'open' AND body->>'reason' = 'contact_unavailable'
                    """) == 1
            }, "no customer escalation opened for a ticket known only from its await_customer")
            #expect(try await h.count("SELECT count(*) FROM escalation.escalations WHERE tracking_number = 'INC-000050'") == 1)
            h.expectNoDuplicatePages()
        }
    }

    // Events out of order: a breach before anything else about its ticket pages with the event's own
    // customer and priority; a customer not known yet waits for its onboarding (nothing lost); a restore
    // seen before a late warning keeps the warning from paging; the same breach twice pages once.
    @Test func eventsOutOfOrderAndTwiceGiveOneEffect() async throws {
        try await escalationAlone(count: 2) { h in
            try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"]], overrides: h.janeCovers())
            let due = Date().addingTimeInterval(600)
            let late = SLAFacts(customerId: "late-co")
            try await h.publish(late.threshold("INC-000010", dueAt: due))
            try await Task.sleep(for: .seconds(1))
            #expect(h.pages("ESC-INC-000010-restoration-breached").isEmpty)
            try await h.publish(IntakeFacts(customerId: "late-co").onboarded(at: Date()))
            let page = try #require(try await h.awaitPages("ESC-INC-000010-restoration-breached").first)
            #expect(page.body["customerId"] == "late-co" && page.routingKey == "oncall.cloud-ops.p1")

            let intake = IntakeFacts(), sla = SLAFacts()
            try await h.publish(intake.onboarded(at: Date()))
            try await h.publish(intake.transitioned("INC-000011", "restore", status: "restored", at: Date()))
            // Seen first (two processes take events side by side: wait until the restore is stored).
            #expect(try await eventually {
                try await h.count("SELECT count(*) FROM escalation.tickets WHERE tracking_number = 'INC-000011' AND status = 'restored'") == 1
            })
            try await h.publish(sla.threshold("INC-000011", threshold: 0.9, dueAt: due))
            let breach = sla.threshold("INC-000012", priority: "P1", dueAt: due)
            try await h.publish(breach, breach)
            try await h.awaitPages("ESC-INC-000012-restoration-breached")
            try await Task.sleep(for: .seconds(1))
            #expect(h.pages("ESC-INC-000011-restoration-0.9").isEmpty, "a restored ticket was paged")
            #expect(h.pages("ESC-INC-000012-restoration-breached").count == 1)

            // Restores and thresholds of the same new tickets taken side by side by the two processes, in either
            // order: no restore is lost under a threshold, and no escalation of a restored ticket stays open.
            for k in 100..<120 {
                try await h.publish(intake.transitioned("INC-000\(k)", "restore", status: "restored", at: Date()),
                                    sla.threshold("INC-000\(k)", threshold: 0.5, dueAt: due))
            }
            #expect(try await eventually {
                try await h.count("SELECT count(*) FROM escalation.tickets WHERE tracking_number LIKE 'INC-0001%' AND status = 'restored'") == 20
            })
            #expect(try await eventually {
                try await h.count("SELECT count(*) FROM escalation.escalations WHERE tracking_number LIKE 'INC-0001%' AND state IN ('open', 'unrouted')") == 0
            })
            h.expectNoDuplicatePages()
        }
    }
}
