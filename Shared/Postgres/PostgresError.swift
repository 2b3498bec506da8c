/// A failure talking to PostgreSQL, with a stable `code` for programs and a `message` for people.
///
/// `code` is the SQLSTATE when the server reported a statement error (`23505`), or a
/// snake_case word for failures on this side (`connection_failed`, `decode_failed`).
/// A lost connection is always `connection_lost`, whatever the server managed to say
/// before it went away (`57P01` when an administrator terminated the backend, nothing
/// when the network dropped), so callers and metric labels see one code for one
/// condition; the server's SQLSTATE, if any, stays in `sqlState`.
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    /// The SQLSTATE the server sent, when it sent one.
    public var sqlState: String?
    public var detail: String?
    public var hint: String?
    /// The constraint a violation names (`contacts_email_key`).
    public var constraint: String?
    public var table: String?
    public var column: String?

    public init(
        code: String, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        constraint: String? = nil, table: String? = nil, column: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.column = column
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let detail { text += " (\(detail))" }
        return text
    }

    /// A `UNIQUE` or primary key constraint refused the row (SQLSTATE 23505).
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// A foreign key constraint refused the row (SQLSTATE 23503).
    public var isForeignKeyViolation: Bool { sqlState == "23503" }

    /// The connection could not be opened or broke during the call.
    ///
    /// The unit of work may or may not have been committed when this happens during
    /// `COMMIT`; callers retry the whole unit of work, which must therefore be idempotent.
    public var isConnectionError: Bool {
        code == Self.connectionFailed || code == Self.connectionLost
    }

    /// Retrying the whole unit of work may succeed: connection errors, serialization
    /// failures (40001) and deadlocks (40P01).
    public var isTransient: Bool {
        isConnectionError || sqlState == "40001" || sqlState == "40P01"
    }

    // The words this module uses for `code` when there is no SQLSTATE.
    public static let connectionFailed = "connection_failed"
    public static let connectionLost = "connection_lost"
    public static let connectionClosed = "connection_closed"
    public static let clientClosed = "client_closed"
    public static let decodeFailed = "decode_failed"
    public static let invalidParameter = "invalid_parameter"
    public static let transactionAborted = "transaction_aborted"
    public static let transactionLeftOpen = "transaction_left_open"
    public static let transactionInProgress = "transaction_in_progress"
    public static let sessionExpired = "session_expired"
    public static let queryFailed = "query_failed"
    public static let unsupportedResult = "unsupported_result"
    public static let invalidSchemaName = "invalid_schema_name"
    public static let invalidMigrations = "invalid_migrations"
    public static let unknownMigrationVersion = "unknown_migration_version"
}
