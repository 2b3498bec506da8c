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
    private let counters = Mutex((unroutableEvents: 0, droppedReplies: 0, unroutableTypes: Set<String>()))
    /// Publishes running in the background (``deliverInBackground(_:then:)``), and ids
    /// confirmed but not deleted yet: deleted together, one statement for many batches.
    private let background = Mutex(Background())
    /// Background publishes in flight at most; a worker waits for a slot beyond that.
    let maxInFlight: Int

    private struct Background {
        var inFlight = 0
        var slotWaiters: [CheckedContinuation<Void, Never>] = []
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
        var toDelete: [Int64] = []
        var deleting = false

        var isIdle: Bool { inFlight == 0 && !deleting && toDelete.isEmpty }

        /// The ``drain()`` callers to wake, once nothing is left in flight.
        mutating func takeDrainersIfIdle() -> [CheckedContinuation<Void, Never>] {
            guard isIdle else { return [] }
            defer { drainWaiters.removeAll() }
            return drainWaiters
        }
    }

    public init(store: OutboxStore, client: PostgresClient, publisher: AMQPPublisher, logger: Logger,
                confirmTimeout: Duration = .seconds(10), sweepInterval: Duration = .milliseconds(500), maxInFlight: Int = 8) {
        precondition(Double(confirmTimeout.components.seconds) < store.leaseSeconds, "the confirm wait must be shorter than the lease")
        self.store = store
        self.client = client
        self.publisher = publisher
        self.logger = logger
        self.confirmTimeout = confirmTimeout
        self.sweepInterval = sweepInterval
        self.maxInFlight = maxInFlight
    }

    /// Publishes freshly committed rows without keeping the caller: it returns once a
    /// slot is free (at most ``maxInFlight`` publishes at once), `then` runs when the
    /// broker confirmed them (or the publish failed and they were left to the sweeper).
    /// The confirmed rows are deleted a moment later together with other batches' rows.
    ///
    /// A worker goes on with its next batch while the broker confirms this one; the
    /// caller holds its ordering keys until `then`, so the events of one ticket are
    /// still published in order.
    public func deliverInBackground(_ rows: [OutboxRow], then: @escaping @Sendable () -> Void) async {
        guard !rows.isEmpty else { then(); return }
        let committed = ContinuousClock.now
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now: Bool = background.withLock { b in
                if b.inFlight < maxInFlight { b.inFlight += 1; return true }
                b.slotWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
        Task {
            // The rows' lease began at their insert: publish only while a whole confirm wait
            // still fits in it, or a sweeper could take them while this publish runs.
            let margin = Duration.seconds(self.leaseSeconds) - self.confirmTimeout - .seconds(2)
            if ContinuousClock.now - committed > margin {
                self.logger.warning("outbox rows waited too long for a publish slot; left to the sweeper", metadata: ["outbox.rows": "\(rows.count)"])
            } else if await self.publish(rows) {
                self.scheduleDelete(rows.map(\.id))
            }
            then()
            let (next, drained): (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) = self.background.withLock { b in
                // The slot passes to the next waiting worker, or is given back.
                if !b.slotWaiters.isEmpty { return (b.slotWaiters.removeFirst(), []) }
                b.inFlight -= 1
                return (nil, b.takeDrainersIfIdle())
            }
            next?.resume()
            for c in drained { c.resume() }
        }
    }

    /// Waits until every background publish finished and its rows were deleted.
    public func drain() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = background.withLock { b -> Bool in
                if b.isIdle { return true }
                b.drainWaiters.append(c)
                return false
            }
            if done { c.resume() }
        }
    }

    /// Publishes rows; true when the broker confirmed them all.
    private func publish(_ rows: [OutboxRow]) async -> Bool {
        do {
            let outcomes = try await publisher.publish(rows.map(\.message.amqpMessage), timeout: confirmTimeout)
            note(zip(rows, outcomes))
            return true
        } catch {
            logger.warning("outbox publish failed; the sweeper will retry", metadata: ["error.code": "\(error.code)", "outbox.rows": "\(rows.count)"])
            return false
        }
    }

    /// Queues confirmed ids for deletion; one deleter at a time takes all that queued up.
    private func scheduleDelete(_ ids: [Int64]) {
        let start: Bool = background.withLock { b in
            b.toDelete += ids
            if b.deleting { return false }
            b.deleting = true
            return true
        }
        guard start else { return }
        Task {
            while true {
                let ids: [Int64] = self.background.withLock { b in
                    defer { b.toDelete.removeAll() }
                    return b.toDelete
                }
                if !ids.isEmpty { await self.delete(ids) }
                let drained: [CheckedContinuation<Void, Never>]? = self.background.withLock { b in
                    guard b.toDelete.isEmpty else { return nil }
                    b.deleting = false
                    return b.takeDrainersIfIdle()
                }
                if let drained {
                    for c in drained { c.resume() }
                    return
                }
            }
        }
    }

    private func delete(_ ids: [Int64]) async {
        let store = self.store
        do {
            // A delete lost in a crash only republishes rows consumers already dedupe, so
            // it need not wait for its own WAL flush.
            try await client.withTransaction { session in
                try session.execute("SET LOCAL synchronous_commit TO off")
                try store.delete(ids: ids, session: session)
            }
        } catch {
            logger.warning("outbox delete failed after publish; the sweeper will publish those rows again", metadata: ["error.message": "\(error)"])
        }
    }

    /// Events published that no queue was bound for, since start.
    public var unroutableEvents: Int { counters.withLock { $0.unroutableEvents } }
    /// Replies dropped because their `reply_to` queue no longer existed, since start.
    public var droppedReplies: Int { counters.withLock { $0.droppedReplies } }

    /// Publishes freshly committed rows and deletes them; failures are left to the sweeper.
    public func deliver(_ rows: [OutboxRow]) async {
        guard !rows.isEmpty, await publish(rows) else { return }
        await delete(rows.map(\.id))
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
                let (n, first) = counters.withLock { c -> (Int, Bool) in
                    c.unroutableEvents += 1
                    return (c.unroutableEvents, c.unroutableTypes.insert(m.routingKey).inserted)
                }
                var md = metadata
                md["outbox.unroutable_events"] = "\(n)"
                // An event type nobody consumes yet is normal (escalation.sent without an audit consumer):
                // said once per type, then only in debug, so it does not flood the log at 500 events a second.
                logger.log(level: first ? .warning : .debug, "event had no queue to go to; dropped (further ones of this type are logged at debug)", metadata: md)
            } else if m.exchange.isEmpty {
                counters.withLock { $0.droppedReplies += 1 }
                logger.info("reply_to queue does not exist; reply dropped", metadata: metadata)
            } else if m.exchange == ExchangeName.escalations {
                // Nobody gets this page: no pager integration has bound a queue for its routing key.
                logger.error("escalation message had no queue to go to (bind one to css.escalations, e.g. oncall.# or customer.#); dropped",
                             metadata: metadata)
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
