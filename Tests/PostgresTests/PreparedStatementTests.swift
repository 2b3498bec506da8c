import CSSPostgres
import Foundation
import Testing

@Suite struct PreparedStatementTests {
    @Test func repeatedStatementsAreServedByAPreparedStatementWithFreshValues() async throws {
        try await withFreshSchema(poolSize: 1) { client, schema in
            try await client.execute("CREATE TABLE \(schema).t (id int8 PRIMARY KEY, name text)")
            for i in 0..<6 {
                try await client.execute("INSERT INTO \(schema).t (id, name) VALUES ($1, $2)", [.int(i), i % 2 == 0 ? .string("n\(i)") : .null])
            }
            var names: [String?] = []
            for i in 0..<6 {
                let rows = try await client.query("SELECT name FROM \(schema).t WHERE id = $1", [.int(i)])
                names.append(try rows[0].optionalString(0))
            }
            #expect(names == ["n0", nil, "n2", nil, "n4", nil])
            // The session really holds prepared statements now (the second run of a text prepares it).
            let preparedCount = try await client.query("SELECT count(*) FROM pg_prepared_statements")[0].int(0)
            #expect(preparedCount >= 2)
            // Array parameters survive quoting: quotes, backslashes, commas, braces, NULL.
            let tricky: [String?] = ["a\"b", "c\\d", "e,f", "{g}", nil, "🚀 'h'"]
            for _ in 0..<2 {
                let rows = try await client.query("SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS u(x, o) ORDER BY o", [PostgresArray.text(tricky)])
                #expect(try rows.map { try $0.optionalString(0) } == tricky)
            }
            let bytes = try await client.query("SELECT b FROM unnest($1::bytea[]) AS u(b)", [PostgresArray.bytes([[0, 1, 255], []])])
            #expect(try bytes.map { try $0.bytes(0) } == [[0, 1, 255], []])
        }
    }

    // A keyed look-up whose generic plan PostgreSQL made while its table was small (a few hundred rows,
    // analysed) is a sequential scan, and PostgreSQL keeps it while the table grows until the next
    // ANALYZE. The connection prepares each statement again after 100 executions, so the plan it then
    // settles on uses the index.
    @Test func aStatementIsPlannedAgainAfterItsTableHasGrown() async throws {
        try await withFreshSchema(poolSize: 1) { client, schema in
            // No autovacuum: its ANALYZE would replace the plan by itself in the middle of the test.
            try await client.execute("CREATE TABLE \(schema).t (id text PRIMARY KEY, v text) WITH (autovacuum_enabled = false)")
            try await client.execute("INSERT INTO \(schema).t SELECT 'k' || i, repeat('x', 200) FROM generate_series(1, 300) AS i")
            try await client.execute("ANALYZE \(schema).t")
            let lookup = "SELECT id FROM \(schema).t WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
            let absent = PostgresArray.text((1...50).map { "x\($0)" })
            func plan() async throws -> String {
                let name = try await client.query("SELECT name FROM pg_prepared_statements WHERE statement = $1", [.string(lookup)])[0].string(0)
                return try await client.query("EXPLAIN EXECUTE \(name)('{k1,k2}')").map { try $0.string(0) }.joined(separator: "\n")
            }
            for _ in 0..<20 { _ = try await client.query(lookup, [absent]) }
            try await client.execute("INSERT INTO \(schema).t SELECT 'k' || i, repeat('x', 200) FROM generate_series(301, 50000) AS i")
            // The premise: the plan made for the small table is still the one in use.
            let before = try await plan()
            #expect(before.contains("Seq Scan"), "\(before)")
            for _ in 20..<110 { _ = try await client.query(lookup, [absent]) }
            let now = try await plan()
            #expect(!now.contains("Seq Scan") && now.contains("Index"), "still planned for the small table: \(now)")
            #expect(try await client.query(lookup, [PostgresArray.text(["k7", "k49999", "x1"])]).map { try $0.string(0) } == ["k49999", "k7"])
            // One statement in the session for the text: the old one was deallocated.
            #expect(try await client.query("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", [.string(lookup)])[0].int(0) == 1)
        }
    }
}
