import CSSModel
import CSSPostgres
import CSSSupport
import Foundation
import Logging
import ServiceLifecycle

/// The whole `main` of a command-consuming service.
public enum ServiceMain {
    /// Reads configuration, sets up logging, runs the service until SIGTERM/SIGINT and
    /// exits: 0 after a graceful shutdown, 78 (EX_CONFIG) naming the bad variable, 1 otherwise.
    public static func run(service: String, schema: String, handler: any CommandHandler, eventHandler: (any EventHandler)? = nil,
                           migrations: [Migration]) async -> Never {
        await run(service: service, schema: schema, migrations: migrations) { _, _ in (handler, eventHandler) }
    }

    /// The same, for a service whose handlers read settings of their own: `handlers` gets
    /// the environment and the clock, and a ``ConfigurationError`` it throws exits 78.
    public static func run(service: String, schema: String, migrations: [Migration],
                           handlers: (Environment, any CSSModel.Clock) throws -> (any CommandHandler, (any EventHandler)?)) async -> Never {
        await run(service: service, schema: schema, migrations: migrations, services: { env, clock in
            let (commands, events) = try handlers(env, clock)
            return ServiceHandlers(commands: commands, events: events)
        })
    }

    /// The same, with every kind of handler a service may have (commands, events, timers).
    public static func run(service: String, schema: String, migrations: [Migration],
                           services handlers: (Environment, any CSSModel.Clock) throws -> ServiceHandlers) async -> Never {
        let environment = Environment.process
        do {
            let level = try HostSettings.logLevel(environment)
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "css.\(service)")
            let settings = try HostSettings.fromEnvironment(environment, service: service)
            let clock = SystemClock()
            let h = try handlers(environment, clock)
            let host = ServiceHost(service: service, schema: schema, handler: h.commands, eventHandler: h.events, timerHandler: h.timers,
                                   migrations: migrations, settings: settings, clock: clock, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [host], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            exit(0)
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("\(service): configuration error: \(error)\n".utf8))
            exit(78)
        } catch {
            FileHandle.standardError.write(Data("\(service): \(error)\n".utf8))
            exit(1)
        }
    }
}

/// What a service reacts to: its commands, other services' events, its durable timers.
public struct ServiceHandlers: Sendable {
    public var commands: any CommandHandler
    public var events: (any EventHandler)?
    public var timers: (any TimerHandler)?

    public init(commands: any CommandHandler, events: (any EventHandler)? = nil, timers: (any TimerHandler)? = nil) {
        self.commands = commands
        self.events = events
        self.timers = timers
    }
}
