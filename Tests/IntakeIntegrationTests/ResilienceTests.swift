import CSSAMQP
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import Testing

/// Bursts, crashes, broker restarts and shutdowns, bounded in count and time.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ResilienceTests {
    /// Publishes `count` submits at once (each with its own message id and correlation id).
    static func publishBurst(_ h: IntakeHarness, count: Int, customer: String = "acme") async throws -> [(messageID: String, correlationID: String)] {
        var sent: [(String, String)] = []
        try await withThrowingTaskGroup(of: (String, String).self) { group in
            for i in 0..<count {
                group.addTask {
                    let messageID = "burst-\(i)-\(UUID().uuidString)"
                    let correlationID = UUID().uuidString
                    try await h.client.publish(CommandName.ticketSubmit, body: IntakeHarness.incident(["customerId": .string(customer), "summary": .string("burst \(i)")]).encoded(),
                                               messageID: messageID, correlationID: correlationID, replyTo: h.client.replyQueue)
                    return (messageID, correlationID)
                }
            }
            for try await pair in group { sent.append(pair) }
        }
        return sent
    }

    /// Waits for every reply; returns tracking numbers by message id.
    static func awaitReplies(_ h: IntakeHarness, _ sent: [(messageID: String, correlationID: String)], timeout: Duration = .seconds(120)) async throws -> [String: String] {
        try await withThrowingTaskGroup(of: (String, String?).self) { group in
            for (messageID, correlationID) in sent {
                group.addTask {
                    let reply = try await h.client.reply(correlationID: correlationID, timeout: timeout)
                    return (messageID, reply.result?["trackingNumber"]?.stringValue)
                }
            }
            var numbers: [String: String] = [:]
            for try await (id, number) in group {
                if let number { numbers[id] = number }
            }
            return numbers
        }
    }

    /// Every committed ticket has exactly one ticket.received fact (one event id; redelivered copies share it).
    static func expectOneReceivedEventPerTicket(_ h: IntakeHarness, tickets: Int) async throws {
        let complete = await eventually(timeout: .seconds(60)) {
            Set(h.client.events(ofType: EventType.ticketReceived).compactMap { $0.subject }).count >= tickets
        }
        #expect(complete)
        var idsByTicket: [String: Set<String>] = [:]
        for e in h.client.events(ofType: EventType.ticketReceived) {
            idsByTicket[e.subject ?? "", default: []].insert(e.id)
        }
        #expect(idsByTicket.count == tickets)
        #expect(idsByTicket.values.allSatisfy { $0.count == 1 })
    }

    // R-TKT-1, R-TKT-4: 1,000 concurrent submits across two intake processes.
    @Test func aBurstOfOneThousandGetsOneThousandDistinctTrackingNumbers() async throws {
        try await IntakeHarness.with(processes: 2) { h in
            #expect(try await h.onboard().isOK)
            let sent = try await Self.publishBurst(h, count: 1000)
            let numbers = try await Self.awaitReplies(h, sent)
            #expect(numbers.count == 1000)
            #expect(Set(numbers.values).count == 1000)
            #expect(try await h.count("SELECT count(DISTINCT tracking_number) FROM intake.tickets") == 1000)
            try await Self.expectOneReceivedEventPerTicket(h, tickets: 1000)
            // Rows are deleted once the broker confirmed them, just after the reply went out.
            #expect(try await eventually { try await h.count("SELECT count(*) FROM intake.outbox") == 0 })
        }
    }

    @Test func killMinusNineMidBurstLosesNothingAndDuplicatesNothing() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            let sent = try await Self.publishBurst(h, count: 3000)
            // Let part of the burst commit, then crash.
            #expect(try await eventually(timeout: .seconds(60), interval: .milliseconds(5)) { try await h.count("SELECT count(*) FROM intake.tickets") >= 300 })
            h.processes[0].signal(SIGKILL)
            #expect(await h.processes[0].waitForExit(timeout: .seconds(10)) != nil)
            let committedAtCrash = try await h.count("SELECT count(*) FROM intake.tickets")
            #expect(committedAtCrash < 3000, "the crash must land mid-burst")
            let restarted = try ServiceProcess(name: "intake", amqp: h.amqp, database: h.database)
            try restarted.start()
            defer { Task { await restarted.stop() } }
            let numbers = try await Self.awaitReplies(h, sent)
            #expect(numbers.count == 3000)
            #expect(Set(numbers.values).count == 3000)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 3000)
            #expect(try await h.count("SELECT count(DISTINCT message_id) FROM intake.tickets") == 3000)
            try await Self.expectOneReceivedEventPerTicket(h, tickets: 3000)
            #expect(try await eventually { try await h.count("SELECT count(*) FROM intake.outbox") == 0 })
            await restarted.stop()
        }
    }

    @Test func gracefulShutdownFinishesInFlightWorkAndExitsZero() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            let sent = try await Self.publishBurst(h, count: 2000)
            #expect(try await eventually(timeout: .seconds(60), interval: .milliseconds(5)) { try await h.count("SELECT count(*) FROM intake.tickets") >= 200 })
            h.processes[0].signal(SIGTERM)
            let status = await h.processes[0].waitForExit(timeout: .seconds(30))
            #expect(status == 0)
            #expect(h.processes[0].log.contains("service stopped"))
            // Nothing it took is left half-done: every committed ticket was answered and its event published.
            #expect(try await h.count("SELECT count(*) FROM intake.outbox") == 0)
            let restarted = try ServiceProcess(name: "intake", amqp: h.amqp, database: h.database)
            try restarted.start()
            let numbers = try await Self.awaitReplies(h, sent)
            #expect(numbers.count == 2000)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 2000)
            try await Self.expectOneReceivedEventPerTicket(h, tickets: 2000)
            await restarted.stop()
        }
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["CSS_SKIP_BROKER_RESTART"] == nil, "restarting the shared broker"))
    func brokerRestartReconnectsByItselfAndLosesNothing() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            let before = try await Self.publishBurst(h, count: 300)
            _ = try await Self.awaitReplies(h, before)
            try TestServers.runScript(["restart-rabbitmq"])
            // Published while intake is still reconnecting: they wait in the durable queue.
            let after = try await Self.publishBurst(h, count: 300)
            let numbers = try await Self.awaitReplies(h, after, timeout: .seconds(90))
            #expect(numbers.count == 300)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 600)
            #expect(h.processes[0].isRunning)
            #expect(h.processes[0].log.contains("AMQP connection restored"))
            #expect(try await eventually { try await h.count("SELECT count(*) FROM intake.outbox") == 0 })
        }
    }
}
