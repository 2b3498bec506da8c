import CSSAMQP
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import Logging

/// Intake processes on a fresh vhost and database, with a contract client: the
/// ``SystemHarness`` of intake alone, under the names these tests use.
struct IntakeHarness {
    let system: SystemHarness

    var amqp: AMQPConfiguration { system.amqp }
    var database: PostgresConfiguration { system.database }
    var db: PostgresClient { system.db }
    var client: ContractClient { system.client }
    var processes: [ServiceProcess] { system.processes(of: "intake") }
    var logger: Logger { system.logger }

    /// Runs `body` with a fresh harness and always tears it down, also when `body` throws.
    static func with(processes count: Int = 1, env: [String: String] = [:], databaseSettings: [String: String] = [:], tapEvents: Bool = true,
                     _ body: (IntakeHarness) async throws -> Void) async throws {
        try await SystemHarness.with([.intake(count: count, env: env)], databaseSettings: databaseSettings, tapEvents: tapEvents) { system in
            try await body(IntakeHarness(system: system))
        }
    }

    static func start(processes count: Int = 1, env: [String: String] = [:], databaseSettings: [String: String] = [:],
                      tapEvents: Bool = true) async throws -> IntakeHarness {
        IntakeHarness(system: try await SystemHarness.start([.intake(count: count, env: env)], databaseSettings: databaseSettings, tapEvents: tapEvents))
    }

    func waitUntilReady() async throws { try await system.waitUntilReady() }

    func stop() async { await system.stop() }

    func onboard(_ customerId: String = "acme", contacts: [JSONValue]? = nil, extra: [String: JSONValue] = [:]) async throws -> Reply {
        try await system.onboard(customerId, contacts: contacts, extra: extra)
    }

    static func incident(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
        SystemHarness.incident(overrides)
    }

    func count(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> Int {
        try await system.count(sql, parameters)
    }
}
