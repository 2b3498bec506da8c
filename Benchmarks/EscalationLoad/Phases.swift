import CSSAMQP
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import LoadSupport

/// The `escalation` schema at a point of the run.
struct Tables: Sendable {
    /// Escalations by state, and in all; `timers`: rows of `escalation.timers` not parked, one
    /// per open chain (its next level, an hour ahead); `outbox`: rows not yet published and deleted.
    var open, acknowledged, all, timers, outbox: Int
    /// With their indexes.
    var escalationsMiB, timersMiB: Double
}

/// A fixed-rate phase: what was sent, what came back, how late.
struct RatePhase: Sendable {
    var rate, seconds, sent: Int
    /// Messages the broker returned as unroutable (none expected); pages or replies that came, and extra copies.
    var returned, arrived, duplicates: Int
    /// From each message's due time (its publish, open loop) to its page or reply.
    var latency: LatencySummary
    var throughput: ThroughputSummary
    /// The largest delay of a publish call behind its due time (the tool's own lag).
    var senderLagMs: Double
    var usage: PhaseUsage
}

struct HoldPhase: Sendable {
    var chains, window, returned, arrived, duplicates: Int
    /// Breaches published to pages received, as fast as the service takes them (closed loop).
    var fill: ThroughputSummary
    var fillSeconds: Double
    /// Breach published to page received while filling (closed loop: includes the queue of up to `--hold-window`).
    var fillLatency: LatencySummary
    var fillUsage: PhaseUsage
    /// RSS while holding, after every page arrived and the outbox was empty.
    var sampleSeconds: Int
    var holdMaxMiB: Double
    var holdTrend: [Double]
    var tables: Tables?
}

struct AckPhase: Sendable {
    var phase: RatePhase
    /// Replies with state `acknowledged`, by the acknowledger, for the right escalation.
    var acknowledged: Int
    var tables: Tables?
}

/// Runs the phases against one `escalation` process on the run's vhost and database.
struct EscalationRunner: Sendable {
    let options: EscalationLoad
    let link: BenchLink
    let ledger: RunLedger
    let service: ServiceProcess
    let rss: RSSSampler
    let db: PostgresClient
    let databaseName: String
    let report: EscalationReport

    var groups: CPUGroups { CPUGroups(services: [("escalation", service.pid)], tool: "escalation-load") }

    // MARK: Shared steps

    /// Until the service answers `oncall.get` for an unknown team: it migrated, declared and consumes.
    func waitUntilReady() async throws -> Double {
        let started = monotonicNanos()
        var answer: Reply?
        _ = try await eventually(timeout: .seconds(90), interval: .milliseconds(1)) {
            try Abort.check()
            guard service.isRunning else { throw BenchError("escalation exited during start; see \(service.logFile.path)") }
            answer = try await link.request(CommandName.oncallGet, ["team": "probe"], ledger: ledger, timeout: .seconds(2))
            return answer != nil
        }
        guard let answer else { throw BenchError("escalation did not answer within 90 s; see \(service.logFile.path)") }
        guard answer.errors.map(\.code) == [ErrorCode.unknownTeam] else {
            throw BenchError("escalation answered its readiness probe with \(answer.json.jsonText)")
        }
        return Double(monotonicNanos() - started) / 1e9
    }

    /// The customer (as intake publishes it) and the team's schedule, before any breach. Returns the schedule's revision.
    func setUp() async throws -> Int {
        _ = try await link.publisher.publishConfirmed([try Wire.onboarded(at: Date())])
        guard await eventually(timeout: .seconds(30), { (try? await self.count("SELECT count(*) FROM escalation.customers")) == 1 }) else {
            throw BenchError("escalation did not store customer.onboarded within 30 s; see \(service.logFile.path)")
        }
        let reply = try await link.request(CommandName.oncallScheduleSet, Wire.schedule(now: Date()), ledger: ledger, timeout: .seconds(30))
        guard let revision = reply?.result?["revision"]?.numberValue else {
            throw BenchError("oncall.schedule.set: \(reply.map { $0.json.jsonText } ?? "no reply within 30 s")")
        }
        return Int(revision)
    }

    func count(_ sql: String) async throws -> Int {
        try await db.query(sql)[0].int(0)
    }

    func tables() async -> Tables? {
        guard let r = try? await db.query("""
            SELECT count(*) FILTER (WHERE state = 'open'), count(*) FILTER (WHERE state = 'acknowledged'), count(*),
                   (SELECT count(*) FROM escalation.timers WHERE failure IS NULL), (SELECT count(*) FROM escalation.outbox),
                   pg_total_relation_size('escalation.escalations'), pg_total_relation_size('escalation.timers')
            FROM escalation.escalations
            """).first else { return nil }
        return try? Tables(open: r.int(0), acknowledged: r.int(1), all: r.int(2), timers: r.int(3), outbox: r.int(4),
                           escalationsMiB: Double(r.int(5)) / 1_048_576, timersMiB: Double(r.int(6)) / 1_048_576)
    }

    /// Waits (at most 5 s) until the service published and deleted everything of its outbox.
    func settle() async {
        _ = await eventually(timeout: .seconds(5)) { ((try? await self.count("SELECT count(*) FROM escalation.outbox")) ?? 1) == 0 }
    }

    func begin() -> CPUSnapshot {
        _ = rss.takePhaseMaxMiB()
        return CPUSnapshot.take(groups, database: databaseName)
    }

    func end(_ before: CPUSnapshot, start: UInt64) -> PhaseUsage {
        let after = CPUSnapshot.take(groups, database: databaseName)
        return PhaseUsage(start: start, cpu: before.usage(until: after), maxRSSMiB: rss.takePhaseMaxMiB(), rssTrend: rss.trend(from: start, to: after.at))
    }

