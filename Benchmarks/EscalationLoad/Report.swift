import CSSModel
import Foundation
import LoadSupport

/// Prints the human-readable report as the run goes, and collects the figures for the final
/// JSON line (the last line of the output).
final class EscalationReport: @unchecked Sendable {
    private var json = JSONObject()
    private var results = JSONObject()
    private var targets = TargetChecks()

    init(runID: String, arguments a: EscalationLoad) {
        json["tool"] = "escalation-load"
        json["runId"] = .string(runID)
        json["cores"] = .int(ProcessInfo.processInfo.activeProcessorCount)
        json["loadAverageAtStart"] = .string(loadAverage())
        json["settings"] = [
            "rate": .int(a.rate), "seconds": .int(a.seconds), "chains": .int(a.chains), "holdWindow": .int(a.holdWindow),
            "holdChunk": .int(a.holdChunk), "holdSampleSeconds": .int(a.holdSampleSeconds), "ackRate": .int(a.ackRate),
            "ackSeconds": .int(a.ackSeconds), "rawMessages": .int(a.rawMessages), "phases": .string(a.phases),
            "serviceSettings": .string(a.serviceSettings),
        ]
    }

    func line(_ text: String) {
        // Line by line, so a run piped through tee shows progress and survives a crash.
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    private func usageLines(_ u: PhaseUsage, phase: String, per items: Int, unit: String) {
        line("   escalation max RSS in phase: \(fmt(u.maxRSSMiB)) MiB (at 0/25/50/75/100 %: \(u.rssTrend.map { fmt($0) }.joined(separator: " / ")) MiB)")
        for l in u.cpu.lines(per: items, unit: unit) { line("   " + l) }
        targets.check("\(phase): no broker restart by others during the phase", !u.cpu.brokerRestarted)
    }

    func tablesLine(_ t: Tables) -> String {
        "escalation.escalations \(t.all) (\(t.open) open, \(t.acknowledged) acknowledged; \(fmt(t.escalationsMiB)) MiB with indexes), "
            + "escalation.timers \(t.timers) armed (\(fmt(t.timersMiB)) MiB), outbox \(t.outbox)"
    }

    private func tablesJSON(_ t: Tables) -> JSONValue {
        ["open": .int(t.open), "acknowledged": .int(t.acknowledged), "all": .int(t.all), "timers": .int(t.timers), "outbox": .int(t.outbox),
         "escalationsMiB": .number(rounded(t.escalationsMiB)), "timersMiB": .number(rounded(t.timersMiB))]
    }

    /// The lines and figures shared by the two fixed-rate phases.
    private func rateLines(_ p: RatePhase, arrival: String) -> JSONObject {
        line("   sent \(p.sent) (\(p.returned) unroutable), \(arrival) \(p.arrived) (missing \(p.sent - p.arrived)), duplicates \(p.duplicates)")
        line("   latency: \(p.latency.line)")
        line("   \(arrival): \(fmt(p.throughput.overall, 0))/s from the first send (steady 10-90 %: \(fmt(p.throughput.steady, 0))/s, "
            + "slowest whole second: \(fmt(p.throughput.worstSecond, 0))); sender lag behind the schedule at most \(fmt(p.senderLagMs)) ms")
        return ["rate": .int(p.rate), "seconds": .int(p.seconds), "sent": .int(p.sent), "returned": .int(p.returned), "arrived": .int(p.arrived),
                "duplicates": .int(p.duplicates), "latencyMs": figures(p.latency.json), "perSecond": .number(rounded(p.throughput.overall, 0)),
                "steadyPerSecond": .number(rounded(p.throughput.steady, 0)), "slowestSecond": .number(rounded(p.throughput.worstSecond, 0)),
                "senderLagMs": .number(rounded(p.senderLagMs, 2)), "usage": p.usage.json]
    }

    // MARK: Phases

    func raw(_ r: RawResult) {
        line("")
        for l in r.lines { line(l) }
        var o = figures(r.json).objectValue!
        o["cpuSeconds"] = figures(r.cpu.json)
        results["raw"] = .object(o)
    }

    func page(_ p: RatePhase) {
        line("")
        line("== page: sla.breached at \(p.rate)/s for \(p.seconds) s, one ticket each; latency = page received on css.escalations - breach published (due, open loop)")
        var o = rateLines(p, arrival: "paged")
        usageLines(p.usage, phase: "page", per: p.arrived, unit: "page")
        o["ok"] = .bool(p.arrived == p.sent && p.duplicates == 0)
        results["page"] = .object(o)
        targets.check("p99 breach -> page <= 100 ms at \(p.rate)/s (\(fmt(p.latency.p99)) ms)", p.latency.p99 <= 100 && p.arrived > 0)
        targets.check("page: every breach paged exactly once (\(p.arrived)/\(p.sent), \(p.duplicates) duplicates, \(p.returned) unroutable)",
                      p.arrived == p.sent && p.duplicates == 0 && p.returned == 0)
    }

    func hold(_ h: HoldPhase) {
        line("")
        line("== hold: \(h.chains) more breaches as fast as the service takes them, then every chain open (level 2 due in an hour)")
        line("   paged \(h.arrived) of \(h.chains) (\(h.returned) unroutable, \(h.duplicates) duplicates) in \(fmt(h.fillSeconds, 2)) s: "
            + "\(fmt(h.fill.overall, 0)) pages/s (steady 10-90 %: \(fmt(h.fill.steady, 0))/s, slowest whole second: \(fmt(h.fill.worstSecond, 0)))")
        line("   breach -> page while filling (up to \(h.window) outstanding): \(h.fillLatency.line)")
        usageLines(h.fillUsage, phase: "hold", per: h.arrived, unit: "chain")
        if let t = h.tables { line("   holding: " + tablesLine(t)) }
        line("   escalation RSS while holding, over \(h.sampleSeconds) s: max \(fmt(h.holdMaxMiB)) MiB "
            + "(at 0/25/50/75/100 %: \(h.holdTrend.map { fmt($0) }.joined(separator: " / ")) MiB)")
        var o: JSONObject = [
            "chains": .int(h.chains), "paged": .int(h.arrived), "returned": .int(h.returned), "duplicates": .int(h.duplicates),
            "fillSeconds": .number(rounded(h.fillSeconds, 2)), "pagesPerSecond": .number(rounded(h.fill.overall, 0)),
            "steadyPerSecond": .number(rounded(h.fill.steady, 0)), "fillLatencyMs": figures(h.fillLatency.json), "fillUsage": h.fillUsage.json, "sampleSeconds": .int(h.sampleSeconds),
            "holdMaxRSSMiB": .number(rounded(h.holdMaxMiB)), "holdRSSTrendMiB": .array(h.holdTrend.map { .number(rounded($0)) }),
        ]
        if let t = h.tables { o["tables"] = tablesJSON(t) }
        results["hold"] = .object(o)
        let open = h.tables?.open ?? 0
        targets.check("\(h.chains) open chains held with <= 128 MiB RSS (\(fmt(h.holdMaxMiB)) MiB with \(open) open, \(h.tables?.timers ?? 0) timers armed)",
                      h.holdMaxMiB <= 128 && open >= h.chains && h.holdMaxMiB > 0)
        targets.check("hold: every breach paged exactly once (\(h.arrived)/\(h.chains), \(h.duplicates) duplicates, \(h.returned) unroutable)",
                      h.arrived == h.chains && h.duplicates == 0 && h.returned == 0)
        targets.check("hold: one armed timer per open chain (\(h.tables?.timers ?? 0) timers, \(open) open)", h.tables.map { $0.timers == $0.open } ?? false)
    }

    func ack(_ a: AckPhase) {
        let p = a.phase
        line("")
        line("== ack: escalation.ack at \(p.rate)/s for \(p.seconds) s of escalations paged earlier; latency = reply received - ack published (due, open loop)")
        var o = rateLines(p, arrival: "replies")
        line("   replies acknowledged (state acknowledged, by \(Wire.acknowledger)): \(a.acknowledged) of \(p.sent)")
        usageLines(p.usage, phase: "ack", per: p.arrived, unit: "ack")
        if let t = a.tables { line("   after: " + tablesLine(t)) }
        o["acknowledged"] = .int(a.acknowledged)
        if let t = a.tables { o["tables"] = tablesJSON(t) }
        results["ack"] = .object(o)
        targets.check("p99 ack -> reply <= 50 ms at \(p.rate)/s (\(fmt(p.latency.p99)) ms)", p.latency.p99 <= 50 && p.arrived > 0)
        targets.check("ack: every reply acknowledged (\(a.acknowledged)/\(p.sent), \(p.duplicates) duplicate replies)",
                      a.acknowledged == p.sent && p.duplicates == 0)
        targets.check("ack: stored acknowledged = acks (\(a.tables?.acknowledged ?? -1)/\(p.sent))", a.tables?.acknowledged == p.sent)
    }

    /// What the whole run left behind.
    func final(tables: Tables?, counts c: RunLedger.Oddities, deadLetters: Int, drained: Int) {
        line("")
        line("== checks over the run")
        if let t = tables { line("   at the end: " + tablesLine(t)) }
        line("   dead letters \(deadLetters); pages: unknown \(c.unknownPages), wrong routing key \(c.wrongRoute), body not naming its escalation and ticket \(c.wrongBody), "
            + "later level or repeat \(c.laterMessages); replies: unknown \(c.unknownReplies), duplicate \(c.duplicateReplies)")
        for s in c.badReplySamples { line("   ack reply not acknowledged: \(s)") }
        line("   css.intake.events drained by this tool (intake is not running): \(drained) messages")
        results["deadLetters"] = .int(deadLetters)
        results["oddities"] = ["unknownPages": .int(c.unknownPages), "wrongRoute": .int(c.wrongRoute), "wrongBody": .int(c.wrongBody),
                               "laterMessages": .int(c.laterMessages), "unknownReplies": .int(c.unknownReplies)]
        if let t = tables { results["tablesAtEnd"] = tablesJSON(t) }
        targets.check("no dead letters (\(deadLetters))", deadLetters == 0)
        targets.check("every page on oncall.cloud-ops.p1 naming its escalation and ticket, no later level, no stray message",
                      c.unknownPages == 0 && c.wrongRoute == 0 && c.wrongBody == 0 && c.laterMessages == 0 && c.unknownReplies == 0)
        if let t = tables { targets.check("outbox empty at the end (\(t.outbox))", t.outbox == 0) }
    }

    func shutdown(status: Int32?, maxRSS: Double) {
        line("")
        line("== escalation: max RSS \(fmt(maxRSS)) MiB over the whole run; SIGTERM -> \(status.map { "exit \($0)" } ?? "no exit within 30 s, killed")")
        targets.check("escalation exits 0 on SIGTERM", status == 0)
        results["maxRSSMiB"] = .number(rounded(maxRSS))
        results["exitStatus"] = status.map { .int(Int($0)) } ?? .null
    }

    func finish(failed: Bool) {
        line("")
        line("== targets (2-core machine shared with other work: see load average and 'rest of machine' CPU)")
        for l in targets.lines { line(l) }
        var t = JSONObject()
        for c in targets.checks { t[c.name] = .bool(c.ok) }
        json["results"] = .object(results)
        json["targets"] = .object(t)
        json["failed"] = .bool(failed)
        json["loadAverageAtEnd"] = .string(loadAverage())
        line("")
        line(JSONValue.object(json).jsonText)
    }
}
