import Logging

/// One step of a service's schema, applied once and recorded in `<schema>.schema_migrations`.
public struct Migration: Sendable, Equatable {
    /// Orders the steps; never reuse or renumber one that has shipped.
    public var version: Int
    public var name: String
    /// Trusted DDL, possibly several statements, without BEGIN/COMMIT of its own.
    ///
    /// It runs with `search_path` set to the service's schema (then `public`), so
    /// unqualified names land in that schema.
    public var sql: String
    /// Whether code written before this migration can no longer work against the schema.
    ///
    /// Schema changes ship expand-then-contract, so that during a rolling deploy or a
    /// rollback the previous build keeps running against the newer schema. Additive steps
    /// (a new table, a nullable or defaulted column, an index) are the expand part and are
    /// not breaking. The contract step, dropping or renaming a column or table, or adding a
    /// constraint old code would violate, is breaking: it ships only once no build that
    /// predates it runs, and a build that predates it refuses to start against it.
    /// Recorded in `schema_migrations.breaking` so that older builds, which do not know the
    /// migration, can tell.
    public var breaking: Bool

    public init(version: Int, name: String, sql: String, breaking: Bool = false) {
        self.version = version
        self.name = name
        self.sql = sql
        self.breaking = breaking
    }
}

/// Brings one service's PostgreSQL schema up to the migrations this binary knows.
///
/// Every instance of a service runs this at start. They serialize on a session advisory
/// lock keyed on the schema name, so two instances starting together apply each
/// migration exactly once; each migration and its record commit together in one
/// transaction, so a crash leaves either both or neither.
///
/// A build may start against a schema migrated by a newer one (a rolling deploy, a
/// rollback) as long as every migration it does not know is additive; see
/// `Migration.breaking`.
public struct Migrator: Sendable {
    public let schema: String
    public let migrations: [Migration]

    /// - Parameters:
    ///   - schema: the service's schema; must match `[a-z_][a-z0-9_]*` (checked by `migrate`).
    ///   - migrations: in any order; versions must be positive and distinct.
    public init(schema: String, migrations: [Migration]) {
        self.schema = schema
        self.migrations = migrations
    }

    // First key of the two-key advisory lock form, which PostgreSQL keeps apart from
    // single-bigint locks, so this cannot collide with locks taken elsewhere in the app.
    private static let lockNamespace = 0x4353_534D  // "CSSM"

