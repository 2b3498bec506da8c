import CSSAMQP
import CSSModel
import Foundation
import LoadSupport

/// The changes of one phase (global indexes `range`), each taken through the nine commands of
/// its lifecycle one after the other: a change's next command is ready when the reply to its
/// previous one arrived `ok` with the expected state. At most `concurrency` changes are open
/// (started, not closed or given up) at once; a change that closes makes room for the next.
///
/// The pacer asks ``take(max:intended:)`` for commands: a new change while fewer than
/// `concurrency` are open (so that many are in flight at different steps), else the next ready
/// one (oldest reply first). The reply consumer calls ``record(_:_:reply:at:)``. Written by both,
/// so behind a lock.
final class LifecycleDriver: @unchecked Sendable {
    enum Status: UInt8 { case pending, ready, inFlight, closed, abandoned }

    /// A command to send now: step `step` of change k.
    struct Command: Sendable {
        var k: Int
        var step: Wire.Step
        var changeId: String?
        /// When it counts as sent (latency is measured from there).
        var intended: UInt64
    }

    /// What went wrong or did not fit, all zero in a clean run.
    struct Counts: Sendable {
        var sent = 0, replies = 0, closed = 0, abandoned = 0
        /// Refused replies (`ok: false`); ``Results/refusals`` counts them by `<command>: <code>`.
        var refused = 0
        /// Accepted replies whose state is not the one the step leads to.
        var unexpectedState = 0
        /// Commands without a reply within the reply timeout (the change is given up).
        var timeouts = 0
        /// Replies after their command timed out, or a second reply to one command.
        var late = 0
        /// Changes not finished when the phase deadline passed (ready or not started).
        var cut = 0
    }

    let range: Range<Int>
    let concurrency: Int
    private let lock = NSLock()
    private var status: [Status]
    private var steps: [UInt8]
    private var changeIds: [String?]
    private var sentAt: [UInt64]
    private var ready: [(k: Int, at: UInt64)] = []
    private var readyHead = 0
    private var nextNew: Int
    private var open = 0
    private var stopped = false
    private var inFlight = Set<Int>()
    private var latencies: [[UInt64]] = Array(repeating: [], count: Wire.Step.allCases.count)
    private var replyTimes: [UInt64] = []
    private var closeTimes: [UInt64] = []
    private var refusals: [String: Int] = [:]
    private var samples: [String] = []
    private var counts = Counts()
    private var maxOpen = 0
    /// When each open place became free (a change closed or was given up): a new change is ready from then.
    private var freed: [UInt64] = []
    private var freedHead = 0
    /// Per reply: when it came and its latency, for the latency over time.
    private var timeline: [(at: UInt64, latency: UInt64)] = []

    init(range: Range<Int>, concurrency: Int) {
        self.range = range
        self.concurrency = concurrency
        status = Array(repeating: .pending, count: range.count)
        steps = Array(repeating: 0, count: range.count)
        changeIds = Array(repeating: nil, count: range.count)
        sentAt = Array(repeating: 0, count: range.count)
        nextNew = range.lowerBound
        latencies = latencies.map { _ in
            var a: [UInt64] = []
            a.reserveCapacity(range.count)
            return a
        }
        replyTimes.reserveCapacity(range.count * Wire.Step.allCases.count)
    }

