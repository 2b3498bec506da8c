import CSSAMQP
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import Testing

/// Bad input of every kind: a specific error, nothing half-stored, the queue keeps moving.
@Suite(.serialized, .timeLimit(.minutes(10))) struct BadInputTests {
    @Test func unreadableBodiesAreAnsweredDeadLetteredAndNeverBlockTheQueue() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let notJSON = UUID().uuidString
            let malformed = try await h.client.sendRaw(CommandName.ticketSubmit, body: Array("{\"customerId\": ".utf8), messageID: notJSON)
            #expect(malformed.errors.map(\.code) == [ErrorCode.malformedJSON])
            let badUTF8 = try await h.client.sendRaw(CommandName.ticketSubmit, body: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D])
            #expect(badUTF8.errors.map(\.code) == [ErrorCode.invalidUTF8])
            let huge = try await h.client.sendRaw(CommandName.ticketSubmit, body: Array(repeating: UInt8(ascii: " "), count: 300 * 1024))
            #expect(huge.errors.map(\.code) == [ErrorCode.tooLarge])
            let wrongType = try await h.client.sendRaw(CommandName.ticketSubmit, body: IntakeHarness.incident().encoded(), contentType: "text/plain")
            #expect(wrongType.errors.map(\.code) == [ErrorCode.unsupportedContentType])
            // The next good command goes through at once: poison does not block.
            let good = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident())
            #expect(good.isOK)
            #expect(await eventually { h.client.deadLetters.count == 4 })
            let dead = try #require(h.client.deadLetters.first { $0.properties.messageID == notJSON })
            #expect(dead.body == Array("{\"customerId\": ".utf8))
            #expect(dead.properties.headers["x-css-error"]?.hasPrefix("malformed_json:") == true)
            #expect(dead.properties.headers["x-css-command"] == CommandName.ticketSubmit)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 1)
            #expect(try await h.count("SELECT count(*) FROM intake.rejections WHERE command = 'ticket.submit'") == 4)
            // Redelivering the same unreadable message is answered the same way, not dead-lettered twice.
            let again = try await h.client.sendRaw(CommandName.ticketSubmit, body: Array("{\"customerId\": ".utf8), messageID: notJSON)
            #expect(again == malformed)
            try await Task.sleep(for: .milliseconds(300))
            #expect(h.client.deadLetters.count == 4)
        }
    }

    @Test func unreadableBodiesWithoutReplyToStillRaiseAnEvent() async throws {
        try await IntakeHarness.with { h in
            let id = UUID().uuidString
            try await h.client.publish(CommandName.ticketSubmit, body: Array("not json at all".utf8), messageID: id)
            #expect(await eventually { h.client.events(ofType: EventType.commandRejected).contains { $0.data["messageId"]?.stringValue == id } })
            #expect(await eventually { h.client.deadLetters.contains { $0.properties.messageID == id } })
        }
    }

    @Test func everyFieldProblemIsReportedAtOnceAndNothingIsStored() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let reply = try await h.client.send(CommandName.ticketSubmit, [
                "customerId": "acme", "contactEmail": "not-an-email", "kind": "complaint", "environment": 3,
                "summary": "", "urgency": "yesterday", "channel": "fax", "requestedPriority": "P0",
            ])
            let fields = Dictionary(reply.errors.map { ($0.field ?? "", $0.code) }, uniquingKeysWith: { a, _ in a })
            #expect(fields == [
                "contactEmail": ErrorCode.invalidField, "kind": ErrorCode.unknownValue, "environment": ErrorCode.wrongType,
                "summary": ErrorCode.emptyField, "urgency": ErrorCode.unknownValue, "channel": ErrorCode.unknownValue,
                "requestedPriority": ErrorCode.unknownValue,
            ])
            let missing = try await h.client.send(CommandName.ticketSubmit, ["customerId": "acme"])
            #expect(Set(missing.errors.compactMap(\.field)) == ["contactEmail", "kind", "environment", "summary"])
            #expect(Set(missing.errors.map(\.code)) == [ErrorCode.missingField])
            let notObject = try await h.client.send(CommandName.ticketSubmit, [1, 2, 3])
            #expect(notObject.errors.map(\.code) == [ErrorCode.notAnObject])
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 0)
        }
    }

    @Test func aCommandWithoutMessageIDIsRefused() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let reply = try await h.client.sendRaw(CommandName.ticketSubmit, body: IntakeHarness.incident().encoded(), messageID: nil)
            #expect(reply.errors.map(\.code) == [ErrorCode.missingMessageID])
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 0)
        }
    }
}
