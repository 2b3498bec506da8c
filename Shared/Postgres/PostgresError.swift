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

    /// Retrying the whole unit of work later may succeed; see `failureClass`.
    public var isTransient: Bool { failureClass == .transient }

    /// Whether retrying the whole unit of work later may succeed.
    ///
    /// Transient means the statement is not at fault: the server, the connection or a
    /// concurrent transaction is, so nothing about the unit of work may be stored (no
    /// rejection, no dead letter); it is rolled back and retried later, which is why it
    /// must be idempotent. Permanent means the same statement with the same data fails
    /// again, so retrying would loop forever.
    ///
    /// | Code or SQLSTATE | Condition | Class | Why |
    /// |---|---|---|---|
    /// | `connection_failed`, `connection_lost` | no connection, or it broke mid-call (this also covers 08xxx and 57P01–57P03 the server sent on its way out) | transient | a reconnect may work; a broken COMMIT has an unknown outcome, hence idempotency |
    /// | `client_closed`, `connection_closed` | this process is shutting its pool or connection down | transient | another instance, or this one after restart, can do the work |
    /// | 08xxx | connection exception | transient | as a lost connection |
    /// | 40000, 40001, 40P01, 40003 | transaction rollback, serialization failure, deadlock, statement completion unknown | transient | PostgreSQL's own advice is to retry the transaction |
    /// | 40002 | integrity constraint violation at commit | permanent | the data is at fault, as with 23xxx |
    /// | 53xxx | insufficient resources: disk full, out of memory, too many connections | transient | the server may recover |
    /// | 57xxx | operator intervention: 57014 query cancelled (`pg_cancel_backend`, `statement_timeout`), 57P01–57P05 shutdown, cannot connect now, database dropped, idle session timeout | transient | someone or something outside the unit of work stopped it |
    /// | 55P03 | lock not available (`lock_timeout`, `NOWAIT`) | transient | the lock holder will finish |
    /// | 25006 | read-only SQL transaction (connected to a standby, as the old primary is after a failover) | transient | a writable primary comes back |
    /// | 25P03 | idle-in-transaction session timeout | transient | the session was ended, not the work refused |
    /// | 58xxx | system error: I/O error, missing file | transient | the server's environment, not the statement |
    /// | 72000 | snapshot too old | transient | a new transaction has a new snapshot |
    /// | 22xxx | data exception (22P05 untranslatable character, 22021 invalid byte sequence, ...) | permanent | the value is at fault |
    /// | 23xxx | integrity constraint violation | permanent | the data is at fault |
    /// | 42xxx, 0Axxx, other 25xxx, other 55xxx, 54xxx | syntax, access rule, unsupported feature, wrong transaction state, limits | permanent | the program is at fault |
    /// | XX000–XX002 | internal error, data or index corrupted | permanent | retrying does not repair the server |
    /// | `invalid_parameter`, `decode_failed`, `transaction_aborted`, `transaction_left_open`, `transaction_in_progress`, `session_expired`, `unsupported_result`, `query_failed`, migration codes | found by this client | permanent | the program or the data is at fault |
    /// | anything else | unknown | permanent | a failure not known to pass must not be retried forever |
    ///
    /// A statement that always exceeds `statement_timeout` is transient by this table and
    /// is retried until an operator acts; that is deliberate, as a timeout usually means a
    /// loaded server or a held lock, and the retries show in logs and metrics.
    public var failureClass: FailureClass {
        switch code {
        case Self.connectionFailed, Self.connectionLost, Self.connectionClosed, Self.clientClosed:
            return .transient
        default:
            return sqlState.map(Self.failureClass(sqlState:)) ?? .permanent
        }
    }

    /// The class of a server's SQLSTATE alone, as tabled on `failureClass`.
    public static func failureClass(sqlState: String) -> FailureClass {
        switch sqlState {
        case "40002": return .permanent
        case "55P03", "25006", "25P03", "72000": return .transient
        default: break
        }
        switch sqlState.prefix(2) {
        case "08", "40", "53", "57", "58": return .transient
        default: return .permanent
        }
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
    /// No longer thrown: builds before `Migration.breaking` refused any newer schema with it.
    public static let unknownMigrationVersion = "unknown_migration_version"
    public static let breakingMigrationAhead = "breaking_migration_ahead"
}

/// Whether a failed unit of work may succeed when retried later; see `PostgresError.failureClass`.
public enum FailureClass: Sendable {
    /// Roll back, store nothing about it, retry later.
    case transient
    /// The same work fails again: answer, record or set it aside instead of retrying.
    case permanent
}
