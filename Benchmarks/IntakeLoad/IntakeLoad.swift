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

/// Load benchmark of the ticket pipeline, end to end through the wire contract.
///
/// One run, on a fresh vhost and a fresh database of the servers at `CSS_AMQP_URL` /
/// `CSS_DATABASE_URL`: (a) the raw broker rate through the project's AMQP layer,
/// (b) `ticket.submit` at saturation against the built `intake` executable, (c)
/// reply latency at a fixed offered rate, (d) intake's resident memory throughout,
/// then an SQL check that every accepted ticket is stored once. With the pipeline (the
/// default) the built `classification` executable runs too, and each phase also follows
/// every accepted ticket to its `ticket.classified`: throughput, submit-to-classified
/// latency and classification's memory. With `--follow-sla` the built `sla` runs too and
/// each ticket is followed on to its `sla.started` the same way.
@main
struct IntakeLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intake-load",
        abstract: "Submits tickets to intake over AMQP and reports throughput, reply latency, memory and the raw broker ceiling.")

    @Option(help: "Tickets to submit in the saturation phase.")
    var tickets = 100_000

    @Option(help: "Tickets a second offered in the fixed-rate phase (open loop).")
    var rate = 1_000

    @Option(help: "Duration of the fixed-rate phase, in seconds.")
    var seconds = 20

    @Option(help: "Messages of the raw ceiling phase.")
    var rawMessages = 100_000

    @Option(help: "Messages per publish call (confirm batch) in the raw phase.")
    var rawBatch = 250

    @Option(help: "Raw-phase publish calls in flight at once (raw-batch × this = unconfirmed window).")
    var rawPipeline = 4

    @Option(help: "Unanswered tickets allowed in the saturation phase.")
    var inFlight = 2_000

    @Option(help: "Tickets per publish call in the saturation phase.")
    var chunk = 100

    @Option(help: "Publish calls in flight at once in the saturation phase.")
    var publishers = 4

    @Option(help: "Directory with the built intake executable.")
    var binDir = ".build/release"

    @Option(help: "Passed to intake as CSS_WORKERS.")
    var workers: Int?

    @Option(help: "Passed to intake as CSS_BATCH_SIZE.")
    var batchSize: Int?

    @Option(help: "Passed to intake as CSS_PREFETCH.")
    var prefetch: Int?

    @Option(help: "Phases to run, comma separated: raw, saturation, latency.")
    var phases = "raw,saturation,latency"

    @Flag(inversion: .prefixedNo, help: "Run classification too and follow each ticket to its ticket.classified (--no-pipeline: intake alone).")
    var pipeline = true

    @Flag(help: "Run the sla service too and follow each ticket on to its sla.started (needs the pipeline).")
    var followSla = false

    @Flag(help: "Run every service as deployed: escalation and change management as well, which consume ticket events too (implies --follow-sla).")
    var allServices = false

    /// The services that run beside those followed, when `--all-services`.
    static let unfollowed: [ServiceSpec] = [.escalation(), .change()]

    var followsSLA: Bool { followSla || allServices }

    func validate() throws {
        if followsSLA && !pipeline { throw ValidationError("--follow-sla and --all-services need the pipeline (drop --no-pipeline)") }
    }

    func run() async throws {
        var logger = Logger(label: "intake-load")
        logger.logLevel = .warning
        let selected = Set(phases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let binURL = URL(fileURLWithPath: binDir, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
        setenv("CSS_BIN_DIR", binURL.path, 1)
        let handlers = installAbortHandlers(tool: "intake-load")
        defer { _ = handlers }

        let runID = String(UUID().uuidString.prefix(8).lowercased())
        var report = Report(runID: runID, arguments: self)
        report.line("intake-load run \(runID): \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(loadAverage()) at start")

        let amqp = try TestServers.freshVhost("bench")
        var database: PostgresConfiguration?
        var process: ServiceProcess?
        var sampler: RSSSampler?
        var classifier: ServiceProcess?
        var classifierSampler: RSSSampler?
        var slaProcess: ServiceProcess?
        var slaSampler: RSSSampler?
        var others: [(spec: ServiceSpec, process: ServiceProcess, sampler: RSSSampler)] = []
        var client: LoadClient?
        var db: PostgresClient?
        var failure: Error?
        do {
            database = try await TestServers.freshDatabase("bench", logger: logger)
            let databaseName = database!.database ?? ""
            report.line("vhost \(amqp.vhost), database \(databaseName)")

            if selected.contains("raw") {
                let raw = try await RawCeiling.run(amqp: amqp, runID: runID, messages: rawMessages, batch: rawBatch, pipeline: rawPipeline,
                                                   prefetch: 1000, bodyBytes: 300, databaseName: databaseName,
                                                   groups: CPUGroups(services: [("intake", nil), ("classification", nil)] + (followsSLA ? [("sla", nil)] : [])
                                                                         + (allServices ? Self.unfollowed.map { ($0.name, nil) } : []),
                                                                     tool: "intake-load"),
                                                   logger: logger)
                report.raw(raw)
            }
            guard selected.contains("saturation") || selected.contains("latency") else { throw Done() }

            var env: [String: String] = [:]
            if let workers { env["CSS_WORKERS"] = "\(workers)" }
            if let batchSize { env["CSS_BATCH_SIZE"] = "\(batchSize)" }
            if let prefetch { env["CSS_PREFETCH"] = "\(prefetch)" }
            let intake = try ServiceProcess(name: "intake", amqp: amqp, database: database!, extra: env)
            try intake.start()
            process = intake
            let pid = intake.pid!
            let rss = RSSSampler(pid: pid)
            rss.start()
            sampler = rss
            report.line("intake pid \(pid) (\(intake.executable.path)), env \(env.isEmpty ? "defaults" : env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")), log \(intake.logFile.path)")

            var following: (pid: Int32, sampler: RSSSampler)?
            if pipeline {
                let c = try ServiceProcess(name: "classification", amqp: amqp, database: database!, extra: env)
                try c.start()
                classifier = c
                let cs = RSSSampler(pid: c.pid!)
                cs.start()
                classifierSampler = cs
                following = (c.pid!, cs)
                report.line("classification pid \(c.pid!) (\(c.executable.path)), log \(c.logFile.path)")
            }
            var slaFollowing: (pid: Int32, sampler: RSSSampler)?
            if followsSLA {
                let s = try ServiceProcess(name: "sla", amqp: amqp, database: database!, extra: env)
                try s.start()
                slaProcess = s
                let ss = RSSSampler(pid: s.pid!)
                ss.start()
                slaSampler = ss
                slaFollowing = (s.pid!, ss)
                report.line("sla pid \(s.pid!) (\(s.executable.path)), log \(s.logFile.path)")
            }

            if allServices {
                for spec in Self.unfollowed {
                    let p = try ServiceProcess(name: spec.name, amqp: amqp, database: database!, extra: env)
                    try p.start()
                    let sampler = RSSSampler(pid: p.pid!)
                    sampler.start()
                    others.append((spec, p, sampler))
                    report.line("\(spec.name) pid \(p.pid!) (\(p.executable.path)), log \(p.logFile.path)")
                }
            }

            let load = LoadClient(amqp: amqp, runID: runID, prefetch: max(1000, inFlight), followClassification: pipeline, followSLA: followsSLA, logger: logger)
            client = load
            let started = monotonicNanos()
            try await waitUntilReady(load, intake)
            report.line("intake ready after \(fmt(Double(monotonicNanos() - started) / 1e9, 2)) s, RSS \(fmt(rss.lastMiB)) MiB")
            if let classifier {
                try await waitUntilReady(load, classifier, probe: (CommandName.quotaGet, ["customerId": "probe"]))
                report.line("classification ready, RSS \(fmt(classifierSampler?.lastMiB ?? 0)) MiB")
            }
            if let slaProcess {
                try await waitUntilReady(load, slaProcess, probe: (CommandName.slaExclusionAdd, Self.slaProbe))
                report.line("sla ready, RSS \(fmt(slaSampler?.lastMiB ?? 0)) MiB")
            }
            for (spec, p, sampler) in others {
                try await waitUntilReady(load, p, probe: (spec.probe.command, spec.probe.body))
                report.line("\(spec.name) ready, RSS \(fmt(sampler.lastMiB)) MiB")
            }
            guard let onboarded = try await load.request(CommandName.customerOnboard, Self.onboardBody, timeout: .seconds(30)), onboarded.isOK else {
                throw BenchError("customer.onboard was not accepted")
            }
            let pg = PostgresClient(configuration: database!, size: 1, logger: logger)
            db = pg
            let commits: () async -> Int? = {
                try? await pg.query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")[0].int(0)
            }
            var driver = LoadDriver(client: load, factory: TicketFactory(runID: runID, customerID: "bench", contact: "ana@bench.example"),
                                    sampler: rss, intakePID: pid, classification: following, databaseName: databaseName, publishers: publishers)
            driver.sla = slaFollowing
            driver.others = others.map { ($0.spec.name, $0.process.pid!) }
            if selected.contains("saturation") {
                let result = try await driver.saturation(count: tickets, inFlight: inFlight, chunk: chunk, commits: commits)
                report.saturation(result)
                report.readAfterReply("saturation", try await Self.readAfterReply(result.samples, pg))
            }
            if selected.contains("latency") {
                let result = try await driver.fixedRate(rate: rate, seconds: seconds, commits: commits)
                report.fixedRate(result)
                report.readAfterReply("fixed rate", try await Self.readAfterReply(result.samples, pg))
            }
            report.sqlCheck(try await Self.sqlCheck(pg, runID: runID))
        } catch is Done {
        } catch {
            failure = error
            report.line("FAILED: \(error)")
        }

        // Cleanup, also after a failure: graceful stop of the services, then the vhost and database.
        for (spec, p, sampler) in others.reversed() {
            p.signal(SIGTERM)
            let status = await p.waitForExit(timeout: .seconds(30))
            if status == nil { await p.stop() }
            report.serviceShutdown(spec.name, status: status, maxRSS: sampler.maxMiB)
            if failure != nil { report.line("\(spec.name) log tail:\n" + p.log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
            sampler.stop()
        }
        if let slaProcess {
            slaProcess.signal(SIGTERM)
            let status = await slaProcess.waitForExit(timeout: .seconds(30))
            if status == nil { await slaProcess.stop() }
            report.slaShutdown(status: status, maxRSS: slaSampler?.maxMiB ?? 0)
            if failure != nil { report.line("sla log tail:\n" + slaProcess.log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
        }
        slaSampler?.stop()
        if let classifier {
            classifier.signal(SIGTERM)
            let status = await classifier.waitForExit(timeout: .seconds(30))
            if status == nil { await classifier.stop() }
            report.classificationShutdown(status: status, maxRSS: classifierSampler?.maxMiB ?? 0)
            if failure != nil { report.line("classification log tail:\n" + classifier.log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
        }
        classifierSampler?.stop()
        if let process {
            process.signal(SIGTERM)
            let status = await process.waitForExit(timeout: .seconds(30))
            if status == nil { await process.stop() }
            report.shutdown(status: status, maxRSS: sampler?.maxMiB ?? 0)
            if failure != nil { report.line("intake log tail:\n" + process.log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
        }
        sampler?.stop()
        await client?.close()
        await db?.close()
        if let database { await TestServers.dropDatabase(database, logger: logger) }
        TestServers.deleteVhost(amqp)
        report.line("cleaned up: vhost \(amqp.vhost) and database \(database?.database ?? "-") deleted")
        report.finish(failed: failure != nil)
        if failure != nil { throw ExitCode.failure }
    }

    /// Ready once a command gets an answer: the service migrated, bound its queue and consumes.
    func waitUntilReady(_ client: LoadClient, _ process: ServiceProcess,
                        probe: (String, JSONValue) = (CommandName.ticketGet, ["trackingNumber": "INC-000000"])) async throws {
        let name = process.executable.lastPathComponent
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            try Abort.check()
            guard process.isRunning else { throw BenchError("\(name) exited during start; see \(process.logFile.path)") }
            if try await client.request(probe.0, probe.1, timeout: .seconds(1)) != nil { return }
        }
        throw BenchError("\(name) did not answer within 90 s; see \(process.logFile.path)")
    }

    /// The SLA service answers this with `unknown_customer` once it consumes its commands.
    static let slaProbe: JSONValue = [
        "customerId": "probe", "exclusionId": "probe", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z",
        "reason": "readiness probe", "by": "probe@vendor.example",
    ]

    static let onboardBody: JSONValue = [
        "customerId": "bench", "name": "Bench Corp", "timeZone": "America/Toronto", "supportRegion": "CA-ON",
        "team": "cloud-ops", "contractYearStart": "2026-01-01", "maxContacts": 3,
        "contacts": [["email": "ana@bench.example", "name": "Ana", "phone": "+1 555 0100", "primary": true],
                     ["email": "bo@bench.example", "name": "Bo"]],
        "changeContacts": ["cio@bench.example"], "catalogue": ["password-reset", "add-user"],
        "quotas": ["standard": 1_000_000, "nonStandard": 1_000_000],
    ]

    /// Tracking numbers sampled from replies, looked up after the phase: each must exist.
    static func readAfterReply(_ numbers: [String], _ pg: PostgresClient) async throws -> (checked: Int, found: Int) {
        guard !numbers.isEmpty else { return (0, 0) }
        let list = "{" + numbers.joined(separator: ",") + "}"
        let found = try await pg.query("SELECT count(*) FROM intake.tickets WHERE tracking_number = ANY($1::text[])", [.string(list)])[0].int(0)
        return (numbers.count, found)
    }

    static func sqlCheck(_ pg: PostgresClient, runID: String) async throws -> SQLCheck {
        let row = try await pg.query("""
            SELECT count(*) FILTER (WHERE message_id LIKE $1),
                   count(DISTINCT tracking_number) FILTER (WHERE message_id LIKE $1),
                   count(*) FILTER (WHERE message_id LIKE $2),
                   count(DISTINCT tracking_number) FILTER (WHERE message_id LIKE $2),
                   count(*),
                   (SELECT count(*) FROM intake.outbox),
                   (SELECT count(*) FROM intake.ticket_audit)
            FROM intake.tickets
            """, [.string("bench-\(runID)-sat-%"), .string("bench-\(runID)-lat-%")])[0]
        return SQLCheck(saturationRows: try row.int(0), saturationDistinct: try row.int(1), fixedRateRows: try row.int(2),
                        fixedRateDistinct: try row.int(3), allTickets: try row.int(4), outboxLeft: try row.int(5), auditRows: try row.int(6))
    }
}

/// Ends a run early without failing it (only the raw phase was asked for).
struct Done: Error {}

struct SQLCheck {
    var saturationRows: Int
    var saturationDistinct: Int
    var fixedRateRows: Int
    var fixedRateDistinct: Int
    var allTickets: Int
    var outboxLeft: Int
    var auditRows: Int
}
