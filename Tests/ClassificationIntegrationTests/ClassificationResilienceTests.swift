import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// Two classification processes, a burst and a crash, bounded in count and time.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ClassificationResilienceTests {
    /// Publishes `count` submits without waiting: every third one a standard service request.
    static func publishBurst(_ h: SystemHarness, count: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                group.addTask {
                    let body = i % 3 == 2
                        ? SystemHarness.incident(["kind": "service_request", "catalogItem": "add-user", "impact": nil, "summary": .string("burst \(i)")])
                        : SystemHarness.incident(["impact": "minor", "summary": .string("burst \(i)")])
                    try await h.client.publish(CommandName.ticketSubmit, body: body.encoded(), messageID: "burst-\(i)-\(UUID().uuidString)")
                }
            }
            try await group.waitForAll()
        }
    }

    // R-CLS-1, R-QTA-1: kill -9 of a classification process mid-burst of 3,000 tickets over two
    // processes: every ticket classified exactly once, every request counted once.
    @Test func killMinusNineMidBurstClassifiesEachTicketOnceAndCountsEachRequestOnce() async throws {
        try await pipeline(classifiers: 2) { h in
            #expect(try await h.onboard(extra: ["quotas": ["standard": 5000, "nonStandard": 10]]).isOK)
            try await Self.publishBurst(h, count: 3000)
            #expect(try await eventually(timeout: .seconds(120), interval: .milliseconds(5)) {
                try await h.count("SELECT count(*) FROM classification.tickets WHERE classified_at IS NOT NULL") >= 300
            })
            let victim = h.processes(of: "classification")[0]
            victim.signal(SIGKILL)
            #expect(await victim.waitForExit(timeout: .seconds(10)) != nil)
            let atCrash = try await h.count("SELECT count(*) FROM classification.tickets WHERE classified_at IS NOT NULL")
            #expect(atCrash < 3000, "the crash must land mid-burst")
            let restarted = try ServiceProcess(name: "classification", amqp: h.amqp, database: h.database, extra: classificationEnv)
            try restarted.start()
            defer { Task { await restarted.stop() } }

            #expect(try await eventually(timeout: .seconds(180)) {
                try await h.count("SELECT count(*) FROM classification.tickets WHERE classified_at IS NOT NULL") == 3000
            })
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 3000)
            #expect(try await h.count("SELECT count(*) FROM classification.quota_consumption") == 1000)
            #expect(try await h.count("SELECT coalesce(sum(used), 0)::int FROM classification.quota_usage WHERE quota = 'standard'") == 1000)
            // One fact, one event: a ticket.classified may be redelivered, but never under two ids.
            #expect(await eventually(timeout: .seconds(60)) {
                Set(h.client.events(ofType: EventType.ticketClassified).compactMap(\.subject)).count == 3000
            })
            var idsByTicket: [String: Set<String>] = [:]
            for e in h.client.events(ofType: EventType.ticketClassified) { idsByTicket[e.subject ?? "", default: []].insert(e.id) }
            #expect(idsByTicket.count == 3000)
            #expect(idsByTicket.values.allSatisfy { $0.count == 1 })
            #expect(try await h.count("SELECT count(*) FROM classification.ticket_audit WHERE event = 'classified'") == 3000)
            #expect(try await eventually { try await h.count("SELECT count(*) FROM classification.outbox") == 0 })
            // Intake's read model followed: every ticket shows a priority.
            #expect(try await eventually(timeout: .seconds(60)) { try await h.count("SELECT count(*) FROM intake.tickets WHERE priority IS NULL") == 0 })
            await restarted.stop()
        }
    }
}
