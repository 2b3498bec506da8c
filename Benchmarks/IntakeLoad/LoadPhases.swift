import CSSAMQP
import CSSModel
import Foundation
import LoadSupport

/// The result of one load phase against intake.
struct PhaseResult: Sendable {
    var name: String
    var sent: Int
    var replies: Int
    var accepted: Int
    var rejected: Int
    var duplicates: Int
    var distinctTrackingNumbers: Int
    var seconds: Double
    var throughput: ThroughputSummary
    var latency: LatencySummary
    var maxRSSMiB: Double
    /// RSS at 0/25/50/75/100 % of the phase.
    var rssTrend: [Double]
    var cpu: CPUUsage
    var commits: Int?
    var samples: [String]
    /// Submit to `ticket.classified`, when the pipeline is measured.
    var pipeline: PipelineSummary?
    /// Submit to `sla.started`, when the pipeline is followed up to the SLA service (`--follow-sla`).
    var sla: PipelineSummary?
}

/// How the accepted tickets of a phase came out of a later service (classification, SLA).
struct PipelineSummary: Sendable {
    /// Accepted tickets whose event arrived.
    var arrived: Int
    var duplicates: Int
    var seconds: Double
    var throughput: ThroughputSummary
    /// From the time each ticket was sent (or due) to its `ticket.classified`.
    var latency: LatencySummary
    var maxRSSMiB: Double
    var rssTrend: [Double]
}

/// Builds `ticket.submit` bodies of about 300 bytes, a mix of incidents and service requests.
struct TicketFactory: Sendable {
    let runID: String
    let customerID: String
    let contact: String

    func body(_ i: Int) -> [UInt8] {
        var o: JSONObject = ["customerId": .string(customerID), "contactEmail": .string(contact), "channel": "api"]
        if i % 4 == 3 {
            o["kind"] = "service_request"
            o["environment"] = "non_production"
            o["catalogItem"] = "password-reset"
            o["summary"] = .string("Password reset for build agent \(i % 97)")
        } else {
            o["kind"] = "incident"
            o["environment"] = i % 2 == 0 ? "production" : "non_production"
            o["impact"] = i % 3 == 0 ? "degraded" : "minor"
            o["urgency"] = "medium"
            o["summary"] = .string("Checkout latency above threshold (\(i))")
            o["component"] = "checkout-api"
        }
        o["description"] = .string("Synthetic ticket \(i) of intake-load run \(runID): p95 latency of the checkout API exceeded 2 s for 5 min.")
        return JSONValue.object(o).encoded()
    }
}

/// Drives one phase: sending, waiting for the replies, measuring.
struct LoadDriver {
    let client: LoadClient
    let factory: TicketFactory
    let sampler: RSSSampler
    let intakePID: Int32
    /// The classification process and its memory, when the pipeline is measured.
    let classification: (pid: Int32, sampler: RSSSampler)?
    /// The SLA process and its memory, when the pipeline is followed up to `sla.started`.
    var sla: (pid: Int32, sampler: RSSSampler)? = nil
    let databaseName: String
    /// Publish calls allowed in flight at once.
    let publishers: Int
    /// How long the run may go without a single reply before it is declared stuck.
    let stallTimeout: Duration = .seconds(60)

    /// Services that run but are not followed (`--all-services`: escalation, change), by name.
    var others: [(name: String, pid: Int32)] = []

    /// The rows of the CPU profile: intake and classification always (as before `--follow-sla`), sla when
    /// followed, then the services that only run.
    var groups: CPUGroups {
        CPUGroups(services: [("intake", intakePID), ("classification", classification?.pid)] + (sla.map { [("sla", $0.pid)] } ?? [])
                    + others.map { ($0.name, Optional($0.pid)) },
                  tool: "intake-load")
    }

    /// The followed events of this run and the process that publishes each.
    var followed: [(event: FollowedEvent, name: String, pid: Int32, sampler: RSSSampler)] {
        (classification.map { [(FollowedEvent.classified, "classified", $0.pid, $0.sampler)] } ?? [])
            + (sla.map { [(FollowedEvent.slaStarted, "sla.started", $0.pid, $0.sampler)] } ?? [])
    }

