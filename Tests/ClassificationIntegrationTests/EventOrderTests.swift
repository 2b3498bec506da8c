import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

@Suite(.serialized, .timeLimit(.minutes(10))) struct EventOrderTests {
    func classification(count: Int = 1, _ body: (SystemHarness) async throws -> Void) async throws {
        try await SystemHarness.with([.classification(count: count, env: classificationEnv)], body)
    }

    // Events out of order: a ticket before its customer waits, then is classified once; a
    // transition before its ticket is applied after it (R-CLS-4); redelivery changes nothing.
    @Test func ticketsAndTransitionsThatArriveEarlyWait() async throws {
        try await classification { h in
            let facts = IntakeFacts()
            let t0 = Date()
            let received = facts.received("INC-000001", at: t0)
            try await h.client.publish(event: facts.transitioned("INC-000001", "restore", status: "restored", at: t0.addingTimeInterval(60)))
            try await h.client.publish(event: received)
            try await h.client.publish(event: received) // redelivered
            try await h.client.publish(event: facts.received("SR-000002", kind: "service_request", impact: nil, catalogItem: "password-reset", at: t0))
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.client.events(ofType: EventType.ticketClassified).isEmpty, "nothing can be classified before the customer is known")
            #expect(try await h.count("SELECT count(*) FROM classification.tickets WHERE classified_at IS NULL") == 2)

            try await h.client.publish(event: facts.onboarded(at: t0))
            #expect(await eventually { h.client.events(ofType: EventType.ticketClassified).count == 2 })
            #expect(await eventually { h.client.events(ofType: EventType.ticketReclassified).count == 1 })
            let downgrade = try #require(h.client.events(ofType: EventType.ticketReclassified).first)
            #expect(downgrade.data["from"] == "P1" && downgrade.data["to"] == "P3")
            let request = try #require(h.client.events(ofType: EventType.ticketClassified).first { $0.subject == "SR-000002" })
            #expect(request.data["requestClass"] == "standard")
            // A ticket that waited for its customer keeps the facts classification repeats from ticket.received.
            #expect(request.data["phoneRequired"] == false && request.data["contactEmail"] == "ana@acme.example")
            #expect(try await h.count("SELECT count(*) FROM classification.quota_consumption") == 1)
            #expect(try await h.count("SELECT count(*) FROM classification.early_transitions") == 0)
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.client.events(ofType: EventType.ticketClassified).count == 2)
        }
    }

    // An older customer.onboarded (another replica, a redelivery) never replaces a newer one.
    @Test func anOlderOnboardingNeverOverwritesANewerOne() async throws {
        try await classification { h in
            let facts = IntakeFacts()
            let now = Date()
            try await h.client.publish(event: facts.onboarded(at: now, catalogue: ["add-user"]))
            try await h.client.publish(event: facts.onboarded(at: now.addingTimeInterval(-3600), catalogue: ["password-reset"]))
            #expect(try await eventually { try await h.count("SELECT count(*) FROM classification.inbox") == 2 })
            try await h.client.publish(event: facts.received("SR-000001", kind: "service_request", impact: nil, catalogItem: "add-user"))
            #expect(await eventually { h.client.events(ofType: EventType.ticketClassified).count == 1 })
            #expect(h.client.events(ofType: EventType.ticketClassified).first?.data["requestClass"] == "standard")
        }
    }

    // Hostile events are set aside with the reason; the queue moves on.
    @Test func unreadableEventsAreDeadLetteredAndTheQueueMovesOn() async throws {
        try await classification { h in
            let facts = IntakeFacts()
            try await h.client.publish(event: facts.onboarded(at: Date()))
            var bad = facts.received("INC-000009")
            bad.data = ["trackingNumber": "INC-000009", "customerId": "acme", "kind": "meltdown", "receivedAt": "yesterday"]
            try await h.client.publish(event: bad)
            var badZone = facts.onboarded(at: Date(), extra: ["customerId": "globex", "timeZone": "Mars/Olympus_Mons"])
            badZone.subject = "globex"
            try await h.client.publish(event: badZone)
            try await h.client.publish(event: facts.received("INC-000010"))
            #expect(await eventually { h.client.events(ofType: EventType.ticketClassified).count == 1 })
            #expect(await eventually { h.client.deadLetters.count == 2 })
            let reasons = h.client.deadLetters.compactMap { $0.properties.headers["x-css-error"] }
            #expect(reasons.contains { $0.contains("data.kind") && $0.contains("data.environment") && $0.contains("data.receivedAt") })
            #expect(reasons.contains { $0.contains("timeZone") })
        }
    }
}
