import CSSCalendar
import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation

/// One ticket as the SLA service keeps it.
struct SLATicketRow {
    var trackingNumber: String
    var customerId: String?
    var receivedAt: Date?
    var log: [SLAInput]
    var policy: SLAPolicy?
    var clock: TicketClock?
}

/// An excluded interval of a customer (R-SLA-5).
struct Exclusion: Equatable {
    var customerId: String
    var exclusionId: String
    var start: Date
    var end: Date
    var reason: String
    var changeId: String?

    var range: InstantRange {
        InstantRange(start: Int64(start.timeIntervalSince1970.rounded(.down)), end: Int64(end.timeIntervalSince1970.rounded(.up)))
    }
}

/// The `sla` schema's statements; runs inside the caller's transaction.
struct SLAStore {
    let session: PostgresSession
    static let encoder = JSONEncoder()
    static let decoder = JSONDecoder()

    // MARK: Customers

    func customer(_ id: String) throws -> (profile: JSONValue, version: Date)? {
        guard let r = try session.query("SELECT profile::text, version FROM sla.customers WHERE customer_id = $1", [.string(id)]).first else { return nil }
        return (try JSONValue.parse(try r.string(0)), try r.date(1))
    }

    /// A transaction lock on the customer: exclusive while its onboarding is stored, shared by
    /// tickets that found it unknown, so none of them is left waiting for an onboarding that
    /// committed meanwhile (two SLA processes at once).
    func lockCustomer(_ id: String, exclusive: Bool) throws {
        let key = "sla:customer:\(id)"
        try session.advisoryLocks(exclusive: exclusive ? [key] : [], shared: exclusive ? [] : [key])
    }

    /// Keeps the newest onboarding by event time; returns whether this one was newer.
    func upsertCustomer(_ id: String, profile: JSONValue, version: Date) throws -> Bool {
        try session.execute("""
            INSERT INTO sla.customers (customer_id, profile, version) VALUES ($1, $2, $3)
            ON CONFLICT (customer_id) DO UPDATE SET profile = excluded.profile, version = excluded.version
            WHERE sla.customers.version < excluded.version
            """, [.string(id), .json(profile.jsonText), .date(version)]) == 1
    }

    // MARK: Exclusions

    func exclusions(of customerId: String) throws -> [Exclusion] {
        try session.query("""
            SELECT exclusion_id, starts_at, ends_at, reason, change_id FROM sla.exclusions WHERE customer_id = $1 ORDER BY starts_at
            """, [.string(customerId)]).map { r in
            Exclusion(customerId: customerId, exclusionId: try r.string(0), start: try r.date(1), end: try r.date(2),
                      reason: try r.string(3), changeId: try r.optionalString(4))
        }
    }

    enum Recorded { case added, same, conflict(Exclusion) }

    /// Records an exclusion once: the same id again with the same window is the same exclusion.
    func record(_ e: Exclusion, at now: Date) throws -> Recorded {
        let inserted = try session.execute("""
            INSERT INTO sla.exclusions (customer_id, exclusion_id, starts_at, ends_at, reason, change_id, added_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING
            """, [.string(e.customerId), .string(e.exclusionId), .date(e.start), .date(e.end), .string(e.reason), .optional(e.changeId), .date(now)])
        if inserted == 1 { return .added }
        guard let existing = try exclusions(of: e.customerId).first(where: { $0.exclusionId == e.exclusionId }) else { return .added }
        return existing.range == e.range ? .same : .conflict(existing)
    }

    // MARK: Tickets

    /// The tickets, locked for this transaction; a number not stored yet gets an empty row.
    func tickets(_ numbers: some Collection<String>) throws -> [String: SLATicketRow] {
        var rows: [String: SLATicketRow] = [:]
        for n in numbers { rows[n] = SLATicketRow(trackingNumber: n, customerId: nil, receivedAt: nil, log: [], policy: nil, clock: nil) }
        let found = try session.query("""
            SELECT tracking_number, customer_id, received_at, log::text, policy::text, clock::text FROM sla.tickets
            WHERE tracking_number = ANY($1::text[]) ORDER BY tracking_number FOR UPDATE
            """, [PostgresArray.text(Array(rows.keys))])
        for r in found {
            let number = try r.string(0)
            rows[number] = SLATicketRow(
                trackingNumber: number, customerId: try r.optionalString(1), receivedAt: try r.optionalDate(2),
                log: try JSONValue.parse(try r.string(3)).arrayValue.map { try $0.map(SLAInput.init(stored:)) } ?? [],
                policy: try r.optionalString(4).map { try Self.decode(SLAPolicy.self, $0) },
                clock: try r.optionalString(5).map { try TicketClock(stored: JSONValue.parse($0)) })
        }
        return rows
    }

