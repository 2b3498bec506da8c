import CSSPostgres
import Foundation
import Testing

/// The real server's codes for the failures `failureClass` tables, and a connection fit
/// for the next unit of work after each.
@Suite struct FailureClassIntegrationTests {
    /// A connection of its own, so "the next unit of work" runs on the same backend.
    private struct Victim {
        let connection: PostgresConnection
        let application: String
        let pid: Int
        let schema: String

        init(schema: String) async throws {
            application = "victim-\(UUID().uuidString.prefix(8))"
            connection = PostgresConnection(configuration: try testConfiguration(applicationName: application), logger: testLogger())
            pid = try await connection.query("SELECT pg_backend_pid()")[0].int(0)
            self.schema = schema
        }

        /// The failed unit of work left nothing behind: same backend, no transaction, its
        /// row (id 99) rolled back, the settings it made undone, and new work commits.
        func expectUsable(
            settings: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let row = try await connection.query(
                "SELECT pg_backend_pid() AS pid, (SELECT count(*) FROM \(schema).items WHERE id = 99) AS leftover")[0]
            #expect(try row.int("pid") == pid, "the connection was replaced", sourceLocation: sourceLocation)
            #expect(try row.int("leftover") == 0, "the failed unit of work was not rolled back", sourceLocation: sourceLocation)
            for (name, value) in settings {
                #expect(try await connection.query("SELECT current_setting($1)", [.string(name)])[0].string(0) == value,
                        sourceLocation: sourceLocation)
            }
            try await connection.withTransaction { session in
                try session.execute("INSERT INTO \(schema).items VALUES (99, 'next unit of work')")
                try session.execute("DELETE FROM \(schema).items WHERE id = 99")
            }
        }

