import CSSPostgres
import Logging
import Synchronization
import Testing

@Suite struct MigratorTests {
    /// Each applies something that fails if run twice, so a double application cannot hide.
    static let migrations = [
        Migration(version: 1, name: "create items", sql: "CREATE TABLE items (id int PRIMARY KEY, note text)"),
        Migration(version: 2, name: "seed", sql: "INSERT INTO items VALUES (1, 'seed'); INSERT INTO items VALUES (2, 'seed')"),
        Migration(version: 3, name: "add column", sql: "ALTER TABLE items ADD COLUMN extra text"),
    ]
    /// The contract steps that follow: code from before them reads `note` or `extra`.
    static let contract = [
        Migration(version: 4, name: "drop items.note", sql: "ALTER TABLE items DROP COLUMN note", breaking: true),
        Migration(version: 5, name: "rename items.extra", sql: "ALTER TABLE items RENAME COLUMN extra TO detail", breaking: true),
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

    @Test func databaseNewerThanTheBinaryIsRefusedWhenAMigrationItLacksIsBreaking() async throws {
        try await withFreshSchema(create: false) { client, schema in
            let all = Self.migrations + Self.contract.prefix(1)
            _ = try await Migrator(schema: schema, migrations: all).migrate(client: client, logger: testLogger())
            let error = await #expect(throws: PostgresError.self) {
                try await Migrator(schema: schema, migrations: Array(Self.migrations.prefix(2))).migrate(client: client, logger: testLogger())
            }
            #expect(error?.code == "breaking_migration_ahead")
            #expect(error?.code == PostgresError.breakingMigrationAhead)
            #expect(error?.message == "schema \(schema) has breaking migration 4 (drop items.note) that this build predates; deploy a build that knows it")
            #expect(error?.failureClass == .permanent)
        }
    }

    @Test func everyBreakingMigrationAheadIsNamed() async throws {
        try await withFreshSchema(create: false) { client, schema in
            _ = try await Migrator(schema: schema, migrations: Self.migrations + Self.contract).migrate(client: client, logger: testLogger())
            let error = await #expect(throws: PostgresError.self) {
                try await Migrator(schema: schema, migrations: Array(Self.migrations.prefix(1))).migrate(client: client, logger: testLogger())
            }
            #expect(error?.code == "breaking_migration_ahead")
            #expect(error?.message.contains("breaking migrations 4 (drop items.note), 5 (rename items.extra) that this build predates") == true)
            #expect(error?.message.hasSuffix("deploy a build that knows them") == true)
            // The additive ones it lacks are not what stops it.
            #expect(error?.message.contains("2 (") == false)
            #expect(error?.message.contains("3 (") == false)
        }
    }

    @Test func olderBinaryStartsAgainstAnAdditiveNewerSchema() async throws {
        try await withFreshSchema(create: false) { client, schema in
            _ = try await Migrator(schema: schema, migrations: Self.migrations).migrate(client: client, logger: testLogger())
            let records = LogRecords()
            let logger = Logger(label: "migrator") { _ in records }
            let applied = try await Migrator(schema: schema, migrations: Array(Self.migrations.prefix(1))).migrate(client: client, logger: logger)
            #expect(applied == [])
            let warning = try #require(records.entries.first { $0.level == .warning })
            #expect(warning.message == "schema is newer than this build; running against it, its migrations are additive")
            #expect(warning.metadata["db.unknown_versions"] == "[2, 3]")
            #expect(warning.metadata["db.schema"] == "\(schema)")
            // Nothing was applied, recorded or undone.
            #expect(try await client.query("SELECT version FROM \(schema).schema_migrations ORDER BY version").map { try $0.int(0) } == [1, 2, 3])
            #expect(try await client.query("SELECT count(*) FROM \(schema).items")[0].int(0) == 2)
            // And the newer build, back again, finds nothing to do either.
            #expect(try await Migrator(schema: schema, migrations: Self.migrations).migrate(client: client, logger: testLogger()) == [])
        }
    }

    @Test func breakingFlagIsRecorded() async throws {
        try await withFreshSchema(create: false) { client, schema in
            let applied = try await Migrator(schema: schema, migrations: Self.migrations + Self.contract).migrate(client: client, logger: testLogger())
            #expect(applied == [1, 2, 3, 4, 5])
            let recorded = try await client.query("SELECT version, breaking FROM \(schema).schema_migrations ORDER BY version")
            #expect(try recorded.map { try $0.bool("breaking") } == [false, false, false, true, true])
            #expect(Migration(version: 9, name: "x", sql: "").breaking == false)
        }
    }

    @Test func schemaMigrationsTableWithoutTheFlagIsUpgradedInPlace() async throws {
        try await withFreshSchema { client, schema in
            // The table as builds before the flag created it, with migrations 1 and 2 applied.
            try await client.execute(
                """
                CREATE TABLE \(schema).schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            try await client.execute("CREATE TABLE \(schema).items (id int PRIMARY KEY, note text)")
            try await client.execute("INSERT INTO \(schema).items VALUES (1, 'seed'), (2, 'seed')")
            try await client.execute("INSERT INTO \(schema).schema_migrations (version, name) VALUES (1, 'create items'), (2, 'seed')")

            let applied = try await Migrator(schema: schema, migrations: Self.migrations + Self.contract.prefix(1)).migrate(client: client, logger: testLogger())
            #expect(applied == [3, 4])
            let column = try await client.query(
                """
                SELECT data_type, is_nullable, column_default FROM information_schema.columns
                WHERE table_schema = $1 AND table_name = 'schema_migrations' AND column_name = 'breaking'
                """, [.string(schema)])
            #expect(column.count == 1)
            #expect(try column.first?.string("data_type") == "boolean")
            #expect(try column.first?.string("is_nullable") == "NO")
            #expect(try column.first?.string("column_default") == "false")
            let recorded = try await client.query("SELECT version, breaking FROM \(schema).schema_migrations ORDER BY version")
            #expect(try recorded.map { try $0.int("version") } == [1, 2, 3, 4])
            #expect(try recorded.map { try $0.bool("breaking") } == [false, false, false, true])
            // A second run finds the column and nothing to apply.
            #expect(try await Migrator(schema: schema, migrations: Self.migrations + Self.contract.prefix(1)).migrate(client: client, logger: testLogger()) == [])
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

/// Collects what a logger was given, for tests about log output.
final class LogRecords: LogHandler, Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let state = Mutex<(entries: [Entry], metadata: Logger.Metadata)>(([], [:]))

    var entries: [Entry] { state.withLock { $0.entries } }

    var metadata: Logger.Metadata {
        get { state.withLock { $0.metadata } }
        set { state.withLock { $0.metadata = newValue } }
    }

    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { state.withLock { $0.metadata[key] = newValue } }
    }

    func log(event: LogEvent) {
        state.withLock { state in
            let merged = state.metadata.merging(event.metadata ?? [:]) { $1 }
            state.entries.append(Entry(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}
