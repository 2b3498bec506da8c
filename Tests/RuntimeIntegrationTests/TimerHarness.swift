import CSSAMQP
import CSSModel
import CSSPostgres
import CSSRuntime
import CSSSupport
import CSSTestSupport
import Foundation
import Logging
import Synchronization

/// The schema the timer tests migrate in their fresh database.
let timerSchema = "tmr"

func testLogger() -> Logger {
    var logger = Logger(label: "css.runtime.integration-tests")
    logger.logLevel = ProcessInfo.processInfo.environment["CSS_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}

/// A value shared between a test and the handler it gave a loop (which runs on a connection thread).
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    var get: Value { value.withLock { $0 } }
    @discardableResult
    func update<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}

/// A handler failure that is not transient: the timer is at fault.
struct PoisonTimer: Error, CustomStringConvertible {
    let key: String
    var description: String { "timer \(key) cannot be applied" }
}

/// What a test's handler does with a batch before the batch is recorded; it may throw,
/// run statements in the firing transaction, or block briefly (it runs on the loop's
/// connection thread).
typealias FireHook = @Sendable (_ timers: [DueTimer], _ session: PostgresSession) throws -> Void

/// Records every firing as a row of `tmr.fired`, in the transaction that takes the timers
/// out, and returns one event per timer with an id derived from the key: a firing that
/// happened twice shows as two rows of one key, so exactly-once is a `GROUP BY` away.
struct RecordingHandler: TimerHandler {
    let loop: String
    let hook: FireHook?
    /// Calls of `fire`, including those whose transaction rolled back.
    let calls = Shared<[[String]]>([])
    /// The `now` of each call.
    let nows = Shared<[Date]>([])

    func fire(_ timers: [DueTimer], now: Date, context: CommandContext) throws -> [CloudEvent] {
        let batch = calls.update { c -> Int in c.append(timers.map(\.key)); return c.count }
        nows.update { $0.append(now) }
        try hook?(timers, context.session)
        try context.session.execute("""
            INSERT INTO \(timerSchema).fired (key, due_at, fired_at, loop, batch, event_id)
            SELECT k, d, clock_timestamp(), $3, $4, 'timer-' || k FROM unnest($1::text[], $2::timestamptz[]) AS u(k, d)
            """, [PostgresArray.text(timers.map(\.key)), PostgresArray.text(timers.map { RFC3339.format($0.dueAt) }),
                  .string(loop), .int(batch)])
        return timers.map {
            context.events.make("test.timer.fired", subject: $0.key, data: ["key": .string($0.key)], time: now, id: "timer-\($0.key)")
        }
    }

    /// How many times `fire` was given `key`, committed or not.
    func attempts(_ key: String) -> Int { calls.get.reduce(0) { $0 + $1.filter { $0 == key }.count } }
}

/// A ``TimerLoop`` as one process runs it: its own pool, publisher and relay, and a
/// listener connection named so that tests can find (and terminate) it.
final class RunningLoop: Sendable {
    let name: String
    let loop: TimerLoop
    let handler: RecordingHandler
    let client: PostgresClient
    let publisher: AMQPPublisher
    let relay: OutboxRelay
    let shutdown: ShutdownSignal
    /// The `application_name` of the listener connection.
    let listenApplication: String
    private let ended = Shared<ContinuousClock.Instant?>(nil)
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(world: TimerWorld, name: String, hook: FireHook?, batchSize: Int, maxSleep: Duration, listen: PostgresConfiguration?, lead: Duration = .zero) {
        self.name = name
        handler = RecordingHandler(loop: name, hook: hook)
        var configuration = world.database
        configuration.applicationName = "timers-\(name)"
        client = PostgresClient(configuration: configuration, size: 2, logger: world.logger)
        listenApplication = "timers-listen-\(name)-\(UUID().uuidString.prefix(8).lowercased())"
        var listenConfiguration = listen ?? world.database
        listenConfiguration.applicationName = listenApplication
        publisher = AMQPPublisher(configuration: world.amqp, topology: ContractTopology.all, name: "timers-\(name)", logger: world.logger)
        relay = OutboxRelay(store: OutboxStore(schema: timerSchema), client: client, publisher: publisher, logger: world.logger)
        shutdown = ShutdownSignal()
        loop = TimerLoop(service: "timers-test", schema: timerSchema, handler: handler, client: client, listenConfiguration: listenConfiguration,
                         relay: relay, clock: SystemClock(), logger: world.logger, shutdown: shutdown, batchSize: batchSize, maxSleep: maxSleep,
                         lead: lead)
    }

    func start() {
        let loop = self.loop, ended = self.ended
        task.withLock { $0 = Task { await loop.run(); ended.update { $0 = .now } } }
    }

    /// Whether `run()` has returned.
    var hasEnded: Bool { ended.get != nil }

    /// Stops the loop (as a host's graceful shutdown does) and waits for `run()` to return.
    func finish() async {
        loop.stop()
        shutdown.begin()
        if let task = task.withLock({ $0 }) { await task.value }
        await publisher.close()
        await client.close()
    }
}

/// One test's world: a fresh database with the messaging and timer tables of schema `tmr`,
/// a fresh vhost, and a pool standing for another process that arms and inspects timers.
final class TimerWorld: Sendable {
    let database: PostgresConfiguration
    let amqp: AMQPConfiguration
    let logger: Logger
    /// Another process: arms and cancels timers, reads the tables.
    let other: PostgresClient
    let store = TimerStore(schema: timerSchema)
    private let loops = Mutex<[RunningLoop]>([])

    static let migrations = [
        MessagingSchema.migration(schema: timerSchema),
        TimerStore.migration(schema: timerSchema, version: 2),
        Migration(version: 3, name: "what the test handlers record", sql: """
            -- One row per firing, deliberately without a key constraint: a double firing must show.
            CREATE TABLE \(timerSchema).fired (
                key text NOT NULL,
                due_at timestamptz NOT NULL,
                fired_at timestamptz NOT NULL,
                loop text NOT NULL,
                batch int NOT NULL,
                event_id text NOT NULL
            );
            -- A row handlers update, so a test can hold its lock.
            CREATE TABLE \(timerSchema).resource (id int PRIMARY KEY, n int NOT NULL);
            INSERT INTO \(timerSchema).resource VALUES (1, 0);
            """),
    ]

    private init(database: PostgresConfiguration, amqp: AMQPConfiguration, logger: Logger) {
        self.database = database
        self.amqp = amqp
        self.logger = logger
        var configuration = database
        configuration.applicationName = "timers-other"
        other = PostgresClient(configuration: configuration, size: 2, logger: logger)
    }

    /// Runs `body` in a fresh world and always tears it down: loops stopped, database dropped, vhost deleted.
    static func with(_ body: (TimerWorld) async throws -> Void) async throws {
        let logger = testLogger()
        let database = try await TestServers.freshDatabase("timers", logger: logger)
        let amqp: AMQPConfiguration
        do {
            amqp = try TestServers.freshVhost("timers")
        } catch {
            await TestServers.dropDatabase(database, logger: logger)
            throw error
        }
        let world = TimerWorld(database: database, amqp: amqp, logger: logger)
        do {
            _ = try await Migrator(schema: timerSchema, migrations: migrations).migrate(client: world.other, logger: logger)
            try await body(world)
        } catch {
            await world.tearDown()
            throw error
        }
        await world.tearDown()
    }

    private func tearDown() async {
        for loop in loops.withLock({ $0 }) { await loop.finish() }
        await other.close()
        await TestServers.dropDatabase(database, logger: logger)
        TestServers.deleteVhost(amqp)
    }

    /// Starts a timer loop as one more process would.
    ///
    /// - Parameter listen: where its listener connects; by default the test database.
    /// - Parameter start: false to call ``RunningLoop/start()`` later.
    @discardableResult
    func startLoop(_ name: String = "a", hook: FireHook? = nil, batchSize: Int = 256, maxSleep: Duration = .seconds(5),
                   listen: PostgresConfiguration? = nil, lead: Duration = .zero, start: Bool = true) -> RunningLoop {
        let loop = RunningLoop(world: self, name: name, hook: hook, batchSize: batchSize, maxSleep: maxSleep, listen: listen, lead: lead)
        loops.withLock { $0.append(loop) }
        if start { loop.start() }
        return loop
    }

    /// Opens every connection of `client`'s pool now.
    func openAllConnections(_ client: PostgresClient) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<client.size { group.addTask { _ = try await client.query("SELECT pg_sleep(0.1)") } }
            try await group.waitForAll()
        }
    }

    /// Arms timers from another process, in one transaction.
    func arm(_ timers: [DueTimer]) async throws {
        let store = self.store
        try await other.withTransaction { session in try store.arm(timers, now: SystemClock().now(), session: session) }
    }

    func arm(_ key: String, at due: Date, payload: JSONValue = .null) async throws {
        try await arm([DueTimer(key: key, dueAt: due, payload: payload)])
    }

    func cancel(_ keys: [String]) async throws {
        let store = self.store
        try await other.withTransaction { session in try store.cancel(keys, session: session) }
    }

    func int(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> Int {
        try await other.query(sql, parameters)[0].int(0)
    }

    /// Firings recorded per key.
    func firings() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await other.query("SELECT key, count(*) FROM \(timerSchema).fired GROUP BY key") {
            counts[try row.string(0)] = try row.int(1)
        }
        return counts
    }

    /// Timers armed (parked ones not counted), as `TimerStore.count` says.
    func armedCount() async throws -> Int {
        let store = self.store
        return try await other.withSession { try store.count(session: $0) }
    }

    func firedCount() async throws -> Int {
        try await int("SELECT count(*) FROM \(timerSchema).fired")
    }

    /// Waits until `count` firings are recorded; whether they were within `timeout`.
    func waitForFirings(_ count: Int, timeout: Duration) async throws -> Bool {
        try await eventually(timeout: timeout, interval: .milliseconds(20)) { try await firedCount() >= count }
    }

    /// A key's row in the timer table: its due time and failure, if it is there.
    func timerRow(_ key: String) async throws -> (dueAt: Date, payload: String, failure: String?)? {
        guard let row = try await other.query(
            "SELECT due_at, payload::text, failure FROM \(timerSchema).timers WHERE key = $1", [.string(key)]).first
        else { return nil }
        return (try row.date(0), try row.string(1), try row.optionalString(2))
    }

    /// The pid of `application`'s backend once it is idle after a LISTEN; nil if none within `timeout`.
    func listenerBackend(_ application: String, replacing previous: Int? = nil, timeout: Duration = .seconds(10)) async throws -> Int? {
        var found: Int?
        _ = try await eventually(timeout: timeout, interval: .milliseconds(20)) {
            found = try await other.query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle' AND query LIKE 'LISTEN%' AND pid <> $2",
                [.string(application), .int(previous ?? 0)]).first?.int(0)
            return found != nil
        }
        return found
    }

    /// Whether any backend of `application` is connected.
    func hasBackend(_ application: String) async throws -> Bool {
        try await int("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [.string(application)]) > 0
    }
}

