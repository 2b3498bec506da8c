import Logging
import Synchronization

/// A small pool of `PostgresConnection`s, each with its own thread.
///
/// A unit of work takes a free connection, or waits in line for one: connections are
/// handed to waiters in arrival order, so a burst cannot starve an early caller.
/// Connections open on first use and reopen themselves after a failure.
public final class PostgresClient: Sendable {
    private let connections: [PostgresConnection]
    private let state: Mutex<State>
    private let logger: Logger

    private struct State {
        var idle: [PostgresConnection]
        var waiters: [(id: UInt64, continuation: CheckedContinuation<PostgresConnection, any Error>)] = []
        /// Callers between taking an id and joining `waiters`, and those of them already
        /// cancelled: the cancel handler can run before the caller is queued.
        var registering: Set<UInt64> = []
        var cancelled: Set<UInt64> = []
        var nextID: UInt64 = 0
        var closing = false
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    /// - Parameters:
    ///   - configuration: where every connection connects.
    ///   - size: how many connections at most; each is one backend and one thread.
    ///   - logger: passed to every connection.
    public init(configuration: PostgresConfiguration, size: Int = 4, logger: Logger) {
        precondition(size >= 1, "a pool needs at least one connection")
        let connections = (0..<size).map { _ in PostgresConnection(configuration: configuration, logger: logger) }
        self.connections = connections
        self.logger = logger
        // Reversed so the first connection is used first (idle is popped from the end).
        state = Mutex(State(idle: connections.reversed()))
    }

    /// How many connections the pool holds.
    public var size: Int { connections.count }

    /// Runs `body` inside BEGIN … COMMIT on a pooled connection.
    ///
    /// See `PostgresConnection.withTransaction(_:)`.
    /// - Throws: `client_closed` once `close()` has begun; otherwise what the connection throws.
    @discardableResult
    public func withTransaction<T: Sendable>(_ body: @Sendable (PostgresSession) throws -> T) async throws -> T {
        let connection = try await acquire()
        defer { release(connection) }
        return try await connection.withTransaction(body)
    }

    /// Runs `body` in autocommit mode on a pooled connection.
    ///
    /// Session state the body leaves behind (settings, session advisory locks, temporary
    /// tables) stays with the connection for the next user: undo it before returning.
    @discardableResult
    public func withSession<T: Sendable>(_ body: @Sendable (PostgresSession) throws -> T) async throws -> T {
        let connection = try await acquire()
        defer { release(connection) }
        return try await connection.withSession(body)
    }

    /// Runs one statement in autocommit mode.
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> PostgresRows {
        try await withSession { try $0.query(sql, parameters) }
    }

    /// Runs one statement in autocommit mode and returns the number of rows it affected.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> Int {
        try await withSession { try $0.execute(sql, parameters) }
    }

    /// Stops taking new work, waits for work in progress and callers already waiting,
    /// then closes every connection.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                state.closing = true
                if state.idle.count == connections.count && state.waiters.isEmpty { return true }
                state.drained.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        for connection in connections { await connection.close() }
        logger.debug("postgres pool closed", metadata: ["db.pool_size": "\(connections.count)"])
    }

    private func acquire() async throws -> PostgresConnection {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            state.registering.insert(state.nextID)
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection, any Error>) in
                enum Outcome { case ready(PostgresConnection), failed(any Error), queued }
                let outcome = state.withLock { state -> Outcome in
                    state.registering.remove(id)
                    if state.cancelled.remove(id) != nil { return .failed(CancellationError()) }
                    if state.closing {
                        return .failed(PostgresError(code: PostgresError.clientClosed, message: "the database client is shutting down"))
                    }
                    // Only take an idle connection when nobody is queued ahead.
                    if state.waiters.isEmpty, let connection = state.idle.popLast() { return .ready(connection) }
                    state.waiters.append((id, continuation))
                    return .queued
                }
                switch outcome {
                case .ready(let connection): continuation.resume(returning: connection)
                case .failed(let error): continuation.resume(throwing: error)
                case .queued: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<PostgresConnection, any Error>? in
                if let index = state.waiters.firstIndex(where: { $0.id == id }) {
                    return state.waiters.remove(at: index).continuation
                }
                if state.registering.contains(id) { state.cancelled.insert(id) }
                return nil
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func release(_ connection: PostgresConnection) {
        enum Next { case handOff(CheckedContinuation<PostgresConnection, any Error>), drained([CheckedContinuation<Void, Never>]), none }
        let next = state.withLock { state -> Next in
            if !state.waiters.isEmpty {
                return .handOff(state.waiters.removeFirst().continuation)
            }
            state.idle.append(connection)
            if state.closing && state.idle.count == connections.count {
                defer { state.drained = [] }
                return .drained(state.drained)
            }
            return .none
        }
        switch next {
        case .handOff(let waiter): waiter.resume(returning: connection)
        case .drained(let waiters): for waiter in waiters { waiter.resume() }
        case .none: break
        }
    }
}
