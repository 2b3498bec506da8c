import CSSAMQP
import CSSPostgres
import CSSSupport
import Logging

/// Publishes what transactions wrote to the outbox, with confirms, then deletes it.
///
/// Two paths: right after a commit the processor hands the committed rows over
/// (``deliver(_:)``), so a reply does not wait for a poll; and a sweeper leases rows
/// that stayed behind (the process crashed between commit and publish, or the broker
/// was down) once the writer's own lease ran out, so several processes can sweep one
/// table without publishing the same row at the same time.
/// Either way a row is deleted only after the broker confirmed it: at least once.
public final class OutboxRelay: Sendable {
    let store: OutboxStore
    let client: PostgresClient
    let publisher: AMQPPublisher
    let logger: Logger
    /// How long a sweeper holds the rows it took before another may take them.
    let leaseSeconds: Double
    let sweepInterval: Duration

    public init(store: OutboxStore, client: PostgresClient, publisher: AMQPPublisher, logger: Logger,
                leaseSeconds: Double = 30, sweepInterval: Duration = .milliseconds(500)) {
        self.store = store
        self.client = client
        self.publisher = publisher
        self.logger = logger
        self.leaseSeconds = leaseSeconds
        self.sweepInterval = sweepInterval
    }

    /// Publishes freshly committed rows and deletes them; failures are left to the sweeper.
    public func deliver(_ rows: [OutboxRow]) async {
        guard !rows.isEmpty else { return }
        do {
            try await publisher.publish(rows.map(\.message.amqpMessage))
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

    /// Sweeps once: publishes and deletes up to `limit` rows whose lease ran out. Returns how many.
    @discardableResult
    public func sweep(limit: Int = 500) async throws -> Int {
        let store = self.store
        let lease = leaseSeconds
        let rows = try await client.withTransaction { session -> [OutboxRow] in
            try store.lease(limit: limit, lease: lease, session: session)
        }
        guard !rows.isEmpty else { return 0 }
        try await publisher.publish(rows.map(\.message.amqpMessage))
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
