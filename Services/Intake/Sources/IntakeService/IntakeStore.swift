import CSSModel
import CSSPostgres
import Foundation

/// What a `ticket.classified` event says of one ticket.
struct ClassifiedRow {
    var trackingNumber: String
    var priority: Priority
    var requestClass: String?
    var dispatch: String?
    var at: Date
    var actor: String
    var data: JSONValue
}

/// A ticket as intake keeps it.
struct TicketRecord {
    var trackingNumber: String
    var customerId: String
    var contactEmail: String
    var kind: String
    var environment: String
    var channel: String
    var summary: String
    var description: String?
    var impact: String?
    var urgency: String?
    var catalogItem: String?
    var component: String?
    var product: String?
    var requestedPriority: String?
    var phoneRequired: Bool
    var status: TicketStatus
    var receivedAt: Date
    var updatedAt: Date
    var priority: String?
    var requestClass: String?
    var dispatch: String?
    var slaTargets: JSONValue

    /// The ticket as `ticket.get` and `ticket.transition` return it.
    func json(audit: [JSONValue]) -> JSONValue {
        var o = JSONObject()
        o["trackingNumber"] = .string(trackingNumber)
        o["customerId"] = .string(customerId)
        o["contactEmail"] = .string(contactEmail)
        o["kind"] = .string(kind)
        o["environment"] = .string(environment)
        o["channel"] = .string(channel)
        o["summary"] = .string(summary)
        o["description"] = .optional(description)
        o["impact"] = .optional(impact)
        o["urgency"] = .optional(urgency)
        o["catalogItem"] = .optional(catalogItem)
        o["component"] = .optional(component)
        o["product"] = .optional(product)
        o["requestedPriority"] = .optional(requestedPriority)
        o["priority"] = .optional(priority)
        o["requestClass"] = .optional(requestClass)
        o["dispatch"] = .optional(dispatch)
        o["phoneRequired"] = .bool(phoneRequired)
        o["status"] = .string(status.rawValue)
        o["receivedAt"] = .string(RFC3339.format(receivedAt))
        o["updatedAt"] = .string(RFC3339.format(updatedAt))
        o["slaTargets"] = slaTargets
        o["audit"] = .array(audit)
        return .object(o)
    }
}

struct ContactRecord {
    var email: String
    var isPrimary: Bool
    var active: Bool
    var available: Bool
}

/// Intake's SQL, in one place; every value goes as a parameter.
struct IntakeStore {
    let session: PostgresSession

    /// Inserts or replaces a customer; returns true when it was new.
    func upsertCustomer(_ c: OnboardCustomer, at now: Date) throws -> Bool {
        let rows = try session.query("""
            INSERT INTO intake.customers (customer_id, name, team, time_zone, support_region, settings, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
            ON CONFLICT (customer_id) DO UPDATE SET name = $2, team = $3, time_zone = $4, support_region = $5, settings = $6, updated_at = $7
            RETURNING (xmax = 0) AS inserted
            """, [.string(c.customerId), .string(c.name), .string(c.team), .string(c.timeZone), .string(c.supportRegion),
                  .json(c.json.jsonText), .date(now)])
        let created = try rows.first?.bool(0) ?? false
        try session.execute("UPDATE intake.contacts SET active = false WHERE customer_id = $1", [.string(c.customerId)])
        for contact in c.contacts {
            // Availability is the contact's state, not a setting: keep it across re-onboarding.
            try session.execute("""
                INSERT INTO intake.contacts (customer_id, email, name, phone, is_primary, active)
                VALUES ($1, $2, $3, $4, $5, true)
                ON CONFLICT (customer_id, email) DO UPDATE SET name = $3, phone = $4, is_primary = $5, active = true
                """, [.string(c.customerId), .string(contact.email), .string(contact.name), .optional(contact.phone), .bool(contact.primary)])
        }
        return created
    }

    func customerExists(_ id: String) throws -> Bool {
        try !session.query("SELECT 1 FROM intake.customers WHERE customer_id = $1", [.string(id)]).isEmpty
    }

    func contact(customerId: String, email: String) throws -> ContactRecord? {
        let rows = try session.query("SELECT email, is_primary, active, available FROM intake.contacts WHERE customer_id = $1 AND email = $2",
                                     [.string(customerId), .string(email)])
        return try rows.first.map { ContactRecord(email: try $0.string(0), isPrimary: try $0.bool(1), active: try $0.bool(2), available: try $0.bool(3)) }
    }

    func setAvailability(customerId: String, email: String, available: Bool) throws {
        try session.execute("UPDATE intake.contacts SET available = $3 WHERE customer_id = $1 AND email = $2",
                            [.string(customerId), .string(email), .bool(available)])
    }

