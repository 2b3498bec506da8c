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
}
