import Foundation

/// One OS thread that runs, in order, everything a single connection does.
///
/// libpq allows a `PGconn` to be used from one thread at a time and its calls block, so
/// each connection gets a thread of its own: blocking there stalls nobody else, and no
/// cooperative-pool thread is ever parked on a socket. It is the `SerialExecutor` of
/// `PostgresConnection`, so the compiler checks that the connection's state is touched
/// only here.
final class ConnectionThread: SerialExecutor, @unchecked Sendable {
    // @unchecked: `queue` and `stopping` are only read or written with `condition` locked.

    private let condition = NSCondition()
    private var queue: [UnownedJob] = []
    private var stopping = false
    private let onStop: @Sendable () -> Void

    /// - Parameter onStop: runs on the thread after the last queued work, before it exits.
    init(name: String, onStop: @escaping @Sendable () -> Void) {
        self.onStop = onStop
        let thread = Thread { [self] in
            Thread.current.threadDictionary[Self.marker] = true
            run()
        }
        // Best effort: on Linux, swift-corelibs-foundation does not always pass this on to the OS thread.
        thread.name = name
        thread.start()
    }

    private static let marker = "css.postgres.connection-thread"

    /// Whether the caller is running on a connection thread; libpq calls assert it in debug builds.
    static var isCurrent: Bool { Thread.current.threadDictionary[marker] as? Bool ?? false }

    func enqueue(_ job: consuming ExecutorJob) {
        push(UnownedJob(job))
    }

    /// Lets the thread exit once the queued work is done.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func push(_ job: UnownedJob) {
        condition.lock()
        queue.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        let executor = asUnownedSerialExecutor()
        var batch: [UnownedJob] = []
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping {
                condition.unlock()
                onStop()
                return
            }
            // Swap the whole queue out so producers contend for the lock once per batch, not per job.
            swap(&batch, &queue)
            condition.unlock()
            for job in batch { job.runSynchronously(on: executor) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
