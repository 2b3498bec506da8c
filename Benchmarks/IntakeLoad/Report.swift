import CSSModel
import Foundation
import LoadSupport

/// Prints the human-readable report as the run goes, and collects the figures for the
/// final JSON line.
struct Report {
    private var json = JSONObject()
    private var checks: [(String, Bool)] = []
    private var rawRate: Double?
    private var saturation: PhaseResult?
    private var fixedRateOffered: Int
    private var results = JSONObject()

    init(runID: String, arguments a: IntakeLoad) {
        fixedRateOffered = a.rate
        json["tool"] = "intake-load"
        json["runId"] = .string(runID)
        json["cores"] = .int(ProcessInfo.processInfo.activeProcessorCount)
        json["loadAverageAtStart"] = .string(loadAverage())
        var settings = JSONObject()
        settings["tickets"] = .int(a.tickets)
        settings["rate"] = .int(a.rate)
        settings["seconds"] = .int(a.seconds)
        settings["rawMessages"] = .int(a.rawMessages)
        settings["rawBatch"] = .int(a.rawBatch)
        settings["rawPipeline"] = .int(a.rawPipeline)
        settings["inFlight"] = .int(a.inFlight)
        settings["chunk"] = .int(a.chunk)
        settings["workers"] = a.workers.map { .int($0) } ?? .null
        settings["batchSize"] = a.batchSize.map { .int($0) } ?? .null
        settings["prefetch"] = a.prefetch.map { .int($0) } ?? .null
        settings["pipeline"] = .bool(a.pipeline)
        if a.followSla { settings["followSla"] = true }
        if a.allServices { settings["allServices"] = true }
        json["settings"] = .object(settings)
    }

