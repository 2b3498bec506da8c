import CSSModel
import CSSPostgres
import Foundation

/// A ticket as classification keeps it.
public struct TicketRow: Sendable, Equatable {
    public var ticket: ReceivedTicket
    public var classification: Classification?
    public var classifiedAt: Date?
    public var everCritical: Bool
    public var status: String
    public var statusAt: Date?

    public init(ticket: ReceivedTicket, classification: Classification? = nil, classifiedAt: Date? = nil, everCritical: Bool, status: String, statusAt: Date? = nil) {
        self.ticket = ticket
        self.classification = classification
        self.classifiedAt = classifiedAt
        self.everCritical = everCritical
        self.status = status
        self.statusAt = statusAt
    }

    public var trackingNumber: String { ticket.trackingNumber }
}

/// A reclassification request (R-CLS-3).
public struct ReclassificationRequest: Sendable, Equatable {
    public enum State: String, Sendable { case pending, accepted, declined }

    public var requestId: String
    public var trackingNumber: String
    public var from: Priority
    public var to: Priority
    public var reason: String
    public var requestedBy: String
    public var requestedAt: Date
    public var state: State
    public var decidedBy: String?
    public var decisionReason: String?
    public var decidedAt: Date?

    public init(requestId: String, trackingNumber: String, from: Priority, to: Priority, reason: String, requestedBy: String, requestedAt: Date, state: State, decidedBy: String? = nil, decisionReason: String? = nil, decidedAt: Date? = nil) {
        self.requestId = requestId
        self.trackingNumber = trackingNumber
        self.from = from
        self.to = to
        self.reason = reason
        self.requestedBy = requestedBy
        self.requestedAt = requestedAt
        self.state = state
        self.decidedBy = decidedBy
        self.decisionReason = decisionReason
        self.decidedAt = decidedAt
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["requestId"] = .string(requestId)
        o["from"] = .string(from.rawValue)
        o["to"] = .string(to.rawValue)
        o["reason"] = .string(reason)
        o["by"] = .string(requestedBy)
        o["requestedAt"] = .string(RFC3339.format(requestedAt))
        o["state"] = .string(state.rawValue)
        o["decidedBy"] = .optional(decidedBy)
        o["decisionReason"] = .optional(decisionReason)
        o["decidedAt"] = .optional(decidedAt.map(RFC3339.format))
        return .object(o)
    }
}

/// One quota of one customer in one contract year.
struct QuotaKey: Hashable, CustomStringConvertible {
    var customerId: String
    var quota: QuotaKind
    /// The contract year's first day, `YYYY-MM-DD`.
    var yearStart: String

    var description: String { "\(customerId)/\(quota.rawValue)/\(yearStart)" }
}

/// This year's consumption of one quota.
public struct QuotaUsage: Sendable, Equatable {
    public var used: Int
    public var warnedProjection: Date?
    public var exceeded: Bool
}

/// A transition intake announced before classification knew the ticket.
struct EarlyTransition {
    var action: String
    var status: String
    var actor: String
    var at: Date
}

/// Reads and writes the `classification` schema inside one transaction.
struct ClassificationStore {
    let session: PostgresSession

    // MARK: Locks

    /// Serialises work on the named keys until the transaction ends: a ticket's events
    /// against each other, and a customer's onboarding against its tickets, across
    /// processes, so a ticket that waits for its customer is never missed by both.
    func lock(exclusive: [String], shared: [String] = []) throws {
        try session.advisoryLocks(exclusive: exclusive.map { "classification:" + $0 }, shared: shared.map { "classification:" + $0 })
    }

    // MARK: Customers

    /// Stores a customer's settings unless newer ones are there; false when `version` is older.
    func upsertCustomer(_ id: String, profile: JSONValue, version: Date) throws -> Bool {
        try session.execute("""
            INSERT INTO classification.customers (customer_id, profile, version) VALUES ($1, $2, $3)
            ON CONFLICT (customer_id) DO UPDATE SET profile = excluded.profile, version = excluded.version
            WHERE classification.customers.version < excluded.version
            """, [.string(id), .json(profile.jsonText), .date(version)]) == 1
    }

