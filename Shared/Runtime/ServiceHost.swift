import CSSAMQP
import CSSModel
import CSSPostgres
import CSSSupport
import Logging
import ServiceLifecycle

/// Settings every command-consuming service reads from its environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `CSS_AMQP_URL` | `amqp://guest:guest@127.0.0.1:5672/%2F` | broker |
/// | `CSS_DATABASE_URL` | `postgres://css@127.0.0.1:5432/css` | database |
/// | `CSS_WORKERS` | 2 | concurrent batches (and database connections for them) |
/// | `CSS_BATCH_SIZE` | 256 | commands per transaction at most |
/// | `CSS_PREFETCH` | 512 | unacknowledged deliveries the broker may send |
/// | `CSS_MAX_INFLIGHT_MB` | 64 | MiB of delivered, unacknowledged bodies held at most per consumer |
/// | `CSS_LINGER_MS` | 10 | how long a worker waits for more commands when few are ready |
/// | `CSS_TIMER_WORKERS` | 2 | timer loops firing at once (services with durable timers) |
/// | `CSS_TIMER_BATCH` | 512 | timers fired per transaction at most |
/// | `CSS_TIMER_LEAD_MS` | 500 | how long before a due instant its timers are prepared (committed at the instant); 0: never ahead |
/// | `CSS_INBOX_RETENTION` | P7D | idempotency window: inbox entries older than this are pruned |
/// | `CSS_REJECTION_RETENTION` | P30D | stored refused commands older than this are pruned |
/// | `CSS_PRUNE_INTERVAL` | PT1M | how often pruning runs |
/// | `CSS_LOG_LEVEL` | info | trace, debug, info, notice, warning, error, critical |
public struct HostSettings: Sendable {
    public var amqp: AMQPConfiguration
    public var database: PostgresConfiguration
    public var workers: Int
    public var batchSize: Int
    public var prefetch: Int
    public var maxInFlightBytes: Int = 64 * 1024 * 1024
    /// Timer loops per process and timers per firing transaction. Thresholds of whole-second
    /// due times fall due together; two loops fire one second's burst on both cores, and
    /// smaller batches publish the first of it sooner (Benchmarks/README.md).
    public var timerWorkers = 2
    public var timerBatchSize = 512
    /// Prepared this long before their instant, a second's burst (1,000 thresholds) commits when
    /// it falls due rather than after the half second it takes to fire on two cores.
    public var timerLead: Duration = .milliseconds(500)
    public var limits = RuntimeLimits()
    public var retention = Retention()

    public static func fromEnvironment(_ env: Environment, service: String) throws -> HostSettings {
        var settings = HostSettings(
            amqp: try AMQPConfiguration.fromEnvironment(env),
            database: try PostgresConfiguration.fromEnvironment(env, applicationName: "css-\(service)"),
            // Measured on 2 cores (Benchmarks/README.md): two workers with large batches keep
            // both throughput and reply latency in target; more workers make smaller batches
            // and more commits for the same load.
            workers: try env.int("CSS_WORKERS", default: 2, range: 1...64),
            batchSize: try env.int("CSS_BATCH_SIZE", default: 256, range: 1...1000),
            prefetch: try env.int("CSS_PREFETCH", default: 512, range: 1...65535))
        settings.maxInFlightBytes = try env.int("CSS_MAX_INFLIGHT_MB", default: 64, range: 1...4096) * 1024 * 1024
        settings.limits.linger = .milliseconds(try env.int("CSS_LINGER_MS", default: 10, range: 0...100))
        settings.timerWorkers = try env.int("CSS_TIMER_WORKERS", default: 2, range: 1...16)
        settings.timerBatchSize = try env.int("CSS_TIMER_BATCH", default: 512, range: 1...5000)
        settings.timerLead = .milliseconds(try env.int("CSS_TIMER_LEAD_MS", default: 500, range: 0...5000))
        settings.retention.inboxSeconds = try duration(env, "CSS_INBOX_RETENTION", default: "P7D", minimum: 60)
        settings.retention.rejectionSeconds = try duration(env, "CSS_REJECTION_RETENTION", default: "P30D", minimum: 60)
        settings.retention.intervalSeconds = try duration(env, "CSS_PRUNE_INTERVAL", default: "PT1M", minimum: 0.1)
        return settings
    }

