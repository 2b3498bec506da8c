import CSSAMQP
import CSSModel
import CSSPostgres
import CSSSupport
import Logging
import Synchronization

/// Publishes what transactions wrote to the outbox, with confirms, then deletes it.
///
/// Two paths: right after a commit the processor hands the committed rows over
/// (``deliver(_:)``), so a reply does not wait for a poll; and a sweeper leases rows
/// that stayed behind (the process crashed between commit and publish, or the broker
/// was down) once the writer's own lease ran out, so several processes can sweep one
/// table without publishing the same row at the same time.
///
/// No row is published by two relays at once: a lease (the writer's from the insert,
/// a sweeper's from taking the rows, both from `clock_timestamp()`) lasts
/// ``leaseSeconds``, and every publish waits for its confirms at most
/// ``confirmTimeout``, which is shorter. A row is deleted only after the broker
/// confirmed it: at least once.
///
/// Every message is published mandatory. One the broker cannot route comes back
/// (`basic.return`) and is not retried: an event no queue is bound for is logged and
/// counted (``unroutableEvents``); a reply whose `reply_to` queue is gone is dropped
/// with a log.
public final class OutboxRelay: Sendable {
    let store: OutboxStore
    let client: PostgresClient
    let publisher: AMQPPublisher
    let logger: Logger
    /// How long a sweeper holds the rows it took before another may take them.
    public var leaseSeconds: Double { store.leaseSeconds }
    /// How long one publish waits for the broker's confirms before failing.
    public let confirmTimeout: Duration
    let sweepInterval: Duration
    private let counters = Mutex((unroutableEvents: 0, droppedReplies: 0))

    public init(store: OutboxStore, client: PostgresClient, publisher: AMQPPublisher, logger: Logger,
                confirmTimeout: Duration = .seconds(10), sweepInterval: Duration = .milliseconds(500)) {
        precondition(Double(confirmTimeout.components.seconds) < store.leaseSeconds, "the confirm wait must be shorter than the lease")
        self.store = store
        self.client = client
        self.publisher = publisher
        self.logger = logger
        self.confirmTimeout = confirmTimeout
        self.sweepInterval = sweepInterval
    }

    /// Events published that no queue was bound for, since start.
    public var unroutableEvents: Int { counters.withLock { $0.unroutableEvents } }
    /// Replies dropped because their `reply_to` queue no longer existed, since start.
    public var droppedReplies: Int { counters.withLock { $0.droppedReplies } }

    /// Publishes freshly committed rows and deletes them; failures are left to the sweeper.
    public func deliver(_ rows: [OutboxRow]) async {
        guard !rows.isEmpty else { return }
        do {
            let outcomes = try await publisher.publish(rows.map(\.message.amqpMessage), timeout: confirmTimeout)
            note(zip(rows, outcomes))
        } catch {
            logger.warning("outbox publish failed; the sweeper will retry", metadata: ["error.code": "\(error.code)", "outbox.rows": "\(rows.count)"])
            return
        }
        let ids = rows.map(\.id)
        let store = self.store
        do {
            // A delete lost in a crash only republishes rows consumers already dedupe, so
            // it need not wait for its own WAL flush (one fewer fsync per batch).
            try await client.withTransaction { session in
                try session.execute("SET LOCAL synchronous_commit TO off")
                try store.delete(ids: ids, session: session)
            }
        } catch {
            // Published but not deleted: the sweeper publishes them again later (duplicates are tolerated).
            logger.warning("outbox delete failed after publish", metadata: ["error.message": "\(error)"])
        }
    }

    /// Logs and counts what the broker returned.
    private func note(_ pairs: Zip2Sequence<[OutboxRow], [PublishOutcome]>) {
        for (row, outcome) in pairs {
            guard case .returned(let code, let text) = outcome else { continue }
            let m = row.message
            let metadata: Logger.Metadata = [
                "amqp.exchange": "\(m.exchange)", "amqp.routing_key": "\(m.routingKey)", "amqp.message_id": "\(m.messageID)",
                "amqp.reply_code": "\(code)", "amqp.reply_text": "\(text)"]
            if m.exchange == ExchangeName.events {
                let n = counters.withLock { c -> Int in c.unroutableEvents += 1; return c.unroutableEvents }
                var md = metadata
                md["outbox.unroutable_events"] = "\(n)"
                logger.warning("event had no queue to go to; dropped", metadata: md)
            } else if m.exchange.isEmpty {
                counters.withLock { $0.droppedReplies += 1 }
                logger.info("reply_to queue does not exist; reply dropped", metadata: metadata)
            } else {
                logger.error("message returned by the broker; dropped", metadata: metadata)
            }
        }
    }

    /// Sweeps once: publishes and deletes up to `limit` rows whose lease ran out. Returns how many.
    @discardableResult
    public func sweep(limit: Int = 500) async throws -> Int {
        let store = self.store
        let lease = leaseSeconds
        let rows = try await client.withTransaction { session -> [OutboxRow] in
            try store.lease(limit: limit, lease: lease, session: session)
        }
        guard !rows.isEmpty else { return 0 }
        let outcomes = try await publisher.publish(rows.map(\.message.amqpMessage), timeout: confirmTimeout)
        note(zip(rows, outcomes))
        let ids = rows.map(\.id)
        try await client.withSession { session in try store.delete(ids: ids, session: session) }
        return rows.count
    }

    /// Sweeps until cancelled, backing off while the broker or database is away.
    public func runSweeper() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let n = try await sweep()
                if n > 0 { logger.info("outbox rows republished", metadata: ["outbox.rows": "\(n)"]) }
                failures = 0
                if n == 500 { continue }
                try await Task.sleep(for: sweepInterval)
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                if failures == 1 || failures % 20 == 0 {
                    logger.warning("outbox sweep failed", metadata: ["error.message": "\(error)", "retry.attempt": "\(failures)"])
                }
                try? await Task.sleep(for: Backoff().delay(attempt: failures))
            }
        }
    }
}