    /// The tickets' clocks only (no log, no policy: a firing needs neither), locked.
    func clocks(_ numbers: some Collection<String>) throws -> [String: SLATicketRow] {
        var rows: [String: SLATicketRow] = [:]
        let found = try session.query("""
            SELECT tracking_number, customer_id, clock::text FROM sla.tickets
            WHERE tracking_number = ANY($1::text[]) AND clock IS NOT NULL ORDER BY tracking_number FOR UPDATE
            """, [PostgresArray.text(Array(Set(numbers)))])
        for r in found {
            let number = try r.string(0)
            rows[number] = SLATicketRow(
                trackingNumber: number, customerId: try r.optionalString(1), receivedAt: nil, log: [], policy: nil,
                clock: try r.optionalString(2).map { try TicketClock(stored: JSONValue.parse($0)) })
        }
        return rows
    }

    /// Stores the clocks of rows read with ``clocks(_:)``, leaving their logs as they are.
    func saveClocks(_ rows: [SLATicketRow], at now: Date) throws {
        guard !rows.isEmpty else { return }
        try session.execute("""
            UPDATE sla.tickets AS t SET clock = u.k::jsonb, open = u.o, updated_at = $4
            FROM unnest($1::text[], $2::text[], $3::boolean[]) AS u(n, k, o) WHERE t.tracking_number = u.n
            """, [PostgresArray.text(rows.map(\.trackingNumber)), PostgresArray.text(rows.map { $0.clock!.stored.jsonText }),
                  PostgresArray.text(rows.map { $0.clock!.targets.contains { !$0.isStopped } ? "true" : "false" }), .date(now)])
    }

    /// Stores the rows in one statement.
    func save(_ rows: [SLATicketRow], at now: Date) throws {
        guard !rows.isEmpty else { return }
        var numbers: [String] = [], customers: [String?] = [], received: [String?] = [], logs: [String] = []
        var policies: [String?] = [], clocks: [String?] = [], open: [String] = []
        for row in rows {
            numbers.append(row.trackingNumber)
            customers.append(row.customerId)
            received.append(row.receivedAt.map(RFC3339.format))
            logs.append(JSONValue.array(row.log.map(\.stored)).jsonText)
            policies.append(try row.policy.map { try Self.encode($0) })
            clocks.append(row.clock?.stored.jsonText)
            open.append(row.clock.map { $0.targets.contains { !$0.isStopped } } ?? false ? "true" : "false")
        }
        try session.execute("""
            INSERT INTO sla.tickets (tracking_number, customer_id, received_at, log, policy, clock, open, updated_at)
            SELECT n, c, r, l::jsonb, p::jsonb, k::jsonb, o, $8
            FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::boolean[]) AS u(n, c, r, l, p, k, o)
            ON CONFLICT (tracking_number) DO UPDATE SET customer_id = excluded.customer_id, received_at = excluded.received_at,
                log = excluded.log, policy = excluded.policy, clock = excluded.clock, open = excluded.open, updated_at = excluded.updated_at
            """, [PostgresArray.text(numbers), PostgresArray.text(customers), PostgresArray.text(received), PostgresArray.text(logs),
                  PostgresArray.text(policies), PostgresArray.text(clocks), PostgresArray.text(open), .date(now)])
    }

    /// Tickets of a customer whose clocks could not start because the customer was unknown.
    func waitingTickets(of customerId: String) throws -> [String] {
        try session.query("SELECT tracking_number FROM sla.tickets WHERE customer_id = $1 AND clock IS NULL ORDER BY tracking_number",
                          [.string(customerId)]).map { try $0.string(0) }
    }

    /// Tickets of a customer with a target still running or paused.
    func openTickets(of customerId: String) throws -> [String] {
        try session.query("SELECT tracking_number FROM sla.tickets WHERE customer_id = $1 AND open ORDER BY tracking_number",
                          [.string(customerId)]).map { try $0.string(0) }
    }

    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try decoder.decode(type, from: Data(text.utf8))
    }
}
