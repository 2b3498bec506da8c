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

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Brings one service's PostgreSQL schema up to the migrations this binary knows.
///
/// Every instance of a service runs this at start. They serialize on a session advisory
/// lock keyed on the schema name, so two instances starting together apply each
/// migration exactly once; each migration and its record commit together in one
/// transaction, so a crash leaves either both or neither.
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
    /// - Returns: the versions this call applied (empty when the schema was current).
    /// - Throws: `invalid_schema_name`, `invalid_migrations`; `unknown_migration_version` when
    ///   the database holds versions this binary does not know (it was migrated by a newer
    ///   release, and running old code against it could corrupt data); a migration's SQL error.
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
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let applied = Set(try session.query("SELECT version FROM \(quoted).schema_migrations").map { try $0.int(0) })
            let unknown = applied.subtracting(ordered.map(\.version)).sorted()
            if !unknown.isEmpty {
                log.error("database schema is newer than this build", metadata: ["db.unknown_versions": "\(unknown)"])
                throw PostgresError(
                    code: PostgresError.unknownMigrationVersion,
                    message: "schema \(schema) has migration versions \(unknown.map(String.init).joined(separator: ", ")) "
                        + "that this build does not know; it was migrated by a newer release, refusing to run against it")
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
                        "INSERT INTO \(quoted).schema_migrations (version, name) VALUES ($1, $2)",
                        [.int(migration.version), .string(migration.name)])
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
