import CSSPostgres
import Foundation
import Testing

@Suite struct ValueTests {
    @Test func everyValueTypeRoundTripsIncludingNull() async throws {
        try await withFreshSchema { client, schema in
            try await client.execute(
                """
                CREATE TABLE \(schema).everything (
                    id serial PRIMARY KEY, s text, i bigint, i64 bigint, d double precision, b boolean,
                    t timestamptz, u uuid, bytes bytea, j jsonb
                )
                """)
            let date = Date(timeIntervalSince1970: 1_772_438_400.123456)  // 2026-03-02T08:00:00.123456Z
            let uuid = UUID()
            let bytes: [UInt8] = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0]
            let values: [PostgresValue] = [
                .string("hello"), .int(-42), .int64(Int64.max), .double(-1.5e-7), .bool(true),
                .date(date), .uuid(uuid), .bytes(bytes), .json(#"{"a": [1, "two", null]}"#),
            ]
            let sql = "INSERT INTO \(schema).everything (s, i, i64, d, b, t, u, bytes, j) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            #expect(try await client.execute(sql, values) == 1)
            #expect(try await client.execute(sql, Array(repeating: .null, count: 9)) == 1)

            let rows = try await client.query("SELECT s, i, i64, d, b, t, u, bytes, j FROM \(schema).everything ORDER BY id")
            #expect(rows.count == 2)
            #expect(rows.columns == ["s", "i", "i64", "d", "b", "t", "u", "bytes", "j"])
            let row = rows[0]
            #expect(try row.string("s") == "hello")
            #expect(try row.int("i") == -42)
            #expect(try row.int64("i64") == Int64.max)
            #expect(try row.double("d") == -1.5e-7)
            #expect(try row.bool("b") == true)
            #expect(abs(try row.date("t").timeIntervalSince(date)) < 0.000_001)
            #expect(try row.uuid("u") == uuid)
            #expect(try row.bytes("bytes") == bytes)
            #expect(try row.string("j") == #"{"a": [1, "two", null]}"#)
            // By index too.
            #expect(try row.string(0) == "hello")
            #expect(try row.uuid(6) == uuid)

            let empty = rows[1]
            #expect(try empty.optionalString("s") == nil)
            #expect(try empty.optionalInt("i") == nil)
            #expect(try empty.optionalInt64("i64") == nil)
            #expect(try empty.optionalDouble("d") == nil)
            #expect(try empty.optionalBool("b") == nil)
            #expect(try empty.optionalDate("t") == nil)
            #expect(try empty.optionalUUID("u") == nil)
            #expect(try empty.optionalBytes("bytes") == nil)
            #expect(try empty.optionalString("j") == nil)
            #expect(try empty.isNull(8))
            let error = #expect(throws: PostgresError.self) { try empty.string("s") }
            #expect(error?.code == "decode_failed")
        }
    }

    @Test func awkwardTextRoundTripsVerbatim() async throws {
        let samples = [
            "🎫 ticket 👩🏽‍💻 résumé ünïcødé 中文", "O'Brien", #"back\slash and \\ double \x41"#,
            "'; DROP TABLE x; --", #"" quoted ""#, "$1 $2 ?", "tab\tnew\nline\r", "%_ LIKE wildcards", "",
            String(repeating: "long ", count: 20_000),
        ]
        try await withFreshSchema { client, schema in
            try await client.execute("CREATE TABLE \(schema).texts (n int PRIMARY KEY, body text NOT NULL)")
            try await client.withTransaction { session in
                for (n, text) in samples.enumerated() {
                    try session.execute("INSERT INTO \(schema).texts (n, body) VALUES ($1, $2)", [.int(n), .string(text)])
                }
            }
            let stored = try await client.query("SELECT body FROM \(schema).texts ORDER BY n").map { try $0.string("body") }
            #expect(stored == samples)
            // The table named in the injection attempt is ours and still exists, with every row.
            let echoed = try await client.query("SELECT $1::text AS v, length($1) AS n", [.string(samples[0])])
            #expect(try echoed[0].string("v") == samples[0])
            #expect(try echoed[0].int("n") == samples[0].unicodeScalars.count)
        }
    }

    @Test func textWithNulIsRefusedNotTruncated() async throws {
        try await withFreshSchema { client, schema in
            try await client.execute("CREATE TABLE \(schema).texts (body text)")
            let error = await #expect(throws: PostgresError.self) {
                try await client.execute("INSERT INTO \(schema).texts VALUES ($1)", [.string("before\u{0}after")])
            }
            #expect(error?.code == "invalid_parameter")
            #expect(error?.message.contains("NUL") == true)
            let jsonError = await #expect(throws: PostgresError.self) {
                try await client.query("SELECT $1::jsonb", [.json("\"a\u{0}\"")])
            }
            #expect(jsonError?.code == "invalid_parameter")
            #expect(try await client.query("SELECT count(*) FROM \(schema).texts")[0].int(0) == 0)
            // bytea carries NUL fine.
            #expect(try await client.query("SELECT $1::bytea AS b", [.bytes([0, 0])])[0].bytes("b") == [0, 0])
        }
    }

    @Test func uniqueViolationHasItsSQLState() async throws {
        try await withFreshSchema { client, schema in
            try await client.execute("CREATE TABLE \(schema).contacts (email text CONSTRAINT contacts_email_key UNIQUE)")
            try await client.execute("INSERT INTO \(schema).contacts VALUES ($1)", ["ana@acme.example"])
            let error = await #expect(throws: PostgresError.self) {
                try await client.execute("INSERT INTO \(schema).contacts VALUES ($1)", ["ana@acme.example"])
            }
            #expect(error?.code == "23505")
            #expect(error?.isUniqueViolation == true)
            #expect(error?.isConnectionError == false)
            #expect(error?.constraint == "contacts_email_key")
        }
    }

    @Test func decodeFailureNamesTheColumn() async throws {
        try await withFreshSchema { client, _ in
            let row = try await client.query("SELECT 'abc'::text AS tracking_number, 1.5::float8 AS ratio")[0]
            let error = #expect(throws: PostgresError.self) { try row.int("tracking_number") }
            #expect(error?.code == "decode_failed")
            #expect(error?.message.contains("tracking_number") == true)
            let byIndex = #expect(throws: PostgresError.self) { try row.int(1) }
            #expect(byIndex?.message.contains("ratio") == true)
            let missing = #expect(throws: PostgresError.self) { try row.string("nope") }
            #expect(missing?.code == "decode_failed")
        }
    }

    @Test func timestampsComeBackInUTCWhateverTheInputZone() async throws {
        try await withFreshSchema { client, _ in
            let row = try await client.query(
                "SELECT '2026-03-02 03:00:00.5-05'::timestamptz AS t, current_setting('TimeZone') AS zone, $1::timestamptz AS echoed",
                [.date(Date(timeIntervalSince1970: 0))])[0]
            #expect(try row.string("zone") == "UTC")
            #expect(try row.string("t") == "2026-03-02 08:00:00.5+00")
            #expect(try row.date("t") == Date(timeIntervalSince1970: 1_772_438_400.5))
            #expect(try row.date("echoed") == Date(timeIntervalSince1970: 0))
        }
    }
}
