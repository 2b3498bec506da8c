import CSSModel
import Foundation

/// A ticket as change management knows it from intake's and classification's events: enough to
/// tell whether it is an open Critical or High production incident an Emergency change may
/// reference (R-CHG-1). Facts arrive out of order: each field keeps the newest by its own time.
public struct IncidentFacts: Equatable, Sendable {
    public var trackingNumber: String
    public var customerId: String?
    public var kind: String?
    public var environment: String?
    public var priority: Priority?
    public var priorityAt: Date?
    public var status: TicketStatus?
    public var statusAt: Date?

    public init(trackingNumber: String) {
        self.trackingNumber = trackingNumber
    }

    /// An open P1 or P2 incident in Production.
    public var isOpenCriticalOrHigh: Bool {
        kind == TicketKind.incident.rawValue && environment == "production" && (priority == .p1 || priority == .p2)
            && status != .restored && status != .closed
    }

    /// Applies one of `ticket.classified`, `ticket.reclassified`, `ticket.transitioned`, and a
    /// `ticket.received` left in the queue by a release that consumed it.
    public mutating func apply(_ event: CloudEvent) throws(CommandRejection) {
        if let c = event.data["customerId"]?.stringValue { customerId = c }
        // Both carry the ticket's kind and environment, which never change.
        if event.type == EventType.ticketReceived || event.type == EventType.ticketClassified {
            kind = event.data["kind"]?.stringValue ?? kind
            environment = event.data["environment"]?.stringValue ?? environment
        }
        switch event.type {
        case EventType.ticketReceived:
            if status == nil { status = .new }
        case EventType.ticketClassified, EventType.ticketReclassified:
            let classified = event.type == EventType.ticketClassified
            if classified && (status == nil || status == .new) { status = .classified }
            let key = classified ? "priority" : "to"
            guard let raw = event.data[key]?.stringValue, let p = Priority(rawValue: raw) else {
                throw CommandRejection(code: ErrorCode.invalidField, field: "data.\(key)", message: "data.\(key) must be P1..P4")
            }
            let at = event.data[classified ? "classifiedAt" : "at"]?.stringValue.flatMap(RFC3339.parse) ?? event.time
            if priorityAt.map({ $0 <= at }) ?? true {
                priority = p
                priorityAt = at
            }
        case EventType.ticketTransitioned:
            guard let raw = event.data["status"]?.stringValue, let s = TicketStatus(rawValue: raw) else {
                throw CommandRejection(code: ErrorCode.invalidField, field: "data.status", message: "ticket.transitioned carries no known status")
            }
            let at = event.data["at"]?.stringValue.flatMap(RFC3339.parse) ?? event.time
            if statusAt.map({ $0 <= at }) ?? true {
                status = s
                statusAt = at
            }
        default:
            throw CommandRejection(code: ErrorCode.invalidField, field: "type", message: "change management does not consume \(event.type)")
        }
    }

    /// The tracking number an event is about.
    public static func trackingNumber(_ event: CloudEvent) throws(CommandRejection) -> String {
        guard let n = event.data["trackingNumber"]?.stringValue ?? event.subject, !n.isEmpty, n.count <= 40 else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.trackingNumber", message: "\(event.type) carries no trackingNumber")
        }
        return n
    }
}

/// R-CHG-7: Service Updates keep a customer's software current at least once per calendar year.
public enum ServiceUpdates {
    /// When a customer whose last update (or, without one, first onboarding) was at `since` becomes
    /// overdue: the same instant one calendar year later (UTC; 29 February goes to 28 February).
    public static func overdueSince(_ since: Int64) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let date = Date(timeIntervalSince1970: TimeInterval(since))
        return Int64(calendar.date(byAdding: .year, value: 1, to: date)!.timeIntervalSince1970)
    }

    /// Whether a change delivered a Service Update: a product patch.
    public static func isServiceUpdate(_ installed: [InstalledComponent]) -> Bool {
        installed.contains { $0.kind == .patch }
    }
}