    func line(_ text: String) {
        // Line by line, so a run piped through tee shows progress and survives a crash.
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    mutating func raw(_ r: RawResult) {
        rawRate = r.rate
        line("")
        line("== raw ceiling: AMQPPublisher (confirms) -> durable queue -> AMQPConsumer (manual ack), no database")
        line("   \(r.messages) messages of 300 B in \(fmt(r.seconds, 2)) s: \(fmt(r.rate, 0)) msg/s end to end (publish+confirm alone \(fmt(r.publishRate, 0)) msg/s)")
        for l in r.cpu.lines(per: r.messages, unit: "msg") { line("   " + l) }
        results["raw"] = [
            "messages": .int(r.messages), "seconds": .number(rounded(r.seconds, 2)), "msgPerSecond": .number(rounded(r.rate, 0)),
            "publishConfirmPerSecond": .number(rounded(r.publishRate, 0)), "cpuSeconds": cpuJSON(r.cpu),
        ]
    }

    mutating func saturation(_ p: PhaseResult) {
        saturation = p
        line("")
        line("== saturation: ticket.submit, closed loop")
        phaseLines(p)
        let accepted = p.throughput.overall
        if let rawRate {
            let ratio = accepted / rawRate
            line("   ratio to raw ceiling: \(fmt(ratio, 3)) (\(fmt(accepted, 0)) / \(fmt(rawRate, 0)))")
            results["ratioToRaw"] = .number(rounded(ratio, 3))
            checks.append(("ratio to raw >= 0.15 (\(fmt(ratio, 3)))", ratio >= 0.15))
        }
        checks.append(("saturation: no broker restart by others during the phase", !p.cpu.brokerRestarted))
        checks.append(("accepted tickets/s >= 3000 (\(fmt(accepted, 0)))", accepted >= 3000))
        checks.append(("every ticket accepted (\(p.accepted)/\(p.sent))", p.accepted == p.sent))
        results["saturation"] = phaseJSON(p)
        if let c = p.pipeline {
            pipelineLines(c, accepted: p.accepted)
            let rate = c.throughput.overall
            if let rawRate {
                let ratio = rate / rawRate
                line("   classified ratio to raw ceiling: \(fmt(ratio, 3)) (\(fmt(rate, 0)) / \(fmt(rawRate, 0)))")
                results["classifiedRatioToRaw"] = .number(rounded(ratio, 3))
            }
            checks.append(("classified tickets/s >= 2500 (\(fmt(rate, 0)))", rate >= 2500))
            checks.append(("saturation: every accepted ticket classified once (\(c.arrived)/\(p.accepted), \(c.duplicates) duplicate events)",
                           c.arrived == p.accepted))
        }
        if let s = p.sla {
            slaLines(s, accepted: p.accepted)
            if let rawRate {
                let ratio = s.throughput.overall / rawRate
                line("   sla.started ratio to raw ceiling: \(fmt(ratio, 3)) (\(fmt(s.throughput.overall, 0)) / \(fmt(rawRate, 0)))")
                results["slaStartedRatioToRaw"] = .number(rounded(ratio, 3))
            }
            // Issue 8: "sustained", so the plateau (10-90 % of the phase's sla.started events).
            checks.append(("sla.started tickets/s sustained (steady 10-90 %) >= 2000 (\(fmt(s.throughput.steady, 0)))", s.throughput.steady >= 2000))
            checks.append(("saturation: every accepted ticket's sla.started once (\(s.arrived)/\(p.accepted), \(s.duplicates) duplicate events)",
                           s.arrived == p.accepted && s.duplicates == 0))
        }
    }

    mutating func fixedRate(_ p: PhaseResult) {
        line("")
        line("== fixed rate: \(fixedRateOffered) tickets/s offered, open loop (latency from the time each was due)")
        phaseLines(p)
        checks.append(("fixed rate: no broker restart by others during the phase", !p.cpu.brokerRestarted))
        checks.append(("p99 reply latency at \(fixedRateOffered)/s <= 50 ms (\(fmt(p.latency.p99, 1)) ms)", p.latency.p99 <= 50))
        results["fixedRate"] = phaseJSON(p)
        if let c = p.pipeline {
            pipelineLines(c, accepted: p.accepted)
            checks.append(("p99 submit-to-classified at \(fixedRateOffered)/s <= 100 ms (\(fmt(c.latency.p99, 1)) ms)", c.latency.p99 <= 100))
            checks.append(("fixed rate: every accepted ticket classified once (\(c.arrived)/\(p.accepted))", c.arrived == p.accepted))
        }
        if let s = p.sla {
            slaLines(s, accepted: p.accepted)
            checks.append(("p99 submit-to-sla.started at \(fixedRateOffered)/s <= 150 ms (\(fmt(s.latency.p99, 1)) ms)", s.latency.p99 <= 150))
            checks.append(("fixed rate: every accepted ticket's sla.started once (\(s.arrived)/\(p.accepted), \(s.duplicates) duplicate events)",
                           s.arrived == p.accepted && s.duplicates == 0))
        }
    }

    mutating func readAfterReply(_ phase: String, _ r: (checked: Int, found: Int)) {
        line("   read after reply: \(r.found) of \(r.checked) sampled tracking numbers found in intake.tickets")
        checks.append(("\(phase): sampled replied tickets stored (\(r.found)/\(r.checked))", r.found == r.checked))
    }

    mutating func sqlCheck(_ c: SQLCheck) {
        let sat = saturation?.accepted
        line("")
        line("== SQL check (intake.tickets of this run)")
        line("   saturation: \(c.saturationRows) rows, \(c.saturationDistinct) distinct tracking numbers, \(sat.map(String.init) ?? "-") accepted replies")
        line("   fixed rate: \(c.fixedRateRows) rows, \(c.fixedRateDistinct) distinct tracking numbers")
        line("   all tickets \(c.allTickets), audit rows \(c.auditRows), outbox rows left \(c.outboxLeft)")
        if let sat {
            checks.append(("SQL: tickets == accepted == distinct tracking numbers (\(c.saturationRows)/\(sat)/\(c.saturationDistinct))",
                           c.saturationRows == sat && c.saturationDistinct == sat))
        }
        results["sqlCheck"] = [
            "saturationRows": .int(c.saturationRows), "saturationDistinct": .int(c.saturationDistinct),
            "fixedRateRows": .int(c.fixedRateRows), "fixedRateDistinct": .int(c.fixedRateDistinct),
            "allTickets": .int(c.allTickets), "auditRows": .int(c.auditRows), "outboxLeft": .int(c.outboxLeft),
        ]
    }

    mutating func shutdown(status: Int32?, maxRSS: Double) {
        line("")
        line("== intake: max RSS \(fmt(maxRSS)) MiB over the whole run; SIGTERM -> \(status.map { "exit \($0)" } ?? "no exit within 30 s, killed")")
        checks.append(("intake max RSS <= 100 MiB (\(fmt(maxRSS)) MiB)", maxRSS <= 100))
        checks.append(("intake exits 0 on SIGTERM", status == 0))
        results["maxRSSMiB"] = .number(rounded(maxRSS))
        results["exitStatus"] = status.map { .int(Int($0)) } ?? .null
    }

    mutating func classificationShutdown(status: Int32?, maxRSS: Double) {
        line("")
        line("== classification: max RSS \(fmt(maxRSS)) MiB over the whole run; SIGTERM -> \(status.map { "exit \($0)" } ?? "no exit within 30 s, killed")")
        checks.append(("classification max RSS <= 100 MiB (\(fmt(maxRSS)) MiB)", maxRSS <= 100))
        checks.append(("classification exits 0 on SIGTERM", status == 0))
        results["classificationMaxRSSMiB"] = .number(rounded(maxRSS))
    }

    mutating func slaShutdown(status: Int32?, maxRSS: Double) {
        line("")
        line("== sla: max RSS \(fmt(maxRSS)) MiB over the whole run; SIGTERM -> \(status.map { "exit \($0)" } ?? "no exit within 30 s, killed")")
        checks.append(("sla max RSS <= 256 MiB (\(fmt(maxRSS)) MiB)", maxRSS <= 256))
        checks.append(("sla exits 0 on SIGTERM", status == 0))
        results["slaMaxRSSMiB"] = .number(rounded(maxRSS))
    }

    /// A service that ran without being followed (`--all-services`).
    mutating func serviceShutdown(_ name: String, status: Int32?, maxRSS: Double) {
        line("")
        line("== \(name): max RSS \(fmt(maxRSS)) MiB over the whole run; SIGTERM -> \(status.map { "exit \($0)" } ?? "no exit within 30 s, killed")")
        checks.append(("\(name) exits 0 on SIGTERM", status == 0))
        results["\(name)MaxRSSMiB"] = .number(rounded(maxRSS))
    }

    mutating func finish(failed: Bool) {
        line("")
        line("== targets (2-core machine shared with other work: see load average and 'rest of machine' CPU)")
        for (name, ok) in checks { line("   [\(ok ? "PASS" : "MISS")] \(name)") }
        json["results"] = .object(results)
        json["targets"] = object(checks.map { ($0.0, JSONValue.bool($0.1)) })
        json["failed"] = .bool(failed)
        json["loadAverageAtEnd"] = .string(loadAverage())
        line("")
        line(JSONValue.object(json).jsonText)
    }

    private func phaseLines(_ p: PhaseResult) {
        line("   sent \(p.sent), replies \(p.replies) (accepted \(p.accepted), rejected \(p.rejected), duplicate replies \(p.duplicates)), distinct tracking numbers \(p.distinctTrackingNumbers)")
        line("   accepted: \(fmt(p.throughput.overall, 0)) tickets/s over \(fmt(p.seconds, 2)) s (steady 10-90 %: \(fmt(p.throughput.steady, 0))/s, slowest whole second: \(fmt(p.throughput.worstSecond, 0)))")
        line("   reply latency: \(p.latency.line)")
        line("   intake max RSS in phase: \(fmt(p.maxRSSMiB)) MiB (at 0/25/50/75/100 % of the phase: \(p.rssTrend.map { fmt($0) }.joined(separator: " / ")) MiB)")
        if let commits = p.commits {
            line("   database commits: \(commits) (\(fmt(Double(p.accepted) / Double(max(commits, 1)), 1)) tickets per commit, incl. outbox deletes)")
        }
        for l in p.cpu.lines(per: p.accepted, unit: "ticket") { line("   " + l) }
    }

    private func pipelineLines(_ c: PipelineSummary, accepted: Int) {
        line("   classified: \(c.arrived) of \(accepted) accepted (\(c.duplicates) duplicate events), \(fmt(c.throughput.overall, 0)) tickets/s over \(fmt(c.seconds, 2)) s (steady 10-90 %: \(fmt(c.throughput.steady, 0))/s, slowest whole second: \(fmt(c.throughput.worstSecond, 0)))")
        line("   submit-to-classified latency: \(c.latency.line)")
        line("   classification max RSS in phase: \(fmt(c.maxRSSMiB)) MiB (at 0/25/50/75/100 %: \(c.rssTrend.map { fmt($0) }.joined(separator: " / ")) MiB)")
    }

    private func slaLines(_ s: PipelineSummary, accepted: Int) {
        line("   sla.started: \(s.arrived) of \(accepted) accepted (\(s.duplicates) duplicate events), \(fmt(s.throughput.overall, 0)) tickets/s over \(fmt(s.seconds, 2)) s (steady 10-90 %: \(fmt(s.throughput.steady, 0))/s, slowest whole second: \(fmt(s.throughput.worstSecond, 0)))")
        line("   submit-to-sla.started latency: \(s.latency.line)")
        line("   sla max RSS in phase: \(fmt(s.maxRSSMiB)) MiB (at 0/25/50/75/100 %: \(s.rssTrend.map { fmt($0) }.joined(separator: " / ")) MiB)")
    }

    private func phaseJSON(_ p: PhaseResult) -> JSONValue {
        var pipeline: JSONValue = .null
        if let c = p.pipeline {
            pipeline = [
                "classified": .int(c.arrived), "duplicates": .int(c.duplicates), "seconds": .number(rounded(c.seconds, 2)),
                "classifiedPerSecond": .number(rounded(c.throughput.overall, 0)), "steadyPerSecond": .number(rounded(c.throughput.steady, 0)),
                "latencyMs": ["p50": .number(rounded(c.latency.p50, 2)), "p90": .number(rounded(c.latency.p90, 2)), "p99": .number(rounded(c.latency.p99, 2)),
                              "p999": .number(rounded(c.latency.p999, 2)), "max": .number(rounded(c.latency.max, 2))],
                "maxRSSMiB": .number(rounded(c.maxRSSMiB)),
            ]
        }
        var out: JSONValue = [
            "pipeline": pipeline,
            "sent": .int(p.sent), "replies": .int(p.replies), "accepted": .int(p.accepted), "rejected": .int(p.rejected),
            "distinctTrackingNumbers": .int(p.distinctTrackingNumbers), "seconds": .number(rounded(p.seconds, 2)),
            "acceptedPerSecond": .number(rounded(p.throughput.overall, 0)), "steadyPerSecond": .number(rounded(p.throughput.steady, 0)),
            "slowestSecond": .number(rounded(p.throughput.worstSecond, 0)),
            "latencyMs": ["p50": .number(rounded(p.latency.p50, 2)), "p90": .number(rounded(p.latency.p90, 2)), "p99": .number(rounded(p.latency.p99, 2)),
                          "p999": .number(rounded(p.latency.p999, 2)), "max": .number(rounded(p.latency.max, 2)), "mean": .number(rounded(p.latency.mean, 2))],
            "maxRSSMiB": .number(rounded(p.maxRSSMiB)), "rssTrendMiB": .array(p.rssTrend.map { .number(rounded($0)) }), "commits": p.commits.map { .int($0) } ?? .null, "cpuSeconds": cpuJSON(p.cpu),
        ]
        if let s = p.sla, case .object(var o) = out {
            o["slaStarted"] = [
                "started": .int(s.arrived), "duplicates": .int(s.duplicates), "seconds": .number(rounded(s.seconds, 2)),
                "startedPerSecond": .number(rounded(s.throughput.overall, 0)), "steadyPerSecond": .number(rounded(s.throughput.steady, 0)),
                "slowestSecond": .number(rounded(s.throughput.worstSecond, 0)),
                "latencyMs": ["p50": .number(rounded(s.latency.p50, 2)), "p90": .number(rounded(s.latency.p90, 2)), "p99": .number(rounded(s.latency.p99, 2)),
                              "p999": .number(rounded(s.latency.p999, 2)), "max": .number(rounded(s.latency.max, 2))],
                "maxRSSMiB": .number(rounded(s.maxRSSMiB)),
            ]
            out = .object(o)
        }
        return out
    }

    private func cpuJSON(_ u: CPUUsage) -> JSONValue {
        object(u.json.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.number($0.value)) })
    }
}

/// A JSON object keeping the order of `pairs`.
private func object(_ pairs: [(String, JSONValue)]) -> JSONValue {
    var o = JSONObject()
    for (k, v) in pairs { o[k] = v }
    return .object(o)
}
