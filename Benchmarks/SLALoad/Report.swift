import CSSModel
import Foundation
import LoadSupport

/// Prints the human-readable report as the run goes, and collects the figures for the
/// final JSON line (the last line of the output).
final class SLAReport: @unchecked Sendable {
    private var json = JSONObject()
    private var checks: [(String, Bool)] = []
    private var results = JSONObject()
    private(set) var rawRate: Double?

    init(runID: String, arguments a: SLALoad, plan: SLAPlan?) {
        json["tool"] = "sla-load"
        json["runId"] = .string(runID)
        json["cores"] = .int(ProcessInfo.processInfo.activeProcessorCount)
        json["loadAverageAtStart"] = .string(loadAverage())
        var settings = JSONObject()
        settings["targets"] = .int(a.targets)
        settings["tickets"] = .int(a.targets / 2)
        settings["dueRate"] = .int(a.dueRate)
        settings["seconds"] = .int(a.seconds)
        settings["warnAt"] = .string(a.warnAt)
        settings["recoveryTimers"] = .int(a.recoveryTimers)
        settings["overdue"] = .int(a.overdue)
        settings["rawMessages"] = .int(a.rawMessages)
        settings["armWindow"] = .int(a.armWindow)
        settings["armChunk"] = .int(a.armChunk)
        settings["lead"] = a.lead.map { .int($0) } ?? .null
        settings["workers"] = a.workers.map { .int($0) } ?? .null
        settings["batchSize"] = a.batchSize.map { .int($0) } ?? .null
        settings["prefetch"] = a.prefetch.map { .int($0) } ?? .null
        settings["phases"] = .string(a.phases)
        settings["intakeQueue"] = .string(a.intakeQueue)
        if let plan {
            settings["shortTargetSeconds"] = .int(Int(plan.short))
            settings["longTargetSeconds"] = .int(Int(plan.long))
        }
        json["settings"] = .object(settings)
    }

