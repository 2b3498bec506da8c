import CSSModel
import Foundation

/// Where a problem record came from (R-PRB-1, R-PRB-2).
public enum ProblemSource: String, Sendable, CaseIterable {
    case criticalIncident = "critical_incident"
    case trend
    case customer
}

/// A problem record: a cause of one or more incidents (R-PRB-3, handbook §4.6).
public struct Problem: Sendable, Equatable {
    public enum Status: String, Sendable { case open, resolved }

    public struct Link: Sendable, Equatable {
        public var trackingNumber: String
        public var linkedBy: String
        public var linkedAt: Date
    }

    public var problemId: String
    public var customerId: String
    public var source: ProblemSource
    public var status: Status
    public var component: String?
    public var summary: String
    public var description: String?
    public var cause: String?
    public var workaround: String?
    public var resolution: String?
    public var openedBy: String
    public var openedAt: Date
    public var resolvedAt: Date?
    public var incidents: [Link]

    public var json: JSONValue {
        var o = JSONObject()
        o["problemId"] = .string(problemId)
        o["customerId"] = .string(customerId)
        o["source"] = .string(source.rawValue)
        o["status"] = .string(status.rawValue)
        o["component"] = .optional(component)
        o["summary"] = .string(summary)
        o["description"] = .optional(description)
        o["cause"] = .optional(cause)
        o["workaround"] = .optional(workaround)
        o["resolution"] = .optional(resolution)
        o["openedBy"] = .string(openedBy)
        o["openedAt"] = .string(RFC3339.format(openedAt))
        o["resolvedAt"] = .optional(resolvedAt.map(RFC3339.format))
        o["incidents"] = .array(incidents.map { l in
            ["trackingNumber": .string(l.trackingNumber), "linkedBy": .string(l.linkedBy), "linkedAt": .string(RFC3339.format(l.linkedAt))]
        })
        return .object(o)
    }
}

/// R-PRB-2 **Decision**: 3 or more incidents of one customer and component whose receipts
/// lie within 30 days open a trend problem.
public struct TrendRule: Sendable, Equatable {
    public var count = 3
    public var window: TimeInterval = 30 * 86_400

    public init() {}

    /// The incidents of the first 30-day window that holds `newest` and at least `count`
    /// incidents, nil when there is none. It depends only on the set of incidents, not on
    /// the order they arrived in (several replicas deliver out of order).
    ///
    /// - Parameter incidents: the customer's incidents of that component not yet linked to a
    ///   trend problem, `newest` among them, each with its receipt.
    public func window(_ incidents: [(number: String, receivedAt: Date)], containing newest: String) -> [String]? {
        let sorted = incidents.sorted { ($0.receivedAt, $0.number) < ($1.receivedAt, $1.number) }
        guard let at = sorted.first(where: { $0.number == newest })?.receivedAt else { return nil }
        for start in sorted where start.receivedAt <= at && at.timeIntervalSince(start.receivedAt) <= window {
            let members = sorted.filter { $0.receivedAt >= start.receivedAt && $0.receivedAt.timeIntervalSince(start.receivedAt) <= window }
            if members.count >= count { return members.map(\.number) }
        }
        return nil
    }
}

/// Who may open, record and link what (R-PRB-2, R-PRB-3). Pure: each returns the reason a
/// command is refused, nil when it may go ahead.
public enum ProblemRules {
    /// Only a Point of Contact of the customer logs a problem for it.
    public static func refusal(openedBy by: String, customer: CustomerProfile) -> CommandRejection? {
        guard !customer.isPOC(by) else { return nil }
        return CommandRejection(code: ErrorCode.notAContact, field: "by",
                                message: "\(by) is not a Point of Contact of \(customer.customerId); only a POC may log a problem")
    }

    /// Support staff record cause, workaround and resolution of a problem not yet resolved.
    public static func refusal(updating problem: Problem, by: String, customer: CustomerProfile) -> CommandRejection? {
        if let staff = ClassificationRules.notStaff(by, customer) { return staff }
        if problem.status == .resolved {
            return CommandRejection(code: ErrorCode.alreadyResolved, field: "problemId",
                                    message: "\(problem.problemId) was resolved at \(problem.resolvedAt.map(RFC3339.format) ?? "?"); a resolved problem is not changed")
        }
        return nil
    }

    /// Each ticket to link is a known incident of the problem's customer.
    public static func refusal(linking tickets: [String: TicketRow], numbers: [String], customerId: String, field: String) -> CommandRejection? {
        var errors: [CommandError] = []
        for (i, number) in numbers.enumerated() {
            let path = "\(field)[\(i)]"
            guard let row = tickets[number] else {
                errors.append(CommandError(code: ErrorCode.unknownTicket, field: path, message: "no ticket \(number) is known to classification"))
                continue
            }
            if row.ticket.customerId != customerId {
                errors.append(CommandError(code: ErrorCode.otherCustomer, field: path, message: "\(number) belongs to another customer"))
            } else if row.ticket.kind != .incident {
                errors.append(CommandError(code: ErrorCode.notAnIncident, field: path, message: "\(number) is a service request; problems link incidents"))
            }
        }
        return errors.isEmpty ? nil : CommandRejection(errors)
    }
}
