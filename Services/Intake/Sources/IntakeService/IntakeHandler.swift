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

    /// Per customer and per ticket, in delivery order: submits of one customer may run
    /// side by side (each makes a new ticket), but not beside an onboarding or an
    /// availability change of that customer; a ticket's transitions and look-ups run
    /// one after the other.
    public func orderingKeys(_ command: IncomingCommand) -> [OrderingKey] {
        let customer = command.body["customerId"]?.stringValue.map { "customer:\($0)" }
        let ticket = command.body["trackingNumber"]?.stringValue.map { "ticket:\($0)" }
        switch command.name {
        case CommandName.ticketSubmit:
            return customer.map { [.shared($0)] } ?? []
        case CommandName.customerOnboard, CommandName.contactAvailability:
            return customer.map { [.exclusive($0)] } ?? []
        case CommandName.ticketTransition:
            return ticket.map { [.exclusive($0)] } ?? []
        case CommandName.ticketGet:
            return ticket.map { [.shared($0)] } ?? []
        default:
            return [.exclusive("intake")]
        }
    }

    public func handlesInBatches(_ command: String) -> Bool {
        command == CommandName.ticketSubmit
    }

    /// `ticket.submit` for a whole batch: one look-up of every (customer, contact)
    /// pair, one statement for the tickets and their first audit entries. Every refusal
    /// is decided before anything is written.
    public func handleBatch(_ commands: [IncomingCommand], context: CommandContext) throws -> [CommandResult] {
        var results: [CommandResult?] = Array(repeating: nil, count: commands.count)
        var parsed: [(index: Int, submit: SubmitTicket)] = []
        for (i, c) in commands.enumerated() {
            do {
                parsed.append((i, try SubmitTicket.parse(c.body)))
            } catch {
                results[i] = .failure(error)
            }
        }
        let store = IntakeStore(session: context.session)
        let access = try store.access(parsed.map { ($0.submit.customerId, $0.submit.contactEmail) })
        var accepted: [(index: Int, submit: SubmitTicket)] = []
        for (k, item) in parsed.enumerated() {
            if !access[k].customerExists {
                results[item.index] = .failure(Self.unknownCustomer(item.submit.customerId))
            } else if !access[k].activeContact {
                results[item.index] = .failure(Self.notAContact(item.submit))
            } else {
                accepted.append(item)
            }
        }
        let numbers = try store.insertTickets(accepted.map { ($0.submit, commands[$0.index].messageID, commands[$0.index].receivedAt) })
        for item in accepted {
            let command = commands[item.index]
            guard let number = numbers[command.messageID] else {
                throw PostgresError(code: "inconsistent_insert", message: "no tracking number came back for message \(command.messageID)")
            }
            results[item.index] = .success(Self.received(item.submit, number: number, command: command, events: context.events))
        }
        return results.map { $0! }
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
        let access = try store.access([(s.customerId, s.contactEmail)])[0]
        guard access.customerExists else { throw Self.unknownCustomer(s.customerId) }
        guard access.activeContact else { throw Self.notAContact(s) }
        let numbers = try store.insertTickets([(s, command.messageID, command.receivedAt)])
        guard let number = numbers[command.messageID] else {
            throw PostgresError(code: "inconsistent_insert", message: "no tracking number came back for message \(command.messageID)")
        }
        return Self.received(s, number: number, command: command, events: events)
    }

    /// The reply and the `ticket.received` event of a stored ticket.
    static func received(_ s: SubmitTicket, number: String, command: IncomingCommand, events: EventFactory) -> CommandOutcome {
        var data = JSONObject()
        data["trackingNumber"] = .string(number)
        data["customerId"] = .string(s.customerId)
        data["kind"] = .string(s.kind.rawValue)
        data["environment"] = .string(s.environment.rawValue)
        data["channel"] = .string(s.channel.rawValue)
        data["receivedAt"] = .string(RFC3339.format(command.receivedAt))
        data["phoneRequired"] = .bool(s.phoneRequired)
        data["contactEmail"] = .string(s.contactEmail)
        data["summary"] = .string(s.summary)
        data["impact"] = .optional(s.impact?.rawValue)
        data["urgency"] = .optional(s.urgency?.rawValue)
        data["catalogItem"] = .optional(s.catalogItem)
        data["component"] = .optional(s.component)
        data["product"] = .optional(s.product)
        data["requestedPriority"] = .optional(s.requestedPriority?.rawValue)
        let event = events.make(EventType.ticketReceived, subject: number, data: .object(data), time: command.receivedAt)
        return CommandOutcome(result: [
            "trackingNumber": .string(number),
            "receivedAt": .string(RFC3339.format(command.receivedAt)),
            "phoneRequired": .bool(s.phoneRequired),
        ], events: [event])
    }

    static func notAContact(_ s: SubmitTicket) -> CommandRejection {
        CommandRejection(code: ErrorCode.notAContact, field: "contactEmail",
                         message: "\(s.contactEmail) is not a registered Point of Contact of \(s.customerId); only a POC may log a Service Ticket")
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
        data["contactEmail"] = .string(ticket.contactEmail)
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
