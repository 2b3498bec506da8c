import CSSModel
import CSSPostgres
import Foundation

/// The problem records of the `classification` schema (R-PRB-*).
extension ClassificationStore {
    /// Opens a problem with its first incidents; nil when the schema's unique keys say
    /// this cause has one already (a Critical incident's, or an open trend of the component).
    func openProblem(customerId: String, source: ProblemSource, component: String?, summary: String, description: String?,
                     by: String, at: Date, originTicket: String?, incidents: [String]) throws -> String? {
        let rows = try session.query("""
            INSERT INTO classification.problems (problem_id, customer_id, source, status, component, summary, description, opened_by,
                opened_at, origin_ticket)
            VALUES ('PRB-' || lpad(nextval('classification.problem_number')::text, 6, '0'), $1, $2, 'open', $3, $4, $5, $6, $7, $8)
            ON CONFLICT DO NOTHING RETURNING problem_id
            """, [.string(customerId), .string(source.rawValue), .optional(component), .string(summary), .optional(description),
                  .string(by), .date(at), .optional(originTicket)])
        guard let id = try rows.first?.string(0) else { return nil }
        _ = try link(id, incidents, by: by, at: at)
        return id
    }

    /// Links incidents to a problem; returns those that were not linked before, in order.
    func link(_ problemId: String, _ numbers: [String], by: String, at: Date) throws -> [String] {
        guard !numbers.isEmpty else { return [] }
        let rows = try session.query("""
            INSERT INTO classification.problem_incidents (problem_id, tracking_number, linked_by, linked_at)
            SELECT $1, n, $3, $4 FROM unnest($2::text[]) WITH ORDINALITY AS t(n, ord) ORDER BY ord
            ON CONFLICT DO NOTHING RETURNING tracking_number
            """, [.string(problemId), PostgresArray.text(numbers), .string(by), .date(at)])
        let added = Set(try rows.map { try $0.string(0) })
        return numbers.filter { added.contains($0) }
    }

    func problem(_ id: String, forUpdate: Bool = false) throws -> Problem? {
        let rows = try session.query("""
            SELECT problem_id, customer_id, source, status, component, summary, description, cause, workaround, resolution, opened_by,
                   opened_at, resolved_at
            FROM classification.problems WHERE problem_id = $1\(forUpdate ? " FOR UPDATE" : "")
            """, [.string(id)])
        guard let r = rows.first else { return nil }
        let source = try r.string(2), status = try r.string(3)
        guard let s = ProblemSource(rawValue: source), let st = Problem.Status(rawValue: status) else {
            throw PostgresError(code: PostgresError.decodeFailed, message: "problem \(id) has source \(source) and status \(status)")
        }
        let links = try session.query("""
            SELECT tracking_number, linked_by, linked_at FROM classification.problem_incidents WHERE problem_id = $1
            ORDER BY linked_at, tracking_number
            """, [.string(id)]).map { l in
            Problem.Link(trackingNumber: try l.string(0), linkedBy: try l.string(1), linkedAt: try l.date(2))
        }
        return Problem(problemId: try r.string(0), customerId: try r.string(1), source: s, status: st, component: try r.optionalString(4),
                       summary: try r.string(5), description: try r.optionalString(6), cause: try r.optionalString(7),
                       workaround: try r.optionalString(8), resolution: try r.optionalString(9), openedBy: try r.string(10),
                       openedAt: try r.date(11), resolvedAt: try r.optionalDate(12), incidents: links)
    }

    /// Records one of cause, workaround or resolution; a resolution resolves the problem.
    func record(_ problemId: String, field: ProblemField, text: String, at: Date) throws {
        switch field {
        case .cause:
            try session.execute("UPDATE classification.problems SET cause = $2 WHERE problem_id = $1", [.string(problemId), .string(text)])
        case .workaround:
            try session.execute("UPDATE classification.problems SET workaround = $2 WHERE problem_id = $1", [.string(problemId), .string(text)])
        case .resolution:
            try session.execute("UPDATE classification.problems SET resolution = $2, status = 'resolved', resolved_at = $3 WHERE problem_id = $1",
                                [.string(problemId), .string(text), .date(at)])
        }
    }

    /// The open trend problem of a customer's component, if any.
    func openTrendProblem(customerId: String, component: String) throws -> String? {
        try session.query("""
            SELECT problem_id FROM classification.problems
            WHERE customer_id = $1 AND component = $2 AND source = 'trend' AND status = 'open'
            """, [.string(customerId), .string(component)]).first?.string(0)
    }

    /// The customer's incidents of `component` received within `window` of `at` that no
    /// trend problem links yet.
    func trendCandidates(customerId: String, component: String, around at: Date, window: TimeInterval) throws -> [(number: String, receivedAt: Date)] {
        try session.query("""
            SELECT t.tracking_number, t.received_at FROM classification.tickets t
            WHERE t.customer_id = $1 AND t.component = $2 AND t.kind = 'incident'
              AND t.received_at BETWEEN $3::timestamptz - make_interval(secs => $4) AND $3::timestamptz + make_interval(secs => $4)
              AND NOT EXISTS (SELECT 1 FROM classification.problem_incidents pi JOIN classification.problems p USING (problem_id)
                              WHERE pi.tracking_number = t.tracking_number AND p.source = 'trend')
            """, [.string(customerId), .string(component), .date(at), .double(window)]).map { r in
            (try r.string(0), try r.date(1))
        }
    }

    /// The tickets named, by tracking number (unknown ones are absent).
    func tickets(_ numbers: [String]) throws -> [String: TicketRow] {
        guard !numbers.isEmpty else { return [:] }
        var out: [String: TicketRow] = [:]
        for row in try session.query("SELECT \(Self.ticketColumns) FROM classification.tickets WHERE tracking_number = ANY($1::text[])",
                                     [PostgresArray.text(numbers)]).map(Self.ticketRow) {
            out[row.trackingNumber] = row
        }
        return out
    }
}

/// What `problem.update` records; each is an event of its own.
enum ProblemField: String, CaseIterable {
    case cause, workaround, resolution

    var eventType: String {
        switch self {
        case .cause: EventType.problemCauseRecorded
        case .workaround: EventType.problemWorkaroundRecorded
        case .resolution: EventType.problemResolved
        }
    }
}