    /// Whether each (customer, contact e-mail) pair names an onboarded customer and an
    /// active Point of Contact of it, with one query for the whole list.
    func access(_ pairs: [(customerId: String, email: String)]) throws -> [(customerExists: Bool, activeContact: Bool)] {
        guard !pairs.isEmpty else { return [] }
        let rows = try session.query("""
            SELECT r.ord, c.customer_id IS NOT NULL, coalesce(ct.active, false)
            FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(customer_id, email, ord)
            LEFT JOIN intake.customers c ON c.customer_id = r.customer_id
            LEFT JOIN intake.contacts ct ON ct.customer_id = r.customer_id AND ct.email = r.email
            """, [PostgresArray.text(pairs.map(\.customerId)), PostgresArray.text(pairs.map(\.email))])
        var out = Array(repeating: (customerExists: false, activeContact: false), count: pairs.count)
        for row in rows {
            out[try row.int(0) - 1] = (try row.bool(1), try row.bool(2))
        }
        return out
    }

    /// Stores new tickets, each with the next tracking number and its first audit
    /// entry, with one statement; returns the tracking numbers by message id.
    func insertTickets(_ items: [(submit: SubmitTicket, messageID: String, receivedAt: Date)]) throws -> [String: String] {
        guard !items.isEmpty else { return [:] }
        func column(_ value: (SubmitTicket) -> String?) -> PostgresValue { PostgresArray.text(items.map { value($0.submit) }) }
        let rows = try session.query("""
            WITH input AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                                     $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bool[], $16::timestamptz[])
                    AS t(message_id, customer_id, contact_email, kind, environment, channel, summary, description, impact, urgency,
                         catalog_item, component, product, requested_priority, phone_required, received_at)
            ), tickets AS (
                INSERT INTO intake.tickets (tracking_number, message_id, customer_id, contact_email, kind, environment, channel, summary,
                    description, impact, urgency, catalog_item, component, product, requested_priority, phone_required, status, received_at, updated_at)
                SELECT (CASE kind WHEN 'incident' THEN 'INC' ELSE 'SR' END) || '-' || lpad(nextval('intake.ticket_number')::text, 6, '0'),
                       message_id, customer_id, contact_email, kind, environment, channel, summary, description, impact, urgency,
                       catalog_item, component, product, requested_priority, phone_required, 'new', received_at, received_at
                FROM input
                RETURNING tracking_number, message_id, contact_email, channel, phone_required, received_at
            ), audit AS (
                INSERT INTO intake.ticket_audit (tracking_number, event, to_status, actor, at, data)
                SELECT tracking_number, 'received', 'new', contact_email, received_at,
                       jsonb_build_object('channel', channel, 'phoneRequired', phone_required)
                FROM tickets
            )
            SELECT message_id, tracking_number FROM tickets
            """, [
                PostgresArray.text(items.map(\.messageID)), column(\.customerId), column(\.contactEmail), column(\.kind.rawValue),
                column(\.environment.rawValue), column(\.channel.rawValue), column(\.summary), column(\.description),
                column { $0.impact?.rawValue }, column { $0.urgency?.rawValue }, column(\.catalogItem), column(\.component),
                column(\.product), column { $0.requestedPriority?.rawValue }, PostgresArray.bool(items.map(\.submit.phoneRequired)),
                PostgresArray.text(items.map { RFC3339.format($0.receivedAt) }),
            ])
        var numbers: [String: String] = [:]
        for row in rows { numbers[try row.string(0)] = try row.string(1) }
        return numbers
    }

    func ticket(_ number: String, forUpdate: Bool = false) throws -> TicketRecord? {
        let rows = try session.query("""
            SELECT tracking_number, customer_id, contact_email, kind, environment, channel, summary, description, impact, urgency,
                   catalog_item, component, product, requested_priority, phone_required, status, received_at, updated_at,
                   priority, request_class, dispatch, sla_targets::text
            FROM intake.tickets WHERE tracking_number = $1\(forUpdate ? " FOR UPDATE" : "")
            """, [.string(number)])
        guard let r = rows.first else { return nil }
        let status = try r.string(15)
        guard let parsedStatus = TicketStatus(rawValue: status) else {
            throw PostgresError(code: PostgresError.decodeFailed, message: "ticket \(number) has unknown status \(status)")
        }
        return TicketRecord(
            trackingNumber: try r.string(0), customerId: try r.string(1), contactEmail: try r.string(2), kind: try r.string(3),
            environment: try r.string(4), channel: try r.string(5), summary: try r.string(6), description: try r.optionalString(7),
            impact: try r.optionalString(8), urgency: try r.optionalString(9), catalogItem: try r.optionalString(10),
            component: try r.optionalString(11), product: try r.optionalString(12), requestedPriority: try r.optionalString(13),
            phoneRequired: try r.bool(14), status: parsedStatus, receivedAt: try r.date(16), updatedAt: try r.date(17),
            priority: try r.optionalString(18), requestClass: try r.optionalString(19), dispatch: try r.optionalString(20),
            slaTargets: (try? JSONValue.parse(try r.string(21))) ?? [])
    }

