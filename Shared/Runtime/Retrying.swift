import CSSAMQP
import CSSModel
import CSSPostgres
import CSSSupport
import Foundation
import Logging
import Synchronization

/// Whether a failure of a unit of work is worth retrying, decided in one place.
///
/// Transient: the database said so by SQLSTATE class (``PostgresError/failureClass``:
/// lost connections, cancelled statements, lock timeouts, resources, shutdown,
/// read-only after a failover, serialization and deadlocks) or the task was cancelled.
/// A transient failure stores nothing and is retried with backoff. Everything else is
/// permanent: retrying the same message gives the same failure, so it is answered
/// `internal_error` and dead-lettered instead of looping.
public enum Failure {
    public static func isTransient(_ error: any Error) -> Bool {
        if let error = error as? PostgresError { return error.isTransient }
        return error is CancellationError
    }
}

/// Graceful shutdown as seen by work that retries: once it has begun, a retrying
/// unit of work gives up (its deliveries are not acknowledged, so the broker delivers
/// them again after the restart) instead of keeping SIGTERM waiting.
public final class ShutdownSignal: Sendable {
    private let state = Mutex<(begun: Bool, sleepers: [UInt64: CheckedContinuation<Void, Never>], next: UInt64)>((false, [:], 0))

    public init() {}

    public var hasBegun: Bool { state.withLock { $0.begun } }

    public func begin() {
        let sleepers = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.begun = true
            defer { s.sleepers.removeAll() }
            return Array(s.sleepers.values)
        }
        for c in sleepers { c.resume() }
    }

    /// Sleeps for `duration`, or less when shutdown begins meanwhile.
    public func sleep(for duration: Duration) async {
        let id = state.withLock { s -> UInt64 in s.next += 1; return s.next }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let resumeNow = self.state.withLock { s -> Bool in
                        if s.begun { return true }
                        s.sleepers[id] = c
                        return false
                    }
                    if resumeNow { c.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: duration)
                let c = self.state.withLock { $0.sleepers.removeValue(forKey: id) }
                c?.resume()
            }
            await group.next()
            group.cancelAll()
        }
    }
}

/// Runs a unit of work until it commits or fails permanently, backing off between
/// transient failures; shared by the command and event processors.
struct RetryLoop {
    let shutdown: ShutdownSignal
    let logger: Logger
    let backoff = Backoff(base: .milliseconds(50), cap: .seconds(5))

    enum Outcome<T> {
        case done(T)
        case permanent(any Error)
        /// Shutdown began while the unit kept failing transiently: leave it unacknowledged.
        case abandoned
    }

    func run<T>(_ what: String, metadata: Logger.Metadata = [:], _ body: () async throws -> T) async -> Outcome<T> {
        var attempt = 0
        while true {
            do {
                return .done(try await body())
            } catch where Failure.isTransient(error) {
                attempt += 1
                var m = metadata
                m["error.message"] = "\(error)"
                m["retry.attempt"] = "\(attempt)"
                if shutdown.hasBegun || Task.isCancelled {
                    // A cancelled task's sleeps return at once: retrying would spin.
                    logger.warning("\(what) abandoned at shutdown; it stays to be done again after the restart", metadata: m)
                    return .abandoned
                }
                if attempt == 1 || attempt % 10 == 0 {
                    logger.warning("\(what) not committed (transient); retrying", metadata: m)
                }
                await shutdown.sleep(for: backoff.delay(attempt: attempt - 1))
            } catch {
                return .permanent(error)
            }
        }
    }
}

/// Runs `items` one per transaction, in order, after their batch failed permanently:
/// the item that fails again is `poison`ed (answered and dead-lettered), the others
/// commit normally. Acknowledges what was done; at shutdown (abandoned) it stops and
/// leaves the rest unacknowledged. Returns the outbox rows to publish.
func oneByOne<Item>(_ items: [Item], delivery: (Item) -> Delivery, consumer: AMQPConsumer, retry: RetryLoop,
                    commit: (Item) async throws -> [OutboxRow],
                    poison: (Item, any Error) async -> [OutboxRow]?) async -> [OutboxRow] {
    var done: [Delivery] = []
    var rows: [OutboxRow] = []
    loop: for item in items {
        switch await retry.run("single message", { try await commit(item) }) {
        case .done(let r):
            rows += r
        case .abandoned:
            break loop
        case .permanent(let error):
            guard let r = await poison(item, error) else { break loop }
            rows += r
        }
        done.append(delivery(item))
    }
    consumer.ack(done)
    return rows
}
