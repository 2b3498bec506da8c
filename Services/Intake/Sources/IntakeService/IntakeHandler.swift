import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation

/// Intake's commands: onboarding, contact availability, ticket submission,
/// transitions and look-ups (R-CUS-1..3, R-TKT-1..4).
public struct IntakeHandler: CommandHandler {
    public init() {}

    public var commandNames: [String] {
        [CommandName.customerOnboard, CommandName.contactAvailability, CommandName.ticketSubmit,
         CommandName.ticketTransition, CommandName.ticketGet]
    }

    public func isReadOnly(_ command: String) -> Bool {
        command == CommandName.ticketGet
    }

    public func handle(_ command: IncomingCommand, context: CommandContext) throws -> CommandOutcome {
        let store = IntakeStore(session: context.session)
        switch command.name {
        case CommandName.customerOnboard:
            return try onboard(try OnboardCustomer.parse(command.body), command, store, context.events)
        case CommandName.contactAvailability:
            return try availability(try ContactAvailability.parse(command.body), command, store, context.events)
        case CommandName.ticketSubmit:
            return try submit(try SubmitTicket.parse(command.body), command, store, context.events)
        case CommandName.ticketTransition:
            return try transition(try TransitionTicket.parse(command.body), command, store, context.events)
        case CommandName.ticketGet:
            let get = try GetTicket.parse(command.body)
            guard let ticket = try store.ticket(get.trackingNumber) else { throw Self.unknownTicket(get.trackingNumber) }
            return CommandOutcome(result: ticket.json(audit: try store.audit(get.trackingNumber)))
        default:
            throw CommandRejection(code: ErrorCode.unknownCommand, message: "intake does not handle \(command.name)")
        }
    }

    // R-CUS-1, R-CUS-2: an upsert; contacts no longer listed become inactive, tickets stay.
    func onboard(_ c: OnboardCustomer, _ command: IncomingCommand, _ store: IntakeStore, _ events: EventFactory) throws -> CommandOutcome {
        let created = try store.upsertCustomer(c, at: command.receivedAt)
        var data = c.json.objectValue!
        data["created"] = .bool(created)
        let event = events.make(EventType.customerOnboarded, subject: c.customerId, data: .object(data), time: command.receivedAt)
        return CommandOutcome(result: ["customerId": .string(c.customerId)], events: [event])
    }

    // R-CUS-5
    func availability(_ a: ContactAvailability, _ command: IncomingCommand, _ store: IntakeStore, _ events: EventFactory) throws -> CommandOutcome {
        guard try store.customerExists(a.customerId) else { throw Self.unknownCustomer(a.customerId) }
        guard let contact = try store.contact(customerId: a.customerId, email: a.email), contact.active else {
            throw CommandRejection(code: ErrorCode.notAContact, field: "email", message: "\(a.email) is not a registered Point of Contact of \(a.customerId)")
        }
        try store.setAvailability(customerId: a.customerId, email: a.email, available: a.available)
        let event = events.make(EventType.contactAvailabilityChanged, subject: a.customerId, data: [
            "customerId": .string(a.customerId), "email": .string(a.email), "available": .bool(a.available),
            "primary": .bool(contact.isPrimary),
        ], time: command.receivedAt)
        return CommandOutcome(result: [:], events: [event])
    }

    // R-CUS-3, R-TKT-1, R-TKT-2
    func submit(_ s: SubmitTicket, _ command: IncomingCommand, _ store: IntakeStore, _ events: EventFactory) throws -> CommandOutcome {
        guard try store.customerExists(s.customerId) else { throw Self.unknownCustomer(s.customerId) }
        guard let contact = try store.contact(customerId: s.customerId, email: s.contactEmail), contact.active else {
            throw CommandRejection(code: ErrorCode.notAContact, field: "contactEmail",
                                   message: "\(s.contactEmail) is not a registered Point of Contact of \(s.customerId); only a POC may log a Service Ticket")
        }
        let ticket = try store.insertTicket(s, messageID: command.messageID, receivedAt: command.receivedAt)
        var data = JSONObject()
        data["trackingNumber"] = .string(ticket.trackingNumber)
        data["customerId"] = .string(s.customerId)
        data["kind"] = .string(s.kind.rawValue)
        data["environment"] = .string(s.environment.rawValue)
        data["channel"] = .string(s.channel.rawValue)
        data["receivedAt"] = .string(RFC3339.format(command.receivedAt))
        data["phoneRequired"] = .bool(ticket.phoneRequired)
        data["contactEmail"] = .string(s.contactEmail)
        data["summary"] = .string(s.summary)
        data["impact"] = .optional(s.impact?.rawValue)
        data["urgency"] = .optional(s.urgency?.rawValue)
        data["catalogItem"] = .optional(s.catalogItem)
        data["component"] = .optional(s.component)
        data["product"] = .optional(s.product)
        data["requestedPriority"] = .optional(s.requestedPriority?.rawValue)
        let event = events.make(EventType.ticketReceived, subject: ticket.trackingNumber, data: .object(data), time: command.receivedAt)
        return CommandOutcome(result: [
            "trackingNumber": .string(ticket.trackingNumber),
            "receivedAt": .string(RFC3339.format(command.receivedAt)),
            "phoneRequired": .bool(ticket.phoneRequired),
        ], events: [event])
    }

    // R-TKT-3
    func transition(_ t: TransitionTicket, _ command: IncomingCommand, _ store: IntakeStore, _ events: EventFactory) throws -> CommandOutcome {
        guard var ticket = try store.ticket(t.trackingNumber, forUpdate: true) else { throw Self.unknownTicket(t.trackingNumber) }
        let from = ticket.status
        let to: TicketStatus
        switch TicketLifecycle.apply(t.action, to: from) {
        case .success(let s): to = s
        case .failure(let e): throw CommandRejection(e)
        }
        ticket.status = to
        try store.updateStatus(t.trackingNumber, to: to, at: command.receivedAt)
        try store.appendAudit(t.trackingNumber, event: "transitioned", action: t.action.rawValue, from: from, to: to, actor: t.by, note: t.note, at: command.receivedAt)
        var data = JSONObject()
        data["trackingNumber"] = .string(t.trackingNumber)
        data["action"] = .string(t.action.rawValue)
        data["status"] = .string(to.rawValue)
        data["from"] = .string(from.rawValue)
        data["by"] = .string(t.by)
        data["at"] = .string(RFC3339.format(command.receivedAt))
        data["note"] = .optional(t.note)
        data["customerId"] = .string(ticket.customerId)
        let event = events.make(EventType.ticketTransitioned, subject: t.trackingNumber, data: .object(data), time: command.receivedAt)
        return CommandOutcome(result: ticket.json(audit: try store.audit(t.trackingNumber)), events: [event])
    }

    static func unknownCustomer(_ id: String) -> CommandRejection {
        CommandRejection(code: ErrorCode.unknownCustomer, field: "customerId", message: "no customer \(id) is onboarded")
    }

    static func unknownTicket(_ number: String) -> CommandRejection {
        CommandRejection(code: ErrorCode.unknownTicket, field: "trackingNumber", message: "no ticket \(number) exists")
    }
}