    /// Creates the schema if missing and applies the migrations it lacks, in version order.
    ///
    /// When the database holds versions this build does not know (a newer release migrated
    /// it) that are all additive, it logs a warning naming them and carries on.
    ///
    /// - Returns: the versions this call applied (empty when the schema was current).
    /// - Throws: `invalid_schema_name`, `invalid_migrations`; `breaking_migration_ahead` when
    ///   a version this build does not know is breaking (running this code against it could
    ///   fail or corrupt data), naming each such version and its name; a migration's SQL error.
    public func migrate(client: PostgresClient, logger: Logger) async throws -> [Int] {
        try Self.validate(schema: schema)
        let ordered = try Self.validate(migrations: migrations)
        let schema = self.schema
        let quoted = "\"\(schema)\""
        var logger = logger
        logger[metadataKey: "db.schema"] = "\(schema)"
        let log = logger

        return try await client.withSession { session in
            let lockArguments: [PostgresValue] = [.int(Self.lockNamespace), .string(schema)]
            // A session lock, not a transaction lock: it must span the schema check and every migration transaction.
            try session.execute("SELECT pg_advisory_lock($1::int, hashtext($2))", lockArguments)
            defer { _ = try? session.execute("SELECT pg_advisory_unlock($1::int, hashtext($2))", lockArguments) }

            try session.execute("CREATE SCHEMA IF NOT EXISTS \(quoted)")
            try session.execute(
                """
                CREATE TABLE IF NOT EXISTS \(quoted).schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    breaking boolean NOT NULL DEFAULT false
                )
                """)
            // Tables created before the flag existed; their rows predate it and were additive as far as anyone recorded.
            try session.execute("ALTER TABLE \(quoted).schema_migrations ADD COLUMN IF NOT EXISTS breaking boolean NOT NULL DEFAULT false")
            let recorded = try session.query("SELECT version, name, breaking FROM \(quoted).schema_migrations ORDER BY version").map {
                (version: try $0.int("version"), name: try $0.string("name"), breaking: try $0.bool("breaking"))
            }
            let applied = Set(recorded.map(\.version))
            let known = Set(ordered.map(\.version))
            let unknown = recorded.filter { !known.contains($0.version) }
            if !unknown.isEmpty {
                let ahead = unknown.filter(\.breaking)
                if !ahead.isEmpty {
                    log.error(
                        "schema has breaking migrations this build predates",
                        metadata: ["db.breaking_versions": "\(ahead.map(\.version))"])
                    let list = ahead.map { "\($0.version) (\($0.name))" }.joined(separator: ", ")
                    let (noun, pronoun) = ahead.count == 1 ? ("migration", "it") : ("migrations", "them")
                    throw PostgresError(
                        code: PostgresError.breakingMigrationAhead,
                        message: "schema \(schema) has breaking \(noun) \(list) that this build predates; deploy a build that knows \(pronoun)")
                }
                log.warning(
                    "schema is newer than this build; running against it, its migrations are additive",
                    metadata: ["db.unknown_versions": "\(unknown.map(\.version))"])
            }

            var appliedNow: [Int] = []
            for migration in ordered where !applied.contains(migration.version) {
                if let newest = applied.max(), migration.version < newest {
                    log.warning("applying migration older than the newest applied", metadata: ["db.version": "\(migration.version)"])
                }
                try session.withTransaction { session in
                    try session.execute("SET LOCAL search_path TO \(quoted), public")
                    try session.executeScript(migration.sql)
                    try session.execute(
                        "INSERT INTO \(quoted).schema_migrations (version, name, breaking) VALUES ($1, $2, $3)",
                        [.int(migration.version), .string(migration.name), .bool(migration.breaking)])
                }
                log.info("applied migration", metadata: ["db.version": "\(migration.version)", "db.migration": "\(migration.name)"])
                appliedNow.append(migration.version)
            }
            log.debug(
                "database schema is current",
                metadata: ["db.version": "\(ordered.last?.version ?? 0)", "db.applied_count": "\(appliedNow.count)"])
            return appliedNow
        }
    }

    /// Refuses anything but a plain lower-case identifier, which is then safe to quote into SQL.
    ///
    /// - Throws: `PostgresError` `invalid_schema_name`.
    public static func validate(schema: String) throws {
        let bytes = Array(schema.utf8)
        let isStart = { (c: UInt8) in c == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) }
        let isRest = { (c: UInt8) in isStart(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) }
        // 63 bytes is PostgreSQL's NAMEDATALEN - 1; longer names would be silently truncated.
        guard let first = bytes.first, isStart(first), bytes.allSatisfy(isRest), bytes.count <= 63 else {
            throw PostgresError(
                code: PostgresError.invalidSchemaName,
                message: "schema name \"\(schema)\" must match [a-z_][a-z0-9_]* and be at most 63 characters")
        }
        if schema.hasPrefix("pg_") {
            throw PostgresError(code: PostgresError.invalidSchemaName, message: "schema names starting with pg_ are reserved")
        }
    }

    private static func validate(migrations: [Migration]) throws -> [Migration] {
        let ordered = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where previous.version == next.version {
            throw PostgresError(code: PostgresError.invalidMigrations, message: "migration version \(next.version) appears twice")
        }
        if let bad = ordered.first(where: { $0.version < 1 || $0.version > Int(Int32.max) }) {
            throw PostgresError(code: PostgresError.invalidMigrations, message: "migration version \(bad.version) is not from 1 to 2147483647")
        }
        return ordered
    }
}
