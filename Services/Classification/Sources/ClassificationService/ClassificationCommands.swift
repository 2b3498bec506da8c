import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation

/// Who may ask for, decide and dispatch what (R-CLS-3, R-CLS-6). Pure: each returns the
/// reason a command is refused, nil when it may go ahead.
public enum ClassificationRules {
    /// A POC of the ticket's customer asks for a priority the ticket does not have, and
    /// no other request of the ticket is undecided.
    public static func refusal(of r: RequestReclassification, ticket: TicketRow, customer: CustomerProfile,
                               pending: ReclassificationRequest?) -> CommandRejection? {
        guard let c = ticket.classification else { return notClassified(ticket.trackingNumber) }
        if !customer.isPOC(r.by) {
            return CommandRejection(code: ErrorCode.notAContact, field: "by",
                                    message: "\(r.by) is not a Point of Contact of \(customer.customerId); only a POC of the ticket's customer may ask for reclassification")
        }
        if c.priority == r.priority {
            return CommandRejection(code: ErrorCode.samePriority, field: "priority", message: "\(ticket.trackingNumber) is already \(c.priority.rawValue)")
        }
        if let pending {
            return CommandRejection(code: ErrorCode.requestPending, field: "trackingNumber",
                                    message: "\(ticket.trackingNumber) already has an undecided request \(pending.requestId) (to \(pending.to.rawValue)); it must be decided first")
        }
        return nil
    }

    /// Support staff (nobody on the customer's side) decide a request once.
    public static func refusal(of d: DecideReclassification, request: ReclassificationRequest, customer: CustomerProfile) -> CommandRejection? {
        if let staff = notStaff(d.by, customer) { return staff }
        if request.state != .pending {
            let when = request.decidedAt.map { " at \(RFC3339.format($0))" } ?? ""
            return CommandRejection(code: ErrorCode.alreadyDecided, field: "requestId",
                                    message: "\(request.requestId) was already \(request.state.rawValue) by \(request.decidedBy ?? "?")\(when)")
        }
        return nil
    }

    /// Support staff send a classified ticket somewhere else than where it is.
    public static func refusal(of d: DispatchTicket, ticket: TicketRow, customer: CustomerProfile) -> CommandRejection? {
        guard let c = ticket.classification else { return notClassified(ticket.trackingNumber) }
        if let staff = notStaff(d.by, customer) { return staff }
        if c.dispatch == d.dispatch && c.thirdParty == d.thirdParty {
            return CommandRejection(code: ErrorCode.sameDispatch, field: "dispatch", message: "\(ticket.trackingNumber) is already dispatched to \(d.dispatch.rawValue)")
        }
        return nil
    }

    static func notStaff(_ who: String, _ customer: CustomerProfile) -> CommandRejection? {
        guard !customer.isSupportStaff(who) else { return nil }
        return CommandRejection(code: ErrorCode.notSupportStaff, field: "by",
                                message: "\(who) is a contact of \(customer.customerId); only support staff may do this")
    }

    static func notClassified(_ number: String) -> CommandRejection {
        CommandRejection(code: ErrorCode.notClassified, field: "trackingNumber",
                         message: "\(number) is not classified yet (its customer's onboarding has not reached classification); try again shortly")
    }
}

/// Classification's commands: reclassification requests and decisions, dispatch, quota look-ups, problems.
public struct ClassificationCommands: CommandHandler {
    // Made by ``ClassificationHandlers``, which gives both handlers one cache.
    let settings: ClassificationSettings
    let clock: any CSSModel.Clock
    let cache: ProfileCache

    public var commandNames: [String] {
        [CommandName.reclassifyRequest, CommandName.reclassifyDecide, CommandName.ticketDispatch, CommandName.quotaGet,
         CommandName.problemOpen, CommandName.problemUpdate, CommandName.problemLink, CommandName.problemGet]
    }

    public func isReadOnly(_ command: String) -> Bool {
        command == CommandName.quotaGet || command == CommandName.problemGet
    }