    /// The customer's newest settings as stored (JSON text and version), nil when not seen yet.
    func customerProfile(_ id: String) throws -> (profile: String, version: Date)? {
        let rows = try session.query("SELECT profile::text, version FROM classification.customers WHERE customer_id = $1", [.string(id)])
        guard let r = rows.first else { return nil }
        return (try r.string(0), try r.date(1))
    }

    // MARK: Tickets

    /// Records new tickets with one statement; returns the tracking numbers that were new.
    func insertTickets(_ tickets: [ReceivedTicket]) throws -> Set<String> {
        guard !tickets.isEmpty else { return [] }
        func column(_ value: (ReceivedTicket) -> String?) -> PostgresValue { PostgresArray.text(tickets.map(value)) }
        let rows = try session.query("""
            INSERT INTO classification.tickets (tracking_number, customer_id, kind, environment, impact, urgency, catalog_item, component,
                product, summary, requested_priority, received_at, phone_required, contact_email)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                                 $10::text[], $11::text[], $12::timestamptz[], $13::boolean[], $14::text[])
            ON CONFLICT (tracking_number) DO NOTHING RETURNING tracking_number
            """, [column(\.trackingNumber), column(\.customerId), column(\.kind.rawValue), column(\.environment.rawValue),
                  column { $0.impact?.rawValue }, column { $0.urgency?.rawValue }, column(\.catalogItem), column(\.component),
                  column(\.product), column(\.summary), column { $0.requestedPriority?.rawValue },
                  column { RFC3339.format($0.receivedAt) }, column { $0.phoneRequired.map { $0 ? "true" : "false" } }, column(\.contactEmail)])
        return Set(try rows.map { try $0.string(0) })
    }

    static let ticketColumns = """
        tracking_number, customer_id, kind, environment, impact, urgency, catalog_item, component, product, summary,
        requested_priority, received_at, priority, priority_source, request_class, dispatch, third_party, classified_at,
        ever_critical, status, status_at, phone_required, contact_email
        """

    func ticket(_ number: String, forUpdate: Bool = false) throws -> TicketRow? {
        let rows = try session.query("SELECT \(Self.ticketColumns) FROM classification.tickets WHERE tracking_number = $1\(forUpdate ? " FOR UPDATE" : "")",
                                     [.string(number)])
        return try rows.first.map(Self.ticketRow)
    }

    /// The customer's tickets that wait for its first onboarding, oldest first.
    func waitingTickets(_ customerId: String) throws -> [TicketRow] {
        try session.query("""
            SELECT \(Self.ticketColumns) FROM classification.tickets
            WHERE customer_id = $1 AND classified_at IS NULL ORDER BY received_at, tracking_number FOR UPDATE
            """, [.string(customerId)]).map(Self.ticketRow)
    }

    static func ticketRow(_ r: PostgresRow) throws -> TicketRow {
        func value<E: RawRepresentable>(_ type: E.Type, _ column: Int) throws -> E? where E.RawValue == String {
            guard let raw = try r.optionalString(column) else { return nil }
            guard let v = E(rawValue: raw) else {
                throw PostgresError(code: PostgresError.decodeFailed, message: "column \(column) holds unknown value \(raw)")
            }
            return v
        }
        let ticket = ReceivedTicket(
            trackingNumber: try r.string(0), customerId: try r.string(1), kind: try value(TicketKind.self, 2)!,
            environment: try value(DeploymentEnvironment.self, 3)!, impact: try value(Impact.self, 4), urgency: try value(Urgency.self, 5),
            catalogItem: try r.optionalString(6), component: try r.optionalString(7), product: try r.optionalString(8),
            summary: try r.string(9), requestedPriority: try value(Priority.self, 10), receivedAt: try r.date(11),
            phoneRequired: try r.optionalBool(21), contactEmail: try r.optionalString(22))
        var classification: Classification?
        if let priority = try value(Priority.self, 12) {
            classification = Classification(priority: priority, source: try value(PrioritySource.self, 13) ?? .handbook,
                                            requestedPriority: ticket.requestedPriority, requestClass: try value(RequestClass.self, 14),
                                            dispatch: try value(Dispatch.self, 15) ?? .investigation, thirdParty: try r.optionalString(16))
        }
        return TicketRow(ticket: ticket, classification: classification, classifiedAt: try r.optionalDate(17), everCritical: try r.bool(18),
                         status: try r.string(19), statusAt: try r.optionalDate(20))
    }

