import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation

/// A customer as change management knows it from its `customer.onboarded`.
struct CustomerRow {
    var customerId: String
    var profile: JSONValue
    var firstSeen: Date
    var lastUpdateAt: Date?

    var timeZone: String { profile["timeZone"]?.stringValue ?? "UTC" }
    var changeContacts: Set<String> { Set((profile["changeContacts"]?.arrayValue ?? []).compactMap { $0.stringValue?.lowercased() }) }
    var pointsOfContact: Set<String> {
        Set((profile["contacts"]?.arrayValue ?? []).compactMap { $0["email"]?.stringValue?.lowercased() })
    }
}

/// The `change` schema's statements; runs inside the caller's transaction.
struct ChangeStore {
    let session: PostgresSession
    static let encoder = JSONEncoder()
    static let decoder = JSONDecoder()
    static let timers = TimerStore(schema: ChangeSchema.name)

    static func encode<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T { try decoder.decode(type, from: Data(text.utf8)) }

    // MARK: Customers

    func customer(_ id: String) throws -> CustomerRow? {
        guard let r = try session.query("""
            SELECT profile::text, first_seen, last_update_at FROM change.customers WHERE customer_id = $1
            """, [.string(id)]).first else { return nil }
        return CustomerRow(customerId: id, profile: try JSONValue.parse(try r.string(0)), firstSeen: try r.date(1), lastUpdateAt: try r.optionalDate(2))
    }

    /// Keeps the newest onboarding by event time. Returns whether the customer is new.
    func upsertCustomer(_ id: String, profile: JSONValue, version: Date, now: Date) throws -> Bool {
        let rows = try session.query("""
            INSERT INTO change.customers (customer_id, profile, version, first_seen) VALUES ($1, $2, $3, $4)
            ON CONFLICT (customer_id) DO UPDATE SET profile = excluded.profile, version = excluded.version
            WHERE change.customers.version < excluded.version
            RETURNING (xmax = 0)
            """, [.string(id), .json(profile.jsonText), .date(version), .date(now)])
        return try rows.first?.bool(0) ?? false
    }

    /// Records a Service Update (R-CHG-7) unless a later one is recorded; returns whether it is the newest.
    func recordServiceUpdate(_ customerId: String, at: Date) throws -> Bool {
        try session.execute("""
            UPDATE change.customers SET last_update_at = $2 WHERE customer_id = $1 AND (last_update_at IS NULL OR last_update_at < $2)
            """, [.string(customerId), .date(at)]) == 1
    }

    // MARK: Incidents

    /// The facts about these tickets, locked for this transaction. A ticket not stored yet is
    /// locked too (a transaction lock per tracking number, taken in order), so two processes
    /// applying facts about one new ticket never both start from nothing.
    func incidents(_ numbers: Set<String>) throws -> [String: IncidentFacts] {
        try session.advisoryLocks(exclusive: numbers.map { "change:incident:\($0)" })
        var found: [String: IncidentFacts] = [:]
        for r in try session.query("""
            SELECT tracking_number, customer_id, kind, environment, priority, priority_at, status, status_at FROM change.incidents
            WHERE tracking_number = ANY($1::text[]) ORDER BY tracking_number FOR UPDATE
            """, [PostgresArray.text(Array(numbers))]) {
            var f = IncidentFacts(trackingNumber: try r.string(0))
            f.customerId = try r.optionalString(1)
            f.kind = try r.optionalString(2)
            f.environment = try r.optionalString(3)
            f.priority = try r.optionalString(4).flatMap(Priority.init(rawValue:))
            f.priorityAt = try r.optionalDate(5)
            f.status = try r.optionalString(6).flatMap(TicketStatus.init(rawValue:))
            f.statusAt = try r.optionalDate(7)
            found[f.trackingNumber] = f
        }
        return found
    }

