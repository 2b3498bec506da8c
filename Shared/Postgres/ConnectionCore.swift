import CLibPQ
import Foundation
import Logging

/// The `PGconn*` and everything done with it, synchronously.
///
/// Not `Sendable` on purpose: it is stored in a `PostgresConnection` actor whose
/// executor is a dedicated `ConnectionThread`, so the compiler keeps every use of it,
/// and of the C pointer inside, on that one thread.
final class ConnectionCore {
    let configuration: PostgresConfiguration
    let logger: Logger
    private var connection: OpaquePointer?
    private var notices: NoticeSink?
    private(set) var isClosed = false

    init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    deinit {
        // PostgresConnection's deinit arranges for this to run on the connection thread.
        drop()
    }

    // MARK: Connecting

    /// Returns a working connection, reconnecting with backoff if the current one broke.
    ///
    /// - Throws: `connection_closed` after `close()`, `connection_failed` when every attempt
    ///   failed, `CancellationError` when the calling task is cancelled between attempts.
    @discardableResult
    func ensureConnected() throws -> OpaquePointer {
        if isClosed {
            throw PostgresError(code: PostgresError.connectionClosed, message: "the connection was closed")
        }
        if let connection {
            if PQstatus(connection) == CONNECTION_OK && idleSocketIsHealthy(connection) { return connection }
            logger.warning(
                "postgres connection lost, reconnecting",
                metadata: ["db.host": "\(configuration.host)", "db.error": "\(errorText(connection))"])
            drop()
        }
        return try connectWithBackoff()
    }

    /// Catches a backend that died while the connection sat idle (terminated by an
    /// administrator, restarted server, idle timeout) before a unit of work starts on it.
    ///
    /// An idle connection has nothing to read; if the socket is readable, the server has
    /// sent a goodbye (a FATAL error, end of file). Costs one `poll` and no round trip.
    private func idleSocketIsHealthy(_ connection: OpaquePointer) -> Bool {
        let fd = PQsocket(connection)
        guard fd >= 0 else { return false }
        for _ in 0..<4 {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { return true }
            // libpq reads the pending bytes; a FATAL goes to the notice sink, end of file marks the connection bad.
            if PQconsumeInput(connection) == 0 || PQstatus(connection) != CONNECTION_OK { return false }
        }
        return PQstatus(connection) == CONNECTION_OK
    }

    private func connectWithBackoff() throws -> OpaquePointer {
        var attempt = 0
        while true {
            do {
                let opened = try open()
                connection = opened
                if attempt > 0 {
                    logger.info("postgres connection restored", metadata: ["db.host": "\(configuration.host)", "db.attempt": "\(attempt + 1)"])
                }
                return opened
            } catch let error as PostgresError {
                attempt += 1
                guard attempt < max(configuration.connectAttempts, 1) else { throw error }
                try Task.checkCancellation()
                let delay = configuration.backoff.delay(attempt: attempt - 1)
                logger.warning(
                    "postgres connection failed, retrying",
                    metadata: [
                        "db.host": "\(configuration.host)", "db.attempt": "\(attempt)",
                        "db.delay_ms": "\(Self.milliseconds(delay))", "db.error": "\(error.message)",
                    ])
                // Blocking is right here: this is the connection's own thread and it has nothing else to do.
                Thread.sleep(forTimeInterval: Double(Self.milliseconds(delay)) / 1000)
            }
        }
    }