    /// Up to `n` commands: new changes while fewer than `concurrency` are open, then ready ones.
    /// `intended(readyAt)` gives each its send time (readyAt: when its previous reply came; nil for a
    /// new change) and is called in the order the commands are returned.
    func take(max n: Int, intended: (UInt64?) -> UInt64) -> [Command] {
        lock.withLock {
            var out: [Command] = []
            while out.count < n {
                if !stopped, open < concurrency, nextNew < range.upperBound {
                    let k = nextNew
                    // The first `concurrency` changes are ready at once; each later one when a place became free.
                    var readyAt: UInt64?
                    if nextNew - range.lowerBound >= concurrency, freedHead < freed.count {
                        readyAt = freed[freedHead]
                        freedHead += 1
                    }
                    nextNew += 1
                    open += 1
                    maxOpen = max(maxOpen, open)
                    let i = k - range.lowerBound
                    let t = intended(readyAt)
                    status[i] = .inFlight
                    sentAt[i] = t
                    inFlight.insert(k)
                    out.append(Command(k: k, step: .request, changeId: nil, intended: t))
                } else if readyHead < ready.count {
                    let (k, at) = ready[readyHead]
                    readyHead += 1
                    let i = k - range.lowerBound
                    guard status[i] == .ready else { continue }
                    let t = intended(at)
                    status[i] = .inFlight
                    sentAt[i] = t
                    inFlight.insert(k)
                    out.append(Command(k: k, step: Wire.Step(rawValue: Int(steps[i]))!, changeId: changeIds[i], intended: t))
                } else {
                    break
                }
            }
            if readyHead > 4096, readyHead * 2 > ready.count {
                ready.removeFirst(readyHead)
                readyHead = 0
            }
            counts.sent += out.count
            return out
        }
    }

    /// Gives up the changes whose command has waited longer than `timeout` ns for its reply.
    func sweep(now: UInt64, timeout: UInt64) {
        lock.withLock {
            for k in inFlight {
                let i = k - range.lowerBound
                if now > sentAt[i], now - sentAt[i] > timeout {
                    inFlight.remove(k)
                    counts.timeouts += 1
                    if samples.count < 10 {
                        samples.append("\(Wire.Step(rawValue: Int(steps[i]))!.label) of change \(k) (\(changeIds[i] ?? "not requested")): no reply within \(timeout / 1_000_000_000) s")
                    }
                    abandon(i)
                }
            }
        }
    }

    /// The phase deadline passed: no new change starts, the ready ones are given up, the ones in flight finish their command.
    func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            while readyHead < ready.count {
                let i = ready[readyHead].k - range.lowerBound
                readyHead += 1
                if status[i] == .ready {
                    status[i] = .abandoned
                    counts.cut += 1
                    open -= 1
                }
            }
            counts.cut += range.upperBound - nextNew
        }
    }

    private func abandon(_ i: Int) {
        status[i] = .abandoned
        counts.abandoned += 1
        free()
    }

    private func free() {
        open -= 1
        freed.append(monotonicNanos())
    }

    /// Every change started is closed or given up, and none is left to start.
    var isFinished: Bool { lock.withLock { open == 0 && (stopped || nextNew == range.upperBound) } }

    /// Whether a command could be taken now (a change may start or one is ready).
    var hasWork: Bool { lock.withLock { (!stopped && open < concurrency && nextNew < range.upperBound) || readyHead < ready.count } }

    func contains(_ k: Int) -> Bool { range.contains(k) }

    /// The reply to step `step` of change k, received at `now`.
    func record(_ k: Int, _ step: Wire.Step, reply: Reply?, at now: UInt64) {
        lock.withLock {
            let i = k - range.lowerBound
            guard status[i] == .inFlight, Int(steps[i]) == step.rawValue else {
                counts.late += 1
                return
            }
            inFlight.remove(k)
            counts.replies += 1
            let latency = now &- min(now, sentAt[i])
            latencies[step.rawValue].append(latency)
            replyTimes.append(now)
            timeline.append((now, latency))
            switch reply {
            case .ok(let result)?:
                let state = result["state"]?.stringValue
                if step == .request, let id = result["changeId"]?.stringValue { changeIds[i] = id }
                guard state == step.expectedState, changeIds[i] != nil else {
                    counts.unexpectedState += 1
                    if samples.count < 10 { samples.append("\(step.label) of change \(k): accepted in state \(state ?? "?") instead of \(step.expectedState): \(result.jsonText.prefix(300))") }
                    abandon(i)
                    return
                }
                if step == .close {
                    status[i] = .closed
                    counts.closed += 1
                    free()
                    closeTimes.append(now)
                } else {
                    steps[i] += 1
                    status[i] = .ready
                    ready.append((k, now))
                }
            case .rejected(let errors)?:
                counts.refused += 1
                for code in Set(errors.map(\.code)) { refusals["\(step.label): \(code)", default: 0] += 1 }
                if samples.count < 10 {
                    samples.append("\(step.label) of change \(k) (\(changeIds[i] ?? "not requested")) refused: \(Reply.rejected(errors).json.jsonText.prefix(400))")
                }
                abandon(i)
            case nil:
                counts.unexpectedState += 1
                if samples.count < 10 { samples.append("\(step.label) of change \(k): unreadable reply") }
                abandon(i)
            }
        }
    }

    /// Open changes, changes started, closed so far (progress lines).
    var progress: (open: Int, started: Int, closed: Int, sent: Int) {
        lock.withLock { (open, nextNew - range.lowerBound, counts.closed, counts.sent) }
    }

    struct Results: Sendable {
        var counts: Counts
        var latencies: [[UInt64]]
        var replyTimes: [UInt64]
        var closeTimes: [UInt64]
        var refusals: [String: Int]
        var samples: [String]
        var maxOpen: Int
        var started: Int
        var timeline: [(at: UInt64, latency: UInt64)]
    }

    func results() -> Results {
        lock.withLock {
            Results(counts: counts, latencies: latencies, replyTimes: replyTimes, closeTimes: closeTimes, refusals: refusals, samples: samples,
                    maxOpen: maxOpen, started: nextNew - range.lowerBound, timeline: timeline)
        }
    }

    /// The closed changes: global index and change id.
    func closedChanges() -> [(k: Int, id: String)] {
        lock.withLock {
            status.indices.compactMap { i in status[i] == .closed ? changeIds[i].map { (range.lowerBound + i, $0) } : nil }
        }
    }
}

