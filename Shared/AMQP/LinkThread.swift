import Foundation
import Logging
import CSSSupport
#if canImport(Glibc)
import Glibc
#endif

/// A dedicated thread that owns one ``AMQPLink`` and runs everything that touches it.
///
/// librabbitmq connections are not thread-safe and only service heartbeats inside
/// their own calls, so the thread loops: run queued jobs, read every frame that is
/// ready, then `poll(2)` on the socket and a wake-up pipe with a timeout well under
/// half the heartbeat. Jobs from async callers wake it through the pipe, so an ack
/// or a publish does not wait for the timeout.
final class LinkThread: @unchecked Sendable {
    typealias Job = (LinkThread) -> Void

    let link = AMQPLink()
    let configuration: AMQPConfiguration
    let name: String
    let logger: Logger

    /// Called on the thread after each successful (re)connect, to declare topology
    /// and start consuming or enable confirms.
    var onConnect: ((LinkThread) throws(AMQPError) -> Void)?
    /// Called on the thread for every incoming frame that matters.
    var onIncoming: ((LinkThread, AMQPLink.Incoming) -> Void)?
    /// Called on the thread when the connection is lost or closed.
    var onDisconnect: ((LinkThread, AMQPError) -> Void)?

    private let lock = NSLock()
    private var jobs: [Job] = []
    private var wakePending = false
    private var stopping = false
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    /// Increases at every successful connect; deliveries carry it so stale tags are dropped.
    private(set) var generation = 0
    private(set) var connected = false
    private var attempt = 0

    init(configuration: AMQPConfiguration, name: String, logger: Logger) {
        self.configuration = configuration
        self.name = name
        self.logger = logger
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe() failed")
        wakeRead = fds[0]
        wakeWrite = fds[1]
        _ = fcntl(wakeRead, F_SETFL, fcntl(wakeRead, F_GETFL) | O_NONBLOCK)
        _ = fcntl(wakeWrite, F_SETFL, fcntl(wakeWrite, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    func start() {
        let t = Thread { [self] in self.run() }
        t.name = "amqp-\(name)"
        thread = t
        t.start()
    }

    /// Queues `job` to run on the thread; false when the thread is stopping.
    @discardableResult
    func submit(_ job: @escaping Job) -> Bool {
        let wake: Bool = lock.withLock {
            guard !stopping else { return false }
            jobs.append(job)
            if wakePending { return false }
            wakePending = true
            return true
        }
        if wake {
            var one: UInt8 = 1
            _ = write(wakeWrite, &one, 1)
        }
        return true
    }

    /// Runs the queued jobs, closes the connection and ends the thread; waits for it.
    func stop() async {
        let first: Bool = lock.withLock {
            if stopping { return false }
            stopping = true
            return true
        }
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
        if first {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async {
                    self.finished.wait()
                    c.resume()
                }
            }
        }
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func takeJobs() -> [Job] {
        lock.withLock {
            let taken = jobs
            jobs.removeAll(keepingCapacity: true)
            wakePending = false
            return taken
        }
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, 64) > 0 {}
    }

    /// Marks the connection lost: drops it and tells the owner, once.
    func fail(_ error: AMQPError) {
        guard connected else { return }
        connected = false
        link.abandon()
        logger.warning("AMQP connection lost", metadata: ["amqp.connection": "\(name)", "error.code": "\(error.code)", "error.message": "\(error.message)"])
        onDisconnect?(self, error)
    }

    /// When the next connect attempt may start (after a failure, backoff).
    private var nextAttempt = ContinuousClock.now

    private func connect() {
        do throws(AMQPError) {
            try link.open(configuration, name: name)
            generation += 1
            connected = true
            try onConnect?(self)
            if attempt > 0 {
                logger.info("AMQP connection restored", metadata: ["amqp.connection": "\(name)", "amqp.attempts": "\(attempt)"])
            }
            attempt = 0
        } catch {
            if connected {
                fail(error)
            } else {
                link.abandon()
            }
            let delay = configuration.backoff.delay(attempt: attempt)
            attempt += 1
            if attempt == 1 || attempt % 10 == 0 {
                logger.warning("AMQP connect failed; retrying", metadata: ["amqp.connection": "\(name)", "amqp.url": "\(configuration.redactedURL)", "error.message": "\(error.message)", "retry.attempt": "\(attempt)"])
            }
            nextAttempt = ContinuousClock.now + delay
        }
    }

    /// Waits on the wake-up pipe (jobs or stop) for at most `milliseconds`.
    private func waitForWake(milliseconds: Int32) {
        var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 1, max(0, milliseconds))
    }

    private func run() {
        let pollTimeout = Int32(max(100, min(1000, configuration.heartbeatSeconds * 1000 / 4)))
        while true {
            drainWakePipe()
            if !connected && !isStopping && ContinuousClock.now >= nextAttempt {
                connect()
            }
            for job in takeJobs() {
                job(self)
            }
            if isStopping {
                // Queued jobs (acks, last publishes) ran above; run any that raced in.
                for job in takeJobs() { job(self) }
                break
            }
            guard connected else {
                // Backing off: jobs still run (and fail fast), but do not hasten the next attempt.
                let wait = nextAttempt - ContinuousClock.now
                waitForWake(milliseconds: Int32(clamping: Backoff.milliseconds(wait)))
                continue
            }
            readAvailable()
            guard connected else { continue }
            var fds = [
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                pollfd(fd: link.socketDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            if !link.hasBufferedData {
                _ = poll(&fds, 2, pollTimeout)
            }
            readAvailable()
        }
        if connected {
            connected = false
            link.close()
            onDisconnect?(self, .closed())
        }
        finished.signal()
    }

    /// Reads frames until none is ready (also services heartbeats).
    private func readAvailable() {
        var count = 0
        do throws(AMQPError) {
            while connected, let incoming = try link.poll() {
                onIncoming?(self, incoming)
                count += 1
                // Let queued jobs (acks) through during a flood of deliveries.
                if count % 256 == 0 {
                    for job in takeJobs() { job(self) }
                }
            }
            link.releaseBuffers()
        } catch {
            fail(error)
        }
    }
}

extension Backoff {
    static func milliseconds(_ d: Duration) -> Int {
        let c = d.components
        return Int(c.seconds) * 1000 + Int(c.attoseconds / 1_000_000_000_000_000)
    }
}