    /// Polls `arrived` until it reaches `expected`, calling `step` with it each time round (the
    /// closed loop publishes from there); prints progress every 10 s. After `--stall-timeout`
    /// seconds without progress it says so and returns: the missing ones show in the figures.
    func awaitAll(_ label: String, expected: Int, arrived: () -> Int, step: (Int) async throws -> Void = { _ in }) async throws {
        var progress = (count: -1, at: ContinuousClock.now)
        var nextLine = ContinuousClock.now + .seconds(10)
        while true {
            try Abort.check()
            let n = arrived()
            if n >= expected { return }
            guard service.isRunning else { throw BenchError("escalation exited during \(label) with \(n) of \(expected) arrived; see \(service.logFile.path)") }
            let now = ContinuousClock.now
            if n != progress.count { progress = (n, now) }
            if now - progress.at > .seconds(options.stallTimeout) {
                report.line("   \(label): stopped waiting after \(options.stallTimeout) s without progress, \(n) of \(expected) arrived")
                return
            }
            if now >= nextLine {
                report.line("   ... \(label): \(n)/\(expected), escalation RSS \(fmt(rss.lastMiB)) MiB, load \(loadAverage())")
                nextLine = now + .seconds(10)
            }
            try await step(n)
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// `sla.breached` of tickets `range`, as the SLA service publishes them when they fall due now.
    func breaches(_ range: Range<Int>) -> [OutgoingMessage] {
        let due = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        return range.map { Wire.breached($0, due: due) }
    }

    // MARK: Phases

    /// Breaches of tickets `0..<rate×seconds` at `--rate` a second, open loop; each ticket's page timed from its breach.
    func page() async throws -> RatePhase {
        let count = options.rate * options.seconds
        let before = begin()
        let loop = OpenLoop(rate: options.rate, count: count)
        let returned = Counter()
        let lag = try await loop.run { [self] range in
            let messages = breaches(range)
            ledger.stampBreaches(range, at: loop.due)
            returned.add(try await link.publisher.publishConfirmed(messages))
        }
        try await awaitAll("page", expected: count, arrived: { ledger.paged })
        let usage = end(before, start: loop.start)
        let a = ledger.pages(0..<count)
        return RatePhase(rate: options.rate, seconds: options.seconds, sent: count, returned: returned.value, arrived: a.arrived, duplicates: a.duplicates,
                         latency: LatencySummary(nanos: a.latencies), throughput: ThroughputSummary(start: loop.start, replyTimes: a.times),
                         senderLagMs: Double(lag) / 1e6, usage: usage)
    }

    /// `--chains` more breaches (tickets from `base`), closed loop: never more than `--hold-window`
    /// without their page. Then, with every chain open and the outbox empty, the RSS for `--hold-sample-seconds`.
    func hold(base: Int) async throws -> HoldPhase {
        let count = options.chains
        let range = base..<(base + count)
        let before = begin()
        let start = monotonicNanos()
        var published = 0, returned = 0
        let pagedBefore = ledger.paged
        try await awaitAll("hold", expected: count, arrived: { ledger.paged - pagedBefore }) { arrived in
            let k = min(options.holdChunk, count - published, options.holdWindow - (published - arrived))
            guard k > 0 else { return }
            let batch = (base + published)..<(base + published + k)
            let messages = breaches(batch)
            let now = monotonicNanos()
            ledger.stampBreaches(batch) { _ in now }
            returned += try await link.publisher.publishConfirmed(messages)
            published += k
        }
        let fillUsage = end(before, start: start)
        let a = ledger.pages(range)
        await settle()
        let holdStart = monotonicNanos()
        _ = rss.takePhaseMaxMiB()
        try await Task.sleep(for: .seconds(options.holdSampleSeconds))
        let holdMax = rss.takePhaseMaxMiB()
        let holdTrend = rss.trend(from: holdStart, to: monotonicNanos())
        return HoldPhase(chains: count, window: options.holdWindow, returned: returned, arrived: a.arrived, duplicates: a.duplicates,
                         fill: ThroughputSummary(start: start, replyTimes: a.times), fillSeconds: Double((a.times.max() ?? start) - start) / 1e9,
                         fillLatency: LatencySummary(nanos: a.latencies),
                         fillUsage: fillUsage, sampleSeconds: options.holdSampleSeconds, holdMaxMiB: holdMax, holdTrend: holdTrend, tables: await tables())
    }

    /// `escalation.ack` of tickets `0..<ack-rate×ack-seconds` (paged in the earlier phases) at `--ack-rate`
    /// a second, open loop; each timed from its publish (due) to its reply.
    func ack() async throws -> AckPhase {
        let count = options.ackRate * options.ackSeconds
        let before = begin()
        let loop = OpenLoop(rate: options.ackRate, count: count)
        let lag = try await loop.run { [self] range in
            let messages = range.map {
                Wire.command(CommandName.escalationAck, Wire.ack($0), correlationID: RunLedger.ackCorrelationID($0), replyTo: link.replyQueue)
            }
            ledger.stampAcks(range, at: loop.due)
            _ = try await link.publisher.publishConfirmed(messages)
        }
        try await awaitAll("ack", expected: count, arrived: { ledger.replied(0..<count) })
        let usage = end(before, start: loop.start)
        let a = ledger.acks(0..<count)
        await settle()
        let phase = RatePhase(rate: options.ackRate, seconds: options.ackSeconds, sent: count, returned: 0, arrived: a.arrived, duplicates: a.duplicates,
                              latency: LatencySummary(nanos: a.latencies), throughput: ThroughputSummary(start: loop.start, replyTimes: a.times),
                              senderLagMs: Double(lag) / 1e6, usage: usage)
        return AckPhase(phase: phase, acknowledged: a.acknowledged, tables: await tables())
    }
}