    /// Stores classifications with one statement.
    func saveClassifications(_ items: [(number: String, classification: Classification)], at: Date) throws {
        guard !items.isEmpty else { return }
        try session.execute("""
            UPDATE classification.tickets AS t SET priority = v.priority, priority_source = v.source, request_class = v.request_class,
                dispatch = v.dispatch, third_party = v.third_party, classified_at = $7, ever_critical = t.ever_critical OR v.priority = 'P1'
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                AS v(tracking_number, priority, source, request_class, dispatch, third_party)
            WHERE t.tracking_number = v.tracking_number
            """, [PostgresArray.text(items.map(\.number)), PostgresArray.text(items.map(\.classification.priority.rawValue)),
                  PostgresArray.text(items.map(\.classification.source.rawValue)), PostgresArray.text(items.map { $0.classification.requestClass?.rawValue }),
                  PostgresArray.text(items.map(\.classification.dispatch.rawValue)), PostgresArray.text(items.map(\.classification.thirdParty)),
                  .date(at)])
    }

    func setPriority(_ number: String, _ priority: Priority) throws {
        try session.execute("""
            UPDATE classification.tickets SET priority = $2, ever_critical = ever_critical OR $2 = 'P1' WHERE tracking_number = $1
            """, [.string(number), .string(priority.rawValue)])
    }

    func setDispatch(_ number: String, _ dispatch: Dispatch, thirdParty: String?) throws {
        try session.execute("UPDATE classification.tickets SET dispatch = $2, third_party = $3 WHERE tracking_number = $1",
                            [.string(number), .string(dispatch.rawValue), .optional(thirdParty)])
    }

    /// Keeps the newest status intake announced; an older announcement changes nothing.
    func setStatus(_ number: String, _ status: String, at: Date) throws {
        try session.execute("""
            UPDATE classification.tickets SET status = $2, status_at = $3
            WHERE tracking_number = $1 AND (status_at IS NULL OR status_at <= $3)
            """, [.string(number), .string(status), .date(at)])
    }

    // MARK: Transitions that came first

    func recordEarlyTransition(eventID: String, number: String, _ t: EarlyTransition) throws {
        try session.execute("""
            INSERT INTO classification.early_transitions (event_id, tracking_number, action, status, actor, at)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING
            """, [.string(eventID), .string(number), .string(t.action), .string(t.status), .string(t.actor), .date(t.at)])
    }

    /// Removes and returns the transitions that waited for `numbers`, each ticket's in the order they happened.
    func takeEarlyTransitions(_ numbers: [String]) throws -> [String: [EarlyTransition]] {
        guard !numbers.isEmpty else { return [:] }
        var out: [String: [EarlyTransition]] = [:]
        for r in try session.query("""
            WITH taken AS (DELETE FROM classification.early_transitions WHERE tracking_number = ANY($1::text[])
                           RETURNING tracking_number, action, status, actor, at)
            SELECT tracking_number, action, status, actor, at FROM taken ORDER BY at
            """, [PostgresArray.text(numbers)]) {
            out[try r.string(0), default: []].append(EarlyTransition(action: try r.string(1), status: try r.string(2), actor: try r.string(3), at: try r.date(4)))
        }
        return out
    }

    // MARK: Audit

    func audit(_ number: String, event: String, actor: String, at: Date, data: JSONValue) throws {
        try session.execute("""
            INSERT INTO classification.ticket_audit (tracking_number, event, actor, at, data) VALUES ($1, $2, $3, $4, $5)
            """, [.string(number), .string(event), .string(actor), .date(at), .json(data.jsonText)])
    }

