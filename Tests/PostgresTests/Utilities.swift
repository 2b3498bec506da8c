import CSSPostgres
import CSSSupport
import Foundation
import Logging

/// The server the integration tests use: `CSS_DATABASE_URL`, else the project default.
func testConfiguration(applicationName: String = "css-postgres-tests") throws -> PostgresConfiguration {
    var configuration = try PostgresConfiguration.fromEnvironment(.process, applicationName: applicationName)
    // Fail fast when no server is running instead of backing off for seconds per test.
    configuration.connectAttempts = 3
    configuration.backoff = Backoff(base: .milliseconds(20), cap: .milliseconds(200))
    return configuration
}

func testLogger() -> Logger {
    var logger = Logger(label: "css.postgres.tests")
    logger.logLevel = ProcessInfo.processInfo.environment["CSS_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
    return logger
}

/// A schema name no other test run uses.
func freshSchemaName() -> String {
    "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
}

/// Runs `body` with a pool and a fresh schema, dropping the schema and closing the pool afterwards.
func withFreshSchema<T>(
    poolSize: Int = 2, create: Bool = true,
    _ body: (PostgresClient, String) async throws -> T
) async throws -> T {
    let client = PostgresClient(configuration: try testConfiguration(), size: poolSize, logger: testLogger())
    let schema = freshSchemaName()
    if create { try await client.execute("CREATE SCHEMA \(schema)") }
    do {
        let value = try await body(client, schema)
        try await client.execute("DROP SCHEMA IF EXISTS \(schema) CASCADE")
        await client.close()
        return value
    } catch {
        _ = try? await client.execute("DROP SCHEMA IF EXISTS \(schema) CASCADE")
        await client.close()
        throw error
    }
}
