import CSSAMQP
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import LoadSupport

/// One phase of changes through their lifecycle: what was sent, what came back, how fast, how late.
struct LifecyclePhase: Sendable {
    /// `lifecycle` (paced at `rate`) or `max` (closed loop, no pacing).
    var name: String
    var rate: Int?
    var changes, concurrency: Int
    var results: LifecycleDriver.Results
    /// Commands the broker returned as unroutable (none expected).
    var returned: Int
    /// Reply latency of every command, and per step.
    var latency: Percentiles
    var perStep: [(step: Wire.Step, latency: Percentiles)]
    var commands: ThroughputSummary
    var closedPerSecond: ThroughputSummary
    /// First command's send time to last reply.
    var seconds: Double
    /// The largest delay of a publish call behind its commands' send times (the tool's own lag).
    var senderLagMs: Double
    /// Paced phase: slots the pacer filled late because no change was ready (all open changes waiting for replies).
    var starvedSlots: Int
    var deadlineHit: Bool
    var usage: PhaseUsage
    /// The closed changes: global index and change id.
    var closedChanges: [(k: Int, id: String)]
    /// Latency of the replies received in each window of `windowSeconds` from the start (stalls show here).
    var windowSeconds: Int
    var windows: [Percentiles]
    /// Paced phase: whole seconds (after the first, before the last) in which fewer than half the offered replies came.
    var thinSeconds: Int
}

/// What the database and the wire say after the phases.
struct Verification: Sendable {
    var states: [String: Int] = [:]
    var directoryRows = 0, inbox = 0, outbox = 0, timers = 0
    var changesMiB = 0.0, inboxMiB = 0.0
    var sampled = 0, sampledOK = 0
    var sampleProblems: [String] = []
    /// `change.directory.get` of the first customer: components listed, timeline entries, reply latency,
    /// and the closed changes of that customer (one component each).
    var directory: (components: Int, timeline: Int, ms: Double, bytes: Int, expected: Int)?
    var unreadableReplies: [String] = []
    var events: [String: Int] = [:]
    var drained: [String: Int] = [:]
    var deadLetters = 0
    var unknownReplies = 0
}

/// Runs the phases against one `change` process on the run's vhost and database.
struct ChangeRunner: Sendable {
    let options: ChangeLoad
    let link: BenchLink
    let plan: Wire.Plan
    let service: ServiceProcess
    let rss: RSSSampler
    let db: PostgresClient
    let databaseName: String
    let runID: String
    let report: ChangeReport

    var groups: CPUGroups { CPUGroups(services: [("change", service.pid)], tool: "change-load") }

    // MARK: Shared steps

    /// Until the service answers `change.get` of an unknown change: it migrated, declared and consumes.
    func waitUntilReady() async throws -> Double {
        let started = monotonicNanos()
        var answer: Reply?
        _ = try await eventually(timeout: .seconds(90), interval: .milliseconds(1)) {
            try Abort.check()
            guard service.isRunning else { throw BenchError("change exited during start; see \(service.logFile.path)") }
            answer = try await link.request(CommandName.changeGet, ["changeId": "CHG-000000"], timeout: .seconds(2))?.reply
            return answer != nil
        }
        guard let answer else { throw BenchError("change did not answer within 90 s; see \(service.logFile.path)") }
        guard answer.errors.map(\.code) == [ErrorCode.unknownChange] else {
            throw BenchError("change answered its readiness probe with \(answer.json.jsonText)")
        }
        return Double(monotonicNanos() - started) / 1e9
    }

    /// The customers (as intake publishes them), their maintenance windows (every day, all day) and the
    /// Standard-change template, before any change.
    func setUp() async throws {
        let now = Date()
        _ = try await link.publisher.publishConfirmed(try (0..<options.customers).map { try Wire.onboarded($0, at: now) })
        guard await eventually(timeout: .seconds(30), { (try? await self.count("SELECT count(*) FROM change.customers")) == options.customers }) else {
            throw BenchError("change did not store the \(options.customers) customer.onboarded within 30 s; see \(service.logFile.path)")
        }
        for c in 0..<options.customers {
            let answer = try await link.request(CommandName.maintenanceWindowsSet, Wire.windows(c), timeout: .seconds(30))
            guard answer?.reply.result?["revision"] != nil else {
                throw BenchError("maintenance.windows.set of \(Wire.customerID(c)): \(answer.map { $0.reply.json.jsonText } ?? "no reply within 30 s")")
            }
        }
        let answer = try await link.request(CommandName.changeTemplateSet, Wire.template(), timeout: .seconds(30))
        guard answer?.reply.result?["revision"] != nil else {
            throw BenchError("change.template.set: \(answer.map { $0.reply.json.jsonText } ?? "no reply within 30 s")")
        }
    }

    func count(_ sql: String) async throws -> Int {
        try await db.query(sql)[0].int(0)
    }

    /// Waits (at most 10 s) until the service published and deleted everything of its outbox.
    func settle() async {
        _ = await eventually(timeout: .seconds(10)) { ((try? await self.count("SELECT count(*) FROM change.outbox")) ?? 1) == 0 }
    }