    /// Closed loop: `count` tickets as fast as intake answers, never more than `inFlight` unanswered.
    func saturation(count: Int, inFlight: Int, chunk: Int, commits: () async -> Int?) async throws -> PhaseResult {
        let phase = PhaseState(tag: "sat-", count: count)
        client.begin(phase)
        _ = sampler.takePhaseMaxMiB()
        for f in followed { _ = f.sampler.takePhaseMaxMiB() }
        let commitsBefore = await commits()
        let cpuBefore = CPUSnapshot.take(groups, database: databaseName)
        let start = monotonicNanos()
        try await withThrowingTaskGroup(of: Void.self) { group in
            var sent = 0
            var running = 0
            var lastProgress = (replies: 0, at: ContinuousClock.now)
            while sent < count {
                try Abort.check()
                let replies = client.withPhase { $0.replies } ?? 0
                if replies != lastProgress.replies { lastProgress = (replies, ContinuousClock.now) }
                let k = min(chunk, count - sent)
                if sent - replies + k > inFlight {
                    if ContinuousClock.now - lastProgress.at > stallTimeout {
                        throw BenchError("saturation: no reply for \(stallTimeout) with \(sent - replies) outstanding")
                    }
                    try await Task.sleep(for: .microseconds(500))
                    continue
                }
                let messages = try await send(phase, from: sent, count: k, at: { _ in monotonicNanos() })
                if running == publishers {
                    try await group.next()
                    running -= 1
                }
                group.addTask { try await client.publish(messages) }
                running += 1
                sent += k
            }
            try await group.waitForAll()
        }
        try await drain(phase, sent: count)
        try await drainFollowed(phase)
        return await finish(phase, name: "saturation", sent: count, start: start, cpuBefore: cpuBefore, commitsBefore: commitsBefore, commits: commits)
    }

    /// Open loop: `rate` tickets a second for `seconds`, each stamped with the time it
    /// was due, so a stall shows up as latency instead of as a slower sender.
    func fixedRate(rate: Int, seconds: Int, commits: () async -> Int?) async throws -> PhaseResult {
        let count = rate * seconds
        let phase = PhaseState(tag: "lat-", count: count)
        client.begin(phase)
        _ = sampler.takePhaseMaxMiB()
        for f in followed { _ = f.sampler.takePhaseMaxMiB() }
        let commitsBefore = await commits()
        let cpuBefore = CPUSnapshot.take(groups, database: databaseName)
        let start = monotonicNanos() + 5_000_000
        let interval = 1e9 / Double(rate)
        func due(_ i: Int) -> UInt64 { start + UInt64(Double(i) * interval) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var sent = 0
            var running = 0
            while sent < count {
                try Abort.check()
                let now = monotonicNanos()
                // Everything due by now goes out in one publish call.
                var upTo = sent
                while upTo < count && due(upTo) <= now { upTo += 1 }
                if upTo > sent {
                    let messages = try await send(phase, from: sent, count: upTo - sent, at: due)
                    // Publishing must never hold the pacer back: past the limit, wait for a call to finish.
                    if running >= max(publishers, 64) {
                        try await group.next()
                        running -= 1
                    }
                    group.addTask { try await client.publish(messages) }
                    running += 1
                    sent = upTo
                }
                try await Task.sleep(for: .microseconds(500))
            }
            try await group.waitForAll()
        }
        try await drain(phase, sent: count)
        try await drainFollowed(phase)
        return await finish(phase, name: "fixed-rate", sent: count, start: start, cpuBefore: cpuBefore, commitsBefore: commitsBefore, commits: commits)
    }

    /// Stamps and builds messages `from..<from+count`; the stamp is set before publishing
    /// so a fast reply always finds it.
    private func send(_ phase: PhaseState, from: Int, count: Int, at stamp: (Int) -> UInt64) async throws -> [OutgoingMessage] {
        var messages: [OutgoingMessage] = []
        messages.reserveCapacity(count)
        for i in from..<(from + count) {
            messages.append(client.command(CommandName.ticketSubmit, body: factory.body(i), messageID: "bench-\(factory.runID)-\(phase.tag)\(i)",
                                           correlationID: phase.correlationID(i)))
        }
        let stamps = (from..<(from + count)).map(stamp)
        _ = client.withPhase { p in
            for (offset, t) in stamps.enumerated() { p.sentAt[from + offset] = t }
        }
        return messages
    }

