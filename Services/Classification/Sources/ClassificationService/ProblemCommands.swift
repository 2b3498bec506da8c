import CSSModel
import CSSRuntime
import Foundation

/// `problem.open`: a Point of Contact logs a problem (R-PRB-2).
public struct OpenProblem: Sendable, Equatable {
    public var customerId: String
    public var summary: String
    public var by: String
    public var description: String?
    public var component: String?
    public var incidents: [String]

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> OpenProblem {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let customerId = r.string("customerId", maxLength: 64)
        let summary = r.string("summary", maxLength: 500)
        let by = r.email("by")
        let description = r.string("description", required: false, maxLength: 65_536)
        let component = r.string("component", required: false, maxLength: 200)
        var seen = Set<String>()
        let incidents = (r.strings("incidents", required: false, maxCount: 100, maxLength: 40) ?? []).filter { seen.insert($0).inserted }
        try errors.throwIfAny()
        return OpenProblem(customerId: customerId!, summary: summary!, by: by!, description: description, component: component,
                           incidents: incidents)
    }
}

/// `problem.update`: support staff record cause, workaround and resolution (R-PRB-3).
public struct UpdateProblem: Sendable, Equatable {
    public var problemId: String
    public var by: String
    public var cause: String?
    public var workaround: String?
    public var resolution: String?

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> UpdateProblem {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let id = r.string("problemId", maxLength: 40)
        let by = r.string("by", maxLength: 254)
        let cause = r.string("cause", required: false, maxLength: 65_536)
        let workaround = r.string("workaround", required: false, maxLength: 65_536)
        let resolution = r.string("resolution", required: false, maxLength: 65_536)
        if errors.isEmpty && cause == nil && workaround == nil && resolution == nil {
            errors.add(ErrorCode.missingField, "cause", "at least one of cause, workaround, resolution is required")
        }
        try errors.throwIfAny()
        return UpdateProblem(problemId: id!, by: by!, cause: cause, workaround: workaround, resolution: resolution)
    }

    var recorded: [(ProblemField, String)] {
        [(ProblemField.cause, cause), (.workaround, workaround), (.resolution, resolution)].compactMap { f, v in v.map { (f, $0) } }
    }
}

/// `problem.link`: support staff link more incidents to a problem (R-PRB-3).
public struct LinkProblem: Sendable, Equatable {
    public var problemId: String
    public var incidents: [String]
    public var by: String

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> LinkProblem {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let id = r.string("problemId", maxLength: 40)
        let incidents = r.strings("incidents", maxCount: 100, maxLength: 40)
        let by = r.string("by", maxLength: 254)
        if let incidents, incidents.isEmpty {
            errors.add(ErrorCode.invalidField, "incidents", "incidents must list at least one tracking number")
        }
        try errors.throwIfAny()
        return LinkProblem(problemId: id!, incidents: incidents!, by: by!)
    }
}

/// `problem.get`.
public struct GetProblem: Sendable, Equatable {
    public var problemId: String

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> GetProblem {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let id = r.string("problemId", maxLength: 40)
        try errors.throwIfAny()
        return GetProblem(problemId: id!)
    }
}

/// Problem management commands (R-PRB-2, R-PRB-3).
extension ClassificationCommands {
    func openProblem(_ o: OpenProblem, _ command: IncomingCommand, _ store: ClassificationStore, _ events: EventFactory) throws -> CommandOutcome {
        guard let customer = try cache.customer(o.customerId, store: store) else {
            throw CommandRejection(code: ErrorCode.unknownCustomer, field: "customerId", message: "no customer \(o.customerId) is known to classification")
        }
        if let refusal = ProblemRules.refusal(openedBy: o.by, customer: customer) { throw refusal }
        if let refusal = ProblemRules.refusal(linking: try store.tickets(o.incidents), numbers: o.incidents, customerId: o.customerId, field: "incidents") {
            throw refusal
        }
        let at = command.receivedAt
        guard let id = try store.openProblem(customerId: o.customerId, source: .customer, component: o.component, summary: o.summary,
                                             description: o.description, by: o.by, at: at, originTicket: nil, incidents: o.incidents) else {
            throw ClassificationFailure(message: "a customer problem conflicted with a unique key")
        }
        let event = ClassificationEvents.problemOpened(id, customerId: o.customerId, source: .customer, incidents: o.incidents,
                                                       component: o.component, summary: o.summary, by: o.by, at: at, events)
        return CommandOutcome(result: ["problemId": .string(id)], events: [event])
    }

    func updateProblem(_ u: UpdateProblem, _ command: IncomingCommand, _ store: ClassificationStore, _ events: EventFactory) throws -> CommandOutcome {
        let (problem, customer) = try problemAndCustomer(u.problemId, store)
        if let refusal = ProblemRules.refusal(updating: problem, by: u.by, customer: customer) { throw refusal }
        let at = command.receivedAt
        var out: [CloudEvent] = []
        for (field, text) in u.recorded {
            try store.record(u.problemId, field: field, text: text, at: at)
            out.append(events.make(field.eventType, subject: u.problemId, data: [
                "problemId": .string(u.problemId), "customerId": .string(problem.customerId), .init(field.rawValue): .string(text),
                "by": .string(u.by), "at": .string(RFC3339.format(at)),
            ], time: at))
        }
        return CommandOutcome(result: try problemView(u.problemId, store), events: out)
    }

    func linkProblem(_ l: LinkProblem, _ command: IncomingCommand, _ store: ClassificationStore, _ events: EventFactory) throws -> CommandOutcome {
        let (problem, customer) = try problemAndCustomer(l.problemId, store)
        if let staff = ClassificationRules.notStaff(l.by, customer) { throw staff }
        if let refusal = ProblemRules.refusal(linking: try store.tickets(l.incidents), numbers: l.incidents, customerId: problem.customerId, field: "incidents") {
            throw refusal
        }
        let added = try store.link(l.problemId, l.incidents, by: l.by, at: command.receivedAt)
        let out = added.isEmpty ? [] : [ClassificationEvents.incidentsLinked(l.problemId, customerId: problem.customerId, incidents: added,
                                                                             by: l.by, at: command.receivedAt, events)]
        return CommandOutcome(result: try problemView(l.problemId, store), events: out)
    }

    func problemAndCustomer(_ id: String, _ store: ClassificationStore) throws -> (Problem, CustomerProfile) {
        guard let problem = try store.problem(id, forUpdate: true) else {
            throw CommandRejection(code: ErrorCode.unknownProblem, field: "problemId", message: "no problem \(id) exists")
        }
        guard let customer = try cache.customer(problem.customerId, store: store) else {
            throw ClassificationFailure(message: "problem \(id) names customer \(problem.customerId), which is not stored")
        }
        return (problem, customer)
    }

    func problemView(_ id: String, _ store: ClassificationStore) throws -> JSONValue {
        guard let problem = try store.problem(id) else {
            throw CommandRejection(code: ErrorCode.unknownProblem, field: "problemId", message: "no problem \(id) exists")
        }
        return problem.json
    }
}
