import CSSPostgres
import Testing

@Suite struct MigratorTests {
    /// Each applies something that fails if run twice, so a double application cannot hide.
    static let migrations = [
        Migration(version: 1, name: "create items", sql: "CREATE TABLE items (id int PRIMARY KEY, note text)"),
        Migration(version: 2, name: "seed", sql: "INSERT INTO items VALUES (1, 'seed'); INSERT INTO items VALUES (2, 'seed')"),
        Migration(version: 3, name: "add column", sql: "ALTER TABLE items ADD COLUMN extra text"),
    ]

    @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
        try await withFreshSchema(create: false) { client, schema in
            let configuration = try testConfiguration()
            // Separate pools, as separate service instances would have.
            let clients = (0..<4).map { _ in PostgresClient(configuration: configuration, size: 1, logger: testLogger()) }
            let results = try await withThrowingTaskGroup(of: [Int].self) { group in
                for other in clients {
                    group.addTask {
                        try await Migrator(schema: schema, migrations: Self.migrations).migrate(client: other, logger: testLogger())
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for other in clients { await other.close() }
            #expect(results.flatMap { $0 }.sorted() == [1, 2, 3])
            let recorded = try await client.query("SELECT version, name, applied_at FROM \(schema).schema_migrations ORDER BY version")
            #expect(try recorded.map { try $0.int("version") } == [1, 2, 3])
            #expect(try recorded[0].string("name") == "create items")
            #expect(try await client.query("SELECT count(*) FROM \(schema).items")[0].int(0) == 2)
        }
    }

    @Test func laterRunsApplyOnlyWhatIsNew() async throws {
        try await withFreshSchema(create: false) { client, schema in
            let first = try await Migrator(schema: schema, migrations: Array(Self.migrations.prefix(2))).migrate(client: client, logger: testLogger())
            #expect(first == [1, 2])
            let again = try await Migrator(schema: schema, migrations: Array(Self.migrations.prefix(2))).migrate(client: client, logger: testLogger())
            #expect(again == [])
            let upgrade = try await Migrator(schema: schema, migrations: Self.migrations.reversed()).migrate(client: client, logger: testLogger())
            #expect(upgrade == [3])
        }
    }

    @Test func failingMigrationLeavesNoRecord() async throws {
        try await withFreshSchema(create: false) { (client: PostgresClient, schema: String) async throws in
            let broken = [Self.migrations[0], Migration(version: 2, name: "broken", sql: "CREATE TABLE ok (id int); SELECT no_such_column FROM items")]
            let error = await #expect(throws: PostgresError.self) {
                try await Migrator(schema: schema, migrations: broken).migrate(client: client, logger: testLogger())
            }
            #expect(error?.code == "42703")
            #expect(try await client.query("SELECT version FROM \(schema).schema_migrations").map { try $0.int(0) } == [1])
            #expect(try await client.query("SELECT to_regclass($1) IS NULL AS missing", [.string("\(schema).ok")])[0].bool("missing"))
        }
    }

    @Test func databaseNewerThanTheBinaryIsRefused() async throws {
        try await withFreshSchema(create: false) { client, schema in
            _ = try await Migrator(schema: schema, migrations: Self.migrations).migrate(client: client, logger: testLogger())
            let error = await #expect(throws: PostgresError.self) {
                try await Migrator(schema: schema, migrations: Array(Self.migrations.prefix(1))).migrate(client: client, logger: testLogger())
            }
            #expect(error?.code == "unknown_migration_version")
            #expect(error?.message.contains("2, 3") == true)
        }
    }

    @Test(arguments: ["", "Tickets", "1abc", "a-b", "x\"; DROP SCHEMA public; --", "pg_catalog", String(repeating: "a", count: 64)])
    func invalidSchemaNamesAreRefusedBeforeAnySQL(name: String) async throws {
        let client = PostgresClient(configuration: try testConfiguration(), size: 1, logger: testLogger())
        let error = await #expect(throws: PostgresError.self) {
            try await Migrator(schema: name, migrations: Self.migrations).migrate(client: client, logger: testLogger())
        }
        #expect(error?.code == "invalid_schema_name")
        await client.close()
    }

    @Test func duplicateVersionsAreRefused() async throws {
        let client = PostgresClient(configuration: try testConfiguration(), size: 1, logger: testLogger())
        let error = await #expect(throws: PostgresError.self) {
            try await Migrator(schema: "dup_check", migrations: Self.migrations + [Self.migrations[0]]).migrate(client: client, logger: testLogger())
        }
        #expect(error?.code == "invalid_migrations")
        await client.close()
    }
}
