import CSSModel
import CSSPostgres
import CSSSupport
import Foundation
import Logging
import Synchronization

/// A timer that fell due, as its handler gets it.
public struct DueTimer: Sendable, Equatable {
    public var key: String
    public var dueAt: Date
    public var payload: JSONValue

    public init(key: String, dueAt: Date, payload: JSONValue = .null) {
        self.key = key
        self.dueAt = dueAt
        self.payload = payload
    }
}

/// What a service does when its timers fall due.
public protocol TimerHandler: Sendable {
    /// Applies timers that fell due, inside the transaction that took them out of the
    /// table: what it writes (state, timers it arms again) and the events it returns
    /// commit together with their removal, or not at all. Derive event ids from the timer
    /// key so that a replayed firing repeats them.
    ///
    /// Throwing a non-transient error makes the runtime fire the batch's timers one by one;
    /// a timer that fails alone is parked (never fires again, kept with the reason).
    func fire(_ timers: [DueTimer], now: Date, context: CommandContext) throws -> [CloudEvent]
}

/// Durable timers in a service's own schema: one row per key.
///
/// Arming twice keeps one timer (the later arming wins); arming inside a unit of work
/// commits with it. Arming also sends `NOTIFY <schema>_timers`, delivered at commit, so a
/// sleeping ``TimerLoop`` in any process wakes for a timer earlier than the one it waits for.
public struct TimerStore: Sendable {
    public let schema: String

    public init(schema: String) {
        self.schema = schema
    }

    /// The LISTEN/NOTIFY channel: a wake-up only; the table is the truth.
    public var channel: String { "\(schema)_timers" }

    /// Migration adding the timer table (any version number the service gives it).
    public static func migration(schema: String, version: Int) -> Migration {
        Migration(version: version, name: "durable timers", sql: """
            CREATE TABLE \(schema).timers (
                key text PRIMARY KEY,
                due_at timestamptz NOT NULL,
                payload jsonb NOT NULL DEFAULT 'null',
                armed_at timestamptz NOT NULL,
                -- Set when the timer's handler failed permanently: parked, never due again.
                failure text
            );
            CREATE INDEX timers_due ON \(schema).timers (due_at) WHERE failure IS NULL;
            """)
    }

    /// Arms (or re-arms) timers; one statement for the lot.
    public func arm(_ timers: [DueTimer], now: Date, session: PostgresSession) throws {
        guard !timers.isEmpty else { return }
        // The last arming of a key in the list wins.
        var latest: [String: DueTimer] = [:]
        for t in timers { latest[t.key] = t }
        let list = Array(latest.values)
        try session.execute("""
            INSERT INTO \(schema).timers (key, due_at, payload, armed_at)
            SELECT k, d, p::jsonb, $4 FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(k, d, p)
            ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload, armed_at = excluded.armed_at, failure = NULL
            """, [PostgresArray.text(list.map(\.key)), PostgresArray.text(list.map { RFC3339.format($0.dueAt) }),
                  PostgresArray.text(list.map { $0.payload.jsonText }), .date(now)])
        try session.execute("SELECT pg_notify($1, '')", [.string(channel)])
    }

    public func cancel(_ keys: [String], session: PostgresSession) throws {
        guard !keys.isEmpty else { return }
        try session.execute("DELETE FROM \(schema).timers WHERE key = ANY($1::text[])", [PostgresArray.text(keys)])
    }

    /// Takes out up to `limit` timers due at `now`, earliest first, skipping those another
    /// process is firing (its transaction holds their rows). The row lock is the lease:
    /// if this transaction rolls back or its process dies, the timers are due again.
    func claimDue(now: Date, limit: Int, session: PostgresSession) throws -> [DueTimer] {
        let rows = try session.query("""
            DELETE FROM \(schema).timers WHERE key IN (
                SELECT key FROM \(schema).timers WHERE due_at <= $1 AND failure IS NULL
                ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING key, due_at, payload::text
            """, [.date(now), .int(limit)])
        return try rows.map { r in
            DueTimer(key: try r.string(0), dueAt: try r.date(1), payload: (try? JSONValue.parse(try r.string(2))) ?? .null)
        }.sorted { ($0.dueAt, $0.key) < ($1.dueAt, $1.key) }
    }

