import CSSAMQP
import CSSModel
import CSSPostgres
import Foundation
import Logging

/// One service executable of a test system: how many processes, their extra
/// environment, and the command that shows it is ready.
public struct ServiceSpec: Sendable {
    public var name: String
    public var count: Int
    public var env: [String: String]
    /// A command the service answers with a refusal of `code` once it consumes.
    public var probe: (command: String, body: JSONValue, code: String)

    public init(name: String, count: Int = 1, env: [String: String] = [:], probe: (command: String, body: JSONValue, code: String)) {
        self.name = name
        self.count = count
        self.env = env
        self.probe = probe
    }

    public static func intake(count: Int = 1, env: [String: String] = [:]) -> ServiceSpec {
        ServiceSpec(name: "intake", count: count, env: env, probe: (CommandName.ticketGet, ["trackingNumber": "INC-000000"], ErrorCode.unknownTicket))
    }

    public static func classification(count: Int = 1, env: [String: String] = [:]) -> ServiceSpec {
        ServiceSpec(name: "classification", count: count, env: env, probe: (CommandName.quotaGet, ["customerId": "probe"], ErrorCode.unknownCustomer))
    }

    public static func sla(count: Int = 1, env: [String: String] = [:]) -> ServiceSpec {
        ServiceSpec(name: "sla", count: count, env: env, probe: (CommandName.slaExclusionAdd, [
            "customerId": "probe", "exclusionId": "probe", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z",
            "reason": "readiness probe", "by": "probe@vendor.example"], ErrorCode.unknownCustomer))
    }

    public static func escalation(count: Int = 1, env: [String: String] = [:]) -> ServiceSpec {
        ServiceSpec(name: "escalation", count: count, env: env, probe: (CommandName.oncallGet, ["team": "probe"], ErrorCode.unknownTeam))
    }

    public static func change(count: Int = 1, env: [String: String] = [:]) -> ServiceSpec {
        ServiceSpec(name: "change", count: count, env: env, probe: (CommandName.changeGet, ["changeId": "CHG-000000"], ErrorCode.unknownChange))
    }
}

/// Real service processes on a fresh vhost and database (one schema per service, as
/// deployed), with a contract client that talks to them as an integrator does.
public struct SystemHarness: Sendable {
    public let amqp: AMQPConfiguration
    public let database: PostgresConfiguration
    public let db: PostgresClient
    public let client: ContractClient
    public let services: [ServiceSpec]
    public let processes: [String: [ServiceProcess]]
    public let logger: Logger

    /// Runs `body` with a fresh system and always tears it down, also when `body` throws.
    public static func with(_ services: [ServiceSpec], databaseSettings: [String: String] = [:], tapEvents: Bool = true,
                            _ body: (SystemHarness) async throws -> Void) async throws {
        let harness = try await start(services, databaseSettings: databaseSettings, tapEvents: tapEvents)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// - Parameters:
    ///   - databaseSettings: session defaults of the fresh database (`lock_timeout`), set before the services connect.
    ///   - tapEvents: whether the contract client binds a queue to every event (which makes every event routable).
    public static func start(_ services: [ServiceSpec], databaseSettings: [String: String] = [:], tapEvents: Bool = true) async throws -> SystemHarness {
        var logger = Logger(label: "system-tests")
        logger.logLevel = .warning
        let prefix = services.first?.name ?? "system"
        let amqp = try TestServers.freshVhost(prefix)
        let database = try await TestServers.freshDatabase(prefix, logger: logger)
        if !databaseSettings.isEmpty, let name = database.database {
            let admin = PostgresClient(configuration: database, size: 1, logger: logger)
            for (key, value) in databaseSettings.sorted(by: { $0.key < $1.key }) {
                try await admin.execute("ALTER DATABASE \(name) SET \(key) = '\(value)'")
            }
            await admin.close()
        }
        let client = ContractClient(amqp: amqp, logger: logger, tapEvents: tapEvents)
        var processes: [String: [ServiceProcess]] = [:]
        for spec in services {
            for _ in 0..<spec.count {
                let p = try ServiceProcess(name: spec.name, amqp: amqp, database: database, extra: spec.env)
                try p.start()
                processes[spec.name, default: []].append(p)
            }
        }
        let harness = SystemHarness(amqp: amqp, database: database, db: PostgresClient(configuration: database, size: 2, logger: logger),
                                    client: client, services: services, processes: processes, logger: logger)
        try await harness.waitUntilReady()
        return harness
    }

    /// Ready once every service answers its probe: it migrated, bound its queue and
    /// consumes (a command published before the queue is bound is unroutable and lost).
    public func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(90)
        for spec in services {
            while true {
                do {
                    let reply = try await client.send(spec.probe.command, spec.probe.body, timeout: .seconds(2))
                    guard reply.errors.map(\.code) == [spec.probe.code] else {
                        throw TestSupportError("\(spec.name) answered its readiness probe with \(reply)")
                    }
                    break
                } catch let error as TestSupportError where ContinuousClock.now < deadline && error.description.hasPrefix("no reply") {
                    continue
                }
            }
        }
    }

