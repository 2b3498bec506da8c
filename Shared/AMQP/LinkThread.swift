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
    /// Asked on the thread between frames: while true the thread stops reading the
    /// socket (TCP back-pressure) but still runs jobs and sends heartbeats.
    var shouldPauseReading: (() -> Bool)?
    /// Asked on the thread before each wait: the next instant ``onTick`` must run by.
    var nextDeadline: (() -> ContinuousClock.Instant?)?
    /// Called on the thread at every turn of the loop while connected (timeouts).
    var onTick: ((LinkThread) -> Void)?

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
    /// Set while reading is paused, until librabbitmq's heartbeat clock is restarted or
    /// the socket is readable again. librabbitmq refreshes its receive-heartbeat deadline
    /// only when a recv returns data; after a pause that deadline has passed, and a read
    /// that finds the socket empty would report a heartbeat timeout. The first read
    /// after POLLIN always gets data, so that is the fallback when the clock cannot be reset.
    private var awaitingReadable = false
    private var lastOwnHeartbeat = ContinuousClock.now

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
            awaitingReadable = false
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

    private var readingPaused: Bool { shouldPauseReading?() ?? false }

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
            onTick?(self)
            guard connected else { continue }
            if awaitingReadable && !readingPaused && link.restartHeartbeatClock() { awaitingReadable = false }
            if !readingPaused && !awaitingReadable { readAvailable() }
            guard connected else { continue }
            let paused = readingPaused
            if paused { awaitingReadable = true }
            if paused || awaitingReadable {
                sendOwnHeartbeatIfDue()
                guard connected else { continue }
            }
            waitForSocketOrWake(paused: paused, timeout: pollTimeout)
            guard connected else { continue }
            onTick?(self)
            guard connected else { continue }
            if awaitingReadable && !readingPaused && link.restartHeartbeatClock() { awaitingReadable = false }
            if !readingPaused && !awaitingReadable { readAvailable() }
        }
        if connected {
            connected = false
            link.close()
            onDisconnect?(self, .closed())
        }
        finished.signal()
    }

    /// Waits for the wake-up pipe, the socket (readable, or closed while paused) or the
    /// next deadline, whichever comes first.
    private func waitForSocketOrWake(paused: Bool, timeout: Int32) {
        var milliseconds = timeout
        if let deadline = nextDeadline?() {
            milliseconds = min(milliseconds, Int32(clamping: max(0, Backoff.milliseconds(deadline - ContinuousClock.now) + 1)))
        }
        if paused || awaitingReadable {
            let due = lastOwnHeartbeat + ownHeartbeatInterval
            milliseconds = min(milliseconds, Int32(clamping: max(0, Backoff.milliseconds(due - ContinuousClock.now) + 1)))
        }
        if !paused && !awaitingReadable && link.hasBufferedData { return }
        #if os(Linux)
        let hangUp = Int16(0x2000) // POLLRDHUP: the peer closed (Glibc does not export it to Swift)
        #else
        let hangUp = Int16(0)
        #endif
        var fds = [
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
            pollfd(fd: link.socketDescriptor, events: paused ? hangUp : Int16(POLLIN) | hangUp, revents: 0),
        ]
        _ = poll(&fds, 2, milliseconds)
        let revents = fds[1].revents
        if paused && revents & (Int16(POLLERR) | Int16(POLLHUP) | hangUp) != 0 {
            // Not reading, so this is how a dead peer shows; unread frames die with it.
            fail(AMQPError(code: "connection_lost", message: "the broker closed the socket while reading was paused"))
            return
        }
        if revents & Int16(POLLIN) != 0 || revents & (Int16(POLLERR) | Int16(POLLHUP)) != 0 {
            awaitingReadable = false
        }
    }

    /// Half the heartbeat, as librabbitmq would, at least a second apart.
    private var ownHeartbeatInterval: Duration {
        .milliseconds(max(1000, link.heartbeatSeconds * 500))
    }

    private func sendOwnHeartbeatIfDue() {
        guard link.heartbeatSeconds > 0, ContinuousClock.now - lastOwnHeartbeat >= ownHeartbeatInterval else { return }
        lastOwnHeartbeat = ContinuousClock.now
        do throws(AMQPError) { try link.sendHeartbeat() } catch { fail(error) }
    }

    /// Reads frames until none is ready or reading pauses (also services heartbeats).
    private func readAvailable() {
        var count = 0
        do throws(AMQPError) {
            while connected, !readingPaused, let incoming = try link.poll() {
                switch incoming {
                case .blocked(let reason):
                    // Publishing on this connection stalls until unblocked (a broker alarm: memory or disk).
                    logger.warning("AMQP connection blocked by the broker", metadata: ["amqp.connection": "\(name)", "amqp.blocked_reason": "\(reason)"])
                case .unblocked:
                    logger.info("AMQP connection unblocked by the broker", metadata: ["amqp.connection": "\(name)"])
                default:
                    break
                }
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