    /// An ISO 8601 duration variable (`P7D`, `PT12H`), in seconds.
    static func duration(_ env: Environment, _ name: String, default defaultValue: String, minimum: Double) throws -> Double {
        let raw = env.string(name, default: defaultValue)
        guard let seconds = ISODuration.parse(raw), seconds >= minimum else {
            throw ConfigurationError(variable: name, message: "must be an ISO 8601 duration of at least \(ISODuration.format(seconds: minimum)) (P7D, PT12H), got \"\(raw)\"")
        }
        return seconds
    }

    public static func logLevel(_ env: Environment) throws -> Logger.Level {
        let raw = env.string("CSS_LOG_LEVEL", default: "info")
        guard let level = Logger.Level(rawValue: raw.lowercased()) else {
            throw ConfigurationError(variable: "CSS_LOG_LEVEL", message: "must be one of trace, debug, info, notice, warning, error, critical; got \"\(raw)\"")
        }
        return level
    }
}

/// Runs one command-consuming service: migrations, then workers that take batches from
/// its queue, and the outbox sweeper, until SIGTERM or SIGINT.
///
/// On graceful shutdown it stops consuming, lets the workers finish, publish and
/// acknowledge what they hold, closes its connections and returns, so the process
/// exits 0.
public final class ServiceHost: Service, Sendable {
    public let service: String
    public let schema: String
    let settings: HostSettings
    let handler: any CommandHandler
    let eventHandler: (any EventHandler)?
    let timerHandler: (any TimerHandler)?
    let migrations: [Migration]
    let clock: any CSSModel.Clock
    let logger: Logger

