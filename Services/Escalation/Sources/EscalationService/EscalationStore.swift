import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation

/// A ticket as the escalation service knows it, from intake's and classification's events.
struct TicketRow: Equatable {
    var trackingNumber: String
    var customerId: String?
    var kind: String?
    var priority: Priority?
    var phoneRequired = false
    var contactEmail: String?
    var status: TicketStatus?
    var statusAt: Date?
    var priorityAt: Date?
    var contactEpisodes = 0

    /// Restored or closed: nothing more is escalated for it.
    var isDone: Bool { status == .restored || status == .closed }
}

/// The `escalation` schema's statements; runs inside the caller's transaction.
struct EscalationStore {
    let session: PostgresSession
    static let encoder = JSONEncoder()
    static let decoder = JSONDecoder()

    // MARK: Customers

    func customer(_ id: String) throws -> (profile: JSONValue, version: Date)? {
        guard let r = try session.query("SELECT profile::text, version FROM escalation.customers WHERE customer_id = $1", [.string(id)]).first else { return nil }
        return (try JSONValue.parse(try r.string(0)), try r.date(1))
    }

    /// The version (event time) of the customer's stored onboarding: enough to tell a cached one is current.
    func customerVersion(_ id: String) throws -> Date? {
        try session.query("SELECT version FROM escalation.customers WHERE customer_id = $1", [.string(id)]).first?.date(0)
    }

    /// Keeps the newest onboarding by event time; returns whether this one was newer.
    func upsertCustomer(_ id: String, profile: JSONValue, version: Date) throws -> Bool {
        try session.execute("""
            INSERT INTO escalation.customers (customer_id, profile, version) VALUES ($1, $2, $3)
            ON CONFLICT (customer_id) DO UPDATE SET profile = excluded.profile, version = excluded.version
            WHERE escalation.customers.version < excluded.version
            """, [.string(id), .json(profile.jsonText), .date(version)]) == 1
    }

    /// Transaction locks that keep an escalation from staying unrouted: exclusive while a customer's
    /// onboarding or a team's schedule is stored, shared by whoever found it missing, so one of the
    /// two always sees the other (two escalation processes at once).
    func lock(customer: String? = nil, team: String? = nil, exclusive: Bool) throws {
        let keys = [customer.map { "escalation:customer:\($0)" }, team.map { "escalation:team:\($0)" }].compactMap { $0 }
        try session.advisoryLocks(exclusive: exclusive ? keys : [], shared: exclusive ? [] : keys)
    }

    // MARK: Schedules

    func schedule(_ team: String) throws -> (schedule: OnCallSchedule, revision: Int)? {
        guard let r = try session.query("SELECT schedule::text, revision FROM escalation.schedules WHERE team = $1", [.string(team)]).first else { return nil }
        return (try Self.decode(OnCallSchedule.self, try r.string(0)), try r.int(1))
    }

    func scheduleRevision(_ team: String) throws -> Int? {
        try session.query("SELECT revision FROM escalation.schedules WHERE team = $1", [.string(team)]).first?.int(0)
    }

    /// Stores the team's schedule; returns its revision (1 for the first).
    func setSchedule(_ s: OnCallSchedule, by: String?, at now: Date) throws -> Int {
        try session.query("""
            INSERT INTO escalation.schedules (team, schedule, revision, updated_by, updated_at) VALUES ($1, $2::jsonb, 1, $3, $4)
            ON CONFLICT (team) DO UPDATE SET schedule = excluded.schedule, revision = escalation.schedules.revision + 1,
                updated_by = excluded.updated_by, updated_at = excluded.updated_at
            RETURNING revision
            """, [.string(s.team), .string(try Self.encode(s)), .optional(by), .date(now)]).first!.int(0)
    }

    // MARK: Tickets

