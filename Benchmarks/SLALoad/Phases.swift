import CSSAMQP
import CSSModel
import CSSPostgres
import CSSRuntime
import CSSTestSupport
import Foundation
import LoadSupport
import Logging

/// How one set of tickets was armed: `ticket.classified` published closed loop (never more
/// than `--arm-window` without their `sla.started`), counted by their `sla.started`.
struct ArmResult: Sendable {
    var set: TicketSet
    var tickets: Int
    var started: Int
    var duplicates: Int
    /// `ticket.classified` the broker returned as unroutable (none expected).
    var returned: Int
    /// First publish to the last ticket's first `sla.started`.
    var seconds: Double
    var throughput: ThroughputSummary
    var cpu: CPUUsage
    var maxRSSMiB: Double
    var rssTrend: [Double]
    var endedAtWall: Double
}

/// The `sla` schema's tables at a point of the run.
struct TableStats: Sendable {
    var timers: Int
    var parked: Int
    var dueNow: Int
    /// Nil when not counted.
    var tickets: Int?
    var outbox: Int
    var timersMiB: Double
    var ticketsMiB: Double
}

/// The planned firings of a set as they arrived.
struct FiringResult: Sendable {
    var planned: Int
    var arrived: Int
    var duplicates: Int
    var dueMismatches: Int
    /// Event `time` before the due instant: fired early (never expected).
    var early: Int
    var eventLateness: LatencySummary
    var receiveLateness: LatencySummary
    /// p99 of the event lateness over the first, middle and last third of the due seconds.
    var thirdsP99: [Double]
    /// The due seconds with the largest event lateness: (offset from the window start, max ms, firings).
    var worstSeconds: [(offset: Int64, maxMs: Double, count: Int)]
    /// Firings received per second, from the window start.
    var received: ThroughputSummary
    /// The service's timer-loop batches, told apart by their event `time` (the instant the
    /// loop took the batch out of `sla.timers`, the same for every event of the batch).
    var batches: Int
    var batchSizeP50: Int
    var batchSizeMax: Int
    /// Per batch: from its event `time` to the last of its firings received by this tool
    /// (the transaction, its commit, the publish and the delivery).
    var batchSpan: LatencySummary

    init(_ s: FiringLedger.Snapshot, windowStart: Int64, monoAtStart: UInt64) {
        planned = s.planned
        arrived = s.firings.count
        duplicates = s.duplicates
        dueMismatches = s.dueMismatches
        early = s.firings.filter { $0.eventLateness < 0 }.count
        eventLateness = LatencySummary(nanos: s.firings.map { UInt64(max(0, $0.eventLateness)) })
        receiveLateness = LatencySummary(nanos: s.firings.map { UInt64(max(0, $0.receiveLateness)) })
        let seconds = s.firings.map(\.dueSecond)
        if let lo = seconds.min(), let hi = seconds.max() {
            let span = hi - lo + 1
            thirdsP99 = (0..<3).map { k in
                let a = lo + span * Int64(k) / 3, b = lo + span * Int64(k + 1) / 3
                return LatencySummary(nanos: s.firings.filter { $0.dueSecond >= a && $0.dueSecond < b }.map { UInt64(max(0, $0.eventLateness)) }).p99
            }
        } else {
            thirdsP99 = []
        }
        var bySecond: [Int64: (max: Int64, count: Int)] = [:]
        for f in s.firings {
            let e = bySecond[f.dueSecond] ?? (Int64.min, 0)
            bySecond[f.dueSecond] = (max(e.max, f.eventLateness), e.count + 1)
        }
        worstSeconds = bySecond.sorted { $0.value.max > $1.value.max }.prefix(3).map { ($0.key - windowStart, Double($0.value.max) / 1e6, $0.value.count) }
        received = ThroughputSummary(start: monoAtStart, replyTimes: s.firings.map(\.receivedAt))
        var byBatch: [Int64: (count: Int, span: Int64)] = [:]
        for f in s.firings {
            // Event time in µs (the service's clock resolution) identifies the batch.
            let eventTime = (f.dueSecond * 1_000_000_000 + f.eventLateness) / 1000
            let e = byBatch[eventTime] ?? (0, 0)
            byBatch[eventTime] = (e.count + 1, max(e.span, f.receiveLateness - f.eventLateness))
        }
        let sizes = byBatch.values.map(\.count).sorted()
        batches = sizes.count
        batchSizeP50 = sizes.isEmpty ? 0 : sizes[sizes.count / 2]
        batchSizeMax = sizes.last ?? 0
        batchSpan = LatencySummary(nanos: byBatch.values.map { UInt64(max(0, $0.span)) })
    }
}