    /// Writes the facts of a batch: one statement.
    func save(_ list: [IncidentFacts]) throws {
        guard !list.isEmpty else { return }
        func texts(_ f: (IncidentFacts) -> String?) -> PostgresValue { PostgresArray.text(list.map(f)) }
        try session.execute("""
            INSERT INTO change.incidents (tracking_number, customer_id, kind, environment, priority, priority_at, status, status_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::timestamptz[])
            ON CONFLICT (tracking_number) DO UPDATE SET customer_id = excluded.customer_id, kind = excluded.kind, environment = excluded.environment,
                priority = excluded.priority, priority_at = excluded.priority_at, status = excluded.status, status_at = excluded.status_at
            """, [texts { $0.trackingNumber }, texts(\.customerId), texts(\.kind), texts(\.environment), texts { $0.priority?.rawValue },
                  texts { $0.priorityAt.map(RFC3339.format) }, texts { $0.status?.rawValue }, texts { $0.statusAt.map(RFC3339.format) }])
    }

    // MARK: Catalogue, boards, plans

    func template(_ id: String) throws -> ChangeBodies.Template? {
        try session.query("SELECT template::text FROM change.templates WHERE template_id = $1", [.string(id)]).first
            .map { try Self.decode(ChangeBodies.Template.self, try $0.string(0)) }
    }

    func setTemplate(_ t: ChangeBodies.Template, by: String, at: Date) throws -> Int {
        try session.query("""
            INSERT INTO change.templates (template_id, template, revision, updated_by, updated_at) VALUES ($1, $2, 1, $3, $4)
            ON CONFLICT (template_id) DO UPDATE SET template = excluded.template, revision = change.templates.revision + 1,
                updated_by = excluded.updated_by, updated_at = excluded.updated_at
            RETURNING revision
            """, [.string(t.templateId), .json(try Self.encode(t)), .string(by), .date(at)]).first!.int(0)
    }

    func board(_ name: BoardName) throws -> Board? {
        try session.query("SELECT array_to_json(members)::text, quorum FROM change.boards WHERE board = $1", [.string(name.rawValue)]).first.map {
            Board(members: try Self.decode([String].self, try $0.string(0)), quorum: try $0.int(1))
        }
    }

    func setBoard(_ name: BoardName, _ board: Board, by: String, at: Date) throws -> Int {
        try session.query("""
            INSERT INTO change.boards (board, members, quorum, revision, updated_by, updated_at) VALUES ($1, $2::text[], $3, 1, $4, $5)
            ON CONFLICT (board) DO UPDATE SET members = excluded.members, quorum = excluded.quorum, revision = change.boards.revision + 1,
                updated_by = excluded.updated_by, updated_at = excluded.updated_at
            RETURNING revision
            """, [.string(name.rawValue), PostgresArray.text(board.members), .int(board.quorum), .string(by), .date(at)]).first!.int(0)
    }

    func plan(_ customerId: String) throws -> MaintenancePlan? {
        try session.query("SELECT plan::text FROM change.plans WHERE customer_id = $1", [.string(customerId)]).first
            .map { try Self.decode(MaintenancePlan.self, try $0.string(0)) }
    }

    func setPlan(_ customerId: String, _ plan: MaintenancePlan, by: String, at: Date) throws -> Int {
        try session.query("""
            INSERT INTO change.plans (customer_id, plan, revision, updated_by, updated_at) VALUES ($1, $2, 1, $3, $4)
            ON CONFLICT (customer_id) DO UPDATE SET plan = excluded.plan, revision = change.plans.revision + 1,
                updated_by = excluded.updated_by, updated_at = excluded.updated_at
            RETURNING revision
            """, [.string(customerId), .json(try Self.encode(plan)), .string(by), .date(at)]).first!.int(0)
    }

    // MARK: Changes

