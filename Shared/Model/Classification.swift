/// Priority from impact, urgency and environment (R-CLS-1).
///
/// Lives in the shared model because intake needs it at once (to flag Critical and
/// High incidents that did not arrive by phone, R-TKT-2) and the classification
/// service applies it as the authority; one function keeps them from disagreeing.
public enum PriorityRule {
    public static func priority(kind: TicketKind, environment: DeploymentEnvironment, impact: Impact?, urgency: Urgency?) -> Priority {
        guard environment == .production else { return .p4 }
        switch kind {
        case .serviceRequest:
            return .p3
        case .incident:
            switch impact ?? .inquiry {
            case .outage: return .p1
            case .degraded: return urgency == .low ? .p3 : .p2
            case .minor: return .p3
            case .inquiry: return .p4
            }
        }
    }

    /// Critical and High incidents "must be logged by phone" (R-TKT-2): one that came
    /// another way is still accepted, and flagged so on-call calls the customer back.
    public static func phoneRequired(kind: TicketKind, environment: DeploymentEnvironment, impact: Impact?, urgency: Urgency?, channel: Channel) -> Bool {
        guard kind == .incident, channel != .phone else { return false }
        let p = priority(kind: kind, environment: environment, impact: impact, urgency: urgency)
        return p == .p1 || p == .p2
    }
}
