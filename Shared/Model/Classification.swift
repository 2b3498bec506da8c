/// One row of a priority table: the ticket attributes it matches (nil matches any)
/// and the priority it assigns.
public struct PriorityRuleEntry: Sendable, Equatable, Hashable {
    public var kind: TicketKind?
    public var environment: DeploymentEnvironment?
    public var impact: Impact?
    public var urgency: Urgency?
    public var priority: Priority

    public init(kind: TicketKind? = nil, environment: DeploymentEnvironment? = nil, impact: Impact? = nil, urgency: Urgency? = nil,
                priority: Priority) {
        self.kind = kind
        self.environment = environment
        self.impact = impact
        self.urgency = urgency
        self.priority = priority
    }

    /// How many attributes the rule names: the more, the more specific.
    public var specificity: Int {
        (kind == nil ? 0 : 1) + (environment == nil ? 0 : 1) + (impact == nil ? 0 : 1) + (urgency == nil ? 0 : 1)
    }

    public func matches(kind k: TicketKind, environment e: DeploymentEnvironment, impact i: Impact?, urgency u: Urgency?) -> Bool {
        (kind == nil || kind == k) && (environment == nil || environment == e)
            && (impact == nil || impact == i) && (urgency == nil || urgency == u)
    }

    public var json: JSONValue {
        var o = JSONObject()
        if let kind { o["kind"] = .string(kind.rawValue) }
        if let environment { o["environment"] = .string(environment.rawValue) }
        if let impact { o["impact"] = .string(impact.rawValue) }
        if let urgency { o["urgency"] = .string(urgency.rawValue) }
        o["priority"] = .string(priority.rawValue)
        return .object(o)
    }
}

/// A priority table: the most specific matching rule wins, the first listed on a tie.
public struct PriorityTable: Sendable, Equatable {
    public var rules: [PriorityRuleEntry]

    public init(_ rules: [PriorityRuleEntry]) {
        self.rules = rules
    }

    /// The rule that decides, nil when none matches.
    public func match(kind: TicketKind, environment: DeploymentEnvironment, impact: Impact?, urgency: Urgency?) -> PriorityRuleEntry? {
        var best: PriorityRuleEntry?
        for rule in rules where rule.matches(kind: kind, environment: environment, impact: impact, urgency: urgency) {
            if best == nil || rule.specificity > best!.specificity { best = rule }
        }
        return best
    }

    /// R-CLS-1 as the handbook states it (§4.4.4), with the urgency **Decision**: urgency
    /// `low` lowers a production `degraded` incident to P3; urgency never raises priority.
    /// An incident without an impact is read as an inquiry (intake requires one).
    public static let handbook = PriorityTable([
        PriorityRuleEntry(environment: .nonProduction, priority: .p4),
        PriorityRuleEntry(kind: .serviceRequest, environment: .production, priority: .p3),
        PriorityRuleEntry(kind: .incident, environment: .production, priority: .p4),
        PriorityRuleEntry(kind: .incident, environment: .production, impact: .outage, priority: .p1),
        PriorityRuleEntry(kind: .incident, environment: .production, impact: .degraded, priority: .p2),
        PriorityRuleEntry(kind: .incident, environment: .production, impact: .degraded, urgency: .low, priority: .p3),
        PriorityRuleEntry(kind: .incident, environment: .production, impact: .minor, priority: .p3),
        PriorityRuleEntry(kind: .incident, environment: .production, impact: .inquiry, priority: .p4),
    ])
}

/// Where an assigned priority came from.
public enum PrioritySource: String, Sendable, Equatable {
    /// The handbook's table (R-CLS-1).
    case handbook
    /// A rule of the customer's contract (`priorityRules` at onboarding).
    case contract
}

/// The priority policy of one customer: the contract's rules first, the handbook's table
/// for everything they do not match.
public struct PriorityPolicy: Sendable, Equatable {
    public var contract: PriorityTable

    public init(contract: [PriorityRuleEntry] = []) {
        self.contract = PriorityTable(contract)
    }

    public func priority(kind: TicketKind, environment: DeploymentEnvironment, impact: Impact?, urgency: Urgency?) -> (priority: Priority, source: PrioritySource) {
        if let rule = contract.match(kind: kind, environment: environment, impact: impact, urgency: urgency) {
            return (rule.priority, .contract)
        }
        let rule = PriorityTable.handbook.match(kind: kind, environment: environment, impact: impact, urgency: urgency)
        return (rule!.priority, .handbook)
    }
}

/// Priority from impact, urgency and environment (R-CLS-1), by the handbook's table.
///
/// Lives in the shared model because intake needs it at once (to flag Critical and
/// High incidents that did not arrive by phone, R-TKT-2) and the classification
/// service applies it as the authority; one table keeps them from disagreeing.
public enum PriorityRule {
    public static func priority(kind: TicketKind, environment: DeploymentEnvironment, impact: Impact?, urgency: Urgency?) -> Priority {
        PriorityTable.handbook.match(kind: kind, environment: environment, impact: impact, urgency: urgency)!.priority
    }

    /// Critical and High incidents "must be logged by phone" (R-TKT-2): one that came
    /// another way is still accepted, and flagged so on-call calls the customer back.
    public static func phoneRequired(kind: TicketKind, environment: DeploymentEnvironment, impact: Impact?, urgency: Urgency?, channel: Channel) -> Bool {
        guard kind == .incident, channel != .phone else { return false }
        let p = priority(kind: kind, environment: environment, impact: impact, urgency: urgency)
        return p == .p1 || p == .p2
    }
}