    /// Takes out up to `limit` timers due at the earliest instant still ahead, if that instant
    /// is no later than `horizon`: a burst (thresholds share whole-second due times) prepared
    /// before it falls due. Nil when nothing falls due by then.
    func claimNext(before horizon: Date, limit: Int, session: PostgresSession) throws -> (instant: Date, timers: [DueTimer])? {
        guard let instant = try session.query("""
            SELECT min(due_at) FROM \(schema).timers WHERE failure IS NULL AND due_at <= $1
            """, [.date(horizon)]).first?.optionalDate(0) else { return nil }
        let rows = try session.query("""
            DELETE FROM \(schema).timers WHERE key IN (
                SELECT key FROM \(schema).timers WHERE due_at = $1 AND failure IS NULL
                ORDER BY key LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING key, due_at, payload::text
            """, [.date(instant), .int(limit)])
        let timers = try rows.map { r in
            DueTimer(key: try r.string(0), dueAt: try r.date(1), payload: (try? JSONValue.parse(try r.string(2))) ?? .null)
        }.sorted { $0.key < $1.key }
        return timers.isEmpty ? nil : (instant, timers)
    }

    /// Parks a timer whose handler fails permanently: kept, with the reason, never due again.
    ///
    /// Only that arming of that key: if the key was re-armed (another due time) or cancelled
    /// since it failed, there is nothing to park. Waits for a process that is firing it.
    /// - Returns: whether a timer was parked.
    @discardableResult
    func park(_ timer: DueTimer, reason: String, session: PostgresSession) throws -> Bool {
        try session.execute("""
            UPDATE \(schema).timers SET failure = $3 WHERE key = $1 AND due_at = $2 AND failure IS NULL
            """, [.string(timer.key), .date(timer.dueAt), .string(StorableText.escaped(reason))]) > 0
    }

    /// The earliest due time, if any timer is armed.
    func earliest(session: PostgresSession) throws -> Date? {
        try session.query("SELECT min(due_at) FROM \(schema).timers WHERE failure IS NULL").first?.optionalDate(0)
    }

    /// Timers armed, for operators and tests.
    public func count(session: PostgresSession) throws -> Int {
        try session.query("SELECT count(*) FROM \(schema).timers WHERE failure IS NULL").first?.int(0) ?? 0
    }
}

/// Fires a service's durable timers on time.
///
/// It sleeps until the earliest due time, or until a `NOTIFY` says an earlier timer was
/// armed (by this process or another), or at most `maxSleep`; then takes out what is due
/// with `FOR UPDATE SKIP LOCKED` and fires it in the same transaction, so two timer
/// processes never fire one timer twice, and after a crash whatever fell due meanwhile
/// fires at once, exactly once.
public final class TimerLoop: Sendable {
    let store: TimerStore
    let handler: any TimerHandler
    let client: PostgresClient
    let listenConfiguration: PostgresConfiguration
    let relay: OutboxRelay
    let outbox: OutboxStore
    let events: EventFactory
    let clock: any CSSModel.Clock
    let logger: Logger
    let shutdown: ShutdownSignal
    let retry: RetryLoop
    let batchSize: Int
    let maxSleep: Duration
    /// How long before their due instant a burst of timers is prepared (see ``fireDue(now:)``); zero: never ahead.
    let lead: Duration
    private let wakeup = Wakeup()
    /// Begun by ``stop()`` (and so by the host's shutdown): a unit of work that keeps failing
    /// transiently gives up, leaving its timers due, instead of keeping `run()` from ending.
    private let stopping = ShutdownSignal()
    private let counters = Mutex<(fired: Int, parked: Int)>((0, 0))

    /// How soon a loop looks again at due timers another process holds (their rows locked by
    /// its firing transaction): neither that commit nor its rollback sends a NOTIFY.
    static let heldTimerPoll: Duration = .milliseconds(100)

    public init(service: String, schema: String, handler: any TimerHandler, client: PostgresClient, listenConfiguration: PostgresConfiguration,
                relay: OutboxRelay, clock: any CSSModel.Clock, logger: Logger, shutdown: ShutdownSignal,
                batchSize: Int = 256, maxSleep: Duration = .seconds(5), lead: Duration = .zero) {
        self.store = TimerStore(schema: schema)
        self.handler = handler
        self.client = client
        self.listenConfiguration = listenConfiguration
        self.relay = relay
        self.outbox = OutboxStore(schema: schema)
        self.events = EventFactory(service: service, clock: clock)
        self.clock = clock
        self.logger = logger
        self.shutdown = shutdown
        self.retry = RetryLoop(shutdown: stopping, logger: logger)
        self.batchSize = batchSize
        self.maxSleep = maxSleep
        self.lead = lead
    }

    /// Timers fired and parked since start.
    public var fired: Int { counters.withLock { $0.fired } }
    public var parked: Int { counters.withLock { $0.parked } }