    /// A ticket's commands run one after the other; a decision is keyed by its request.
    public func orderingKeys(_ command: IncomingCommand) -> [OrderingKey] {
        switch command.name {
        case CommandName.reclassifyRequest, CommandName.ticketDispatch:
            return command.body["trackingNumber"]?.stringValue.map { [.exclusive("ticket:\($0)")] } ?? []
        case CommandName.reclassifyDecide:
            return command.body["requestId"]?.stringValue.map { [.exclusive("request:\($0)")] } ?? []
        case CommandName.quotaGet, CommandName.problemOpen:
            return command.body["customerId"]?.stringValue.map { [.shared("customer:\($0)")] } ?? []
        case CommandName.problemUpdate, CommandName.problemLink:
            return command.body["problemId"]?.stringValue.map { [.exclusive("problem:\($0)")] } ?? []
        case CommandName.problemGet:
            return command.body["problemId"]?.stringValue.map { [.shared("problem:\($0)")] } ?? []
        default:
            return [.exclusive("classification")]
        }
    }

    public func handle(_ command: IncomingCommand, context: CommandContext) throws -> CommandOutcome {
        let store = ClassificationStore(session: context.session)
        switch command.name {
        case CommandName.reclassifyRequest:
            return try request(try RequestReclassification.parse(command.body), command, store, context.events)
        case CommandName.reclassifyDecide:
            return try decide(try DecideReclassification.parse(command.body), command, store, context.events)
        case CommandName.ticketDispatch:
            return try dispatch(try DispatchTicket.parse(command.body), command, store, context.events)
        case CommandName.quotaGet:
            return CommandOutcome(result: try quota(try GetQuota.parse(command.body), store))
        case CommandName.problemOpen:
            return try openProblem(try OpenProblem.parse(command.body), command, store, context.events)
        case CommandName.problemUpdate:
            return try updateProblem(try UpdateProblem.parse(command.body), command, store, context.events)
        case CommandName.problemLink:
            return try linkProblem(try LinkProblem.parse(command.body), command, store, context.events)
        case CommandName.problemGet:
            return CommandOutcome(result: try problemView(try GetProblem.parse(command.body).problemId, store))
        default:
            throw CommandRejection(code: ErrorCode.unknownCommand, message: "classification does not handle \(command.name)")
        }
    }

    /// The ticket and its customer, both known, the ticket locked for this transaction.
    func ticketAndCustomer(_ number: String, _ store: ClassificationStore) throws -> (TicketRow, CustomerProfile) {
        guard let ticket = try store.ticket(number, forUpdate: true) else {
            throw CommandRejection(code: ErrorCode.unknownTicket, field: "trackingNumber", message: "no ticket \(number) is known to classification")
        }
        guard let customer = try cache.customer(ticket.ticket.customerId, store: store) else {
            throw ClassificationRules.notClassified(number)
        }
        return (ticket, customer)
    }

    // R-CLS-3
    func request(_ r: RequestReclassification, _ command: IncomingCommand, _ store: ClassificationStore, _ events: EventFactory) throws -> CommandOutcome {
        let (ticket, customer) = try ticketAndCustomer(r.trackingNumber, store)
        let pending = try store.requests(of: r.trackingNumber).first { $0.state == .pending }
        if let refusal = ClassificationRules.refusal(of: r, ticket: ticket, customer: customer, pending: pending) { throw refusal }
        let from = ticket.classification!.priority
        let id = try store.insertRequest(number: r.trackingNumber, from: from, to: r.priority, reason: r.reason, by: r.by, at: command.receivedAt)
        var data = JSONObject()
        data["requestId"] = .string(id)
        data["trackingNumber"] = .string(r.trackingNumber)
        data["customerId"] = .string(customer.customerId)
        data["from"] = .string(from.rawValue)
        data["to"] = .string(r.priority.rawValue)
        data["reason"] = .string(r.reason)
        data["by"] = .string(r.by)
        data["requestedAt"] = .string(RFC3339.format(command.receivedAt))
        try store.audit(r.trackingNumber, event: "reclassification_requested", actor: r.by, at: command.receivedAt, data: .object(data))
        let event = events.make(EventType.reclassifyRequested, subject: r.trackingNumber, data: .object(data), time: command.receivedAt)
        return CommandOutcome(result: ["requestId": .string(id)], events: [event])
    }

