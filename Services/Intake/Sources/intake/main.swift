import Foundation
import CSSModel
import CSSRuntime
import CSSSupport
import IntakeService
import Logging
import ServiceLifecycle

// The intake service: takes Service Tickets and customer settings in from css.commands.
// Configuration: see HostSettings (CSS_AMQP_URL, CSS_DATABASE_URL, CSS_WORKERS, ...).
let environment = Environment.process
do {
    let level = try HostSettings.logLevel(environment)
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    let logger = Logger(label: "css.intake")
    let settings = try HostSettings.fromEnvironment(environment, service: "intake")
    let host = ServiceHost(service: "intake", schema: IntakeSchema.name, handler: IntakeHandler(),
                           migrations: IntakeSchema.migrations, settings: settings, clock: SystemClock(), logger: logger)
    let group = ServiceGroup(configuration: .init(services: [host], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
} catch let error as ConfigurationError {
    FileHandle.standardError.write("intake: configuration error: \(error)\n")
    exit(78) // EX_CONFIG
} catch {
    FileHandle.standardError.write("intake: \(error)\n")
    exit(1)
}