    /// Ends the loop (and its listener) after the firing in progress; a firing that is
    /// being retried after a transient failure is given up and stays due.
    public func stop() {
        stopping.begin()
        wakeup.close()
    }

    /// Fires timers until ``stop()``, the shutdown signal, or cancellation of the calling task.
    public func run() async {
        let shutdownWatch = Task { [shutdown] in
            // Returns when shutdown begins, or when cancelled below.
            await shutdown.sleep(for: .seconds(366 * 86_400))
            if shutdown.hasBegun { self.stop() }
        }
        await withTaskCancellationHandler {
            await fireUntilStopped()
        } onCancel: {
            stop()
        }
        shutdownWatch.cancel()
    }

    private func fireUntilStopped() async {
        let listener = Task { await listen() }
        firing: while !shutdown.hasBegun, !wakeup.isClosed {
            let now = clock.now()
            let fired: Int
            switch await retry.run("timer batch", { try await self.fireDue(now: now) }) {
            case .done(let (count, rows)):
                fired = count
                await relay.deliver(rows)
            case .abandoned:
                break firing
            case .permanent(let error):
                logger.warning("timer batch failed permanently; firing its timers one at a time", metadata: ["error.message": "\(error)"])
                fired = await fireOneByOne(now: now)
            }
            if fired >= batchSize { continue }
            await sleepUntilNextDue(claimedAt: now, fired: fired)
        }
        // Cancelled, the listener does not sit out a backoff between connection attempts.
        listener.cancel()
        _ = await listener.value
    }

    /// Takes out and fires what is due; returns how many and the rows to publish.
    ///
    /// With a `lead`, when nothing is due yet, the timers of the next due instant within the
    /// lead are taken out and fired *as of that instant* (the handler gets it as `now`) ahead of
    /// it, and the transaction commits at the instant itself: a second's burst of thresholds is
    /// published when it falls due instead of after the time it takes to fire it. The rows stay
    /// locked meanwhile, so a fact about one of those tickets that arrives in the last `lead`
    /// before the instant is applied just after the firing, as if it had arrived just after it.
    func fireDue(now: Date) async throws -> (Int, [OutboxRow]) {
        let store = self.store, handler = self.handler, outbox = self.outbox, events = self.events, limit = batchSize
        let horizon = now.addingTimeInterval(Self.seconds(lead)), clock = self.clock
        let (count, rows) = try await client.withTransaction { session -> (Int, [OutboxRow]) in
            var due = try store.claimDue(now: now, limit: limit, session: session)
            var instant = now
            if due.isEmpty, horizon > now, let next = try store.claimNext(before: horizon, limit: limit, session: session) {
                (instant, due) = (next.instant, next.timers)
            }
            guard !due.isEmpty else { return (0, []) }
            let caused = try handler.fire(due, now: max(now, instant), context: CommandContext(session: session, events: events))
            let rows = try outbox.insert(caused.flatMap(OutboxMessage.messages), session: session)
            // Prepared ahead: commit when they fall due, not before. Blocking is right here: this
            // is the connection's own thread, and the wait is at most `lead`.
            let early = instant.timeIntervalSince(clock.now())
            if early > 0 { Thread.sleep(forTimeInterval: early) }
            return (due.count, rows)
        }
        counters.withLock { $0.fired += count }
        return (count, rows)
    }

    static func seconds(_ d: Duration) -> TimeInterval {
        let (s, atto) = d.components
        return TimeInterval(s) + TimeInterval(atto) / 1e18
    }

    /// After a batch failed permanently: each due timer in a transaction of its own; one that
    /// fails alone is parked with the reason, and the others fire.
    func fireOneByOne(now: Date) async -> Int {
        let store = self.store, handler = self.handler, outbox = self.outbox, events = self.events
        var done = 0
        for _ in 0..<batchSize where !wakeup.isClosed {
            // The timer this attempt took out: the one to park if it fails permanently. Not
            // "the earliest due" found again later, which may be another timer by then (one
            // another process held a moment ago, or one armed meanwhile).
            let claimed = Mutex<DueTimer?>(nil)
            let step = await retry.run("single timer") {
                try await self.client.withTransaction { session -> (DueTimer?, [OutboxRow]) in
                    claimed.withLock { $0 = nil }
                    guard let timer = try store.claimDue(now: now, limit: 1, session: session).first else { return (nil, []) }
                    claimed.withLock { $0 = timer }
                    let caused = try handler.fire([timer], now: now, context: CommandContext(session: session, events: events))
                    return (timer, try outbox.insert(caused.flatMap(OutboxMessage.messages), session: session))
                }
            }
            switch step {
            case .done((nil, _)), .abandoned:
                return done
            case .done((_, let rows)):
                done += 1
                counters.withLock { $0.fired += 1 }
                await relay.deliver(rows)
            case .permanent(let error):
                // No timer claimed means taking one out failed, not a handler: nothing to park.
                guard let timer = claimed.withLock({ $0 }), await park(timer, error: error) else { return done }
                done += 1
            }
        }
        return done
    }