    // R-CLS-3: acceptance recomputes from the original receipt (the SLA timer reads `receivedAt`).
    func decide(_ d: DecideReclassification, _ command: IncomingCommand, _ store: ClassificationStore, _ events: EventFactory) throws -> CommandOutcome {
        guard let request = try store.request(d.requestId, forUpdate: true) else {
            throw CommandRejection(code: ErrorCode.unknownRequest, field: "requestId", message: "no reclassification request \(d.requestId) exists")
        }
        let (ticket, customer) = try ticketAndCustomer(request.trackingNumber, store)
        if let refusal = ClassificationRules.refusal(of: d, request: request, customer: customer) { throw refusal }
        let at = command.receivedAt
        try store.decide(d.requestId, accept: d.accept, by: d.by, reason: d.reason, at: at)
        let current = ticket.classification!.priority
        var data = JSONObject()
        data["requestId"] = .string(d.requestId)
        data["trackingNumber"] = .string(request.trackingNumber)
        data["customerId"] = .string(customer.customerId)
        data["accept"] = .bool(d.accept)
        data["from"] = .string(current.rawValue)
        data["to"] = .string(request.to.rawValue)
        data["reason"] = .string(d.reason)
        data["by"] = .string(d.by)
        data["decidedAt"] = .string(RFC3339.format(at))
        try store.audit(request.trackingNumber, event: d.accept ? "reclassification_accepted" : "reclassification_declined", actor: d.by,
                        at: at, data: .object(data))
        var out = [events.make(EventType.reclassifyDecided, subject: request.trackingNumber, data: .object(data), time: at)]
        if d.accept && current != request.to {
            try store.setPriority(request.trackingNumber, request.to)
            var r = JSONObject()
            r["trackingNumber"] = .string(request.trackingNumber)
            r["customerId"] = .string(customer.customerId)
            r["from"] = .string(current.rawValue)
            r["to"] = .string(request.to.rawValue)
            r["reason"] = .string(d.reason)
            r["by"] = .string(d.by)
            r["cause"] = .string("request")
            r["requestId"] = .string(d.requestId)
            r["receivedAt"] = .string(RFC3339.format(ticket.ticket.receivedAt))
            r["at"] = .string(RFC3339.format(at))
            try store.audit(request.trackingNumber, event: "reclassified", actor: d.by, at: at, data: .object(r))
            out.append(events.make(EventType.ticketReclassified, subject: request.trackingNumber, data: .object(r), time: at))
        }
        return CommandOutcome(result: try view(request.trackingNumber, store), events: out)
    }

    // R-CLS-6
    func dispatch(_ d: DispatchTicket, _ command: IncomingCommand, _ store: ClassificationStore, _ events: EventFactory) throws -> CommandOutcome {
        let (ticket, customer) = try ticketAndCustomer(d.trackingNumber, store)
        if let refusal = ClassificationRules.refusal(of: d, ticket: ticket, customer: customer) { throw refusal }
        try store.setDispatch(d.trackingNumber, d.dispatch, thirdParty: d.thirdParty)
        var data = JSONObject()
        data["trackingNumber"] = .string(d.trackingNumber)
        data["customerId"] = .string(customer.customerId)
        data["from"] = .string(ticket.classification!.dispatch.rawValue)
        data["to"] = .string(d.dispatch.rawValue)
        data["thirdParty"] = .optional(d.thirdParty)
        data["reason"] = .optional(d.reason)
        data["by"] = .string(d.by)
        data["at"] = .string(RFC3339.format(command.receivedAt))
        try store.audit(d.trackingNumber, event: "dispatched", actor: d.by, at: command.receivedAt, data: .object(data))
        let event = events.make(EventType.ticketDispatched, subject: d.trackingNumber, data: .object(data), time: command.receivedAt)
        return CommandOutcome(result: try view(d.trackingNumber, store), events: [event])
    }