        func close() async { await connection.close() }
    }

    /// Holds the row lock on `items` id 1 in an open transaction until `release()`.
    private struct LockHolder {
        let task: Task<Void, any Error>
        let pid: Int
        let holder: PostgresConnection
        let control: PostgresConnection

        init(schema: String) async throws {
            let application = "holder-\(UUID().uuidString.prefix(8))"
            let holder = PostgresConnection(configuration: try testConfiguration(applicationName: application), logger: testLogger())
            self.holder = holder
            task = Task {
                try await holder.withTransaction { session in
                    try session.execute("UPDATE \(schema).items SET note = 'locked' WHERE id = 1")
                    _ = try session.query("SELECT pg_sleep(30)")
                }
            }
            control = PostgresConnection(configuration: try testConfiguration(), logger: testLogger())
            pid = try await waitForBackend(application: application, condition: "query LIKE 'SELECT pg_sleep%'", using: control)
        }

        /// Cancels the holder's sleep, which rolls its transaction back and frees the lock.
        func release() async throws {
            _ = try await control.query("SELECT pg_cancel_backend($1::int)", [.int(pid)])
            let error = await #expect(throws: PostgresError.self) { try await task.value }
            #expect(error?.sqlState == "57014")
            await holder.close()
            await control.close()
        }
    }

    /// Waits (up to 5 s) for a backend of `application` that is active and matches `condition`.
    private static func waitForBackend(application: String, condition: String, using control: PostgresConnection) async throws -> Int {
        for _ in 0..<100 {
            if let pid = try await control.query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND \(condition)",
                [.string(application)]
            ).first?.int("pid") {
                return pid
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no backend of \(application) matched \(condition)")
        throw CancellationError()
    }

    private func withItems(_ body: (PostgresClient, String) async throws -> Void) async throws {
        try await withFreshSchema { client, schema in
            try await client.execute("CREATE TABLE \(schema).items (id int PRIMARY KEY, note text)")
            try await client.execute("INSERT INTO \(schema).items VALUES (1, 'first')")
            try await body(client, schema)
        }
    }

    @Test func statementTimeoutIsTransient() async throws {
        try await withItems { _, schema in
            let victim = try await Victim(schema: schema)
            let before = try await victim.connection.query("SELECT current_setting('statement_timeout')")[0].string(0)
            let error = await #expect(throws: PostgresError.self) {
                try await victim.connection.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                    try session.execute("SET statement_timeout = '50ms'")
                    _ = try session.query("SELECT pg_sleep(1)")
                }
            }
            #expect(error?.code == "57014")
            #expect(error?.failureClass == .transient)
            #expect(error?.isConnectionError == false)
            // SET inside a rolled-back transaction is undone too.
            try await victim.expectUsable(settings: ["statement_timeout": before])
            await victim.close()
        }
    }

    @Test func configuredStatementTimeoutIsTransient() async throws {
        try await withItems { _, schema in
            var configuration = try testConfiguration()
            configuration.statementTimeout = .milliseconds(50)
            let connection = PostgresConnection(configuration: configuration, logger: testLogger())
            let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT pg_sleep(1)") }
            #expect(error?.code == "57014")
            #expect(error?.isTransient == true)
            #expect(try await connection.query("SELECT 1 AS one")[0].int("one") == 1)
            await connection.close()
        }
    }

    @Test func lockTimeoutIsTransient() async throws {
        try await withItems { _, schema in
            let holder = try await LockHolder(schema: schema)
            let victim = try await Victim(schema: schema)
            let before = try await victim.connection.query("SELECT current_setting('lock_timeout')")[0].string(0)
            let error = await #expect(throws: PostgresError.self) {
                try await victim.connection.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                    try session.execute("SET lock_timeout = '50ms'")
                    try session.execute("UPDATE \(schema).items SET note = 'mine' WHERE id = 1")
                }
            }
            #expect(error?.code == "55P03")
            #expect(error?.failureClass == .transient)
            try await holder.release()
            try await victim.expectUsable(settings: ["lock_timeout": before])
            await victim.close()
        }
    }

    @Test func cancelledWhileBlockedOnALockIsTransient() async throws {
        try await withItems { _, schema in
            let holder = try await LockHolder(schema: schema)
            let victim = try await Victim(schema: schema)
            let blocked = Task {
                try await victim.connection.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                    try session.execute("UPDATE \(schema).items SET note = 'mine' WHERE id = 1")
                }
            }
            // What an operator does about a statement stuck on a lock.
            let pid = try await Self.waitForBackend(application: victim.application, condition: "wait_event_type = 'Lock'", using: holder.control)
            #expect(pid == victim.pid)
            #expect(try await holder.control.query("SELECT pg_cancel_backend($1::int) AS ok", [.int(pid)])[0].bool("ok"))
            let error = await #expect(throws: PostgresError.self) { try await blocked.value }
            #expect(error?.code == "57014")
            #expect(error?.failureClass == .transient)
            #expect(error?.isConnectionError == false)
            try await holder.release()
            try await victim.expectUsable()
            await victim.close()
        }
    }

    @Test func readOnlyTransactionIsTransient() async throws {
        try await withItems { _, schema in
            let victim = try await Victim(schema: schema)
            let error = await #expect(throws: PostgresError.self) {
                try await victim.connection.withTransaction { session in
                    try session.execute("SET TRANSACTION READ ONLY")
                    try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                }
            }
            #expect(error?.code == "25006")
            #expect(error?.failureClass == .transient)
            try await victim.expectUsable(settings: ["transaction_read_only": "off"])

            // A server that became read-only, as a demoted primary does: every write fails the same way.
            try await victim.connection.execute("SET default_transaction_read_only = on")
            let again = await #expect(throws: PostgresError.self) {
                try await victim.connection.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                }
            }
            #expect(again?.code == "25006")
            #expect(again?.isTransient == true)
            try await victim.connection.execute("RESET default_transaction_read_only")
            try await victim.expectUsable()
            await victim.close()
        }
    }

    @Test func untranslatableCharacterIsPermanent() async throws {
        try await withItems { _, schema in
            let victim = try await Victim(schema: schema)
            // JSON may spell a NUL; PostgreSQL text cannot hold one.
            for (sql, parameters) in [
                ("SELECT '\"\\u0000\"'::jsonb", [PostgresValue]()),
                ("SELECT $1::jsonb", [.string("{\"note\": \"a\\u0000b\"}")]),
            ] {
                let error = await #expect(throws: PostgresError.self) {
                    try await victim.connection.withTransaction { session in
                        try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                        _ = try session.query(sql, parameters)
                    }
                }
                #expect(error?.code == "22P05")
                #expect(error?.failureClass == .permanent)
                try await victim.expectUsable()
            }
            await victim.close()
        }
    }

    @Test func invalidByteSequenceIsPermanent() async throws {
        try await withItems { _, schema in
            let victim = try await Victim(schema: schema)
            let error = await #expect(throws: PostgresError.self) {
                try await victim.connection.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                    _ = try session.query("SELECT convert_from($1::bytea, 'UTF8')", [.bytes([0x61, 0xFF])])
                }
            }
            #expect(error?.code == "22021")
            #expect(error?.failureClass == .permanent)
            try await victim.expectUsable()
            await victim.close()
        }
    }

    @Test func nulInAParameterIsPermanent() async throws {
        try await withItems { _, schema in
            let victim = try await Victim(schema: schema)
            let error = await #expect(throws: PostgresError.self) {
                try await victim.connection.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                    try session.execute("INSERT INTO \(schema).items VALUES (2, $1)", [.string("a\u{0}b")])
                }
            }
            #expect(error?.code == "invalid_parameter")
            #expect(error?.failureClass == .permanent)
            try await victim.expectUsable()
            await victim.close()
        }
    }

    @Test func uniqueViolationIsPermanent() async throws {
        try await withItems { _, schema in
            let victim = try await Victim(schema: schema)
            let error = await #expect(throws: PostgresError.self) {
                try await victim.connection.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).items VALUES (99, 'lost')")
                    try session.execute("INSERT INTO \(schema).items VALUES (1, 'again')")
                }
            }
            #expect(error?.code == "23505")
            #expect(error?.isUniqueViolation == true)
            #expect(error?.failureClass == .permanent)
            try await victim.expectUsable()
            await victim.close()
        }
    }

    @Test func closedPoolIsTransient() async throws {
        let client = PostgresClient(configuration: try testConfiguration(), size: 1, logger: testLogger())
        await client.close()
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error?.code == "client_closed")
        #expect(error?.failureClass == .transient)
    }
}
