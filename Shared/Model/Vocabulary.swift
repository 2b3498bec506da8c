/// The enumerations of the wire contract, with their wire spellings.

public enum TicketKind: String, CaseIterable, Sendable, Codable {
    case incident
    case serviceRequest = "service_request"
}

/// Where the affected instance runs. (Named so it does not clash with configuration's `Environment`.)
public enum DeploymentEnvironment: String, CaseIterable, Sendable, Codable {
    case production
    case nonProduction = "non_production"
}

public enum Impact: String, CaseIterable, Sendable, Codable {
    case outage, degraded, minor, inquiry
}

public enum Urgency: String, CaseIterable, Sendable, Codable {
    case high, medium, low
}

public enum Channel: String, CaseIterable, Sendable, Codable {
    case portal, phone, api
}

public enum Priority: String, CaseIterable, Sendable, Codable, Comparable {
    case p1 = "P1", p2 = "P2", p3 = "P3", p4 = "P4"

    /// P1 is the most severe; `<` means "more severe than".
    public static func < (lhs: Priority, rhs: Priority) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

public enum TicketAction: String, CaseIterable, Sendable, Codable {
    case respond
    case awaitCustomer = "await_customer"
    case customerReplied = "customer_replied"
    case restore
    case close
    case reopen
}

public enum TicketStatus: String, CaseIterable, Sendable, Codable {
    case new
    case classified
    case responded
    case awaitingCustomer = "awaiting_customer"
    case inProgress = "in_progress"
    case restored
    case closed
}