    // R-QTA-1, R-QTA-2: consumption, limit and projection on the injected clock.
    func quota(_ q: GetQuota, _ store: ClassificationStore) throws -> JSONValue {
        guard let customer = try cache.customer(q.customerId, store: store) else {
            throw CommandRejection(code: ErrorCode.unknownCustomer, field: "customerId", message: "no customer \(q.customerId) is known to classification")
        }
        let now = Int64(clock.now().timeIntervalSince1970.rounded(.down))
        let year = ContractYear.containing(now, contractStart: customer.contractStart, zone: try cache.zone(customer.timeZone))
        let usage = try store.usage(customerId: q.customerId, yearStart: year.firstDay.description)
        let quotas: [JSONValue] = QuotaKind.allCases.map { kind in
            let used = usage[kind]?.used ?? 0
            let limit = customer.quotas[kind]
            var o = JSONObject()
            o["quota"] = .string(kind.rawValue)
            o["used"] = .int(used)
            o["limit"] = .optional(limit)
            o["remaining"] = .optional(limit.map { max(0, $0 - used) })
            o["exceeded"] = .bool(limit.map { used > $0 } ?? false)
            let projected = settings.trend.projectedExhaustion(used: used, limit: limit, year: year, now: now).flatMap { $0 < year.end ? $0 : nil }
            o["projectedExhaustion"] = .optional(projected.map { RFC3339.format(Date(timeIntervalSince1970: TimeInterval($0))) })
            return .object(o)
        }
        return [
            "customerId": .string(q.customerId),
            "timeZone": .string(customer.timeZone),
            "contractYear": [
                "start": .string(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(year.start)))),
                "end": .string(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(year.end)))),
            ],
            "quotas": .array(quotas),
        ]
    }

    /// The ticket as classification knows it: classification, requests and audit trail.
    func view(_ number: String, _ store: ClassificationStore) throws -> JSONValue {
        guard let row = try store.ticket(number) else {
            throw CommandRejection(code: ErrorCode.unknownTicket, field: "trackingNumber", message: "no ticket \(number) is known to classification")
        }
        let t = row.ticket
        let c = row.classification
        var o = JSONObject()
        o["trackingNumber"] = .string(t.trackingNumber)
        o["customerId"] = .string(t.customerId)
        o["kind"] = .string(t.kind.rawValue)
        o["environment"] = .string(t.environment.rawValue)
        o["priority"] = .optional(c?.priority.rawValue)
        o["requestedPriority"] = .optional(t.requestedPriority?.rawValue)
        o["requestClass"] = .optional(c?.requestClass?.rawValue)
        o["dispatch"] = .optional(c?.dispatch.rawValue)
        o["thirdParty"] = .optional(c?.thirdParty)
        o["reclassificationCandidate"] = .bool(c?.isReclassificationCandidate ?? false)
        o["receivedAt"] = .string(RFC3339.format(t.receivedAt))
        o["classifiedAt"] = .optional(row.classifiedAt.map(RFC3339.format))
        o["status"] = .string(row.status == "new" && c != nil ? "classified" : row.status)
        o["reclassifications"] = .array(try store.requests(of: number).map(\.json))
        o["audit"] = .array(try store.auditTrail(number))
        return .object(o)
    }
}

/// The command and event handlers of one classification process, sharing one cache of
/// customer profiles and time zones.
public struct ClassificationHandlers: Sendable {
    public let commands: ClassificationCommands
    public let events: ClassificationEvents

    public init(settings: ClassificationSettings, clock: any CSSModel.Clock) {
        let cache = ProfileCache()
        commands = ClassificationCommands(settings: settings, clock: clock, cache: cache)
        events = ClassificationEvents(settings: settings, clock: clock, cache: cache)
    }
}