    /// Appends many audit entries with one statement.
    func audit(_ entries: [(number: String, event: String, actor: String, at: Date, data: JSONValue)]) throws {
        guard !entries.isEmpty else { return }
        try session.execute("""
            INSERT INTO classification.ticket_audit (tracking_number, event, actor, at, data)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[])
            """, [PostgresArray.text(entries.map(\.number)), PostgresArray.text(entries.map(\.event)), PostgresArray.text(entries.map(\.actor)),
                  PostgresArray.text(entries.map { RFC3339.format($0.at) }), PostgresArray.text(entries.map { $0.data.jsonText })])
    }

    func auditTrail(_ number: String) throws -> [JSONValue] {
        try session.query("""
            SELECT event, actor, at, data::text FROM classification.ticket_audit WHERE tracking_number = $1 ORDER BY id
            """, [.string(number)]).map { r in
            var o = JSONObject()
            o["event"] = .string(try r.string(0))
            o["by"] = .string(try r.string(1))
            o["at"] = .string(RFC3339.format(try r.date(2)))
            o["data"] = (try? JSONValue.parse(try r.string(3))) ?? .null
            return .object(o)
        }
    }

    // MARK: Reclassification requests

    static let requestColumns = """
        request_id, tracking_number, from_priority, to_priority, reason, requested_by, requested_at, state, decided_by,
        decision_reason, decided_at
        """

    static func requestRow(_ r: PostgresRow) throws -> ReclassificationRequest {
        func priority(_ column: Int) throws -> Priority {
            let raw = try r.string(column)
            guard let p = Priority(rawValue: raw) else { throw PostgresError(code: PostgresError.decodeFailed, message: "unknown priority \(raw)") }
            return p
        }
        let state = try r.string(7)
        guard let s = ReclassificationRequest.State(rawValue: state) else {
            throw PostgresError(code: PostgresError.decodeFailed, message: "unknown request state \(state)")
        }
        return ReclassificationRequest(
            requestId: try r.string(0), trackingNumber: try r.string(1), from: try priority(2), to: try priority(3), reason: try r.string(4),
            requestedBy: try r.string(5), requestedAt: try r.date(6), state: s, decidedBy: try r.optionalString(8),
            decisionReason: try r.optionalString(9), decidedAt: try r.optionalDate(10))
    }

    func insertRequest(number: String, from: Priority, to: Priority, reason: String, by: String, at: Date) throws -> String {
        let rows = try session.query("""
            INSERT INTO classification.reclassification_requests (request_id, tracking_number, from_priority, to_priority, reason,
                requested_by, requested_at, state)
            VALUES ('RCL-' || lpad(nextval('classification.request_number')::text, 6, '0'), $1, $2, $3, $4, $5, $6, 'pending')
            RETURNING request_id
            """, [.string(number), .string(from.rawValue), .string(to.rawValue), .string(reason), .string(by), .date(at)])
        return try rows[0].string(0)
    }

    func request(_ id: String, forUpdate: Bool = false) throws -> ReclassificationRequest? {
        try session.query("SELECT \(Self.requestColumns) FROM classification.reclassification_requests WHERE request_id = $1\(forUpdate ? " FOR UPDATE" : "")",
                          [.string(id)]).first.map(Self.requestRow)
    }

    func requests(of number: String) throws -> [ReclassificationRequest] {
        try session.query("""
            SELECT \(Self.requestColumns) FROM classification.reclassification_requests WHERE tracking_number = $1 ORDER BY requested_at, request_id
            """, [.string(number)]).map(Self.requestRow)
    }

    func decide(_ id: String, accept: Bool, by: String, reason: String, at: Date) throws {
        try session.execute("""
            UPDATE classification.reclassification_requests SET state = $2, decided_by = $3, decision_reason = $4, decided_at = $5
            WHERE request_id = $1
            """, [.string(id), .string(accept ? "accepted" : "declined"), .string(by), .string(reason), .date(at)])
    }