/// Holds row locks in an open transaction on a connection of its own, as another
/// process's firing transaction would, until ``release()`` cancels it.
final class LockHolder: Sendable {
    let pid: Int
    private let connection: PostgresConnection
    private let task: Task<Void, any Error>
    private let world: TimerWorld

    /// - Parameter lock: statements that take the locks (run before the holder sleeps).
    init(world: TimerWorld, lock: String) async throws {
        let application = "timers-holder-\(UUID().uuidString.prefix(8).lowercased())"
        var configuration = world.database
        configuration.applicationName = application
        let connection = PostgresConnection(configuration: configuration, logger: world.logger)
        self.connection = connection
        self.world = world
        task = Task {
            try await connection.withTransaction { session in
                try session.execute(lock)
                _ = try session.query("SELECT pg_sleep(60)")
            }
        }
        var pid: Int?
        _ = try await eventually(timeout: .seconds(10), interval: .milliseconds(10)) {
            pid = try await world.other.query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
                [.string(application)]).first?.int(0)
            return pid != nil
        }
        guard let pid else { throw TestSupportError("the lock holder never started sleeping") }
        self.pid = pid
    }

    /// Cancels the holder's statement: its transaction rolls back and the locks are free.
    func release() async throws {
        _ = try await world.other.query("SELECT pg_cancel_backend($1::int)", [.int(pid)])
        _ = try? await task.value
        await connection.close()
    }
}

extension Date {
    func plus(_ seconds: TimeInterval) -> Date { addingTimeInterval(seconds) }
}