    /// The next change id: `CHG-000001`, ...
    func nextChangeId() throws -> String {
        let n = try session.query("SELECT nextval('change.change_numbers')").first!.int(0)
        let digits = String(n)
        return "CHG-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The change; locked for this transaction when `lock`.
    func change(_ id: String, lock: Bool) throws -> Change? {
        try session.query("SELECT body::text FROM change.changes WHERE change_id = $1" + (lock ? " FOR UPDATE" : ""), [.string(id)]).first
            .map { try Self.decode(Change.self, try $0.string(0)) }
    }

    /// The window conflict detection compares: Test while scheduled or deployed there,
    /// Production while scheduled or being implemented.
    static func activeWindow(_ c: Change) -> (Deployment, Interval)? {
        switch c.state {
        case .scheduledTest, .deployedTest: c.test.map { (.test, $0.window) }
        case .scheduledProduction, .implementing: c.production.map { (.production, $0.window) }
        default: nil
        }
    }

    func save(_ c: Change, at now: Date) throws {
        let window = Self.activeWindow(c)
        try session.execute("""
            INSERT INTO change.changes (change_id, customer_id, state, type, components, body, window_environment, window_start, window_end, updated_at)
            VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8, $9, $10)
            ON CONFLICT (change_id) DO UPDATE SET state = excluded.state, body = excluded.body, window_environment = excluded.window_environment,
                window_start = excluded.window_start, window_end = excluded.window_end, updated_at = excluded.updated_at
            """, [.string(c.id), .string(c.customerId), .string(c.state.rawValue), .string(c.type.rawValue), PostgresArray.text(c.components),
                  .json(try Self.encode(c)), .optional(window?.0.rawValue), .optional(window.map { Instant.date($0.1.start) }),
                  .optional(window.map { Instant.date($0.1.end) }), .date(now)])
    }

    /// The customer's other changes scheduled in `environment` at a time overlapping `window`.
    func scheduled(customerId: String, environment: Deployment, overlapping window: Interval) throws -> [ScheduledChange] {
        try session.query("""
            SELECT change_id, type, array_to_json(components)::text, window_start, window_end FROM change.changes
            WHERE customer_id = $1 AND window_environment = $2 AND window_start < $4 AND window_end > $3
            ORDER BY window_start, change_id
            """, [.string(customerId), .string(environment.rawValue), .date(Instant.date(window.start)), .date(Instant.date(window.end))]).map { r in
            ScheduledChange(changeId: try r.string(0), customerId: customerId, type: ChangeType(rawValue: try r.string(1)) ?? .normal,
                            environment: environment, components: try Self.decode([String].self, try r.string(2)),
                            window: Interval(start: Instant.seconds(try r.date(3)), end: Instant.seconds(try r.date(4))))
        }
    }

    /// Every change of a customer, oldest first (the deployment timeline).
    func changes(of customerId: String) throws -> [Change] {
        try session.query("SELECT body::text FROM change.changes WHERE customer_id = $1 ORDER BY change_id", [.string(customerId)])
            .map { try Self.decode(Change.self, try $0.string(0)) }
    }

    // MARK: Directory (R-CHG-6)

    /// Records what an implemented change delivered; a component's newer version replaces an older one.
    func install(_ c: Change, at: Date) throws {
        guard !c.installed.isEmpty else { return }
        var latest: [String: InstalledComponent] = [:]
        for i in c.installed { latest["\(i.component)\u{1F}\(i.kind.rawValue)"] = i }
        let list = latest.values.sorted { ($0.component, $0.kind.rawValue) < ($1.component, $1.kind.rawValue) }
        try session.execute("""
            INSERT INTO change.directory (customer_id, component, kind, version, change_id, installed_at)
            SELECT $1, c, k, v, $5, $6 FROM unnest($2::text[], $3::text[], $4::text[]) AS u(c, k, v)
            ON CONFLICT (customer_id, component, kind) DO UPDATE SET version = excluded.version, change_id = excluded.change_id,
                installed_at = excluded.installed_at
            WHERE change.directory.installed_at <= excluded.installed_at
            """, [.string(c.customerId), PostgresArray.text(list.map(\.component)), PostgresArray.text(list.map(\.kind.rawValue)),
                  PostgresArray.text(list.map(\.version)), .string(c.id), .date(at)])
    }

    func directory(of customerId: String) throws -> [JSONValue] {
        try session.query("""
            SELECT component, kind, version, change_id, installed_at FROM change.directory WHERE customer_id = $1 ORDER BY component, kind
            """, [.string(customerId)]).map { r in
            ["component": .string(try r.string(0)), "kind": .string(try r.string(1)), "version": .string(try r.string(2)),
             "changeId": .string(try r.string(3)), "installedAt": .string(RFC3339.format(try r.date(4)))]
        }
    }
}