    // MARK: Quotas

    /// Counts service requests against their quotas, each once ever, with two statements.
    ///
    /// - Returns: per (customer, quota, contract year) touched, the requests counted now in
    ///   the order given and the year's use after them; a request counted before is left out.
    func consume(_ items: [(number: String, customerId: String, quota: QuotaKind, yearStart: String)], at: Date) throws
        -> [(key: QuotaKey, numbers: [String], usage: QuotaUsage)] {
        guard !items.isEmpty else { return [] }
        let fresh = Set(try session.query("""
            INSERT INTO classification.quota_consumption (tracking_number, customer_id, quota, year_start, consumed_at)
            SELECT n, c, q, y::date, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS v(n, c, q, y)
            ON CONFLICT (tracking_number) DO NOTHING RETURNING tracking_number
            """, [PostgresArray.text(items.map(\.number)), PostgresArray.text(items.map(\.customerId)),
                  PostgresArray.text(items.map(\.quota.rawValue)), PostgresArray.text(items.map(\.yearStart)), .date(at)]).map { try $0.string(0) })
        var groups: [QuotaKey: [String]] = [:]
        var order: [QuotaKey] = []
        for item in items where fresh.contains(item.number) {
            let key = QuotaKey(customerId: item.customerId, quota: item.quota, yearStart: item.yearStart)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(item.number)
        }
        guard !order.isEmpty else { return [] }
        var usage: [QuotaKey: QuotaUsage] = [:]
        for r in try session.query("""
            INSERT INTO classification.quota_usage AS u (customer_id, quota, year_start, used)
            SELECT c, q, y::date, n FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS v(c, q, y, n)
            ON CONFLICT (customer_id, quota, year_start) DO UPDATE SET used = u.used + excluded.used
            RETURNING customer_id, quota, year_start::text, used, warned_projection, exceeded_at IS NOT NULL
            """, [PostgresArray.text(order.map(\.customerId)), PostgresArray.text(order.map(\.quota.rawValue)),
                  PostgresArray.text(order.map(\.yearStart)), PostgresArray.int64(order.map { Int64(groups[$0]!.count) })]) {
            guard let q = QuotaKind(rawValue: try r.string(1)) else { continue }
            usage[QuotaKey(customerId: try r.string(0), quota: q, yearStart: try r.string(2))] =
                QuotaUsage(used: try r.int(3), warnedProjection: try r.optionalDate(4), exceeded: try r.bool(5))
        }
        return try order.map { key in
            guard let u = usage[key] else { throw PostgresError(code: "inconsistent_upsert", message: "no quota use came back for \(key)") }
            return (key, groups[key]!, u)
        }
    }

    func markWarned(customerId: String, quota: QuotaKind, yearStart: String, projection: Date) throws {
        try session.execute("""
            UPDATE classification.quota_usage SET warned_projection = $4 WHERE customer_id = $1 AND quota = $2 AND year_start = $3::date
            """, [.string(customerId), .string(quota.rawValue), .string(yearStart), .date(projection)])
    }

    func markExceeded(customerId: String, quota: QuotaKind, yearStart: String, at: Date) throws {
        try session.execute("""
            UPDATE classification.quota_usage SET exceeded_at = $4 WHERE customer_id = $1 AND quota = $2 AND year_start = $3::date
            """, [.string(customerId), .string(quota.rawValue), .string(yearStart), .date(at)])
    }

    func usage(customerId: String, yearStart: String) throws -> [QuotaKind: QuotaUsage] {
        var out: [QuotaKind: QuotaUsage] = [:]
        for r in try session.query("""
            SELECT quota, used, warned_projection, exceeded_at IS NOT NULL FROM classification.quota_usage
            WHERE customer_id = $1 AND year_start = $2::date
            """, [.string(customerId), .string(yearStart)]) {
            if let q = QuotaKind(rawValue: try r.string(0)) {
                out[q] = QuotaUsage(used: try r.int(1), warnedProjection: try r.optionalDate(2), exceeded: try r.bool(3))
            }
        }
        return out
    }
}