    func line(_ text: String) {
        // Line by line, so a run piped through tee shows progress and survives a crash.
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    func check(_ name: String, _ ok: Bool) {
        checks.append((name, ok))
    }

    // MARK: Phases

    func raw(_ r: RawResult) {
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

    /// The lines of one closed-loop arm (background, measured or recovery tickets).
    func armed(_ a: ArmResult, title: String) {
        line("   \(title): \(a.tickets) ticket.classified (\(2 * a.tickets) targets), \(a.started) started, \(a.duplicates) duplicate sla.started, \(a.returned) unroutable")
        line("   applied: \(fmt(a.throughput.overall, 0)) tickets/s over \(fmt(a.seconds, 2)) s (steady 10-90 %: \(fmt(a.throughput.steady, 0))/s, slowest whole second: \(fmt(a.throughput.worstSecond, 0))) = \(fmt(2 * a.throughput.overall, 0)) targets/s")
        line("   sla max RSS: \(fmt(a.maxRSSMiB)) MiB (at 0/25/50/75/100 %: \(a.rssTrend.map { fmt($0) }.joined(separator: " / ")) MiB)")
        for l in a.cpu.lines(per: a.started, unit: "ticket") { line("   " + l) }
        check("\(title): every ticket's sla.started once (\(a.started)/\(a.tickets), \(a.duplicates) duplicates)", a.started == a.tickets && a.duplicates == 0)
        check("\(title): no ticket.classified unroutable (\(a.returned))", a.returned == 0)
    }

    func armPhase(_ a: ArmResult, tables: TableStats?, measuredTickets: Int) {
        line("")
        line("== arm: \(a.tickets) background tickets through css.events (\(measuredTickets) measured tickets follow in the measure phase)")
        armed(a, title: "background")
        if let t = tables { line("   " + tablesLine(t)) }
        var o: JSONObject = [
            "tickets": .int(a.tickets), "targets": .int(2 * a.tickets), "started": .int(a.started), "duplicates": .int(a.duplicates),
            "seconds": .number(rounded(a.seconds, 2)), "ticketsPerSecond": .number(rounded(a.throughput.overall, 0)),
            "steadyPerSecond": .number(rounded(a.throughput.steady, 0)), "slowestSecond": .number(rounded(a.throughput.worstSecond, 0)),
            "maxRSSMiB": .number(rounded(a.maxRSSMiB)), "cpuSeconds": cpuJSON(a.cpu),
        ]
        if let rawRate {
            let ratio = a.throughput.overall / rawRate
            line("   ratio to raw ceiling: \(fmt(ratio, 3)) (\(fmt(a.throughput.overall, 0)) / \(fmt(rawRate, 0)))")
            o["ratioToRaw"] = .number(rounded(ratio, 3))
        }
        if let t = tables { o["tables"] = tablesJSON(t) }
        results["arm"] = .object(o)
        check("arm: no broker restart by others during the phase", !a.cpu.brokerRestarted)
    }

    func measure(_ m: MeasureResult, plan: SLAPlan) {
        let f = m.firings
        line("")
        line("== measure: \(m.dueRate) planned firings due per second for \(m.seconds) s (lateness = event time - due instant; receive = this tool's receive time - due instant)")
        if let t = m.tablesAtWindow { line("   at the window: " + tablesLine(t)) }
        line("   armed \(fmt(m.armedAhead, 1)) s before the first due second (lead \(m.leadSeconds) s)")
        line("   planned \(f.planned), arrived \(f.arrived) (missing \(f.planned - f.arrived)), duplicates \(f.duplicates), due instant not as planned \(f.dueMismatches), early \(f.early)")
        line("   lateness (event time):   \(f.eventLateness.line)")
        line("   lateness (receive time): \(f.receiveLateness.line)")
        line("   p99 event lateness by third of the window: \(f.thirdsP99.map { fmt($0) + " ms" }.joined(separator: " / "))")
        line("   worst due seconds (offset: max lateness, firings): \(f.worstSeconds.map { "+\($0.offset) s: \(fmt($0.maxMs)) ms, \($0.count)" }.joined(separator: "; "))")
        line("   received: \(fmt(f.received.overall, 0)) firings/s from the window start (steady 10-90 %: \(fmt(f.received.steady, 0))/s, slowest whole second: \(fmt(f.received.worstSecond, 0)))")
        batchLines(f)
        line("   sla max RSS in phase: \(fmt(m.maxRSSMiB)) MiB (at 0/25/50/75/100 %: \(m.rssTrend.map { fmt($0) }.joined(separator: " / ")) MiB)")
        for l in m.cpu.lines(per: f.arrived, unit: "firing") { line("   " + l) }
        var o: JSONObject = [
            "dueRate": .int(m.dueRate), "seconds": .int(m.seconds), "leadSeconds": .int(m.leadSeconds), "armedAheadSeconds": .number(rounded(m.armedAhead, 2)),
            "measuredTickets": .int(m.arm.tickets), "armTicketsPerSecond": .number(rounded(m.arm.throughput.overall, 0)),
            "planned": .int(f.planned), "arrived": .int(f.arrived), "duplicates": .int(f.duplicates), "dueMismatches": .int(f.dueMismatches),
            "early": .int(f.early), "eventLatenessMs": latencyJSON(f.eventLateness), "receiveLatenessMs": latencyJSON(f.receiveLateness),
            "thirdsP99Ms": .array(f.thirdsP99.map { .number(rounded($0, 2)) }), "receivedPerSecond": .number(rounded(f.received.overall, 0)),
            "slowestSecond": .number(rounded(f.received.worstSecond, 0)), "maxRSSMiB": .number(rounded(m.maxRSSMiB)), "cpuSeconds": cpuJSON(m.cpu),
            "batches": .int(f.batches), "batchSizeMax": .int(f.batchSizeMax), "batchSpanMs": latencyJSON(f.batchSpan),
        ]
        if let t = m.tablesAtWindow { o["tablesAtWindow"] = tablesJSON(t) }
        results["measure"] = .object(o)
        check("measure: the measured set was armed before its first due second (\(fmt(m.armedAhead, 1)) s ahead)", m.armedAhead > 0)
        check("measure: no broker restart by others during the phase", !m.cpu.brokerRestarted)
        check("p99 firing lateness (event time - due) <= 100 ms at \(m.dueRate)/s (\(fmt(f.eventLateness.p99)) ms)", f.eventLateness.p99 <= 100 && f.arrived > 0)
        check("p99 firing lateness (receive time - due) <= 100 ms at \(m.dueRate)/s (\(fmt(f.receiveLateness.p99)) ms)", f.receiveLateness.p99 <= 100 && f.arrived > 0)
        check("measure: every planned firing exactly once (\(f.arrived)/\(f.planned), \(f.duplicates) duplicates)", f.arrived == f.planned && f.duplicates == 0)
        check("measure: no firing before its due instant (\(f.early)), due instants as planned (\(f.dueMismatches) differ)", f.early == 0 && f.dueMismatches == 0)
    }

    func recovery(_ r: RecoveryResult) {
        let f = r.firings
        func s(_ x: Double?) -> String { x.map { fmt($0, 2) + " s" } ?? "-" }
        line("")
        line("== recovery: \(r.timers) timers due at one second, kill -9 before it, restart \(r.overdueSeconds) s after it")
        if let t = r.tablesAtRestart { line("   at the restart: " + tablesLine(t)) }
        line("   killed \(fmt(r.killedAhead, 2)) s before the due second; recovery firings before the kill: \(r.firedBeforeKill)")
        line("   from the restart (process spawn): ready (answers a command) \(s(r.toReady)), first firing received \(s(r.toFirst)), "
            + "last received \(s(r.toLast)), last event time \(s(r.toLastEventTime))")
        line("   planned \(f.planned), arrived \(f.arrived) (missing \(f.planned - f.arrived)), duplicates \(f.duplicates), due instant not as planned \(f.dueMismatches)")
        line("   lateness (event time):   \(f.eventLateness.line)")
        line("   lateness (receive time): \(f.receiveLateness.line)")
        if let last = r.toLast, last > 0 { line("   recovery firing rate: \(fmt(Double(f.arrived) / last, 0)) firings/s from the restart") }
        batchLines(f)
        line("   sla max RSS in phase: \(fmt(r.maxRSSMiB)) MiB")
        for l in r.cpu.lines(per: f.arrived, unit: "firing") { line("   " + l) }
        var o: JSONObject = [
            "timers": .int(r.timers), "killedAheadSeconds": .number(rounded(r.killedAhead, 2)), "firedBeforeKill": .int(r.firedBeforeKill),
            "overdueSeconds": .int(r.overdueSeconds), "toReadySeconds": r.toReady.map { .number(rounded($0, 3)) } ?? .null,
            "toFirstSeconds": r.toFirst.map { .number(rounded($0, 3)) } ?? .null, "toLastSeconds": r.toLast.map { .number(rounded($0, 3)) } ?? .null,
            "toLastEventTimeSeconds": r.toLastEventTime.map { .number(rounded($0, 3)) } ?? .null,
            "planned": .int(f.planned), "arrived": .int(f.arrived), "duplicates": .int(f.duplicates),
            "eventLatenessMs": latencyJSON(f.eventLateness), "receiveLatenessMs": latencyJSON(f.receiveLateness),
            "armTicketsPerSecond": .number(rounded(r.arm.throughput.overall, 0)), "maxRSSMiB": .number(rounded(r.maxRSSMiB)), "cpuSeconds": cpuJSON(r.cpu),
            "batches": .int(f.batches), "batchSizeMax": .int(f.batchSizeMax), "batchSpanMs": latencyJSON(f.batchSpan),
        ]
        if let t = r.tablesAtRestart { o["tablesAtRestart"] = tablesJSON(t) }
        results["recovery"] = .object(o)
        check("recovery: killed before the due second (\(fmt(r.killedAhead, 2)) s ahead) and nothing fired before the kill (\(r.firedBeforeKill))",
              r.killedAhead > 0 && r.firedBeforeKill == 0)
        check("recovery: every overdue timer fired exactly once after the restart (\(f.arrived)/\(f.planned), \(f.duplicates) duplicates)",
              f.arrived == f.planned && f.duplicates == 0)
    }

    /// What the whole run left behind.
    func final(tables: TableStats?, deadLetters: Int, unplanned: (count: Int, samples: [String]), unreadable: Int, unknownStarted: Int, drained: Int?) {
        line("")
        line("== checks over the run")
        if let t = tables { line("   at the end: " + tablesLine(t)) }
        line("   dead letters \(deadLetters); unplanned sla.warning/sla.breached \(unplanned.count)\(unplanned.samples.isEmpty ? "" : " (e.g. \(unplanned.samples.joined(separator: ", ")))"); "
            + "unreadable \(unreadable); sla.started of unknown tickets \(unknownStarted)")
        if let drained { line("   css.intake.events drained by this tool (intake is not running): \(drained) messages") }
        results["deadLetters"] = .int(deadLetters)
        results["unplannedFirings"] = .int(unplanned.count)
        if let t = tables { results["tablesAtEnd"] = tablesJSON(t) }
        check("no dead letters (\(deadLetters))", deadLetters == 0)
        check("no unplanned threshold events (\(unplanned.count)) and none unreadable (\(unreadable))", unplanned.count == 0 && unreadable == 0)
        if let t = tables { check("no parked timers (\(t.parked)), outbox empty (\(t.outbox))", t.parked == 0 && t.outbox == 0) }
    }

    func shutdown(status: Int32?, maxRSS: Double) {
        line("")
        line("== sla: max RSS \(fmt(maxRSS)) MiB over the whole run; SIGTERM -> \(status.map { "exit \($0)" } ?? "no exit within 30 s, killed")")
        check("sla max RSS <= 256 MiB (\(fmt(maxRSS)) MiB)", maxRSS <= 256)
        check("sla exits 0 on SIGTERM", status == 0)
        results["maxRSSMiB"] = .number(rounded(maxRSS))
        results["exitStatus"] = status.map { .int(Int($0)) } ?? .null
    }

    func finish(failed: Bool) {
        line("")
        line("== targets (2-core machine shared with other work: see load average and 'rest of machine' CPU)")
        for (name, ok) in checks { line("   [\(ok ? "PASS" : "MISS")] \(name)") }
        json["results"] = .object(results)
        var targets = JSONObject()
        for (k, v) in checks { targets[k] = .bool(v) }
        json["targets"] = .object(targets)
        json["failed"] = .bool(failed)
        json["loadAverageAtEnd"] = .string(loadAverage())
        line("")
        line(JSONValue.object(json).jsonText)
    }

    // MARK: Helpers

    /// The service's side of the lateness: its timer-loop batches and how long each took to reach this tool.
    private func batchLines(_ f: FiringResult) {
        line("   timer-loop batches (by event time): \(f.batches), size p50 \(f.batchSizeP50), max \(f.batchSizeMax); "
            + "event time -> last firing of the batch received: p50 \(fmt(f.batchSpan.p50)) ms, p99 \(fmt(f.batchSpan.p99)) ms, max \(fmt(f.batchSpan.max)) ms")
    }

    private func tablesLine(_ t: TableStats) -> String {
        "sla.timers \(t.timers) armed (\(t.dueNow) due now, \(t.parked) parked, \(fmt(t.timersMiB)) MiB with indexes), sla.tickets \(t.tickets.map(String.init) ?? "not counted") (\(fmt(t.ticketsMiB)) MiB), outbox \(t.outbox)"
    }

    private func tablesJSON(_ t: TableStats) -> JSONValue {
        ["timers": .int(t.timers), "dueNow": .int(t.dueNow), "parked": .int(t.parked), "tickets": t.tickets.map { .int($0) } ?? .null, "outbox": .int(t.outbox),
         "timersMiB": .number(rounded(t.timersMiB)), "ticketsMiB": .number(rounded(t.ticketsMiB))]
    }

    private func latencyJSON(_ l: LatencySummary) -> JSONValue {
        ["p50": .number(rounded(l.p50, 2)), "p90": .number(rounded(l.p90, 2)), "p99": .number(rounded(l.p99, 2)),
         "p999": .number(rounded(l.p999, 2)), "max": .number(rounded(l.max, 2)), "mean": .number(rounded(l.mean, 2)), "n": .int(l.count)]
    }

    private func cpuJSON(_ u: CPUUsage) -> JSONValue {
        var o = JSONObject()
        for (k, v) in u.json.sorted(by: { $0.key < $1.key }) { o[k] = .number(v) }
        return .object(o)
    }
}