    /// Parks `timer`, which just failed alone; false when it was not parked (re-armed or
    /// cancelled meanwhile, parked by another process, or parking failed).
    private func park(_ timer: DueTimer, error: any Error) async -> Bool {
        let store = self.store
        let reason = "\(CommandProcessor.code(of: error)): \(error)"
        let result = await retry.run("park timer") {
            try await self.client.withTransaction { session in try store.park(timer, reason: reason, session: session) }
        }
        guard case .done(true) = result else { return false }
        counters.withLock { $0.parked += 1 }
        logger.error("timer failed permanently; parked", metadata: ["timer.key": "\(StorableText.escaped(timer.key))", "error.message": "\(error)"])
        return true
    }

    /// Sleeps until the earliest timer is due, a NOTIFY, or `maxSleep`.
    ///
    /// - Parameters:
    ///   - claimedAt: the `now` of the claim that just ran.
    ///   - fired: what it fired (or parked).
    private func sleepUntilNextDue(claimedAt: Date, fired: Int) async {
        let store = self.store
        let next: Date?
        do {
            next = try await client.withSession { session in try store.earliest(session: session) }
        } catch {
            logger.warning("could not read the next timer; polling", metadata: ["error.message": "\(error)"])
            await wakeup.wait(for: .milliseconds(500))
            return
        }
        var wait = maxSleep
        if let next {
            if fired == 0 && next <= claimedAt.addingTimeInterval(Self.seconds(lead)) {
                // Due at the claim, yet not taken: another process's firing transaction holds
                // it. Looking again at once would spin for as long as that transaction runs.
                wait = min(wait, Self.heldTimerPoll)
            } else {
                let seconds = next.timeIntervalSince(clock.now()) - Self.seconds(lead)
                if seconds <= 0 { return }
                wait = min(wait, .milliseconds(Int64((seconds * 1000).rounded(.up))))
            }
        }
        await wakeup.wait(for: wait)
    }

    /// Wakes the loop on every NOTIFY of the channel; reconnects with backoff when the
    /// connection drops (the loop still wakes at least every `maxSleep` meanwhile).
    private func listen() async {
        let connection = PostgresConnection(configuration: listenConfiguration, logger: logger)
        defer { Task { await connection.close() } }
        let channel = store.channel
        var failures = 0
        while !wakeup.isClosed, !shutdown.hasBegun, !Task.isCancelled {
            do {
                let got = try await connection.notifications(channel: channel, timeout: .milliseconds(250))
                failures = 0
                // A timer armed before this connection LISTENed (at start, after an error, or after
                // a reconnect inside the call) sent its NOTIFY to nobody, and the loop may be asleep
                // past its due time: have the loop read the table again.
                if !got.payloads.isEmpty || got.startedListening { wakeup.signal() }
            } catch {
                failures += 1
                if failures == 1 { logger.warning("timer wake-up listener lost its connection; retrying", metadata: ["error.message": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(min(5000, 100 * (1 << min(failures, 6)))))
            }
        }
    }
}

/// A one-slot wake-up: `signal` ends the current or next `wait` early.
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation: UInt64 = 0
        var expired: UInt64 = 0
    }

    private let state = Mutex(State())

    var isClosed: Bool { state.withLock { $0.closed } }

    func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else { s.pending = true; return nil }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    func close() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    /// Returns after `duration`, or sooner when signalled (or already signalled) or closed.
    /// One caller at a time.
    func wait(for duration: Duration) async {
        let generation = state.withLock { s -> UInt64 in s.generation += 1; return s.generation }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now = self.state.withLock { s -> Bool in
                        if s.pending || s.closed || s.expired == generation {
                            s.pending = false
                            return true
                        }
                        s.waiter = c
                        return false
                    }
                    if now { c.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: duration)
                let w = self.state.withLock { s -> CheckedContinuation<Void, Never>? in
                    s.expired = generation
                    defer { s.waiter = nil }
                    return s.waiter
                }
                w?.resume()
            }
            await group.next()
            group.cancelAll()
        }
    }
}