/// Everything on the tool's reply queue: lifecycle replies go to the driver of the phase that
/// sent them (correlation id `<k>.<step>`), control replies (`ctl-...`) are kept for ``control(_:)``.
final class ReplyRouter: @unchecked Sendable {
    private let lock = NSLock()
    private var drivers: [LifecycleDriver] = []
    private var controls: [String: (reply: Reply, at: UInt64, bytes: Int)] = [:]
    private var unknown = 0
    private var unreadable: [String] = []

    func add(_ driver: LifecycleDriver) { lock.withLock { drivers.append(driver) } }

    func record(_ batch: [Delivery], at now: UInt64) {
        let parsed = batch.map { d in
            (d.properties.correlationID ?? "", (try? JSONValue.parse(d.body)).flatMap(Reply.init(json:)), d.bodySize, d.isTruncated)
        }
        let list = lock.withLock { drivers }
        for (id, reply, size, truncated) in parsed {
            if id.hasPrefix("ctl-") {
                lock.withLock {
                    if let reply { controls[id] = (reply, now, size) } else {
                        unknown += 1
                        if unreadable.count < 5 { unreadable.append("reply \(id) of \(size) bytes\(truncated ? " (truncated)" : ""): not a reply") }
                    }
                }
            } else if let (k, step) = Wire.parse(correlationID: id), let driver = list.first(where: { $0.contains(k) }) {
                driver.record(k, step, reply: reply, at: now)
            } else {
                lock.withLock { unknown += 1 }
            }
        }
    }

    func control(_ id: String) -> (reply: Reply, at: UInt64, bytes: Int)? { lock.withLock { controls[id] } }

    /// Replies that name no command of the run, or that could not be read.
    var unknownReplies: Int { lock.withLock { unknown } }
    var unreadableReplies: [String] { lock.withLock { unreadable } }
}

/// Messages on a queue counted by routing key (the change events an integrator would consume).
final class RoutingKeyCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    func record(_ batch: [Delivery], at _: UInt64) {
        lock.withLock { for d in batch { counts[d.routingKey, default: 0] += 1 } }
    }

    var value: [String: Int] { lock.withLock { counts } }
}