    /// The tickets, locked for this transaction (in one order, so two processes never deadlock).
    ///
    /// `FOR UPDATE` locks only rows that exist: two processes would both see a ticket not stored
    /// yet as missing, and the later writer would overwrite the other's facts (a restore lost under
    /// a threshold). A transaction lock per tracking number serialises them instead, without a
    /// write (an empty row inserted first did the same but stalled pages: p99 2.3 s at 500/s); the read
    /// after it sees what the other committed.
    func tickets(_ numbers: some Collection<String>) throws -> [String: TicketRow] {
        var rows: [String: TicketRow] = [:]
        for n in numbers { rows[n] = TicketRow(trackingNumber: n) }
        guard !rows.isEmpty else { return rows }
        try session.advisoryLocks(exclusive: rows.keys.map { "escalation:ticket:\($0)" })
        for r in try session.query("""
            SELECT tracking_number, customer_id, kind, priority, phone_required, contact_email, status, status_at, priority_at, contact_episodes
            FROM escalation.tickets WHERE tracking_number = ANY($1::text[]) ORDER BY tracking_number FOR UPDATE
            """, [PostgresArray.text(Array(rows.keys))]) {
            let number = try r.string(0)
            rows[number] = TicketRow(
                trackingNumber: number, customerId: try r.optionalString(1), kind: try r.optionalString(2),
                priority: try r.optionalString(3).flatMap(Priority.init(rawValue:)), phoneRequired: try r.bool(4),
                contactEmail: try r.optionalString(5), status: try r.optionalString(6).flatMap(TicketStatus.init(rawValue:)),
                statusAt: try r.optionalDate(7), priorityAt: try r.optionalDate(8), contactEpisodes: try r.int(9))
        }
        return rows
    }

    /// Stores the tickets in one statement.
    func save(_ list: [TicketRow], at now: Date) throws {
        guard !list.isEmpty else { return }
        let rows = list.sorted { $0.trackingNumber < $1.trackingNumber }
        try session.execute("""
            INSERT INTO escalation.tickets (tracking_number, customer_id, kind, priority, phone_required, contact_email, status, status_at,
                                            priority_at, contact_episodes, updated_at)
            SELECT n, c, k, p, r, e, s, sa, pa, ce, $11
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[], $8::timestamptz[],
                        $9::timestamptz[], $10::integer[]) AS u(n, c, k, p, r, e, s, sa, pa, ce)
            ON CONFLICT (tracking_number) DO UPDATE SET customer_id = excluded.customer_id, kind = excluded.kind, priority = excluded.priority,
                phone_required = excluded.phone_required, contact_email = excluded.contact_email, status = excluded.status,
                status_at = excluded.status_at, priority_at = excluded.priority_at, contact_episodes = excluded.contact_episodes,
                updated_at = excluded.updated_at
            """, [PostgresArray.text(rows.map(\.trackingNumber)), PostgresArray.text(rows.map(\.customerId)), PostgresArray.text(rows.map(\.kind)),
                  PostgresArray.text(rows.map { $0.priority?.rawValue }), PostgresArray.text(rows.map { $0.phoneRequired ? "true" : "false" }),
                  PostgresArray.text(rows.map(\.contactEmail)), PostgresArray.text(rows.map { $0.status?.rawValue }),
                  PostgresArray.text(rows.map { $0.statusAt.map(RFC3339.format) }), PostgresArray.text(rows.map { $0.priorityAt.map(RFC3339.format) }),
                  PostgresArray.text(rows.map { String($0.contactEpisodes) }), .date(now)])
    }

    /// Tickets of a customer whose contact is `email` and that wait for the customer, locked.
    func ticketsAwaiting(customerId: String, contactEmail: String) throws -> [String] {
        try session.query("""
            SELECT tracking_number FROM escalation.tickets WHERE customer_id = $1 AND contact_email = $2 AND status = 'awaiting_customer'
            ORDER BY tracking_number
            """, [.string(customerId), .string(contactEmail)]).map { try $0.string(0) }
    }

    func ticketsOfContact(customerId: String, contactEmail: String) throws -> [String] {
        try session.query("SELECT tracking_number FROM escalation.tickets WHERE customer_id = $1 AND contact_email = $2 ORDER BY tracking_number",
                          [.string(customerId), .string(contactEmail)]).map { try $0.string(0) }
    }

    // MARK: Contacts

    /// Records a contact's availability if it is newer than what is known; returns whether it was.
    func setAvailability(customerId: String, email: String, available: Bool, at: Date) throws -> Bool {
        try session.execute("""
            INSERT INTO escalation.contacts (customer_id, email, available, changed_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (customer_id, email) DO UPDATE SET available = excluded.available, changed_at = excluded.changed_at
            WHERE escalation.contacts.changed_at < excluded.changed_at
            """, [.string(customerId), .string(email), .bool(available), .date(at)]) == 1
    }

    func isUnavailable(customerId: String, email: String) throws -> Bool {
        try session.query("SELECT NOT available FROM escalation.contacts WHERE customer_id = $1 AND email = $2",
                          [.string(customerId), .string(email)]).first?.bool(0) ?? false
    }

    // MARK: Escalations

