import CSSPostgres
import Foundation
import Testing

@Suite struct ReconnectTests {
    /// Terminates `pid` and waits (up to 5 s) until the backend has gone, so its goodbye is on the socket.
    private func terminate(_ pid: Int, using killer: PostgresConnection) async throws {
        let row = try await killer.query("SELECT pg_terminate_backend($1::int, 5000) AS ok", [.int(pid)])[0]
        #expect(try row.bool("ok"))
    }

    @Test func idleConnectionKilledByTheServerReconnectsOnNextCall() async throws {
        let victim = PostgresConnection(configuration: try testConfiguration(), logger: testLogger())
        let killer = PostgresConnection(configuration: try testConfiguration(), logger: testLogger())
        let before = try await victim.query("SELECT pg_backend_pid() AS pid")[0].int("pid")
        try await terminate(before, using: killer)

        let after = try await victim.withTransaction { try $0.query("SELECT pg_backend_pid() AS pid")[0].int("pid") }
        #expect(after != before)
        // And again in autocommit mode, after a second kill.
        try await terminate(after, using: killer)
        #expect(try await victim.query("SELECT 41 + 1 AS v")[0].int("v") == 42)
        await victim.close()
        await killer.close()
    }

    @Test func transactionInFlightWhenKilledGetsAConnectionError() async throws {
        try await withFreshSchema { client, schema in
            try await client.execute("CREATE TABLE \(schema).tickets (id int PRIMARY KEY)")
            let application = "victim-\(UUID().uuidString.prefix(8))"
            let victim = PostgresConnection(configuration: try testConfiguration(applicationName: application), logger: testLogger())
            let killer = PostgresConnection(configuration: try testConfiguration(), logger: testLogger())

            let inFlight = Task {
                try await victim.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).tickets VALUES (1)")
                    _ = try session.query("SELECT pg_sleep(30)")
                }
            }
            var pid: Int?
            for _ in 0..<100 where pid == nil {
                try await Task.sleep(for: .milliseconds(50))
                pid = try await killer.query(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'SELECT pg_sleep%'",
                    [.string(application)]
                ).first?.int("pid")
            }
            let victimPID = try #require(pid)
            try await terminate(victimPID, using: killer)

            let error = await #expect(throws: PostgresError.self) { try await inFlight.value }
            #expect(error?.isConnectionError == true)
            #expect(error?.code == "connection_lost")

            // The half-done transaction was not replayed; the connection works again.
            #expect(try await victim.query("SELECT count(*) FROM \(schema).tickets")[0].int(0) == 0)
            try await victim.withTransaction { try $0.execute("INSERT INTO \(schema).tickets VALUES (2)") }
            #expect(try await client.query("SELECT id FROM \(schema).tickets").map { try $0.int(0) } == [2])
            await victim.close()
            await killer.close()
        }
    }

    @Test func unreachableServerIsAConnectionFailure() async throws {
        var configuration = try testConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 1
        configuration.connectAttempts = 2
        let connection = PostgresConnection(configuration: configuration, logger: testLogger())
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        #expect(error?.code == "connection_failed")
        #expect(error?.isConnectionError == true)
    }

    @Test func closedConnectionRefusesWork() async throws {
        let connection = PostgresConnection(configuration: try testConfiguration(), logger: testLogger())
        try await connection.connect()
        await connection.close()
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        #expect(error?.code == "connection_closed")
    }
}