    func begin() -> CPUSnapshot {
        _ = rss.takePhaseMaxMiB()
        return CPUSnapshot.take(groups, database: databaseName)
    }

    func end(_ before: CPUSnapshot, start: UInt64) -> PhaseUsage {
        let after = CPUSnapshot.take(groups, database: databaseName)
        return PhaseUsage(start: start, cpu: before.usage(until: after), maxRSSMiB: rss.takePhaseMaxMiB(), rssTrend: rss.trend(from: start, to: after.at))
    }

    // MARK: Phases

    /// Changes `range` through their lifecycle with at most `concurrency` open. With a `rate`, commands go
    /// out at that many a second, open loop: slot i is due i/rate s after the start and takes the next
    /// ready command; a command's latency runs from its slot's due time, or from its previous reply when
    /// that came later (a change waits for its reply, not for a slot). Without a rate (`max`), every ready
    /// command goes out at once. The phase ends when every change is closed or given up; after
    /// `deadline` seconds no change starts and the waiting ones are given up.
    func run(_ name: String, range: Range<Int>, rate: Int?, concurrency: Int, deadline seconds: Int) async throws -> LifecyclePhase {
        let driver = LifecycleDriver(range: range, concurrency: concurrency)
        link.router.add(driver)
        let before = begin()
        let start = monotonicNanos() + 5_000_000
        let deadline = start + UInt64(seconds) * 1_000_000_000
        let timeout = UInt64(options.replyTimeout) * 1_000_000_000
        let returned = Counter()
        var slot = 0, starved = 0, worstLag: UInt64 = 0, deadlineHit = false
        var nextLine = monotonicNanos() + 10_000_000_000
        let (replyTo, runID, plan) = (link.replyQueue, runID, plan)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            while !driver.isFinished {
                try Abort.check()
                guard service.isRunning else { throw BenchError("change exited during \(name); see \(service.logFile.path)") }
                let now = monotonicNanos()
                if now >= deadline, !deadlineHit {
                    deadlineHit = true
                    driver.stop()
                    report.line("   \(name): deadline of \(seconds) s passed: no more changes start, the waiting ones are given up")
                }
                driver.sweep(now: now, timeout: timeout)
                if now >= nextLine {
                    let p = driver.progress
                    report.line("   ... \(name): \(p.closed)/\(range.count) closed, \(p.started) started, \(p.open) open, \(p.sent) commands sent, "
                        + "change RSS \(fmt(rss.lastMiB)) MiB, load \(loadAverage())")
                    nextLine = now + 10_000_000_000
                }
                let allowed: Int
                if let rate {
                    allowed = now < start ? 0 : Int((now - start) * UInt64(rate) / 1_000_000_000) + 1 - slot
                } else {
                    allowed = Int.max
                }
                if allowed > 0 {
                    let commands = driver.take(max: allowed) { readyAt in
                        guard let rate else { return now }
                        let due = start + UInt64(slot) * 1_000_000_000 / UInt64(rate)
                        slot += 1
                        if let readyAt, readyAt > due + 1_000_000 { starved += 1 }
                        return max(due, readyAt ?? 0)
                    }
                    if !commands.isEmpty {
                        if running >= 64 {
                            try await group.next()
                            running -= 1
                        }
                        let earliest = commands.map(\.intended).min()!
                        let messages = commands.map { c in
                            let id = Wire.correlationID(c.k, c.step)
                            return Wire.command(c.step.command, Wire.body(c.step, k: c.k, changeId: c.changeId, plan: plan),
                                                messageID: "cmd-\(runID)-\(id)", correlationID: id, replyTo: replyTo)
                        }
                        worstLag = max(worstLag, monotonicNanos() &- min(earliest, monotonicNanos()))
                        group.addTask { returned.add(try await link.publisher.publishConfirmed(messages)) }
                        running += 1
                    }
                }
                // Paced: sleep to the next slot unless one is due and waits for a ready change; closed loop: poll.
                var pause: UInt64 = 500_000
                if let rate {
                    let nextDue = start + UInt64(slot) * 1_000_000_000 / UInt64(rate)
                    let t = monotonicNanos()
                    if nextDue > t { pause = min(nextDue - t, 100_000_000) } else if driver.hasWork { pause = 0 }
                }
                if pause > 0 { try await Task.sleep(for: .nanoseconds(Int64(pause))) }
            }
            try await group.waitForAll()
        }
        let results = driver.results()
        let usage = end(before, start: start)
        let lastReply = results.timeline.map(\.at).max() ?? start
        let span = Double(lastReply &- min(lastReply, start)) / 1e9
        let windowSeconds = span <= 60 ? 5 : span <= 300 ? 15 : 30
        var buckets: [[UInt64]] = Array(repeating: [], count: Int(span) / windowSeconds + 1)
        var perSecond = [Int](repeating: 0, count: Int(span) + 1)
        for (at, latency) in results.timeline where at >= start {
            let second = Int((at - start) / 1_000_000_000)
            buckets[min(buckets.count - 1, second / windowSeconds)].append(latency)
            perSecond[min(perSecond.count - 1, second)] += 1
        }
        let thin = rate.map { r in perSecond.count > 2 ? perSecond[1..<(perSecond.count - 1)].filter { 2 * $0 < r }.count : 0 } ?? 0
        let all = results.latencies.flatMap { $0 }
        let last = results.replyTimes.max() ?? start
        return LifecyclePhase(
            name: name, rate: rate, changes: range.count, concurrency: concurrency, results: results, returned: returned.value,
            latency: Percentiles(nanos: all), perStep: Wire.Step.allCases.map { ($0, Percentiles(nanos: results.latencies[$0.rawValue])) },
            commands: ThroughputSummary(start: start, replyTimes: results.replyTimes),
            closedPerSecond: ThroughputSummary(start: start, replyTimes: results.closeTimes), seconds: Double(last &- min(last, start)) / 1e9,
            senderLagMs: Double(worstLag) / 1e6, starvedSlots: starved, deadlineHit: deadlineHit, usage: usage, closedChanges: driver.closedChanges(),
            windowSeconds: windowSeconds, windows: buckets.map { Percentiles(nanos: $0) }, thinSeconds: thin)
    }

    // MARK: Checks

    /// The stored changes by state, the directory, the messaging tables, a sample of `change.get`, one
    /// `change.directory.get`, the events seen by the tap and the drains.
    func verify(closed: [(k: Int, id: String)]) async throws -> Verification {
        var v = Verification()
        await settle()
        for r in try await db.query("SELECT state, count(*) FROM change.changes GROUP BY state ORDER BY state") {
            v.states[try r.string(0)] = try r.int(1)
        }
        let r = try await db.query("""
            SELECT (SELECT count(*) FROM change.directory), (SELECT count(*) FROM change.inbox), (SELECT count(*) FROM change.outbox),
                   (SELECT count(*) FROM change.timers), pg_total_relation_size('change.changes'), pg_total_relation_size('change.inbox')
            """)[0]
        v.directoryRows = try r.int(0)
        v.inbox = try r.int(1)
        v.outbox = try r.int(2)
        v.timers = try r.int(3)
        v.changesMiB = Double(try r.int(4)) / 1_048_576
        v.inboxMiB = Double(try r.int(5)) / 1_048_576

        // change.get of a sample spread over the closed changes: closed, with the whole history.
        let step = max(1, closed.count / max(1, options.verifySample))
        let history = ["agree", "schedule", "deploy", "verify", "schedule", "implement", "complete", "close"]
        for (k, id) in stride(from: 0, to: closed.count, by: step).prefix(options.verifySample).map({ closed[$0] }) {
            try Abort.check()
            v.sampled += 1
            guard let answer = try await link.request(CommandName.changeGet, ["changeId": .string(id)], timeout: .seconds(30)),
                  let change = answer.reply.result else {
                v.sampleProblems.append("change.get \(id): no reply or refused")
                continue
            }
            let production = plan.production(k)
            var problems: [String] = []
            if change["state"]?.stringValue != "closed" { problems.append("state \(change["state"]?.stringValue ?? "?")") }
            let actions = change["history"]?.arrayValue?.map { $0["action"]?.stringValue ?? "" } ?? []
            if actions != history { problems.append("history \(actions)") }
            if change["components"]?.arrayValue?.compactMap(\.stringValue) != [Wire.component(k)] { problems.append("components") }
            if change["production"]?["start"] != Wire.time(production.start) || change["production"]?["end"] != Wire.time(production.end) {
                problems.append("production window \(change["production"]?.jsonText ?? "null")")
            }
            if change["installed"]?.arrayValue?.first?["version"]?.stringValue != Wire.version(k) { problems.append("installed") }
            if problems.isEmpty { v.sampledOK += 1 } else if v.sampleProblems.count < 10 { v.sampleProblems.append("\(id): " + problems.joined(separator: ", ")) }
        }

        // The first customer's directory: one component per closed change of that customer.
        let expected = closed.filter { plan.customer($0.k) == 0 }.count
        if let answer = try await link.request(CommandName.changeDirectoryGet, ["customerId": .string(Wire.customerID(0))], timeout: .seconds(60)),
           let result = answer.reply.result {
            v.directory = (result["components"]?.arrayValue?.count ?? -1, result["timeline"]?.arrayValue?.count ?? -1, answer.ms, answer.bytes, expected)
        }

        // Events follow their replies closely; give the tap a moment to see the last ones.
        let expectedEvents = closed.count * 11
        _ = await eventually(timeout: .seconds(10)) {
            link.eventCounts.value.filter { $0.key != EventType.maintenanceWindowsUpdated }.values.reduce(0, +) >= expectedEvents
        }
        try await Task.sleep(for: .seconds(1))
        v.events = link.eventCounts.value
        v.drained = link.drainCounts.value
        v.deadLetters = link.deadLetters.received.value
        v.unknownReplies = link.router.unknownReplies
        v.unreadableReplies = link.router.unreadableReplies
        return v
    }
}
