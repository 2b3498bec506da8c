import CSSModel
import Foundation
import LoadSupport

/// Prints the human-readable report as the run goes, and collects the figures for the final
/// JSON line (the last line of the output).
final class ChangeReport: @unchecked Sendable {
    private var json = JSONObject()
    private var results = JSONObject()
    private var targets = TargetChecks()
    private let p99TargetMs = 50.0
    private let rssTargetMiB = 100.0
    /// Changes closed by the phases (what the checks expect in the database).
    private var closedTotal = 0
    private var startedTotal = 0
    private var abandonedTotal = 0

    init(runID: String, arguments a: ChangeLoad) {
        json["tool"] = "change-load"
        json["runId"] = .string(runID)
        json["cores"] = .int(ProcessInfo.processInfo.activeProcessorCount)
        json["loadAverageAtStart"] = .string(loadAverage())
        json["reproduce"] = .string(a.reproduce)
        json["settings"] = [
            "changes": .int(a.changes), "rate": .int(a.rate), "openChanges": .int(a.openChanges), "customers": .int(a.customers),
            "maxChanges": .int(a.maxChanges), "maxInFlight": .int(a.maxInFlight), "replyTimeout": .int(a.replyTimeout),
            "phaseTimeout": .int(a.phaseTimeout), "verifySample": .int(a.verifySample), "tapEvents": .bool(a.tapEvents),
            "phases": .string(a.phases), "serviceSettings": .string(a.serviceSettings),
        ]
    }