    public func stop() async {
        for list in processes.values {
            for p in list { await p.stop() }
        }
        await client.close()
        await db.close()
        await TestServers.dropDatabase(database, logger: logger)
        TestServers.deleteVhost(amqp)
    }

    /// The processes of `service`, in start order.
    public func processes(of service: String) -> [ServiceProcess] {
        processes[service] ?? []
    }

    /// Onboards a customer through intake: two POCs (Ana primary), a change contact, a
    /// two-item catalogue and quotas of 120/12, with `extra` fields added or replaced.
    public func onboard(_ customerId: String = "acme", contacts: [JSONValue]? = nil, extra: [String: JSONValue] = [:]) async throws -> Reply {
        var body: JSONObject = [
            "customerId": .string(customerId), "name": "Acme Corp", "timeZone": "America/Toronto", "supportRegion": "CA-ON",
            "team": "cloud-ops", "contractYearStart": "2026-01-01",
            "contacts": .array(contacts ?? [["email": "ana@acme.example", "name": "Ana", "phone": "+1 555 0100", "primary": true],
                                             ["email": "bo@acme.example", "name": "Bo"]]),
            "changeContacts": ["cio@acme.example"], "catalogue": ["password-reset", "add-user"],
            "quotas": ["standard": 120, "nonStandard": 12],
        ]
        for (k, v) in extra { body[k] = v }
        return try await client.send(CommandName.customerOnboard, .object(body))
    }

    /// A `ticket.submit` body for a production outage of acme by Ana, with `overrides`.
    public static func incident(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
        var body: JSONObject = ["customerId": "acme", "contactEmail": "ana@acme.example", "kind": "incident",
                                "environment": "production", "summary": "Portal down", "impact": "outage"]
        for (k, v) in overrides { body[k] = v }
        return .object(body)
    }

    /// Submits `incident(overrides)` and returns the tracking number; throws when refused.
    public func submit(_ overrides: [String: JSONValue] = [:]) async throws -> String {
        let reply = try await client.send(CommandName.ticketSubmit, SystemHarness.incident(overrides))
        guard let number = reply.result?["trackingNumber"]?.stringValue else { throw TestSupportError("submit refused: \(reply)") }
        return number
    }

    /// `ticket.get` through intake: the ticket, or nil when refused.
    public func ticket(_ number: String) async throws -> JSONValue? {
        try await client.send(CommandName.ticketGet, ["trackingNumber": .string(number)]).result
    }

    /// A single integer from `sql`.
    public func count(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> Int {
        try await db.withSession { session in try session.query(sql, parameters)[0].int(0) }
    }
}

extension Reply {
    public var result: JSONValue? {
        if case .ok(let r) = self { return r }
        return nil
    }

    public var errors: [CommandError] {
        if case .rejected(let e) = self { return e }
        return []
    }
}
