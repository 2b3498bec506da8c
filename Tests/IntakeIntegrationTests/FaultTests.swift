import CSSAMQP
import CSSModel
import CSSPostgres
import CSSRuntime
import CSSTestSupport
import Foundation
import Testing

/// Issue 6, items 4, 5, 7, 8, 9, 10: transient database faults, a deleted queue,
/// unroutable messages, order, pruning and rolling deploys, on the real servers.
@Suite(.serialized, .timeLimit(.minutes(10))) struct FaultTests {
    /// Holds `sql`'s locks for `seconds` on a connection of the test's own, in the background.
    static func holdLock(_ h: IntakeHarness, _ sql: String, seconds: Double) -> Task<Void, any Error> {
        Task {
            let holder = PostgresClient(configuration: h.database, size: 1, logger: h.logger)
            defer { Task { await holder.close() } }
            try await holder.withTransaction { session in
                try session.execute(sql)
                try session.execute("SELECT pg_sleep($1)", [.double(seconds)])
            }
        }
    }

    /// Item 4: a lock timeout (55P03) is transient: retried, nothing stored, and the same
    /// message id succeeds once the fault clears.
    @Test func lockTimeoutsAreRetriedAndDoNotBurnTheMessageID() async throws {
        try await IntakeHarness.with(databaseSettings: ["lock_timeout": "200ms"]) { h in
            #expect(try await h.onboard().isOK)
            let holder = Self.holdLock(h, "LOCK TABLE intake.tickets IN ACCESS EXCLUSIVE MODE", seconds: 4)
            try await Task.sleep(for: .milliseconds(300))
            let messageID = UUID().uuidString
            let reply = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(), messageID: messageID, timeout: .seconds(60))
            #expect(reply.isOK)
            try await holder.value
            #expect(h.processes[0].log.contains("55P03"))
            let again = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(), messageID: messageID)
            #expect(again == reply)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 1)
        }
    }

    /// Item 4: an operator cancelling a statement stuck on a lock (57014) does not make
    /// the command fail; it is retried and succeeds.
    @Test func aCancelledStatementIsRetried() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            let number = try #require(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).result?["trackingNumber"]?.stringValue)
            let holder = Self.holdLock(h, "SELECT 1 FROM intake.tickets FOR UPDATE", seconds: 3)
            try await Task.sleep(for: .milliseconds(300))
            let corr = UUID().uuidString
            try await h.client.publish(CommandName.ticketTransition, body: (["trackingNumber": .string(number), "action": "respond", "by": "eng@vendor.example"] as JSONValue).encoded(),
                                       messageID: UUID().uuidString, correlationID: corr, replyTo: h.client.replyQueue)
            let cancelled = try await eventually(timeout: .seconds(10), interval: .milliseconds(100)) {
                try await h.count("""
                    SELECT count(*) FROM (SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name = 'css-intake' AND wait_event_type = 'Lock') c
                    """) > 0
            }
            #expect(cancelled)
            let reply = try await h.client.reply(correlationID: corr, timeout: .seconds(30))
            #expect(reply.result?["status"] == "responded")
            try await holder.value
            #expect(h.processes[0].log.contains("57014"))
        }
    }

    /// Item 1: SIGTERM finishes in bounded time while a batch keeps failing; the command
    /// is not acknowledged, and after a restart it is answered, not lost.
    @Test func sigtermIsBoundedWhileABatchFailsAndNothingIsLost() async throws {
        try await IntakeHarness.with(databaseSettings: ["lock_timeout": "100ms"]) { h in
            #expect(try await h.onboard().isOK)
            let holder = Self.holdLock(h, "LOCK TABLE intake.tickets IN ACCESS EXCLUSIVE MODE", seconds: 8)
            try await Task.sleep(for: .milliseconds(300))
            let corr = UUID().uuidString
            try await h.client.publish(CommandName.ticketSubmit, body: IntakeHarness.incident().encoded(), messageID: "held-1",
                                       correlationID: corr, replyTo: h.client.replyQueue)
            #expect(await eventually(timeout: .seconds(10)) { h.processes[0].log.contains("not committed (transient)") })
            let stopAsked = ContinuousClock.now
            h.processes[0].signal(SIGTERM)
            let status = await h.processes[0].waitForExit(timeout: .seconds(15))
            #expect(status == 0)
            #expect(ContinuousClock.now - stopAsked < .seconds(15))
            try await holder.value
            let restarted = try ServiceProcess(name: "intake", amqp: h.amqp, database: h.database)
            try restarted.start()
            let reply = try await h.client.reply(correlationID: corr, timeout: .seconds(60))
            #expect(reply.isOK)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 1)
            await restarted.stop()
        }
    }

    /// Item 5: a deleted command queue is noticed (basic.cancel), redeclared, and
    /// commands are answered again within seconds.
    @Test func aDeletedQueueIsRedeclaredAndConsumedAgain() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            try TestServers.runScript(["delete-queue", h.amqp.vhost, "css.intake.commands"])
            let started = ContinuousClock.now
            let answered = await eventually(timeout: .seconds(20), interval: .milliseconds(200)) {
                (try? await h.client.send(CommandName.ticketGet, ["trackingNumber": "INC-000000"], timeout: .milliseconds(500))) != nil
            }
            #expect(answered)
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(h.processes[0].log.contains("consumer cancelled by the broker"))
            #expect(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).isOK)
        }
    }

    /// Item 7: the whole contract topology is declared at start, so `ticket.received`
    /// waits in the classification service's queue before that service ever ran; an
    /// event nobody consumes is logged, and a reply to a vanished queue is dropped, not retried.
    @Test func eventsWaitForConsumersNotStartedAndUnroutableMessagesAreNotRetried() async throws {
        try await IntakeHarness.with(tapEvents: false) { h in
            #expect(try await h.onboard().isOK)
            #expect(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).isOK)
            let queued = try await eventually {
                let listing = try TestServers.runScript(["list-queues", h.amqp.vhost])
                return listing.split(separator: "\n").contains { $0.hasPrefix("css.classification.events") && !$0.hasSuffix("\t0") }
            }
            #expect(queued)
            // A reply_to queue that does not exist: the reply comes back from the broker and is dropped.
            try await h.client.publish(CommandName.ticketSubmit, body: IntakeHarness.incident().encoded(), messageID: UUID().uuidString,
                                       correlationID: UUID().uuidString, replyTo: "amq.gen-no-such-queue")
            #expect(await eventually { h.processes[0].log.contains("reply_to queue does not exist; reply dropped") })
            // ticket.transitioned has no consumer yet: logged and counted, not retried.
            let number = try #require(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).result?["trackingNumber"]?.stringValue)
            #expect(try await h.client.send(CommandName.ticketTransition, ["trackingNumber": .string(number), "action": "respond", "by": "eng"]).isOK)
            #expect(await eventually { h.processes[0].log.contains("event had no queue to go to; dropped") })
            #expect(try await eventually { try await h.count("SELECT count(*) FROM intake.outbox") == 0 })
            #expect(try await h.client.send(CommandName.ticketGet, ["trackingNumber": .string(number)]).isOK)
        }
    }

    /// Item 8: commands published back to back are applied in delivery order, per ticket
    /// and per customer, with the default two workers.
    @Test func backToBackCommandsAreAppliedInDeliveryOrder() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            var numbers: [String] = []
            for i in 0..<30 {
                let r = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(["summary": .string("order \(i)")]))
                numbers.append(try #require(r.result?["trackingNumber"]?.stringValue))
            }
            var sent: [String] = []
            for action in ["respond", "await_customer", "customer_replied", "restore", "close"] {
                for number in numbers {
                    let corr = UUID().uuidString
                    sent.append(corr)
                    try await h.client.publish(CommandName.ticketTransition, body: (["trackingNumber": .string(number), "action": .string(action), "by": "eng"] as JSONValue).encoded(),
                                               messageID: UUID().uuidString, correlationID: corr, replyTo: h.client.replyQueue)
                }
            }
            // A customer onboarded and used in the same breath.
            let onboardCorr = UUID().uuidString, submitCorr = UUID().uuidString
            let fresh: JSONValue = ["customerId": "globex", "name": "Globex", "timeZone": "Europe/London", "supportRegion": "GB-ENG", "team": "cloud-ops",
                                    "contractYearStart": "2026-01-01", "contacts": [["email": "hank@globex.example", "name": "Hank", "primary": true]]]
            try await h.client.publish(CommandName.customerOnboard, body: fresh.encoded(), messageID: UUID().uuidString, correlationID: onboardCorr, replyTo: h.client.replyQueue)
            try await h.client.publish(CommandName.ticketSubmit, body: IntakeHarness.incident(["customerId": "globex", "contactEmail": "hank@globex.example"]).encoded(),
                                       messageID: UUID().uuidString, correlationID: submitCorr, replyTo: h.client.replyQueue)
            var refused: [String] = []
            for corr in sent {
                let r = try await h.client.reply(correlationID: corr)
                if !r.isOK { refused.append(r.errors.map(\.description).joined()) }
            }
            #expect(refused.isEmpty, "\(refused.count) of \(sent.count) refused: \(refused.prefix(3))")
            #expect(try await h.client.reply(correlationID: onboardCorr).isOK)
            #expect(try await h.client.reply(correlationID: submitCorr).isOK)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets WHERE status = 'closed'") == 30)
        }
    }

    /// Item 9: inbox entries past the idempotency window and old rejections are pruned by
    /// the service itself; recent ones stay; a pruned message id counts as new.
    @Test func expiredInboxAndRejectionRowsArePruned() async throws {
        try await IntakeHarness.with(env: ["CSS_PRUNE_INTERVAL": "PT0.2S", "CSS_INBOX_RETENTION": "P7D", "CSS_REJECTION_RETENTION": "P30D"]) { h in
            #expect(try await h.onboard().isOK)
            let recent = UUID().uuidString
            #expect(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(), messageID: recent).isOK)
            try await h.db.withSession { s in
                try s.execute("""
                    INSERT INTO intake.inbox (message_id, command, body_hash, reply, received_at)
                    SELECT 'old-' || g, 'ticket.submit', 0, '{"ok":true,"result":{}}', now() - interval '8 days' FROM generate_series(1, 1200) g
                    """)
                try s.execute("""
                    INSERT INTO intake.rejections (message_id, command, errors, body, body_truncated, received_at)
                    SELECT 'old-r-' || g, 'ticket.submit', '[]', '\\x00', false, now() - interval '31 days' FROM generate_series(1, 700) g
                    """)
                try s.execute("""
                    INSERT INTO intake.rejections (message_id, command, errors, body, body_truncated, received_at)
                    VALUES ('recent-r', 'ticket.submit', '[]', '\\x00', false, now() - interval '29 days')
                    """)
            }
            #expect(try await eventually { try await h.count("SELECT count(*) FROM intake.inbox WHERE message_id LIKE 'old-%'") == 0 })
            #expect(try await eventually { try await h.count("SELECT count(*) FROM intake.rejections WHERE message_id LIKE 'old-r-%'") == 0 })
            #expect(try await h.count("SELECT count(*) FROM intake.inbox WHERE message_id = $1", [.string(recent)]) == 1)
            #expect(try await h.count("SELECT count(*) FROM intake.rejections WHERE message_id = 'recent-r'") == 1)
            // Past the window an id is forgotten: old-1 is processed as a new command.
            #expect(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(), messageID: "old-1").result?["trackingNumber"] != nil)
        }
    }

    /// Item 10: an older binary starts against a schema migrated by a newer release when
    /// the newer migrations are additive, and refuses, naming it, when one is breaking.
    @Test func anOlderBinaryStartsUnlessANewerMigrationIsBreaking() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            await h.processes[0].stop()
            try await h.db.withSession { s in
                try s.execute("ALTER TABLE intake.tickets ADD COLUMN severity_note text")
                try s.execute("INSERT INTO intake.schema_migrations (version, name, breaking) VALUES (99, 'add tickets.severity_note', false)")
            }
            let older = try ServiceProcess(name: "intake", amqp: h.amqp, database: h.database)
            try older.start()
            let ready = await eventually(timeout: .seconds(30), interval: .milliseconds(200)) {
                (try? await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(), timeout: .seconds(1)))?.isOK == true
            }
            #expect(ready)
            #expect(older.log.contains("99"))
            await older.stop()
            try await h.db.withSession { s in
                try s.execute("INSERT INTO intake.schema_migrations (version, name, breaking) VALUES (100, 'drop tickets.channel', true)")
            }
            let refused = try ServiceProcess(name: "intake", amqp: h.amqp, database: h.database)
            try refused.start()
            let status = await refused.waitForExit(timeout: .seconds(30))
            #expect(status != nil && status != 0)
            #expect(refused.log.contains("100"))
            #expect(refused.log.contains("drop tickets.channel"))
        }
    }
}
