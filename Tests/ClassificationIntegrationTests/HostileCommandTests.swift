import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// Classification's commands get the runtime's treatment of bad input: a clear, specific
/// refusal, nothing stored, and the next good command answered.
@Suite(.serialized, .timeLimit(.minutes(10))) struct HostileCommandTests {
    @Test func badCommandsAreRefusedWithEveryReasonAndNothingIsStored() async throws {
        try await pipeline { h in
            _ = try await h.onboard()
            let number = try await h.submit(["impact": "minor"])
            _ = try await h.classified(number)

            // A NUL inside a field, which PostgreSQL cannot store: refused by path, not stored.
            let nul = try await h.client.send(CommandName.reclassifyRequest, ["trackingNumber": .string(number), "priority": "P1",
                                                                              "reason": "blocked\u{0}", "by": "ana@acme.example"])
            #expect(nul.errors.map(\.code) == [ErrorCode.invalidField])
            #expect(nul.errors.first?.field == "reason")
            // Wrong types and unknown values, all reported at once.
            let types = try await h.client.send(CommandName.ticketDispatch, ["trackingNumber": 42, "dispatch": "moon", "by": true])
            #expect(Set(types.errors.map(\.field)) == ["trackingNumber", "dispatch", "by"])
            let notObject = try await h.client.send(CommandName.quotaGet, ["acme"])
            #expect(notObject.errors.map(\.code) == [ErrorCode.notAnObject])
            let malformed = try await h.client.sendRaw(CommandName.problemOpen, body: Array("{\"customerId\": ".utf8))
            #expect(malformed.errors.map(\.code) == [ErrorCode.malformedJSON])
            let huge = try await h.client.sendRaw(CommandName.problemOpen, body: [UInt8](repeating: 0x20, count: 300 * 1024))
            #expect(huge.errors.map(\.code) == [ErrorCode.tooLarge])

            #expect(try await h.count("SELECT count(*) FROM classification.reclassification_requests") == 0)
            #expect(try await h.count("SELECT count(*) FROM classification.problems") == 0)
            #expect(try await h.count("SELECT count(*) FROM classification.rejections") >= 5)
            // The queue moved on: the next good command is answered.
            let good = try await h.client.send(CommandName.reclassifyRequest, ["trackingNumber": .string(number), "priority": "P2",
                                                                               "reason": "Finance is blocked", "by": "ana@acme.example"])
            #expect(good.result?["requestId"]?.stringValue != nil)
        }
    }
}