    func line(_ text: String) {
        // Line by line, so a run piped through tee shows progress and survives a crash.
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    // MARK: Phases

    func lifecycleHeader(changes: Int, rate: Int, open: Int, deadline: Int) {
        line("")
        line("== lifecycle: \(changes) Standard changes x 9 commands (request, agree, schedule test, deploy, verify, schedule production, implement, "
            + "complete, close) at \(rate) commands/s, open loop, at most \(open) changes open; planned \(fmt(Double(changes * 9) / Double(rate), 0)) s, deadline \(deadline) s")
        line("   latency = reply received - command sent (its slot's due time, or its previous reply when that came later)")
    }

    func maxHeader(changes: Int, open: Int, deadline: Int) {
        line("")
        line("== max: \(changes) more Standard changes x 9 commands as fast as the service answers (closed loop), \(open) changes open, "
            + "each with one command in flight; deadline \(deadline) s")
        line("   latency = reply received - command published")
    }

    func phase(_ p: LifecyclePhase) {
        let r = p.results, c = r.counts
        closedTotal += c.closed
        startedTotal += r.started
        abandonedTotal += c.abandoned + c.cut
        line("   changes: \(r.started) started, \(c.closed) closed, \(c.abandoned) given up (refused \(c.refused), unexpected state \(c.unexpectedState), "
            + "no reply within the timeout \(c.timeouts)), \(c.cut) cut by the deadline; at most \(r.maxOpen) open at once")
        line("   commands: \(c.sent) sent (\(p.returned) unroutable), \(c.replies) replies, \(c.late) late or duplicate replies")
        line("   latency, every command: \(p.latency.line)")
        line("   " + Percentiles.header("per command"))
        for (step, l) in p.perStep { line("   " + l.row(step.label)) }
        line("   " + p.latency.row("all"))
        line("   throughput: \(fmt(p.commands.overall, 1)) commands/s from the first send to the last reply (steady 10-90 %: \(fmt(p.commands.steady, 1))/s, "
            + "slowest whole second: \(fmt(p.commands.worstSecond, 0))); \(fmt(p.closedPerSecond.overall, 2)) changes closed/s "
            + "(steady \(fmt(p.closedPerSecond.steady, 2))/s); \(fmt(p.seconds, 1)) s")
        if let rate = p.rate {
            line("   offered \(rate) commands/s; slots filled late because every open change was waiting for a reply: \(p.starvedSlots); "
                + "sender lag behind the schedule at most \(fmt(p.senderLagMs)) ms")
        } else {
            line("   sender lag (ready to published) at most \(fmt(p.senderLagMs)) ms")
        }
        if p.rate != nil { line("   whole seconds with fewer than half the offered replies (stalls): \(p.thinSeconds)") }
        line("   latency over time, by \(p.windowSeconds) s window of reply arrival:")
        for (i, w) in p.windows.enumerated() where w.count > 0 {
            line("     \(String(i * p.windowSeconds).leftPadded(5)) s: n \(String(w.count).leftPadded(6))  p50 \(fmt(w.p50).leftPadded(7))  p99 \(fmt(w.p99).leftPadded(7))  max \(fmt(w.max).leftPadded(7)) ms")
        }
        if p.deadlineHit { line("   WARNING: the phase deadline passed before every change finished") }
        for (k, v) in r.refusals.sorted(by: { $0.key < $1.key }) { line("   refused: \(k) x \(v)") }
        for s in r.samples { line("   problem: \(s)") }
        line("   change max RSS in phase: \(fmt(p.usage.maxRSSMiB)) MiB (at 0/25/50/75/100 %: \(p.usage.rssTrend.map { fmt($0) }.joined(separator: " / ")) MiB)")
        for l in p.usage.cpu.lines(per: c.replies, unit: "command") { line("   " + l) }
        targets.check("\(p.name): no broker restart by others during the phase", !p.usage.cpu.brokerRestarted)

        var refusals = JSONObject()
        for (k, v) in r.refusals.sorted(by: { $0.key < $1.key }) { refusals[k] = .int(v) }
        var steps = JSONObject()
        for (step, l) in p.perStep { steps[step.label] = l.json }
        results[p.name] = [
            "rate": p.rate.map { .int($0) } ?? .null, "changes": .int(p.changes), "concurrency": .int(p.concurrency), "started": .int(r.started),
            "closed": .int(c.closed), "abandoned": .int(c.abandoned), "refused": .int(c.refused), "unexpectedState": .int(c.unexpectedState),
            "timeouts": .int(c.timeouts), "cut": .int(c.cut), "late": .int(c.late), "sent": .int(c.sent), "replies": .int(c.replies),
            "returned": .int(p.returned), "maxOpen": .int(r.maxOpen), "latencyMs": p.latency.json, "perCommandMs": .object(steps),
            "commandsPerSecond": .number(rounded(p.commands.overall)), "steadyCommandsPerSecond": .number(rounded(p.commands.steady)),
            "slowestSecond": .number(rounded(p.commands.worstSecond, 0)), "changesPerSecond": .number(rounded(p.closedPerSecond.overall, 2)),
            "steadyChangesPerSecond": .number(rounded(p.closedPerSecond.steady, 2)), "seconds": .number(rounded(p.seconds, 1)),
            "senderLagMs": .number(rounded(p.senderLagMs, 2)), "starvedSlots": .int(p.starvedSlots), "deadlineHit": .bool(p.deadlineHit),
            "thinSeconds": .int(p.thinSeconds), "windowSeconds": .int(p.windowSeconds),
            "windowsMs": .array(p.windows.map { ["n": .int($0.count), "p50": .number(rounded($0.p50, 2)), "p99": .number(rounded($0.p99, 2)), "max": .number(rounded($0.max, 2))] }),
            "refusals": .object(refusals), "usage": p.usage.json,
        ]

        if let rate = p.rate {
            targets.check("\(p.name): p99 command latency <= \(fmt(p99TargetMs, 0)) ms at \(rate) commands/s (\(fmt(p.latency.p99)) ms)",
                          p.latency.p99 <= p99TargetMs && p.latency.count > 0)
            targets.check("\(p.name): the offered \(rate) commands/s sustained (steady \(fmt(p.commands.steady, 1))/s >= 95 %)",
                          p.commands.steady >= 0.95 * Double(rate))
        }
        targets.check("\(p.name): every change closed (\(c.closed)/\(p.changes); refused \(c.refused), unexpected \(c.unexpectedState), "
            + "timeouts \(c.timeouts), cut \(c.cut), unroutable \(p.returned))",
                      c.closed == p.changes && c.refused == 0 && c.unexpectedState == 0 && c.timeouts == 0 && p.returned == 0)
    }

    // MARK: Checks

    func verification(_ v: Verification, tapEvents: Bool, customers: Int) {
        line("")
        line("== checks over the run")
        let states = v.states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        line("   change.changes by state: \(states.isEmpty ? "none" : states) (closed by the replies: \(closedTotal)); "
            + "change.directory \(v.directoryRows) rows; \(fmt(v.changesMiB)) MiB of change.changes with indexes")
        line("   change.inbox \(v.inbox) rows (\(fmt(v.inboxMiB)) MiB), change.timers \(v.timers), change.outbox \(v.outbox)")
        line("   change.get of \(v.sampled) closed changes spread over the run: \(v.sampledOK) closed with the whole history, their component, "
            + "Production window and installed version")
        for s in v.sampleProblems { line("   change.get problem: \(s)") }
        if let d = v.directory {
            line("   change.directory.get \(Wire.customerID(0)): \(d.components) components (expected \(d.expected)), \(d.timeline) timeline entries, "
                + "reply of \(d.bytes) bytes in \(fmt(d.ms)) ms")
        } else {
            line("   change.directory.get \(Wire.customerID(0)): no reply or refused")
        }
        // Per closed Standard change: requested, agreed, approved, scheduled x2, deployed, verified, implementing,
        // implemented, closed and one sla.exclusion.added; maintenance.announced never (interruptsService false).
        let n = closedTotal
        var expected: [String: Int] = [
            EventType.changeRequested: n, EventType.changeAgreed: n, EventType.changeApproved: n, EventType.changeScheduled: 2 * n,
            EventType.changeDeployed: n, EventType.changeVerified: n, EventType.changeImplementing: n, EventType.changeImplemented: n,
            EventType.changeClosed: n, EventType.slaExclusionAdded: n, EventType.maintenanceWindowsUpdated: customers,
        ]
        if tapEvents {
            line("   events on the tool's tap: " + v.events.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            for key in v.events.keys where expected[key] == nil { expected[key] = 0 }
        }
        line("   drained from the other services' event queues: " + (v.drained.isEmpty ? "nothing"
            : v.drained.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
        line("   dead letters \(v.deadLetters); replies naming no command of the run or unreadable \(v.unknownReplies)")
        for u in v.unreadableReplies { line("   unreadable: \(u)") }

        var states_ = JSONObject()
        for (k, c) in v.states.sorted(by: { $0.key < $1.key }) { states_[k] = .int(c) }
        var events = JSONObject()
        for (k, c) in v.events.sorted(by: { $0.key < $1.key }) { events[k] = .int(c) }
        var drained = JSONObject()
        for (k, c) in v.drained.sorted(by: { $0.key < $1.key }) { drained[k] = .int(c) }
        results["checks"] = [
            "states": .object(states_), "closedByReplies": .int(closedTotal), "directoryRows": .int(v.directoryRows), "inbox": .int(v.inbox),
            "outbox": .int(v.outbox), "timers": .int(v.timers), "changesMiB": .number(rounded(v.changesMiB)), "inboxMiB": .number(rounded(v.inboxMiB)),
            "sampled": .int(v.sampled), "sampledOK": .int(v.sampledOK),
            "directoryGet": v.directory.map { ["components": .int($0.components), "expected": .int($0.expected), "timeline": .int($0.timeline),
                                                "ms": .number(rounded($0.ms, 2)), "bytes": .int($0.bytes)] } ?? .null,
            "events": .object(events), "drained": .object(drained), "deadLetters": .int(v.deadLetters), "unknownReplies": .int(v.unknownReplies),
        ]

        let storedClosed = v.states["closed"] ?? 0
        let others = v.states.filter { $0.key != "closed" }.values.reduce(0, +)
        targets.check("database: closed changes = closed replies (\(storedClosed)/\(closedTotal)), none in another state (\(others))",
                      storedClosed == closedTotal && (others == 0 || abandonedTotal > 0) && closedTotal > 0)
        targets.check("database: one directory row per closed change (\(v.directoryRows)/\(closedTotal))", v.directoryRows == closedTotal)
        targets.check("change.get: every sampled change closed with its whole history (\(v.sampledOK)/\(v.sampled))", v.sampledOK == v.sampled)
        if let d = v.directory {
            targets.check("change.directory.get: one component per closed change of \(Wire.customerID(0)) (\(d.components)/\(d.expected))", d.components == d.expected)
        } else {
            targets.check("change.directory.get of \(Wire.customerID(0)) answered within 60 s", false)
        }
        if tapEvents {
            let wrong = expected.filter { (v.events[$0.key] ?? 0) != $0.value }.sorted { $0.key < $1.key }
                .map { "\($0.key) \(v.events[$0.key] ?? 0) of \($0.value)" }
            if abandonedTotal == 0 {
                targets.check("events: every change's 10 change events and its sla.exclusion.added, no maintenance.announced"
                    + (wrong.isEmpty ? "" : " (off: \(wrong.joined(separator: ", ")))"), wrong.isEmpty)
            } else {
                line("   events not checked exactly: \(abandonedTotal) changes were given up (off: \(wrong.joined(separator: ", ")))")
            }
        }
        targets.check("no dead letters (\(v.deadLetters)), no stray reply (\(v.unknownReplies))", v.deadLetters == 0 && v.unknownReplies == 0)
        targets.check("outbox empty at the end (\(v.outbox))", v.outbox == 0)
    }

    func shutdown(status: Int32?, maxRSS: Double, log: String) {
        line("")
        line("== change: max RSS \(fmt(maxRSS)) MiB over the whole run; SIGTERM -> \(status.map { "exit \($0)" } ?? "no exit within 30 s, killed")")
        // What the service logged of its own trouble: batches rolled back and retried (a deadlock costs deadlock_timeout, 1 s).
        let lines = log.split(separator: "\n")
        let retried = lines.filter { $0.contains("not committed (transient)") }.count
        let deadlocks = lines.filter { $0.contains("deadlock detected") }.count
        let warnings = lines.filter { $0.contains(" warning ") || $0.contains(" error ") }.count
        line("   service log: \(warnings) warnings or errors; \(retried) command batches rolled back and retried after a transient failure, \(deadlocks) of them deadlocks")
        results["serviceLog"] = ["warnings": .int(warnings), "batchRetries": .int(retried), "deadlocks": .int(deadlocks)]
        targets.check("change resident memory <= \(fmt(rssTargetMiB, 0)) MiB over the whole run (max \(fmt(maxRSS)) MiB)", maxRSS <= rssTargetMiB && maxRSS > 0)
        targets.check("change exits 0 on SIGTERM", status == 0)
        results["maxRSSMiB"] = .number(rounded(maxRSS))
        results["exitStatus"] = status.map { .int(Int($0)) } ?? .null
    }

    func finish(failed: Bool) {
        line("")
        line("== targets (issue 10: 10,000 changes through the standard lifecycle, p99 command latency <= 50 ms at 200 commands/s, "
            + "resident memory <= 100 MiB; 2-core machine shared with other work: see load average and 'rest of machine' CPU)")
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
