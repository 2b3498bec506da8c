import ArgumentParser
import CSSAMQP
import CSSModel
import CSSPostgres
import CSSRuntime
import CSSSupport
import CSSTestSupport
import Foundation
import LoadSupport
import Logging

/// Load benchmark of the SLA timer service (issue 8), through its own path: events on `css.events`.
///
/// One run, on a fresh vhost and a fresh database of the servers at `CSS_AMQP_URL` /
/// `CSS_DATABASE_URL`, against the built `sla` executable it starts itself:
/// (a) raw broker ceiling; (b) arm: `customer.onboarded`, then `ticket.classified` for
/// `--targets` / 2 tickets (two targets, so two `sla.timers` rows, each), counted by their
/// `sla.started`; (c) measure: the last `--due-rate` × `--seconds` of those tickets are planned
/// so that exactly `--due-rate` thresholds fall due in each second of the window, and every
/// `sla.warning`/`sla.breached` is checked and timed against its due instant; (d) recovery:
/// `--recovery-timers` timers due at one second, the service killed with SIGKILL before it and
/// restarted after it; the sla process's RSS throughout. See `SLAPlan` for what the tickets are.
@main
struct SLALoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sla-load",
        abstract: "Arms SLA timers through css.events and reports arm throughput, firing lateness, memory and recovery after kill -9.")

    @Option(help: "Targets to arm (two per ticket: response and restoration, each one sla.timers row); tickets = targets / 2, the measured ones included.")
    var targets = 1_000_000

    @Option(help: "Thresholds (planned firings) falling due per second in the measure window.")
    var dueRate = 1_000

    @Option(help: "Length of the measure window, in seconds.")
    var seconds = 60

    @Option(help: "slaPolicy warnAt of the bench customer: increasing fractions, comma separated, or 'none' (breaches only).")
    var warnAt = "0.5,0.75,0.9"

    @Option(help: "Timers due at the same second in the recovery phase.")
    var recoveryTimers = 10_000

    @Option(help: "Seconds past their due second before the killed service is restarted.")
    var overdue = 5

    @Option(help: "Messages of the raw ceiling phase.")
    var rawMessages = 100_000

    @Option(help: "Messages per publish call (confirm batch) in the raw phase.")
    var rawBatch = 250

    @Option(help: "Raw-phase publish calls in flight at once.")
    var rawPipeline = 4

    @Option(help: "ticket.classified published but not yet started, at most (the backlog on css.sla.events while arming).")
    var armWindow = 10_000

    @Option(help: "ticket.classified per publish call.")
    var armChunk = 500

    @Option(help: "Seconds from the start of arming the measured tickets to the window (default: from the arm rate).")
    var lead: Int?

    @Option(help: "Limit of each arm, in seconds.")
    var armTimeout = 7_200

    @Option(help: "An arm with no sla.started for this many seconds fails.")
    var stallTimeout = 60

    @Option(help: "Seconds after the window to wait for planned firings still missing.")
    var drainTimeout = 60

    @Option(help: "Seconds after the restart to wait for the recovery firings.")
    var recoveryTimeout = 180

    @Option(help: "Directory with the built sla executable.")
    var binDir = ".build/release"

    @Option(help: "Passed to sla as CSS_WORKERS.")
    var workers: Int?

    @Option(help: "Passed to sla as CSS_BATCH_SIZE (events per transaction; timers use CSS_TIMER_BATCH).")
    var batchSize: Int?

    @Option(help: "Passed to sla as CSS_PREFETCH.")
    var prefetch: Int?

    @Option(help: "Phases to run, comma separated: raw, arm, measure, recovery.")
    var phases = "raw,arm,measure,recovery"

    @Option(help: "css.intake.events (intake's queue: ticket.classified and every sla.* event; intake is not running): drain (consume and ack, as intake would) or keep.")
    var intakeQueue = "drain"

    var selected: Set<String> { Set(phases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }

    var fractions: [Double] {
        warnAt == "none" ? [] : warnAt.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
    }

    func validate() throws {
        guard targets >= 2, targets % 2 == 0 else { throw ValidationError("--targets must be even (two per ticket)") }
        guard dueRate >= 1, seconds >= 1, recoveryTimers >= 1, overdue >= 0, armWindow >= 1, armChunk >= 1 else {
            throw ValidationError("--due-rate, --seconds, --recovery-timers, --arm-window and --arm-chunk must be positive")
        }
        let unknown = selected.subtracting(["raw", "arm", "measure", "recovery"])
        guard unknown.isEmpty else { throw ValidationError("unknown phases: \(unknown.sorted().joined(separator: ", "))") }
        guard ["drain", "keep"].contains(intakeQueue) else { throw ValidationError("--intake-queue is drain or keep") }
        if warnAt != "none" {
            let list = warnAt.split(separator: ",")
            guard fractions.count == list.count, fractions.allSatisfy({ $0 > 0 && $0 < 1 }), !zip(fractions, fractions.dropFirst()).contains(where: { $0 >= $1 }) else {
                throw ValidationError("--warn-at: increasing fractions between 0 and 1, or 'none'")
            }
        }
        if selected.contains("measure"), dueRate * seconds > targets / 2 {
            throw ValidationError("--due-rate × --seconds (\(dueRate * seconds) measured tickets) must not exceed --targets / 2 (\(targets / 2) tickets)")
        }
    }

    /// The SLA service answers this with `unknown_customer` once it consumes its commands.
    static let probe: JSONValue = [
        "customerId": "probe", "exclusionId": "probe", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z",
        "reason": "readiness probe", "by": "probe@vendor.example",
    ]

    func run() async throws {
        let bench = BenchRun(tool: "sla-load", binDir: binDir)
        defer { _ = bench }
        let logger = bench.logger, runID = bench.runID
        let plan = try SLAPlan(warnAt: fractions, windowSeconds: seconds)
        let report = SLAReport(runID: runID, arguments: self, plan: plan)
        report.line(bench.headline)
        report.line("targets \(targets) = \(targets / 2) tickets × (response, restoration); \(plan.policyLine)")
        report.line("a firing = one sla.warning or sla.breached; each measured/recovery ticket has exactly one planned firing in the run "
            + "(the first \(plan.plannedIsWarning ? "warning" : "breach") of P1's response or P2's restoration); background thresholds are \(fmt(Double(plan.backgroundFirstDueSeconds) / 3600, 1)) h or more ahead")

        let amqp = try TestServers.freshVhost("slabench")
        var database: PostgresConfiguration?
        var sla: SLAService?
        var taps: EventTaps?
        var publisher: AMQPPublisher?
        var control: ContractClient?
        var db: PostgresClient?
        var failure: Error?
        do {
            database = try await TestServers.freshDatabase("slabench", logger: logger)
            let databaseName = database!.database ?? ""
            report.line("vhost \(amqp.vhost), database \(databaseName)")

            if selected.contains("raw") {
                report.raw(try await RawCeiling.run(amqp: amqp, runID: runID, messages: rawMessages, batch: rawBatch, pipeline: rawPipeline,
                                                    prefetch: 1000, bodyBytes: 300, databaseName: databaseName,
                                                    groups: CPUGroups(services: [("sla", nil)], tool: "sla-load"), logger: logger))
            }
            guard !selected.isDisjoint(with: ["arm", "measure", "recovery"]) else { throw Done() }

            // The tool's queues first, so nothing the service publishes goes unseen.
            let t = EventTaps(amqp: amqp, runID: runID, plan: plan, drainIntakeQueue: intakeQueue == "drain", logger: logger)
            taps = t
            let p = AMQPPublisher(configuration: amqp, topology: ContractTopology.all, name: "sla-load-publisher", logger: logger)
            publisher = p
            let c = ContractClient(amqp: amqp, logger: logger, tapEvents: false)
            control = c
            try await RawCeiling.waitConnected { t.isConnected && p.isConnected }
            let pg = PostgresClient(configuration: database!, size: 1, logger: logger)
            db = pg

            var env: [String: String] = [:]
            if let workers { env["CSS_WORKERS"] = "\(workers)" }
            if let batchSize { env["CSS_BATCH_SIZE"] = "\(batchSize)" }
            if let prefetch { env["CSS_PREFETCH"] = "\(prefetch)" }
            let service = SLAService(process: try ServiceProcess(name: "sla", amqp: amqp, database: database!, extra: env))
            sla = service
            try service.start()
            report.line("sla pid \(service.pid!) (\(service.process.executable.path)), env \(env.isEmpty ? "defaults" : env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")), log \(service.process.logFile.path)")
            let runner = SLARunner(options: self, plan: plan, sla: service, taps: t, publisher: p, control: c, db: pg, databaseName: databaseName, report: report)
            let ready = try await runner.waitUntilReady()
            report.line("sla ready after \(fmt(ready, 2)) s, RSS \(fmt(service.current?.lastMiB ?? 0)) MiB")

            // The customer, as intake publishes it; the clocks need it before any ticket.
            _ = try await runner.publish([try plan.onboarded(at: Date())])
            guard await eventually(timeout: .seconds(30), { ((try? await pg.query("SELECT count(*) FROM sla.customers")[0].int(0)) ?? 0) == 1 }) else {
                throw BenchError("sla did not store customer.onboarded within 30 s; see \(service.process.logFile.path)")
            }

            let measuredTickets = selected.contains("measure") ? dueRate * seconds : 0
            var armRate: Double?
            if selected.contains("arm") {
                let arm = try await runner.armBackground(count: targets / 2 - measuredTickets)
                armRate = arm.throughput.overall
                await runner.settle()
                report.armPhase(arm, tables: await runner.tables(), measuredTickets: measuredTickets)
            }
            if selected.contains("measure") {
                report.line("")
                report.line("== measure: arming the measured tickets")
                let m = try await runner.measure(armRate: armRate)
                armRate = armRate ?? m.arm.throughput.overall
                report.measure(m, plan: plan)
            }
            if selected.contains("recovery") {
                report.line("")
                report.line("== recovery: arming")
                report.recovery(try await runner.recovery(armRate: armRate))
            }
            // Stragglers (a duplicate published by the sweeper) would have arrived by now.
            try await Task.sleep(for: .seconds(1))
            await runner.settle()
            let left = await runner.outboxLeft()
            if !left.isEmpty {
                report.line("")
                report.line("   outbox rows left: " + left.map { "\($0.routingKey) \($0.rows) (lease expired \($0.leaseExpired), oldest inserted \(fmt($0.oldestSeconds, 1)) s ago)" }.joined(separator: ", "))
            }
            report.final(tables: await runner.tables(), deadLetters: c.deadLetters.count, unplanned: t.firingLedger.unplannedEvents,
                         unreadable: t.firingLedger.unreadableEvents, unknownStarted: t.startedLedger.unknownEvents,
                         drained: intakeQueue == "drain" ? t.drained.value : nil)
        } catch is Done {
        } catch {
            failure = error
            report.line("FAILED: \(error)")
        }

        // Cleanup, also after a failure: graceful stop of the service, then the vhost and database.
        if let sla {
            sla.process.signal(SIGTERM)
            let status = await sla.process.waitForExit(timeout: .seconds(30))
            if status == nil { await sla.process.stop() }
            report.shutdown(status: status, maxRSS: sla.maxMiB)
            if failure != nil { report.line("sla log tail:\n" + sla.process.log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
            sla.stopSampling()
        }
        await taps?.close()
        await control?.close()
        await publisher?.close()
        await db?.close()
        if let database { await TestServers.dropDatabase(database, logger: logger) }
        TestServers.deleteVhost(amqp)
        report.line("cleaned up: vhost \(amqp.vhost) and database \(database?.database ?? "-") deleted")
        report.finish(failed: failure != nil)
        if failure != nil { throw ExitCode.failure }
    }
}

/// Ends a run early without failing it (only the raw phase was asked for).
struct Done: Error {}
