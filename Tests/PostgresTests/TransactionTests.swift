import CSSPostgres
import Testing

private struct DomainRefused: Error {}

@Suite struct TransactionTests {
    @Test func throwingBodyRollsBackEverything() async throws {
        try await withFreshSchema { client, schema in
            try await client.execute("CREATE TABLE \(schema).tickets (id int PRIMARY KEY)")
            await #expect(throws: DomainRefused.self) {
                try await client.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).tickets VALUES (1)")
                    try session.execute("INSERT INTO \(schema).tickets VALUES (2)")
                    throw DomainRefused()
                }
            }
            #expect(try await client.query("SELECT count(*) FROM \(schema).tickets")[0].int(0) == 0)
        }
    }

    @Test func manyStatementsCommitTogether() async throws {
        try await withFreshSchema { client, schema in
            try await client.execute("CREATE TABLE \(schema).tickets (id int PRIMARY KEY, state text)")
            let count = try await client.withTransaction { session -> Int in
                for id in 1...50 { try session.execute("INSERT INTO \(schema).tickets VALUES ($1, 'new')", [.int(id)]) }
                let updated = try session.execute("UPDATE \(schema).tickets SET state = $1 WHERE id <= $2", ["open", 10])
                #expect(updated == 10)
                return try session.query("SELECT count(*) FROM \(schema).tickets")[0].int(0)
            }
            #expect(count == 50)
            #expect(try await client.query("SELECT count(*) FROM \(schema).tickets WHERE state = 'open'")[0].int(0) == 10)
        }
    }

    @Test func swallowedStatementErrorDoesNotCommit() async throws {
        try await withFreshSchema { client, schema in
            try await client.execute("CREATE TABLE \(schema).tickets (id int PRIMARY KEY)")
            let error = await #expect(throws: PostgresError.self) {
                try await client.withTransaction { session in
                    try session.execute("INSERT INTO \(schema).tickets VALUES (1)")
                    _ = try? session.execute("INSERT INTO \(schema).tickets VALUES (1)")
                }
            }
            #expect(error?.code == "transaction_aborted")
            #expect(try await client.query("SELECT count(*) FROM \(schema).tickets")[0].int(0) == 0)
        }
    }

    @Test func sessionLeftInsideTransactionIsRolledBack() async throws {
        try await withFreshSchema(poolSize: 1) { client, schema in
            try await client.execute("CREATE TABLE \(schema).tickets (id int PRIMARY KEY)")
            let error = await #expect(throws: PostgresError.self) {
                try await client.withSession { session in
                    try session.execute("BEGIN")
                    try session.execute("INSERT INTO \(schema).tickets VALUES (1)")
                }
            }
            #expect(error?.code == "transaction_left_open")
            // The single pooled connection came back clean.
            try await client.withTransaction { session in try session.execute("INSERT INTO \(schema).tickets VALUES (2)") }
            #expect(try await client.query("SELECT id FROM \(schema).tickets").map { try $0.int(0) } == [2])
        }
    }

    @Test func transactionsDoNotNest() async throws {
        try await withFreshSchema { client, _ in
            let error = await #expect(throws: PostgresError.self) {
                try await client.withTransaction { session in
                    try session.withTransaction { _ in }
                }
            }
            #expect(error?.code == "transaction_in_progress")
        }
    }
}
