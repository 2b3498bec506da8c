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

/// Load benchmark of the change-management service (issue 10), through its own path: commands
/// on `css.commands` with `reply_to`, replies on the tool's queue, facts on `css.events`.
///
/// One run, on a fresh vhost and a fresh database of the servers at `CSS_AMQP_URL` /
/// `CSS_DATABASE_URL`, against the built `change` executable it starts itself (only that
/// service runs). Set-up: `--customers` `customer.onboarded` published as intake publishes them
/// (each with a change contact), each customer's maintenance windows every day all day, and one
/// Standard-change template. Phases: (lifecycle) `--changes` Standard changes through the whole
/// lifecycle (request, agree, schedule test, deploy, verify, schedule production, implement,
/// complete, close: 9 commands each) at `--rate` commands a second, open loop, at most
/// `--open-changes` open at once, each command timed to its reply; (max) `--max-changes` more as
/// fast as the service takes them with `--max-in-flight` open. Then the checks: every change
/// closed, in the database and by `change.get`, every event published. See `Wire` for the messages.
@main
struct ChangeLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "change-load",
        abstract: "Takes Standard changes through the change service's whole lifecycle at a fixed command rate and at its ceiling; reports latency per command, throughput, memory and CPU.")

    @Option(help: "Lifecycle phase: changes taken through the whole Standard lifecycle (9 commands each).")
    var changes = 10_000

    @Option(help: "Lifecycle phase: commands per second, open loop.")
    var rate = 200

    @Option(help: "Lifecycle phase: changes open (started, not closed) at once, at most.")
    var openChanges = 64

    @Option(help: "Customers the changes are spread over (change k belongs to customer k mod customers).")
    var customers = 20

    @Option(help: "Max phase: changes taken through the lifecycle as fast as the service answers (closed loop).")
    var maxChanges = 2_000

    @Option(help: "Max phase: changes open at once, at most (each with one command in flight).")
    var maxInFlight = 64

    @Option(help: "A command without a reply for this many seconds gives its change up (reported).")
    var replyTimeout = 30

    @Option(help: "A phase starts no change after this many seconds and gives up the waiting ones (0: twice its planned length + 120 s for lifecycle, 600 s for max).")
    var phaseTimeout = 0

    @Option(help: "Closed changes read back with change.get at the end.")
    var verifySample = 50

    @Flag(inversion: .prefixedNo, help: "Count the change events on a queue of the tool's own (bound to change.#, maintenance.#, sla.exclusion.added), as a change portal would.")
    var tapEvents = true

    @Option(help: "Directory with the built change executable (it gets this tool's environment: CSS_WORKERS, CSS_BATCH_SIZE, CSS_PREFETCH, CSS_LINGER_MS ... apply).")
    var binDir = ".build/release"

    @Option(help: "Phases to run, comma separated: lifecycle, max (in that order).")
    var phases = "lifecycle,max"

    var selected: Set<String> { Set(phases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }

    var lifecycleChanges: Int { selected.contains("lifecycle") ? changes : 0 }
    var maxPhaseChanges: Int { selected.contains("max") ? maxChanges : 0 }

    var lifecycleDeadline: Int { phaseTimeout > 0 ? phaseTimeout : 2 * (changes * Wire.Step.allCases.count + rate - 1) / rate + 120 }
    var maxDeadline: Int { phaseTimeout > 0 ? phaseTimeout : 600 }

    /// The service's settings from the environment (`CSS_WORKERS=4 ...`), connection URLs left out.
    var serviceSettings: String {
        ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("CSS_") && !$0.key.hasSuffix("_URL") && !["CSS_BIN_DIR", "CSS_STATE_DIR", "CSS_BENCH_SCRATCH"].contains($0.key) }
            .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    /// How to run this again: the settings, the run script and the arguments (without `--bin-dir`, which the script adds).
    var reproduce: String {
        var args = Array(CommandLine.arguments.dropFirst())
        if let i = args.firstIndex(of: "--bin-dir"), i + 1 < args.count { args.removeSubrange(i...(i + 1)) }
        args.removeAll { $0.hasPrefix("--bin-dir=") }
        let scratch = ProcessInfo.processInfo.environment["CSS_BENCH_SCRATCH"].map { "CSS_BENCH_SCRATCH=\($0) " } ?? ""
        return scratch + (serviceSettings.isEmpty ? "" : serviceSettings + " ") + (["Benchmarks/run-change-benchmark.sh"] + args).joined(separator: " ")
    }

    func validate() throws {
        guard changes >= 1, rate >= 1, openChanges >= 1, customers >= 1, maxChanges >= 1, maxInFlight >= 1, replyTimeout >= 1,
              phaseTimeout >= 0, verifySample >= 0 else {
            throw ValidationError("counts, rates and seconds must be positive")
        }
        guard customers <= 99 else { throw ValidationError("--customers is at most 99") }
        let unknown = selected.subtracting(["lifecycle", "max"])
        guard unknown.isEmpty else { throw ValidationError("unknown phases: \(unknown.sorted().joined(separator: ", "))") }
        guard !selected.isEmpty else { throw ValidationError("no phase selected") }
    }

    func run() async throws {
        let bench = BenchRun(tool: "change-load", binDir: binDir)
        defer { _ = bench }
        let logger = bench.logger, runID = bench.runID
        let report = ChangeReport(runID: runID, arguments: self)
        report.line(bench.headline)
        report.line("reproduce: \(reproduce)")
        report.line("tool: \(CommandLine.arguments.joined(separator: " "))")
        let plan = Wire.Plan(customers: customers, now: Date())
        report.line("phases \(phases); changes: lifecycle \(lifecycleChanges) at \(rate) commands/s with at most \(openChanges) open, "
            + "max \(maxPhaseChanges) with \(maxInFlight) open; \(customers) customers; Production windows of \(Wire.Plan.slotSeconds / 60) min from "
            + "\(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(plan.base)))) to "
            + "\(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(plan.lastEnd(lifecycleChanges + maxPhaseChanges))))), Test a day earlier")

        let amqp = try TestServers.freshVhost("chgbench")
        var database: PostgresConfiguration?
        var service: ServiceProcess?
        var sampler: RSSSampler?
        var link: BenchLink?
        var db: PostgresClient?
        var failure: Error?
        do {
            let fresh = try await TestServers.freshDatabase("chgbench", logger: logger)
            database = fresh
            let databaseName = fresh.database ?? ""
            report.line("vhost \(amqp.vhost), database \(databaseName)")
            // The tool's queues first, so no reply and no event goes unseen.
            let router = ReplyRouter()
            let l = BenchLink(amqp: amqp, runID: runID, router: router, tapEvents: tapEvents, logger: logger)
            link = l
            try await RawCeiling.waitConnected { l.isConnected }
            let pg = PostgresClient(configuration: fresh, size: 1, logger: logger)
            db = pg

            // The service's settings come from this tool's environment (ServiceProcess passes it on).
            let process = try ServiceProcess(name: "change", amqp: amqp, database: fresh)
            service = process
            try process.start()
            let rss = RSSSampler(pid: process.pid!)
            rss.start()
            sampler = rss
            report.line("change pid \(process.pid!) (\(process.executable.path)), settings \(serviceSettings.isEmpty ? "defaults" : serviceSettings), log \(process.logFile.path)")

            let runner = ChangeRunner(options: self, link: l, plan: plan, service: process, rss: rss, db: pg, databaseName: databaseName, runID: runID, report: report)
            let ready = try await runner.waitUntilReady()
            report.line("change ready after \(fmt(ready, 2)) s, RSS \(fmt(rss.lastMiB)) MiB")
            try await runner.setUp()
            report.line("\(customers) customers onboarded (customer.onboarded as intake publishes it, one change contact each); maintenance windows "
                + "every day 00:00-00:00 (America/Toronto); template \(Wire.templateID); RSS \(fmt(rss.lastMiB)) MiB")

            var closed: [(k: Int, id: String)] = []
            if selected.contains("lifecycle") {
                report.lifecycleHeader(changes: changes, rate: rate, open: openChanges, deadline: lifecycleDeadline)
                let phase = try await runner.run("lifecycle", range: 0..<changes, rate: rate, concurrency: openChanges, deadline: lifecycleDeadline)
                report.phase(phase)
                closed += phase.closedChanges
                await runner.settle()
            }
            if selected.contains("max") {
                report.maxHeader(changes: maxChanges, open: maxInFlight, deadline: maxDeadline)
                let base = lifecycleChanges
                let phase = try await runner.run("max", range: base..<(base + maxChanges), rate: nil, concurrency: maxInFlight, deadline: maxDeadline)
                report.phase(phase)
                closed += phase.closedChanges
            }
            report.verification(try await runner.verify(closed: closed), tapEvents: tapEvents, customers: customers)
        } catch {
            failure = error
            report.line("FAILED: \(error)")
        }

        // Cleanup, also after a failure: graceful stop of the service, then the vhost and database.
        if let service {
            service.signal(SIGTERM)
            let status = await service.waitForExit(timeout: .seconds(30))
            if status == nil { await service.stop() }
            report.shutdown(status: status, maxRSS: sampler?.maxMiB ?? 0, log: service.log)
            if failure != nil { report.line("change log tail:\n" + service.log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
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