    private func open() throws -> OpaquePointer {
        assert(ConnectionThread.isCurrent, "libpq used off its connection thread")
        let pairs = configuration.connectionParameters
        if let bad = pairs.first(where: { $0.1.utf8.contains(0) }) {
            throw PostgresError(code: PostgresError.connectionFailed, message: "connection setting \(bad.0) contains a NUL character")
        }
        let keywords = CBufferArray(strings: pairs.map(\.0))
        let values = CBufferArray(strings: pairs.map(\.1))
        // expand_dbname 0: the database name is a name, never parsed as a conninfo string.
        let opened = withExtendedLifetime((keywords, values)) { PQconnectdbParams(keywords.pointers, values.pointers, 0) }
        guard let opened else {
            throw PostgresError(code: PostgresError.connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(opened) == CONNECTION_OK else {
            let message = errorText(opened)
            PQfinish(opened)
            throw PostgresError(
                code: PostgresError.connectionFailed,
                message: "cannot connect to \(configuration.host):\(configuration.port): \(message)")
        }
        let sink = NoticeSink(logger: logger)
        notices = sink
        // Without a processor libpq prints notices ("schema already exists, skipping") to stderr.
        PQsetNoticeProcessor(opened, noticeProcessor, Unmanaged.passUnretained(sink).toOpaque())
        return opened
    }

    /// Drops the C connection; the next call reconnects.
    private func drop() {
        if let connection { PQfinish(connection) }
        connection = nil
        notices = nil
        // Prepared statements and LISTENs live in the server session: a new connection has none.
        listening.removeAll()
        prepared.removeAll()
        seen.removeAll()
        executions.removeAll()
    }

    func close() {
        drop()
        isClosed = true
    }

    // MARK: Statements

    /// Statements prepared on this connection, by SQL text and parameter types.
    private var prepared: [String: String] = [:]
    /// Statements seen once: a text is prepared the second time it runs, so one-off SQL
    /// (DDL, look-ups by hand) does not fill the session with prepared statements.
    private var seen: Set<String> = []
    /// Statements with generated text (a placeholder list per row) could be endless; stop there.
    static let maximumPrepared = 256
    /// Names handed out on this connection (a statement prepared again gets a new one).
    private var lastStatement = 0
    /// How often each prepared statement ran.
    private var executions: [String: Int] = [:]
    /// PostgreSQL keeps the generic plan it chose for a prepared statement until the table is
    /// analysed again. A service starts on small tables, so a keyed look-up planned then keeps a
    /// sequential scan while its table grows (measured in a pipeline run: three such look-ups took
    /// 20 times the statement time of everything else). Each statement is prepared again after
    /// these executions, and planned for the tables as they are by then.
    static let preparedAgainAfter: Set<Int> = [100, 1_000, 10_000]

    /// Runs one statement with `$n` parameters and copies its result into Swift memory.
    ///
    /// A statement that runs again is prepared once per connection and then executed by
    /// name: the server parses and plans it once, not on every call (for intake's
    /// per-batch statements that is most of PostgreSQL's CPU time).
    func run(_ sql: String, _ parameters: [PostgresValue]) throws -> PostgresRows {
        let connection = try liveConnection()
        if sql.utf8.contains(0) {
            throw PostgresError(code: PostgresError.invalidParameter, message: "the SQL text contains a NUL character")
        }
        let set = try ParameterSet(parameters)
        var key = sql
        for i in 0..<Int(set.count) { key += ",\(set.types[i])" }
        if let name = try preparedName(key: key, sql: sql, set: set, connection: connection) {
            let result = withExtendedLifetime(set) {
                name.withCString { PQexecPrepared(connection, $0, set.count, set.values.pointers, set.values.lengths, set.formats, 0) }
            }
            defer { PQclear(result) }
            return try rows(from: result, connection: connection)
        }
        let result = withExtendedLifetime(set) {
            sql.withCString { text in
                PQexecParams(connection, text, set.count, set.types, set.values.pointers, set.values.lengths, set.formats, 0)
            }
        }
        defer { PQclear(result) }
        return try rows(from: result, connection: connection)
    }

    /// The prepared statement to run `sql` with, prepared the second time it is seen and again
    /// at ``preparedAgainAfter``; nil to run it unprepared.
    private func preparedName(key: String, sql: String, set: ParameterSet, connection: OpaquePointer) throws -> String? {
        if let name = prepared[key] {
            let count = executions[key, default: 0] + 1
            executions[key] = count
            // Prepared again under a new name; should that fail (an aborted transaction), the old
            // plan serves and the statement fails or succeeds exactly as it would have.
            guard Self.preparedAgainAfter.contains(count), let fresh = try? prepare(sql, set: set, connection: connection) else { return name }
            prepared[key] = fresh
            let result = "DEALLOCATE \(name)".withCString { PQexec(connection, $0) }
            PQclear(result)
            return fresh
        }
        guard prepared.count < Self.maximumPrepared else { return nil }
        guard seen.contains(key) else {
            if seen.count < Self.maximumPrepared * 4 { seen.insert(key) }
            return nil
        }
        let name = try prepare(sql, set: set, connection: connection)
        prepared[key] = name
        return name
    }

    private func prepare(_ sql: String, set: ParameterSet, connection: OpaquePointer) throws -> String {
        lastStatement += 1
        let name = "css_\(lastStatement)"
        let result = name.withCString { n in
            sql.withCString { text in PQprepare(connection, n, text, set.count, set.types) }
        }
        defer { PQclear(result) }
        _ = try rows(from: result, connection: connection)
        return name
    }

    /// Runs trusted, parameterless SQL that may hold several statements (migrations).
    ///
    /// `PQexecParams` refuses more than one statement per call; `PQexec` does not. Never
    /// pass values in `sql`: this path has no parameters precisely because it is for DDL.
    func runScript(_ sql: String) throws {
        let connection = try liveConnection()
        if sql.utf8.contains(0) {
            throw PostgresError(code: PostgresError.invalidParameter, message: "the SQL text contains a NUL character")
        }
        let result = sql.withCString { PQexec(connection, $0) }
        defer { PQclear(result) }
        _ = try rows(from: result, connection: connection)
    }

    // MARK: Notifications

    /// Channels this connection LISTENs on; emptied when it reconnects, so they are re-issued.
    private var listening: Set<String> = []

    /// Waits up to `timeoutMilliseconds` for notifications on `channel`, LISTENing first if
    /// this connection does not yet (after a reconnect, notifications sent meanwhile are lost,
    /// which is why they may only ever be a wake-up). Returns their payloads, possibly none, and
    /// whether this call started listening (at first use or after a reconnect): then anything
    /// sent before is lost and the caller should look at the truth again. It returns at once then.
    func notifications(channel: String, timeoutMilliseconds: Int32) throws -> (payloads: [String], startedListening: Bool) {
        let connection = try ensureConnected()
        var started = false
        if !listening.contains(channel) {
            try runScript("LISTEN \(Self.quotedIdentifier(channel))")
            listening.insert(channel)
            started = true
        }
        var payloads = drainNotifications(connection)
        guard payloads.isEmpty, !started else { return (payloads, started) }
        var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        // Blocking is right here: this is the connection's own thread, used for nothing else.
        if poll(&descriptor, 1, max(0, timeoutMilliseconds)) > 0 {
            guard PQconsumeInput(connection) != 0, PQstatus(connection) == CONNECTION_OK else {
                throw PostgresError(code: PostgresError.connectionLost, message: "the connection to the server was lost: \(errorText(connection))")
            }
            payloads = drainNotifications(connection)
        }
        return (payloads, false)
    }

    private func drainNotifications(_ connection: OpaquePointer) -> [String] {
        var payloads: [String] = []
        while let notice = PQnotifies(connection) {
            payloads.append(notice.pointee.extra.map { String(cString: $0) } ?? "")
            PQfreemem(notice)
        }
        return payloads
    }

    static func quotedIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private func liveConnection() throws -> OpaquePointer {
        assert(ConnectionThread.isCurrent, "libpq used off its connection thread")
        if isClosed {
            throw PostgresError(code: PostgresError.connectionClosed, message: "the connection was closed")
        }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            throw PostgresError(code: PostgresError.connectionLost, message: "the connection to the server was lost")
        }
        return connection
    }

    private func rows(from result: OpaquePointer?, connection: OpaquePointer) throws -> PostgresRows {
        guard let result else { throw failure(connection: connection, result: nil) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(columns: [], cells: [], affectedRows: affectedRows(result))
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            let rowCount = Int(PQntuples(result))
            let columnCount = Int(PQnfields(result))
            let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
            var cells: [String?] = []
            cells.reserveCapacity(rowCount * columnCount)
            for row in 0..<Int32(rowCount) {
                for column in 0..<Int32(columnCount) {
                    if PQgetisnull(result, row, column) == 1 {
                        cells.append(nil)
                    } else {
                        let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, column), count: Int(PQgetlength(result, row, column)))
                        cells.append(String(decoding: bytes, as: UTF8.self))
                    }
                }
            }
            return PostgresRows(columns: columns, cells: cells, affectedRows: affectedRows(result))
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            // The protocol is now mid-COPY and this wrapper cannot finish it; start afresh next call.
            drop()
            throw PostgresError(code: PostgresError.unsupportedResult, message: "COPY is not supported by this client")
        default:
            throw failure(connection: connection, result: result)
        }
    }

    private func affectedRows(_ result: OpaquePointer) -> Int {
        guard let tag = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: tag)) ?? 0
    }

    /// Turns a failed result into a `PostgresError`, classing it as a lost connection
    /// when the connection is gone or the server said it is closing the session.
    private func failure(connection: OpaquePointer, result: OpaquePointer?) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let result, let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field("C")
        let message = field("M") ?? errorText(connection)
        // Class 08 is connection exceptions; 57P01–57P03 are the server shutting the session down.
        let serverClosing = sqlState.map { $0.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains($0) } ?? false
        if PQstatus(connection) != CONNECTION_OK || serverClosing {
            return PostgresError(
                code: PostgresError.connectionLost, message: "connection to the server lost: \(message)", sqlState: sqlState)
        }
        return PostgresError(
            code: sqlState ?? PostgresError.queryFailed, message: message, sqlState: sqlState, detail: field("D"),
            hint: field("H"), constraint: field("n"), table: field("t"), column: field("c"))
    }

    private func errorText(_ connection: OpaquePointer) -> String {
        guard let text = PQerrorMessage(connection) else { return "unknown error" }
        let message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        return message.isEmpty ? "unknown error" : message
    }

    // MARK: Units of work

    /// Runs `body` with a session valid only for its duration, leaving no transaction open.
    func withSession<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        try ensureConnected()
        let session = PostgresSession(core: self)
        defer { session.isValid = false }
        let value: T
        do {
            value = try body(session)
        } catch {
            rollbackIfOpen()
            throw error
        }
        if let connection, PQstatus(connection) == CONNECTION_OK, PQtransactionStatus(connection) != PQTRANS_IDLE {
            // A pooled connection must come back clean; the next unit of work would inherit the transaction.
            rollbackIfOpen()
            throw PostgresError(
                code: PostgresError.transactionLeftOpen, message: "the session ended inside a transaction; it was rolled back")
        }
        return value
    }

    /// Runs `body` between BEGIN and COMMIT, rolling back when it throws.
    ///
    /// - Parameter retryBegin: when BEGIN is the first thing sent in this unit of work, a
    ///   connection found dead at BEGIN is replaced and BEGIN sent again: nothing of the
    ///   caller's has run yet, so nothing is replayed.
    func transaction<T>(retryBegin: Bool, _ body: () throws -> T) throws -> T {
        let connection = try liveConnection()
        guard PQtransactionStatus(connection) == PQTRANS_IDLE else {
            throw PostgresError(code: PostgresError.transactionInProgress, message: "a transaction is already open on this session; transactions do not nest")
        }
        do {
            _ = try run("BEGIN", [])
        } catch let error as PostgresError where retryBegin && error.isConnectionError {
            drop()
            try ensureConnected()
            _ = try run("BEGIN", [])
        }
        let value: T
        do {
            value = try body()
        } catch {
            rollbackIfOpen()
            throw error
        }
        if let connection = self.connection, PQtransactionStatus(connection) == PQTRANS_INERROR {
            // COMMIT of a failed transaction "succeeds" with tag ROLLBACK; do not let a swallowed error look like a commit.
            rollbackIfOpen()
            throw PostgresError(
                code: PostgresError.transactionAborted,
                message: "a statement failed inside the transaction and its error was caught; the transaction was rolled back")
        }
        do {
            _ = try run("COMMIT", [])
        } catch let error as PostgresError where error.isConnectionError {
            throw PostgresError(
                code: error.code, message: "\(error.message) (during COMMIT: the transaction may or may not have been committed)",
                sqlState: error.sqlState)
        }
        return value
    }

    private func rollbackIfOpen() {
        guard let connection, PQstatus(connection) == CONNECTION_OK, PQtransactionStatus(connection) != PQTRANS_IDLE else { return }
        let result = PQexec(connection, "ROLLBACK")
        PQclear(result)
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let c = duration.components
        return c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000
    }
}

/// Receives server notices for one connection and logs them at debug level.
private final class NoticeSink {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}

private let noticeProcessor: PQnoticeProcessor = { argument, message in
    guard let argument, let message else { return }
    let sink = Unmanaged<NoticeSink>.fromOpaque(argument).takeUnretainedValue()
    let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    sink.logger.debug("postgres notice", metadata: ["db.notice": "\(text)"])
}