    /// The escalations, locked for this transaction.
    func escalations(_ ids: some Collection<String>) throws -> [String: Escalation] {
        var out: [String: Escalation] = [:]
        for r in try session.query("""
            SELECT escalation_id, body::text FROM escalation.escalations WHERE escalation_id = ANY($1::text[]) ORDER BY escalation_id FOR UPDATE
            """, [PostgresArray.text(Array(Set(ids)))]) {
            out[try r.string(0)] = try Self.decode(Escalation.self, try r.string(1))
        }
        return out
    }

    /// Open or unrouted escalations of the tickets, locked, by ticket.
    func live(of numbers: some Collection<String>) throws -> [String: [Escalation]] {
        var out: [String: [Escalation]] = [:]
        for r in try session.query("""
            SELECT body::text FROM escalation.escalations WHERE tracking_number = ANY($1::text[]) AND state IN ('open', 'unrouted')
            ORDER BY escalation_id FOR UPDATE
            """, [PostgresArray.text(Array(Set(numbers)))]) {
            let e = try Self.decode(Escalation.self, try r.string(0))
            out[e.trackingNumber, default: []].append(e)
        }
        return out
    }

    /// Unrouted escalations of a customer, locked.
    func unrouted(customerId: String) throws -> [Escalation] {
        try session.query("""
            SELECT body::text FROM escalation.escalations WHERE customer_id = $1 AND state = 'unrouted' ORDER BY escalation_id FOR UPDATE
            """, [.string(customerId)]).map { try Self.decode(Escalation.self, try $0.string(0)) }
    }

    /// Unrouted escalations of the customers of a team, locked.
    func unrouted(team: String) throws -> [Escalation] {
        try session.query("""
            SELECT e.body::text FROM escalation.escalations e JOIN escalation.customers c ON c.customer_id = e.customer_id
            WHERE e.state = 'unrouted' AND c.profile->>'team' = $1 ORDER BY e.escalation_id FOR UPDATE OF e
            """, [.string(team)]).map { try Self.decode(Escalation.self, try $0.string(0)) }
    }

    /// Stores new escalations in one statement; returns the ids that were new (the others exist: the same fact again).
    func insert(_ list: [Escalation], at now: Date) throws -> Set<String> {
        guard !list.isEmpty else { return [] }
        let sorted = list.sorted { $0.id < $1.id }
        return Set(try session.query("""
            INSERT INTO escalation.escalations (escalation_id, tracking_number, customer_id, team, state, body, opened_at, updated_at)
            SELECT i, n, c, t, s, b::jsonb, $7, $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(i, n, c, t, s, b)
            ON CONFLICT DO NOTHING RETURNING escalation_id
            """, [PostgresArray.text(sorted.map(\.id)), PostgresArray.text(sorted.map(\.trackingNumber)), PostgresArray.text(sorted.map(\.customerId)),
                  PostgresArray.text(sorted.map(\.team)), PostgresArray.text(sorted.map(\.state.rawValue)),
                  PostgresArray.text(try sorted.map { try Self.encode($0) }), .date(now)]).map { try $0.string(0) })
    }

    /// Stores escalations in one statement.
    func save(_ list: [Escalation], at now: Date) throws {
        guard !list.isEmpty else { return }
        try session.execute("""
            UPDATE escalation.escalations AS e SET state = u.s, team = u.t, body = u.b::jsonb, updated_at = $5
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(i, s, t, b) WHERE e.escalation_id = u.i
            """, [PostgresArray.text(list.map(\.id)), PostgresArray.text(list.map(\.state.rawValue)), PostgresArray.text(list.map(\.team)),
                  PostgresArray.text(try list.map { try Self.encode($0) }), .date(now)])
    }

    /// A team's escalations, newest first.
    func list(team: String, states: [EscalationState], limit: Int) throws -> [Escalation] {
        try session.query("""
            SELECT body::text FROM escalation.escalations WHERE team = $1 AND state = ANY($2::text[]) ORDER BY opened_at DESC, escalation_id LIMIT $3
            """, [.string(team), PostgresArray.text(states.map(\.rawValue)), .int(limit)]).map { try Self.decode(Escalation.self, try $0.string(0)) }
    }

    func hasEscalations(team: String) throws -> Bool {
        try session.query("SELECT 1 FROM escalation.escalations WHERE team = $1 LIMIT 1", [.string(team)]).first != nil
    }

    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try decoder.decode(type, from: Data(text.utf8))
    }
}