struct MeasureResult: Sendable {
    var dueRate: Int
    var seconds: Int
    var leadSeconds: Int
    var windowStart: Int64
    var arm: ArmResult
    /// The measured set was armed this many seconds before its first threshold fell due (negative: late).
    var armedAhead: Double
    var tablesAtWindow: TableStats?
    var firings: FiringResult
    var cpu: CPUUsage
    var maxRSSMiB: Double
    var rssTrend: [Double]
}

struct RecoveryResult: Sendable {
    var timers: Int
    var arm: ArmResult
    /// Seconds between the kill and the instant the timers fell due (positive: killed before).
    var killedAhead: Double
    /// Recovery firings that arrived before the kill (none expected).
    var firedBeforeKill: Int
    var overdueSeconds: Int
    var tablesAtRestart: TableStats?
    /// From the restart (process spawn) to: the readiness probe answered, the first and the
    /// last planned firing received, the last planned firing's event `time`.
    var toReady: Double?
    var toFirst: Double?
    var toLast: Double?
    var toLastEventTime: Double?
    var firings: FiringResult
    var cpu: CPUUsage
    var maxRSSMiB: Double
}

/// Runs the phases against one `sla` process (and its restarts) on the run's vhost and database.
final class SLARunner: @unchecked Sendable {
    let options: SLALoad
    let plan: SLAPlan
    let sla: SLAService
    let taps: EventTaps
    let publisher: AMQPPublisher
    let control: ContractClient
    let db: PostgresClient
    let databaseName: String
    let report: SLAReport

    init(options: SLALoad, plan: SLAPlan, sla: SLAService, taps: EventTaps, publisher: AMQPPublisher, control: ContractClient,
         db: PostgresClient, databaseName: String, report: SLAReport) {
        self.options = options
        self.plan = plan
        self.sla = sla
        self.taps = taps
        self.publisher = publisher
        self.control = control
        self.db = db
        self.databaseName = databaseName
        self.report = report
    }

    // MARK: Shared steps

    /// Publishes with confirms (retrying while the publisher reconnects); returns how many came back unroutable.
    func publish(_ messages: [OutgoingMessage]) async throws -> Int {
        try await publisher.publishConfirmed(messages)
    }

