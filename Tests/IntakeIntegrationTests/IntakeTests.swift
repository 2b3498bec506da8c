import CSSAMQP
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import Testing

/// Intake end to end: real RabbitMQ, real PostgreSQL, the real `intake` executable.
@Suite(.serialized, .timeLimit(.minutes(10))) struct IntakeTests {
    // R-TKT-1, R-CUS-1
    @Test func onboardsAndSubmitsAndAnswersWithATrackingNumber() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().result == ["customerId": "acme"])
            let reply = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(["channel": "phone"]))
            let result = try #require(reply.result)
            let number = try #require(result["trackingNumber"]?.stringValue)
            #expect(TrackingNumber.isWellFormed(number) && number.hasPrefix("INC-"))
            let receivedAt = try #require(result["receivedAt"]?.stringValue.flatMap(RFC3339.parse))
            #expect(abs(receivedAt.timeIntervalSinceNow) < 60)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets WHERE tracking_number = $1", [.string(number)]) == 1)
            #expect(await eventually { h.client.events(ofType: EventType.ticketReceived).count == 1 })
            let event = try #require(h.client.events(ofType: EventType.ticketReceived).first)
            #expect(event.subject == number)
            #expect(event.source == "/css/intake")
            #expect(event.data["trackingNumber"]?.stringValue == number)
            #expect(event.data["customerId"] == "acme")
            #expect(event.data["channel"] == "phone")
            #expect(event.data["phoneRequired"] == false)
            #expect(event.data["receivedAt"]?.stringValue == result["receivedAt"]?.stringValue)
            #expect(h.client.events(ofType: EventType.customerOnboarded).count == 1)
        }
    }

    // R-TKT-4
    @Test func sameMessageIDTwiceMakesOneTicketAndTheSameReply() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let id = UUID().uuidString
            let first = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(), messageID: id)
            let second = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(), messageID: id)
            #expect(first.isOK)
            #expect(first == second)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 1)
            try await Task.sleep(for: .milliseconds(300))
            #expect(h.client.events(ofType: EventType.ticketReceived).count == 1)
            // The same id for a different body is refused, not silently answered with the old reply.
            let reused = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(["summary": "other"]), messageID: id)
            #expect(reused.errors.map(\.code) == ["duplicate_message_id"])
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 1)
        }
    }

    // R-CUS-3
    @Test func refusesAnyoneWhoIsNotARegisteredContactAndAuditsIt() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let id = UUID().uuidString
            let reply = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(["contactEmail": "mallory@evil.example"]), messageID: id)
            #expect(reply.errors.map(\.code) == [ErrorCode.notAContact])
            #expect(reply.errors.first?.field == "contactEmail")
            let unknown = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(["customerId": "nobody"]))
            #expect(unknown.errors.map(\.code) == [ErrorCode.unknownCustomer])
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 0)
            #expect(try await h.count("SELECT count(*) FROM intake.rejections WHERE message_id = $1", [.string(id)]) == 1)
            // Two refused submits (the readiness probe's ticket.get is refused too, and not counted).
            #expect(await eventually { h.client.events(ofType: EventType.commandRejected).filter { $0.data["command"] == "ticket.submit" }.count == 2 })
            let rejected = try #require(h.client.events(ofType: EventType.commandRejected).first { $0.data["messageId"]?.stringValue == id })
            #expect(rejected.data["command"] == "ticket.submit")
            #expect(rejected.data["errors"]?.arrayValue?.first?["code"] == "not_a_contact")
            // A contact dropped by re-onboarding can no longer log tickets.
            _ = try await h.onboard(contacts: [["email": "bo@acme.example", "name": "Bo", "primary": true]])
            let dropped = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident())
            #expect(dropped.errors.map(\.code) == [ErrorCode.notAContact])
        }
    }

    // R-CUS-2
    @Test func onboardingThatBreaksContactRulesIsRejectedWhole() async throws {
        try await IntakeHarness.with { h in
            let contacts: [JSONValue] = (0..<4).map { ["email": .string("c\($0)@acme.example"), "name": "C", "primary": .bool($0 == 0)] }
            let reply = try await h.onboard(contacts: contacts)
            #expect(reply.errors.map(\.code) == [ErrorCode.tooManyContacts])
            #expect(try await h.count("SELECT count(*) FROM intake.customers") == 0)
            #expect(try await h.count("SELECT count(*) FROM intake.contacts") == 0)
            let raised = try await h.onboard(contacts: contacts, extra: ["maxContacts": 5])
            #expect(raised.isOK)
            #expect(try await h.count("SELECT count(*) FROM intake.contacts WHERE active") == 4)
        }
    }

    // R-CUS-5
    @Test func recordsContactAvailability() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let off = try await h.client.send(CommandName.contactAvailability, ["customerId": "acme", "email": "Ana@acme.example", "available": false])
            #expect(off.result == [:])
            #expect(try await h.count("SELECT count(*) FROM intake.contacts WHERE email = 'ana@acme.example' AND NOT available") == 1)
            // Re-onboarding keeps the contact's availability.
            _ = try await h.onboard()
            #expect(try await h.count("SELECT count(*) FROM intake.contacts WHERE email = 'ana@acme.example' AND NOT available") == 1)
            let stranger = try await h.client.send(CommandName.contactAvailability, ["customerId": "acme", "email": "x@acme.example", "available": false])
            #expect(stranger.errors.map(\.code) == [ErrorCode.notAContact])
            #expect(await eventually { h.client.events(ofType: EventType.contactAvailabilityChanged).count == 1 })
        }
    }

    // R-TKT-3
    @Test func walksTheLifecycleWithAnAppendOnlyAuditTrail() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let number = try #require(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).result?["trackingNumber"]?.stringValue)
            func transition(_ action: String, note: String? = nil) async throws -> Reply {
                var body: JSONObject = ["trackingNumber": .string(number), "action": .string(action), "by": "eng@css.example"]
                if let note { body["note"] = .string(note) }
                return try await h.client.send(CommandName.ticketTransition, .object(body))
            }
            #expect(try await transition("respond").result?["status"] == "responded")
            #expect(try await transition("await_customer", note: "need logs").result?["status"] == "awaiting_customer")
            let illegal = try await transition("close")
            #expect(illegal.errors.map(\.code) == [ErrorCode.illegalTransition])
            #expect(try await transition("customer_replied").result?["status"] == "in_progress")
            #expect(try await transition("restore").result?["status"] == "restored")
            #expect(try await transition("reopen").result?["status"] == "in_progress")
            #expect(try await transition("restore").result?["status"] == "restored")
            let closed = try #require(try await transition("close").result)
            #expect(closed["status"] == "closed")
            let got = try #require(try await h.client.send(CommandName.ticketGet, ["trackingNumber": .string(number)]).result)
            let audit = try #require(got["audit"]?.arrayValue)
            #expect(audit.map { $0["event"]?.stringValue ?? "" } == ["received"] + Array(repeating: "transitioned", count: 7))
            #expect(audit.compactMap { $0["action"]?.stringValue } == ["respond", "await_customer", "customer_replied", "restore", "reopen", "restore", "close"])
            #expect(audit[2]["note"] == "need logs")
            #expect(audit[1]["by"] == "eng@css.example")
            #expect(await eventually { h.client.events(ofType: EventType.ticketTransitioned).count == 7 })
            // The audit table refuses changes.
            await #expect(throws: PostgresError.self) {
                try await h.db.withSession { s in try s.execute("DELETE FROM intake.ticket_audit") }
            }
            let unknown = try await h.client.send(CommandName.ticketTransition, ["trackingNumber": "INC-999999", "action": "respond", "by": "x"])
            #expect(unknown.errors.map(\.code) == [ErrorCode.unknownTicket])
        }
    }

    @Test func storesEmojiAndSQLMetacharactersVerbatim() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let summary = "🔥 Robert'); DROP TABLE intake.tickets;-- \\ % $1 \"quoted\""
            let description = String(repeating: "naïve café 日本語 ", count: 500)
            let reply = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(["summary": .string(summary), "description": .string(description)]))
            let number = try #require(reply.result?["trackingNumber"]?.stringValue)
            let got = try #require(try await h.client.send(CommandName.ticketGet, ["trackingNumber": .string(number)]).result)
            #expect(got["summary"]?.stringValue == summary)
            #expect(got["description"]?.stringValue == description.trimmingCharacters(in: .whitespaces))
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 1)
        }
    }
}
