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

/// Load benchmark of the escalation service (issue 9), through its own path: `sla.breached`
/// on `css.events` in, pages on `css.escalations` out, `escalation.ack` on `css.commands`.
///
/// One run, on a fresh vhost and a fresh database of the servers at `CSS_AMQP_URL` /
/// `CSS_DATABASE_URL`, against the built `escalation` executable it starts itself. Set-up: one
/// `customer.onboarded` (team cloud-ops) and the cloud-ops `oncall.schedule.set` (level 1 the
/// engineer on call at once, level 2 a team lead an hour later), so every breach of a P1
/// ticket pages at once, 24x7, and its chain stays open. Phases: (raw) the broker ceiling;
/// (page) breaches at `--rate` for `--seconds`, each timed to its page; (hold) `--chains` more,
/// then the service's RSS holding them all open; (ack) `escalation.ack` at `--ack-rate` for
/// `--ack-seconds`, each timed to its reply. See `Wire` for the messages.
@main
struct EscalationLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "escalation-load",
        abstract: "Pages through the escalation service from sla.breached, holds open chains, acknowledges them; reports latency, memory and CPU.")

    @Option(help: "Page phase: sla.breached per second (one ticket each), open loop.")
    var rate = 500

    @Option(help: "Page phase: length in seconds.")
    var seconds = 30

    @Option(help: "Hold phase: breaches published after the page phase; every one must be open, with its timer, while the RSS is sampled.")
    var chains = 100_000

    @Option(help: "Hold phase: breaches published but not yet paged, at most.")
    var holdWindow = 5_000

    @Option(help: "Hold phase: breaches per publish call.")
    var holdChunk = 500

    @Option(help: "Hold phase: seconds the RSS is sampled once every chain is open.")
    var holdSampleSeconds = 5

    @Option(help: "Ack phase: escalation.ack per second, open loop, for escalations paged earlier (page phase first).")
    var ackRate = 200

    @Option(help: "Ack phase: length in seconds.")
    var ackSeconds = 20

    @Option(help: "Messages of the raw ceiling phase (250 per publish call, 4 calls in flight, 300 B each).")
    var rawMessages = 100_000

    @Option(help: "A wait for pages or replies with no progress for this many seconds ends (the missing ones are reported).")
    var stallTimeout = 60

    @Option(help: "Directory with the built escalation executable (it gets this tool's environment: CSS_WORKERS, CSS_BATCH_SIZE, CSS_PREFETCH, CSS_TIMER_... apply).")
    var binDir = ".build/release"

    @Option(help: "Phases to run, comma separated: raw, page, hold, ack (in that order).")
    var phases = "raw,page,hold,ack"

    var selected: Set<String> { Set(phases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }

    /// Tickets of the page phase (indexes `0..<pageTickets`); the hold phase's follow.
    var pageTickets: Int { selected.contains("page") ? rate * seconds : 0 }
    var holdTickets: Int { selected.contains("hold") ? chains : 0 }

    /// The service's settings from the environment (`CSS_WORKERS=4 ...`), connection URLs left out.
    var serviceSettings: String {
        ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("CSS_") && !$0.key.hasSuffix("_URL") && !["CSS_BIN_DIR", "CSS_STATE_DIR", "CSS_BENCH_SCRATCH"].contains($0.key) }
            .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    func validate() throws {
        guard rate >= 1, seconds >= 1, chains >= 1, holdWindow >= 1, holdChunk >= 1, holdSampleSeconds >= 1, ackRate >= 1, ackSeconds >= 1,
              rawMessages >= 1, stallTimeout >= 1 else {
            throw ValidationError("counts, rates and seconds must be positive")
        }
        let unknown = selected.subtracting(["raw", "page", "hold", "ack"])
        guard unknown.isEmpty else { throw ValidationError("unknown phases: \(unknown.sorted().joined(separator: ", "))") }
        if selected.contains("ack"), ackRate * ackSeconds > pageTickets + holdTickets {
            throw ValidationError("--ack-rate × --ack-seconds (\(ackRate * ackSeconds) acks) must not exceed the escalations paged by the page and hold phases (\(pageTickets + holdTickets))")
        }
    }

    func run() async throws {
        let bench = BenchRun(tool: "escalation-load", binDir: binDir)
        defer { _ = bench }
        let logger = bench.logger, runID = bench.runID
        let report = EscalationReport(runID: runID, arguments: self)
        report.line(bench.headline)
        report.line("phases \(phases); tickets INC-\(Wire.firstNumber)... (page \(pageTickets), hold \(holdTickets)), each one P1 sla.breached of its restoration target")

        let amqp = try TestServers.freshVhost("escbench")
        var database: PostgresConfiguration?
        var service: ServiceProcess?
        var sampler: RSSSampler?
        var link: BenchLink?
        var db: PostgresClient?
        var failure: Error?
        do {
            let fresh = try await TestServers.freshDatabase("escbench", logger: logger)
            database = fresh
            let databaseName = fresh.database ?? ""
            report.line("vhost \(amqp.vhost), database \(databaseName)")
            if selected.contains("raw") {
                report.raw(try await RawCeiling.run(amqp: amqp, runID: runID, messages: rawMessages, batch: 250, pipeline: 4, prefetch: 1000, bodyBytes: 300,
                                                    databaseName: databaseName, groups: CPUGroups(services: [("escalation", nil)], tool: "escalation-load"),
                                                    logger: logger))
            }
            if !selected.isDisjoint(with: ["page", "hold", "ack"]) {
                // The tool's queues first, so no page and no reply goes unseen.
                let ledger = RunLedger(tickets: pageTickets + holdTickets)
                let l = BenchLink(amqp: amqp, runID: runID, ledger: ledger, logger: logger)
                link = l
                try await RawCeiling.waitConnected { l.isConnected }
                let pg = PostgresClient(configuration: fresh, size: 1, logger: logger)
                db = pg

                // The service's settings come from this tool's environment (ServiceProcess passes it on).
                let process = try ServiceProcess(name: "escalation", amqp: amqp, database: fresh)
                service = process
                try process.start()
                let rss = RSSSampler(pid: process.pid!)
                rss.start()
                sampler = rss
                report.line("escalation pid \(process.pid!) (\(process.executable.path)), settings \(serviceSettings.isEmpty ? "defaults" : serviceSettings), log \(process.logFile.path)")

                let runner = EscalationRunner(options: self, link: l, ledger: ledger, service: process, rss: rss, db: pg, databaseName: databaseName, report: report)
                let ready = try await runner.waitUntilReady()
                report.line("escalation ready after \(fmt(ready, 2)) s, RSS \(fmt(rss.lastMiB)) MiB")
                let revision = try await runner.setUp()
                report.line("customer \(Wire.customerID) onboarded (team \(Wire.team)); oncall.schedule.set revision \(revision): "
                    + "level 1 engineer on call (PT0S), level 2 team_lead with a contact (PT1H)")

                if selected.contains("page") {
                    report.page(try await runner.page())
                    await runner.settle()
                }
                if selected.contains("hold") { report.hold(try await runner.hold(base: pageTickets)) }
                if selected.contains("ack") { report.ack(try await runner.ack()) }
                // Stragglers (a page or reply published twice) would have arrived by now.
                try await Task.sleep(for: .seconds(1))
                await runner.settle()
                report.final(tables: await runner.tables(), counts: ledger.counts, deadLetters: l.deadLetters.received.value,
                             drained: l.intakeDrain.received.value)
            }
        } catch {
            failure = error
            report.line("FAILED: \(error)")
        }

        // Cleanup, also after a failure: graceful stop of the service, then the vhost and database.
        if let service {
            service.signal(SIGTERM)
            let status = await service.waitForExit(timeout: .seconds(30))
            if status == nil { await service.stop() }
            report.shutdown(status: status, maxRSS: sampler?.maxMiB ?? 0)
            if failure != nil { report.line("escalation log tail:\n" + service.log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
        }
        sampler?.stop()
        await link?.close()
        await db?.close()
        if let database { await TestServers.dropDatabase(database, logger: logger) }
        TestServers.deleteVhost(amqp)
        report.line("cleaned up: vhost \(amqp.vhost) and database \(database?.database ?? "-") deleted")
        report.finish(failed: failure != nil)
        if failure != nil { throw ExitCode.failure }
    }
}
