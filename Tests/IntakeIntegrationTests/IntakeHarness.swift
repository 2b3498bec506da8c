import CSSAMQP
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import Logging
import Testing

/// A running intake process on a fresh vhost and database, with a contract client.
struct IntakeHarness {
    let amqp: AMQPConfiguration
    let database: PostgresConfiguration
    let db: PostgresClient
    let client: ContractClient
    var processes: [ServiceProcess]
    let logger: Logger

    /// Runs `body` with a fresh harness and always tears it down, also when `body` throws.
    static func with(processes count: Int = 1, env: [String: String] = [:], databaseSettings: [String: String] = [:], tapEvents: Bool = true,
                     _ body: (IntakeHarness) async throws -> Void) async throws {
        let harness = try await start(processes: count, env: env, databaseSettings: databaseSettings, tapEvents: tapEvents)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// - Parameters:
    ///   - databaseSettings: session defaults of the fresh database (`lock_timeout`), set before intake connects.
    ///   - tapEvents: whether the contract client binds a queue to every event (which makes every event routable).
    static func start(processes count: Int = 1, env: [String: String] = [:], databaseSettings: [String: String] = [:],
                      tapEvents: Bool = true) async throws -> IntakeHarness {
        var logger = Logger(label: "intake-tests")
        logger.logLevel = .warning
        let amqp = try TestServers.freshVhost("intake")
        let database = try await TestServers.freshDatabase("intake", logger: logger)
        if !databaseSettings.isEmpty, let name = database.database {
            let admin = PostgresClient(configuration: database, size: 1, logger: logger)
            for (key, value) in databaseSettings.sorted(by: { $0.key < $1.key }) {
                try await admin.execute("ALTER DATABASE \(name) SET \(key) = '\(value)'")
            }
            await admin.close()
        }
        let client = ContractClient(amqp: amqp, logger: logger, tapEvents: tapEvents)
        var processes: [ServiceProcess] = []
        for _ in 0..<count {
            let p = try ServiceProcess(name: "intake", amqp: amqp, database: database, extra: env)
            try p.start()
            processes.append(p)
        }
        let harness = IntakeHarness(amqp: amqp, database: database, db: PostgresClient(configuration: database, size: 2, logger: logger),
                                    client: client, processes: processes, logger: logger)
        try await harness.waitUntilReady()
        return harness
    }

    /// Ready once a command gets an answer: the process migrated, bound its queue and
    /// consumes (a command published before the queue is bound is unroutable and lost).
    func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(90)
        while true {
            do {
                let reply = try await client.send(CommandName.ticketGet, ["trackingNumber": "INC-000000"], timeout: .seconds(2))
                #expect(reply.errors.map(\.code) == [ErrorCode.unknownTicket])
                return
            } catch let error as TestSupportError {
                if ContinuousClock.now > deadline { throw error }
            }
        }
    }

    func stop() async {
        for p in processes { await p.stop() }
        await client.close()
        await db.close()
        await TestServers.dropDatabase(database, logger: logger)
        TestServers.deleteVhost(amqp)
    }

    func onboard(_ customerId: String = "acme", contacts: [JSONValue]? = nil, extra: [String: JSONValue] = [:]) async throws -> Reply {
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

    static func incident(_ overrides: [String: JSONValue] = [:]) -> JSONValue {
        var body: JSONObject = ["customerId": "acme", "contactEmail": "ana@acme.example", "kind": "incident",
                                "environment": "production", "summary": "Portal down", "impact": "outage"]
        for (k, v) in overrides { body[k] = v }
        return .object(body)
    }

    func count(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> Int {
        try await db.withSession { session in try session.query(sql, parameters)[0].int(0) }
    }
}

extension Reply {
    var result: JSONValue? {
        if case .ok(let r) = self { return r }
        return nil
    }

    var errors: [CommandError] {
        if case .rejected(let e) = self { return e }
        return []
    }
}