    /// - Parameter timerHandler: fires the service's durable timers (``TimerStore``; its
    ///   migration must be among `migrations`); nil for a service without timers.
    public init(service: String, schema: String, handler: any CommandHandler, eventHandler: (any EventHandler)? = nil,
                timerHandler: (any TimerHandler)? = nil, migrations: [Migration], settings: HostSettings, clock: any CSSModel.Clock, logger: Logger) {
        self.service = service
        self.schema = schema
        self.handler = handler
        self.eventHandler = eventHandler
        self.timerHandler = timerHandler
        self.migrations = migrations
        self.settings = settings
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        // One connection per worker, one for the event consumer, one per timer loop (each LISTEN has its own).
        let client = PostgresClient(configuration: settings.database, size: settings.workers + 1 + (timerHandler == nil ? 0 : settings.timerWorkers),
                                    logger: logger)
        let applied = try await Migrator(schema: schema, migrations: migrations).migrate(client: client, logger: logger)
        logger.info("database ready", metadata: ["db.schema": "\(schema)", "db.applied": "\(applied)"])

        // Every service declares the whole contract, so what it publishes waits for consumers not started yet.
        try Self.checkContract(service: service, handler: handler, eventHandler: eventHandler)
        let topology = ContractTopology.all
        let publisher = AMQPPublisher(configuration: settings.amqp, topology: topology, name: "\(service)-publisher", logger: logger)
        let consumer = AMQPConsumer(configuration: settings.amqp, topology: topology, queue: ContractTopology.commandQueueName(service: service),
                                    prefetch: settings.prefetch, maxBodyBytes: settings.limits.maxBodyBytes,
                                    maxBufferedBytes: settings.maxInFlightBytes, name: "\(service)-consumer", logger: logger)
        let relay = OutboxRelay(store: OutboxStore(schema: schema), client: client, publisher: publisher, logger: logger)
        let shutdown = ShutdownSignal()
        let processor = CommandProcessor(service: service, schema: schema, handler: handler, client: client, consumer: consumer,
                                         relay: relay, clock: clock, logger: logger, shutdown: shutdown, limits: settings.limits,
                                         batchSize: settings.batchSize)
        let eventConsumer = eventHandler.map { _ in
            AMQPConsumer(configuration: settings.amqp, topology: topology, queue: ContractTopology.eventQueueName(service: service),
                         prefetch: settings.prefetch, maxBodyBytes: settings.limits.maxBodyBytes,
                         maxBufferedBytes: settings.maxInFlightBytes, name: "\(service)-events", logger: logger)
        }
        let eventProcessor = eventHandler.flatMap { h in eventConsumer.map { c in
            EventProcessor(service: service, schema: schema, handler: h, client: client, consumer: c, relay: relay, clock: clock,
                           logger: logger, shutdown: shutdown, limits: settings.limits)
        } }
        let timers = timerHandler.map { h in
            (0..<settings.timerWorkers).map { _ in
                TimerLoop(service: service, schema: schema, handler: h, client: client, listenConfiguration: settings.database, relay: relay,
                          clock: clock, logger: logger, shutdown: shutdown, batchSize: settings.timerBatchSize, lead: settings.timerLead)
            }
        } ?? []
        let pruner = Pruner(schema: schema, retention: settings.retention, clock: clock)
        logger.info("service started", metadata: ["service": "\(service)", "amqp.url": "\(settings.amqp.redactedURL)", "workers": "\(settings.workers)"])

        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                let sweeper = Task { await relay.runSweeper() }
                let pruning = Task { await pruner.run(client: client, logger: self.logger) }
                group.addTask { await processor.run(workers: self.settings.workers, batchSize: self.settings.batchSize) }
                if let eventProcessor {
                    group.addTask { await eventProcessor.run(batchSize: self.settings.batchSize) }
                }
                for loop in timers {
                    group.addTask { await loop.run() }
                }
                await group.waitForAll()
                pruning.cancel()
                sweeper.cancel()
                _ = await sweeper.value
                _ = await pruning.value
            }
        } onGracefulShutdown: {
            self.logger.info("shutting down: no new commands; finishing those in hand")
            shutdown.begin()
            for loop in timers { loop.stop() }
            Task {
                await consumer.stopConsuming()
                await eventConsumer?.stopConsuming()
            }
        }
        // Workers are done: their acks are queued and their outbox rows published (or
        // left for the sweeper of the next start). Closing sends the acks first.
        await consumer.close()
        await eventConsumer?.close()
        await publisher.close()
        await client.close()
        logger.info("service stopped", metadata: ["service": "\(service)"])
    }

    /// Refuses to start when the handlers consume something other than what the shared
    /// description (``ContractTopology/services``) says, which would leave commands unbound.
    static func checkContract(service: String, handler: any CommandHandler, eventHandler: (any EventHandler)?) throws {
        guard let entry = ContractTopology.queues(of: service) else {
            throw ContractMismatch(message: "service \(service) is not in ContractTopology.services")
        }
        if Set(entry.commands) != Set(handler.commandNames) {
            throw ContractMismatch(message: "\(service) handles \(handler.commandNames.sorted()) but ContractTopology lists \(entry.commands.sorted())")
        }
        // A retired event type is still applied when one is left in the queue from before.
        let listed = Set(entry.events).union(entry.retiredEvents)
        if listed != Set(eventHandler?.eventTypes ?? []) {
            throw ContractMismatch(message: "\(service) consumes events \((eventHandler?.eventTypes ?? []).sorted()) but ContractTopology lists \(listed.sorted())")
        }
    }
}

/// The handlers and the shared topology description disagree (a programming error).
public struct ContractMismatch: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "contract mismatch: \(message)" }
}