    /// Waits until every sent message got its reply, or no reply came for the stall timeout.
    private func drain(_ phase: PhaseState, sent: Int) async throws {
        var last = (replies: -1, at: ContinuousClock.now)
        while true {
            try Abort.check()
            let replies = client.withPhase { $0.replies } ?? 0
            if replies >= sent { return }
            if replies != last.replies { last = (replies, ContinuousClock.now) }
            if ContinuousClock.now - last.at > stallTimeout {
                // Report what arrived; the missing replies show in the figures.
                FileHandle.standardError.write(Data("intake-load: \(sent - replies) replies missing after \(stallTimeout) without progress\n".utf8))
                return
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Waits until every accepted ticket got each followed event, or none did for the stall timeout.
    private func drainFollowed(_ phase: PhaseState) async throws {
        for f in followed {
            var last = (count: -1, at: ContinuousClock.now)
            while true {
                try Abort.check()
                let (done, accepted) = client.withPhase { ($0.stage(f.event).times.count, $0.accepted) } ?? (0, 0)
                if done >= accepted { break }
                if done != last.count { last = (done, ContinuousClock.now) }
                if ContinuousClock.now - last.at > stallTimeout {
                    let what = f.event == .classified ? "classified" : "followed to \(f.name)"
                    FileHandle.standardError.write(Data("intake-load: \(accepted - done) tickets not \(what) after \(stallTimeout) without progress\n".utf8))
                    break
                }
                try await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    private func finish(_ phase: PhaseState, name: String, sent: Int, start: UInt64, cpuBefore: CPUSnapshot, commitsBefore: Int?,
                        commits: () async -> Int?) async -> PhaseResult {
        let cpuAfter = CPUSnapshot.take(groups, database: databaseName)
        let rss = sampler.takePhaseMaxMiB()
        // Statistics reach pg_stat_database when a backend goes idle, at most once a second.
        try? await Task.sleep(for: .milliseconds(1200))
        let commitsAfter = await commits()
        let snapshot = client.withPhase { p in
            (p.replies, p.accepted, p.rejected, p.duplicates, p.trackingNumbers.count, p.lastReplyAt, p.okTimes, p.latencies, p.samples)
        }!
        let (replies, accepted, rejected, duplicates, distinct, lastReplyAt, okTimes, latencies, samples) = snapshot
        var summaries: [FollowedEvent: PipelineSummary] = [:]
        for f in followed {
            let (times, lat, dups, last) = client.withPhase { p in
                let s = p.stage(f.event)
                return (s.times, s.latencies, s.duplicates, s.last)
            }!
            summaries[f.event] = PipelineSummary(arrived: times.count, duplicates: dups, seconds: Double(max(last, start) - start) / 1e9,
                                                 throughput: ThroughputSummary(start: start, replyTimes: times), latency: LatencySummary(nanos: lat),
                                                 maxRSSMiB: f.sampler.takePhaseMaxMiB(), rssTrend: f.sampler.trend(from: start, to: cpuAfter.at))
        }
        return PhaseResult(
            name: name, sent: sent, replies: replies, accepted: accepted, rejected: rejected, duplicates: duplicates,
            distinctTrackingNumbers: distinct, seconds: Double(max(lastReplyAt, start) - start) / 1e9,
            throughput: ThroughputSummary(start: start, replyTimes: okTimes), latency: LatencySummary(nanos: latencies),
            maxRSSMiB: rss, rssTrend: sampler.trend(from: start, to: cpuAfter.at), cpu: cpuBefore.usage(until: cpuAfter),
            commits: commitsAfter.flatMap { after in commitsBefore.map { after - $0 } }, samples: samples,
            pipeline: summaries[.classified], sla: summaries[.slaStarted])
    }
}
