import CLibPQ
import Logging

/// One PostgreSQL connection, running every libpq call on a thread of its own.
///
/// The actor's executor is that thread, so `withTransaction` and `withSession` hop onto
/// it once per unit of work and the statements inside run synchronously there, with no
/// suspension between them. Calls are served in order; while one runs, others wait.
///
/// A connection found broken is reopened, with capped exponential backoff and jitter,
/// before the next unit of work starts. A unit of work that was running when the
/// connection broke fails with `connection_lost` and is not replayed: the caller retries
/// the whole unit, which must therefore be idempotent.
public actor PostgresConnection {
    private let thread: ConnectionThread
    private let core: ConnectionCore

    public nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    /// Makes a connection that opens on first use.
    ///
    /// - Parameters:
    ///   - configuration: where to connect; also the reconnect backoff and attempt count.
    ///   - logger: receives reconnects (warning) and server notices (debug).
    public init(configuration: PostgresConfiguration, logger: Logger) {
        let core = ConnectionCore(configuration: configuration, logger: logger)
        self.core = core
        // The C connection must be finished on its own thread, after anything still queued
        // there; a nonisolated deinit may not touch `core`, so the thread is told now.
        let transfer = UncheckedTransfer(core)
        thread = ConnectionThread(name: "css-postgres", onStop: { transfer.value.close() })
    }

    deinit {
        thread.stop()
    }

    /// Opens the connection now rather than on first use, so a service can fail at start.
    ///
    /// - Throws: `PostgresError` `connection_failed` after the configured attempts.
    public func connect() throws {
        try core.ensureConnected()
    }

    /// Runs `body` inside BEGIN … COMMIT on this connection's thread.
    ///
    /// `body` runs synchronously and may issue any number of statements through the
    /// session without leaving the thread. If it throws, the transaction is rolled back
    /// and the error rethrown. If it catches a statement error and returns normally, the
    /// transaction is rolled back and `transaction_aborted` thrown, since PostgreSQL would
    /// refuse the COMMIT anyway.
    ///
    /// - Returns: what `body` returned, after the COMMIT succeeded.
    /// - Throws: `body`'s error; `PostgresError` from BEGIN/COMMIT; `connection_lost` when the
    ///   connection broke during the unit of work (during COMMIT its outcome is unknown).
    @discardableResult
    public func withTransaction<T: Sendable>(_ body: @Sendable (PostgresSession) throws -> T) throws -> T {
        try core.withSession { session in
            try core.transaction(retryBegin: true) { try body(session) }
        }
    }

    /// Runs `body` in autocommit mode: each statement commits on its own.
    ///
    /// - Throws: `body`'s error; `transaction_left_open` if `body` began a transaction it did not end.
    @discardableResult
    public func withSession<T: Sendable>(_ body: @Sendable (PostgresSession) throws -> T) throws -> T {
        try core.withSession(body)
    }

    /// Runs one statement in autocommit mode and returns its rows.
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresRows {
        try core.withSession { try $0.query(sql, parameters) }
    }

    /// Runs one statement in autocommit mode and returns the number of rows it affected.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws -> Int {
        try core.withSession { try $0.execute(sql, parameters) }
    }

    /// Waits up to `timeout` for notifications (`NOTIFY`, `pg_notify`) on `channel` and
    /// returns their payloads, possibly none. The first call, and the first after a
    /// reconnect, LISTENs and returns at once with `startedListening`: notifications sent
    /// before (or while the connection was down) are lost, so use them as a wake-up, never
    /// as the only record of something, and look at the record again when listening starts.
    ///
    /// Blocks this connection's thread while it waits: give a listener a connection of its own.
    /// - Throws: `connection_lost` when the server went away while waiting (the next call reconnects).
    public func notifications(channel: String, timeout: Duration) throws -> (payloads: [String], startedListening: Bool) {
        let (seconds, attoseconds) = timeout.components
        let milliseconds = min(Int64(Int32.max), max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        return try core.notifications(channel: channel, timeoutMilliseconds: Int32(milliseconds))
    }

    /// Closes the connection; later calls fail with `connection_closed`.
    public func close() {
        core.close()
    }
}

/// A handle for issuing statements inside one `withTransaction` or `withSession` body.
///
/// Valid only during that body and only on the connection's thread, which is why it is
/// not `Sendable`; using it after the body returned throws `session_expired`.
public final class PostgresSession {
    let core: ConnectionCore
    var isValid = true

    init(core: ConnectionCore) {
        self.core = core
    }

    /// Runs one statement and returns its rows.
    ///
    /// - Parameters:
    ///   - sql: the statement, with `$1`, `$2`, ... where values go. Never put values in the text.
    ///   - parameters: the values for `$1`, `$2`, ..., sent separately from the SQL.
    /// - Throws: `PostgresError` with the SQLSTATE as `code` when the server refused it,
    ///   `invalid_parameter` for a value PostgreSQL cannot hold (text with NUL), `connection_lost`.
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresRows {
        try checkValid()
        return try core.run(sql, parameters)
    }

    /// Runs one statement and returns the number of rows it inserted, updated or deleted.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws -> Int {
        try checkValid()
        return try core.run(sql, parameters).affectedRows
    }

    /// Takes transaction-level advisory locks (released at COMMIT or ROLLBACK), waiting for
    /// them: `exclusive` keys alone, `shared` keys beside other shared holders. One statement
    /// each, keys in one order, so two sessions never wait on each other in a circle; a key in
    /// both lists is taken exclusively. Keys are any text (hashed with `hashtextextended`):
    /// prefix them with what they lock (`classification:customer:acme`).
    public func advisoryLocks(exclusive: [String], shared: [String] = []) throws {
        let ex = Set(exclusive)
        let sh = Set(shared).subtracting(ex)
        for (keys, function) in [(ex, "pg_advisory_xact_lock"), (sh, "pg_advisory_xact_lock_shared")] where !keys.isEmpty {
            _ = try query("""
                SELECT count(\(function)(hashtextextended(k, 0))) FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS s
                """, [PostgresArray.text(Array(keys))])
        }
    }

    /// Runs `body` inside BEGIN … COMMIT within this session, rolling back when it throws.
    ///
    /// For `withSession` work that needs several transactions on one connection, such as
    /// holding a session advisory lock across them.
    @discardableResult
    public func withTransaction<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        try checkValid()
        // No BEGIN retry here: a reconnect would silently lose this session's state (locks, settings).
        return try core.transaction(retryBegin: false) { try body(self) }
    }

    /// Runs trusted multi-statement SQL without parameters (migration scripts).
    func executeScript(_ sql: String) throws {
        try checkValid()
        try core.runScript(sql)
    }

    private func checkValid() throws {
        guard isValid else {
            throw PostgresError(code: PostgresError.sessionExpired, message: "the session was used after its body returned")
        }
    }
}

@available(*, unavailable)
extension PostgresSession: Sendable {}

/// Moves a value across an isolation boundary the compiler cannot see is safe.
///
/// Used only to hand the thread the closing of a core it will outlive, which runs after
/// the actor is gone and nothing else can reach the core any more.
struct UncheckedTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