    /// Until the service answers a command: it migrated, declared and consumes. Returns seconds waited.
    func waitUntilReady(timeout: Duration = .seconds(90)) async throws -> Double {
        let started = monotonicNanos()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            try Abort.check()
            guard sla.isRunning else { throw BenchError("sla exited during start; see \(sla.process.logFile.path)") }
            if (try? await control.send(CommandName.slaExclusionAdd, SLALoad.probe, timeout: .seconds(2))) != nil {
                return Double(monotonicNanos() - started) / 1e9
            }
        }
        throw BenchError("sla did not answer within \(timeout); see \(sla.process.logFile.path)")
    }

    /// Counts in the `sla` schema. `tickets: false` leaves out the count of `sla.tickets` (a scan
    /// of every ticket's clocks: seconds at a million targets, right before a measurement).
    func tables(tickets: Bool = true) async -> TableStats? {
        let ticketCount = tickets ? "(SELECT count(*) FROM sla.tickets)" : "-1::bigint"
        let rows = try? await db.query("""
            SELECT (SELECT count(*) FROM sla.timers WHERE failure IS NULL), (SELECT count(*) FROM sla.timers WHERE failure IS NOT NULL),
                   (SELECT count(*) FROM sla.timers WHERE failure IS NULL AND due_at <= now()),
                   \(ticketCount), (SELECT count(*) FROM sla.outbox),
                   pg_total_relation_size('sla.timers'), pg_total_relation_size('sla.tickets')
            """)
        guard let r = rows?.first else { return nil }
        do {
            let counted = try r.int(3)
            return TableStats(timers: try r.int(0), parked: try r.int(1), dueNow: try r.int(2), tickets: counted < 0 ? nil : counted, outbox: try r.int(4),
                              timersMiB: Double(try r.int(5)) / 1_048_576, ticketsMiB: Double(try r.int(6)) / 1_048_576)
        } catch {
            return nil
        }
    }

    /// What is left in the outbox, by routing key: rows, rows whose lease ran out, the oldest row's age in seconds.
    func outboxLeft() async -> [(routingKey: String, rows: Int, leaseExpired: Int, oldestSeconds: Double)] {
        let rows = try? await db.query("""
            SELECT routing_key, count(*), count(*) FILTER (WHERE lease_until < clock_timestamp()),
                   extract(epoch FROM clock_timestamp() - min(lease_until))::float8 + 30
            FROM sla.outbox GROUP BY routing_key ORDER BY routing_key
            """)
        return (rows.map(Array.init) ?? []).compactMap { r in
            guard let key = try? r.string(0), let n = try? r.int(1), let expired = try? r.int(2) else { return nil }
            return (key, n, expired, (try? r.double(3)) ?? 0)
        }
    }

    /// Waits (at most `timeout`) until the service deleted what it published: its outbox is empty.
    /// Returns the rows still there.
    @discardableResult
    func settle(timeout: Duration = .seconds(5)) async -> Int {
        let deadline = ContinuousClock.now + timeout
        var left = 0
        repeat {
            left = ((try? await db.query("SELECT count(*) FROM sla.outbox")[0].int(0)) ?? 0)
            if left == 0 { return 0 }
            try? await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        return left
    }

    func sleep(untilWall t: Double) async throws {
        while true {
            try Abort.check()
            let left = t - wallSeconds()
            if left <= 0 { return }
            try await Task.sleep(for: .milliseconds(Int64(min(200, max(1, left * 1000)))))
        }
    }

    /// Publishes `ticket.classified` for `count` tickets of `set`, closed loop, until each has its `sla.started`.
    func arm(_ set: TicketSet, count: Int, event: (Int, Date) -> OutgoingMessage) async throws -> ArmResult {
        let ledger = taps.startedLedger
        ledger.register(set, count: count)
        _ = sla.takePhaseMaxMiB()
        let cpuBefore = CPUSnapshot.take(sla.groups, database: databaseName)
        let start = monotonicNanos()
        let deadline = ContinuousClock.now + .seconds(options.armTimeout)
        var published = 0
        var returned = 0
        var progress = (started: -1, at: ContinuousClock.now)
        var nextLine = ContinuousClock.now + .seconds(10)
        var lastLine = (started: 0, at: monotonicNanos())
        while true {
            try Abort.check()
            let started = ledger.started(set)
            if started >= count { break }
            let now = ContinuousClock.now
            if started != progress.started { progress = (started, now) }
            guard sla.isRunning else { throw BenchError("sla exited while arming the \(set.name) tickets; see \(sla.process.logFile.path)") }
            if now - progress.at > .seconds(options.stallTimeout) {
                throw BenchError("arm \(set.name): no sla.started for \(options.stallTimeout) s with \(started) of \(count) started (\(published) published)")
            }
            if now > deadline {
                throw BenchError("arm \(set.name): --arm-timeout \(options.armTimeout) s reached with \(started) of \(count) started")
            }
            if now >= nextLine {
                let mono = monotonicNanos()
                let rate = Double(started - lastLine.started) / (Double(mono - lastLine.at) / 1e9)
                report.line("   ... \(set.name): \(started)/\(count) started (\(fmt(rate, 0))/s over the last 10 s), sla RSS \(fmt(sla.current?.lastMiB ?? 0)) MiB, load \(loadAverage())")
                lastLine = (started, mono)
                nextLine = now + .seconds(10)
            }
            let window = published - started
            if published < count && window < options.armWindow {
                let k = min(options.armChunk, count - published, options.armWindow - window)
                let at = Date()
                let messages = (published..<(published + k)).map { event($0, at) }
                returned += try await publish(messages)
                published += k
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        let cpuAfter = CPUSnapshot.take(sla.groups, database: databaseName)
        let (started, duplicates, times) = ledger.snapshot(set)
        let last = times.max() ?? start
        return ArmResult(set: set, tickets: count, started: started, duplicates: duplicates, returned: returned,
                         seconds: Double(max(last, start) - start) / 1e9, throughput: ThroughputSummary(start: start, replyTimes: times),
                         cpu: cpuBefore.usage(until: cpuAfter), maxRSSMiB: sla.takePhaseMaxMiB(), rssTrend: sla.trend(from: start, to: cpuAfter.at),
                         endedAtWall: wallSeconds())
    }

    /// Waits until every planned firing of `set` arrived, or `deadline` (wall) passed; prints progress.
    func awaitFirings(_ set: TicketSet, planned: Int, untilWall deadline: Double, label: String) async throws {
        var nextLine = wallSeconds() + 10
        while true {
            try Abort.check()
            let arrived = taps.firingLedger.arrived(set)
            if arrived >= planned { return }
            guard sla.isRunning else { throw BenchError("sla exited during \(label) with \(arrived) of \(planned) firings; see \(sla.process.logFile.path)") }
            let now = wallSeconds()
            if now > deadline {
                report.line("   \(label): stopped waiting with \(arrived) of \(planned) planned firings arrived")
                return
            }
            if now >= nextLine {
                report.line("   ... \(label): \(arrived)/\(planned) firings, sla RSS \(fmt(sla.current?.lastMiB ?? 0)) MiB, load \(loadAverage())")
                nextLine = now + 10
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: Phases

    /// The bulk: `--targets` / 2 tickets less the measured ones, thresholds weeks ahead.
    func armBackground(count: Int) async throws -> ArmResult {
        let armStart = Int64(wallSeconds().rounded(.down))
        return try await arm(.background, count: count) { i, now in
            self.plan.classified(.background, i, receivedAt: self.plan.backgroundReceivedAt(armStart: armStart, index: i), now: now)
        }
    }

    /// Arms the measured tickets so that `--due-rate` thresholds fall due in each second of the
    /// window, then receives them.
    func measure(armRate: Double?) async throws -> MeasureResult {
        let rate = options.dueRate, seconds = options.seconds
        let count = rate * seconds
        let estimate = Double(count) / max(armRate ?? 200, 20)
        let lead = options.lead ?? Int(min(Double(SLAPlan.maximumLead), (estimate * 1.5 + 10).rounded(.up)))
        guard lead <= SLAPlan.maximumLead else { throw BenchError("--lead may be at most \(SLAPlan.maximumLead) s") }
        let windowStart = Int64(wallSeconds().rounded(.up)) + Int64(lead)
        let due = (0..<count).map { windowStart + Int64($0 / rate) }
        taps.firingLedger.register(.measured, due: due)
        report.line("   window: \(seconds) s from \(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(windowStart)))), \(rate) planned firings due at each whole second, "
            + "\(count) in all; arming the \(count) measured tickets, lead \(lead) s")
        let arm = try await arm(.measured, count: count) { i, now in
            self.plan.classified(.measured, i, receivedAt: self.plan.receivedAt(due: due[i], index: i), now: now)
        }
        let armedAhead = Double(windowStart) - arm.endedAtWall
        report.armed(arm, title: "measured set")
        if armedAhead < 1 {
            report.line("   WARNING: the measured set was armed only \(fmt(armedAhead, 1)) s before its first threshold: early firings are late by construction (raise --lead)")
        }
        await settle()
        let tablesAtWindow = await tables(tickets: false)
        try await sleep(untilWall: Double(windowStart) - 0.3)
        _ = sla.takePhaseMaxMiB()
        let cpuBefore = CPUSnapshot.take(sla.groups, database: databaseName)
        let monoAtStart = monotonicNanos() + UInt64(max(0, Double(windowStart) - wallSeconds()) * 1e9)
        try await awaitFirings(.measured, planned: count, untilWall: Double(windowStart + Int64(seconds) + Int64(options.drainTimeout)), label: "measure")
        // Late duplicates (an outbox row published twice) would come right after.
        try await Task.sleep(for: .milliseconds(500))
        let cpuAfter = CPUSnapshot.take(sla.groups, database: databaseName)
        let firings = FiringResult(taps.firingLedger.snapshot(.measured), windowStart: windowStart, monoAtStart: monoAtStart)
        return MeasureResult(dueRate: rate, seconds: seconds, leadSeconds: lead, windowStart: windowStart, arm: arm, armedAhead: armedAhead,
                             tablesAtWindow: tablesAtWindow, firings: firings, cpu: cpuBefore.usage(until: cpuAfter),
                             maxRSSMiB: sla.takePhaseMaxMiB(), rssTrend: sla.trend(from: cpuBefore.at, to: cpuAfter.at))
    }

    /// `--recovery-timers` timers due at one second; SIGKILL before it, restart `--overdue`
    /// seconds after it, and time until the last of them is published.
    func recovery(armRate: Double?) async throws -> RecoveryResult {
        let count = options.recoveryTimers
        let estimate = Double(count) / max(armRate ?? 200, 20)
        let lead = max(12, Int((estimate * 1.5 + 8).rounded(.up)))
        let dueSecond = Int64(wallSeconds().rounded(.up)) + Int64(lead)
        taps.firingLedger.register(.recovery, due: [Int64](repeating: dueSecond, count: count))
        report.line("   \(count) timers due at \(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(dueSecond)))) (in \(lead) s); arming them")
        let arm = try await arm(.recovery, count: count) { i, now in
            self.plan.classified(.recovery, i, receivedAt: self.plan.receivedAt(due: dueSecond, index: i), now: now)
        }
        report.armed(arm, title: "recovery set")
        // Let the service delete what it published (a kill between a publish and its delete would
        // have those events published again), then kill well before the due second.
        let outboxAtKill = await settle()
        let firedBeforeKill = taps.firingLedger.arrived(.recovery)
        _ = sla.takePhaseMaxMiB()
        let cpuBefore = CPUSnapshot.take(sla.groups, database: databaseName)
        sla.process.signal(SIGKILL)
        let killedAt = wallSeconds()
        let status = await sla.process.waitForExit(timeout: .seconds(10))
        report.line("   kill -9 \(sla.pid.map(String.init) ?? "?") \(fmt(Double(dueSecond) - killedAt, 2)) s before the due second (status \(status.map(String.init) ?? "still running")), outbox rows at the kill \(outboxAtKill)")
        try await sleep(untilWall: Double(dueSecond + Int64(options.overdue)))
        let tablesAtRestart = await tables(tickets: false)
        let restartMono = monotonicNanos()
        let restartWall = wallSeconds()
        try sla.start()
        report.line("   restarted \(options.overdue) s after the due second: pid \(sla.pid!), \(tablesAtRestart.map { "\($0.dueNow) timers overdue" } ?? "timers not counted")")
        let ready = Task { try? await self.waitUntilReady(timeout: .seconds(self.options.recoveryTimeout)) }
        try await awaitFirings(.recovery, planned: count, untilWall: restartWall + Double(options.recoveryTimeout), label: "recovery")
        let toReady = await ready.value
        try await Task.sleep(for: .seconds(1))
        let cpuAfter = CPUSnapshot.take(sla.groups, database: databaseName)
        let snapshot = taps.firingLedger.snapshot(.recovery)
        let firings = FiringResult(snapshot, windowStart: dueSecond, monoAtStart: restartMono)
        let received = snapshot.firings.map(\.receivedAt)
        let lastEvent = snapshot.firings.map { Double($0.dueSecond) + Double($0.eventLateness) / 1e9 }.max()
        return RecoveryResult(
            timers: count, arm: arm, killedAhead: Double(dueSecond) - killedAt, firedBeforeKill: firedBeforeKill, overdueSeconds: options.overdue,
            tablesAtRestart: tablesAtRestart, toReady: toReady,
            toFirst: received.min().map { Double($0 &- restartMono) / 1e9 }, toLast: received.max().map { Double($0 &- restartMono) / 1e9 },
            toLastEventTime: lastEvent.map { $0 - restartWall }, firings: firings, cpu: cpuBefore.usage(until: cpuAfter),
            maxRSSMiB: sla.takePhaseMaxMiB())
    }
}
