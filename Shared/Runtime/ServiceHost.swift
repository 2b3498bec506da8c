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
/// | `CSS_LOG_LEVEL` | info | trace, debug, info, notice, warning, error, critical |
public struct HostSettings: Sendable {
    public var amqp: AMQPConfiguration
    public var database: PostgresConfiguration
    public var workers: Int
    public var batchSize: Int
    public var prefetch: Int

    public static func fromEnvironment(_ env: Environment, service: String) throws -> HostSettings {
        HostSettings(
            amqp: try AMQPConfiguration.fromEnvironment(env),
            database: try PostgresConfiguration.fromEnvironment(env, applicationName: "css-\(service)"),
            // Measured on 2 cores (Benchmarks/README.md): two workers with large batches keep
            // both throughput and reply latency in target; more workers make smaller batches
            // and more commits for the same load.
            workers: try env.int("CSS_WORKERS", default: 2, range: 1...64),
            batchSize: try env.int("CSS_BATCH_SIZE", default: 256, range: 1...1000),
            prefetch: try env.int("CSS_PREFETCH", default: 512, range: 1...65535))
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
    let migrations: [Migration]
    let clock: any CSSModel.Clock
    let logger: Logger

    public init(service: String, schema: String, handler: any CommandHandler, eventHandler: (any EventHandler)? = nil,
                migrations: [Migration], settings: HostSettings, clock: any CSSModel.Clock, logger: Logger) {
        self.service = service
        self.schema = schema
        self.handler = handler
        self.eventHandler = eventHandler
        self.migrations = migrations
        self.settings = settings
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        let client = PostgresClient(configuration: settings.database, size: settings.workers + 1, logger: logger)
        let applied = try await Migrator(schema: schema, migrations: migrations).migrate(client: client, logger: logger)
        logger.info("database ready", metadata: ["db.schema": "\(schema)", "db.applied": "\(applied)"])

        var topology = ContractTopology.commandQueue(service: service, commands: handler.commandNames)
        if let eventHandler {
            topology = topology.merging(ContractTopology.eventQueue(service: service, types: eventHandler.eventTypes))
        }
        let publisher = AMQPPublisher(configuration: settings.amqp, topology: topology, name: "\(service)-publisher", logger: logger)
        let consumer = AMQPConsumer(configuration: settings.amqp, topology: topology, queue: ContractTopology.commandQueueName(service: service),
                                    prefetch: settings.prefetch, name: "\(service)-consumer", logger: logger)
        let relay = OutboxRelay(store: OutboxStore(schema: schema), client: client, publisher: publisher, logger: logger)
        let processor = CommandProcessor(service: service, schema: schema, handler: handler, client: client, consumer: consumer,
                                         relay: relay, clock: clock, logger: logger)
        let eventConsumer = eventHandler.map { _ in
            AMQPConsumer(configuration: settings.amqp, topology: topology, queue: ContractTopology.eventQueueName(service: service),
                         prefetch: settings.prefetch, name: "\(service)-events", logger: logger)
        }
        let eventProcessor = eventHandler.flatMap { h in eventConsumer.map { c in
            EventProcessor(service: service, schema: schema, handler: h, client: client, consumer: c, relay: relay, clock: clock, logger: logger)
        } }
        logger.info("service started", metadata: ["service": "\(service)", "amqp.url": "\(settings.amqp.redactedURL)", "workers": "\(settings.workers)"])

        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                let sweeper = Task { await relay.runSweeper() }
                for _ in 0..<settings.workers {
                    group.addTask { await processor.run(batchSize: self.settings.batchSize) }
                }
                if let eventProcessor {
                    group.addTask { await eventProcessor.run(batchSize: self.settings.batchSize) }
                }
                await group.waitForAll()
                sweeper.cancel()
                _ = await sweeper.value
            }
        } onGracefulShutdown: {
            self.logger.info("shutting down: no new commands; finishing those in hand")
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
}