    /// Applies `ticket.classified` to many tickets with one statement: priority, request
    /// class, dispatch, `new` → `classified`, and an audit entry each; returns the tracking
    /// numbers it found (an unknown one is left out and nothing is written for it).
    func applyClassifications(_ rows: [ClassifiedRow]) throws -> Set<String> {
        guard !rows.isEmpty else { return [] }
        let result = try session.query("""
            WITH v AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::jsonb[])
                    AS v(tracking_number, priority, request_class, dispatch, at, actor, data)
            ), old AS (
                SELECT tracking_number, status FROM intake.tickets WHERE tracking_number IN (SELECT tracking_number FROM v) FOR UPDATE
            ), changed AS (
                UPDATE intake.tickets t SET priority = v.priority, request_class = v.request_class, dispatch = v.dispatch,
                    status = CASE WHEN old.status = 'new' THEN 'classified' ELSE old.status END, updated_at = greatest(t.updated_at, v.at)
                FROM v JOIN old USING (tracking_number)
                WHERE t.tracking_number = v.tracking_number
                RETURNING t.tracking_number, old.status AS from_status, t.status AS to_status, v.actor, v.at, v.data
            )
            INSERT INTO intake.ticket_audit (tracking_number, event, from_status, to_status, actor, at, data)
            SELECT tracking_number, 'classified', from_status, to_status, actor, at, data FROM changed
            RETURNING tracking_number
            """, [PostgresArray.text(rows.map(\.trackingNumber)), PostgresArray.text(rows.map(\.priority.rawValue)),
                  PostgresArray.text(rows.map(\.requestClass)), PostgresArray.text(rows.map(\.dispatch)),
                  PostgresArray.text(rows.map { RFC3339.format($0.at) }), PostgresArray.text(rows.map(\.actor)),
                  PostgresArray.text(rows.map { $0.data.jsonText })])
        return Set(try result.map { try $0.string(0) })
    }

    func updatePriority(_ number: String, priority: Priority, at: Date) throws {
        try session.execute("UPDATE intake.tickets SET priority = $2, updated_at = greatest(updated_at, $3) WHERE tracking_number = $1",
                            [.string(number), .string(priority.rawValue), .date(at)])
    }

    /// The SLA view of each of `numbers` that exists, locked in tracking-number order.
    func slaTargets(_ numbers: Set<String>) throws -> [String: JSONValue] {
        guard !numbers.isEmpty else { return [:] }
        var views: [String: JSONValue] = [:]
        for r in try session.query("""
            SELECT tracking_number, sla_targets::text FROM intake.tickets WHERE tracking_number = ANY($1::text[])
            ORDER BY tracking_number FOR UPDATE
            """, [PostgresArray.text(numbers.sorted())]) {
            views[try r.string(0)] = (try? JSONValue.parse(try r.string(1))) ?? []
        }
        return views
    }

    /// Stores many tickets' SLA views with one statement.
    func saveSLATargets(_ items: [(number: String, targets: JSONValue, at: Date)]) throws {
        guard !items.isEmpty else { return }
        try session.execute("""
            UPDATE intake.tickets AS t SET sla_targets = v.targets::jsonb, updated_at = greatest(t.updated_at, v.at)
            FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS v(tracking_number, targets, at)
            WHERE t.tracking_number = v.tracking_number
            """, [PostgresArray.text(items.map(\.number)), PostgresArray.text(items.map { $0.targets.jsonText }),
                  PostgresArray.text(items.map { RFC3339.format($0.at) })])
    }

    func updateStatus(_ number: String, to status: TicketStatus, at: Date) throws {
        try session.execute("UPDATE intake.tickets SET status = $2, updated_at = $3 WHERE tracking_number = $1",
                            [.string(number), .string(status.rawValue), .date(at)])
    }

    func appendAudit(_ number: String, event: String, action: String?, from: TicketStatus?, to: TicketStatus?, actor: String,
                     note: String?, at: Date, data: JSONValue? = nil) throws {
        try session.execute("""
            INSERT INTO intake.ticket_audit (tracking_number, event, action, from_status, to_status, actor, note, at, data)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """, [.string(number), .string(event), .optional(action), .optional(from?.rawValue), .optional(to?.rawValue),
                  .string(actor), .optional(note), .date(at), data.map { .json($0.jsonText) } ?? .null])
    }

    func audit(_ number: String) throws -> [JSONValue] {
        let rows = try session.query("""
            SELECT event, action, from_status, to_status, actor, note, at, data::text
            FROM intake.ticket_audit WHERE tracking_number = $1 ORDER BY id
            """, [.string(number)])
        return try rows.map { r in
            var o = JSONObject()
            o["event"] = .string(try r.string(0))
            o["action"] = .optional(try r.optionalString(1))
            o["from"] = .optional(try r.optionalString(2))
            o["to"] = .optional(try r.optionalString(3))
            o["by"] = .string(try r.string(4))
            o["note"] = .optional(try r.optionalString(5))
            o["at"] = .string(RFC3339.format(try r.date(6)))
            if let d = try r.optionalString(7), let v = try? JSONValue.parse(d) { o["data"] = v }
            return .object(o)
        }
    }
}
