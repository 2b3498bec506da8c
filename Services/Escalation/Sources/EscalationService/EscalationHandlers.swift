import CSSCalendar
import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation

/// The escalation service's reaction to other services' events: what it learns of customers,
/// tickets and contacts, and the escalations they open (R-ESC-1, R-ESC-2, R-ESC-4) or end (R-ESC-6).
public struct EscalationEvents: EventHandler {
    let engine: EscalationEngine

    public var eventTypes: [String] {
        [EventType.customerOnboarded, EventType.contactAvailabilityChanged, EventType.ticketReceived, EventType.ticketClassified,
         EventType.ticketReclassified, EventType.ticketTransitioned, EventType.slaWarning, EventType.slaBreached]
    }

    /// Ticket facts and thresholds go set-wise: one read of the tickets, one insert of the
    /// escalations, one write each of tickets, escalations and timers per batch.
    public func handlesInBatches(_ type: String) -> Bool {
        type != EventType.customerOnboarded && type != EventType.contactAvailabilityChanged
    }

    public func handle(_ event: CloudEvent, context: CommandContext) throws -> [CloudEvent] {
        var work = Work(context, now: engine.clock.now(), cache: engine.cache)
        let events: [CloudEvent]
        switch event.type {
        case EventType.customerOnboarded:
            events = try onboarded(event, &work)
        case EventType.contactAvailabilityChanged:
            events = try availability(event, &work)
        default:
            switch try handleBatch([event], context: context)[0] {
            case .success(let caused): return caused
            case .failure(let rejection): throw rejection
            }
        }
        try work.flush()
        return events
    }

    static func string(_ event: CloudEvent, _ key: String) throws(CommandRejection) -> String {
        guard let s = event.data[key]?.stringValue, !s.isEmpty else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.\(key)", message: "\(event.type) carries no \(key)")
        }
        return s
    }

    static func trackingNumber(_ event: CloudEvent) throws(CommandRejection) -> String {
        if let n = event.data["trackingNumber"]?.stringValue ?? event.subject, !n.isEmpty { return n }
        return try string(event, "trackingNumber")
    }

    static func time(_ event: CloudEvent, _ key: String) -> Date {
        event.data[key]?.stringValue.flatMap(RFC3339.parse) ?? event.time
    }

    static func priority(_ event: CloudEvent, _ key: String) throws(CommandRejection) -> Priority {
        guard let raw = event.data[key]?.stringValue, let p = Priority(rawValue: raw) else {
            throw CommandRejection(code: ErrorCode.invalidField, field: "data.\(key)", message: "data.\(key) must be P1..P4")
        }
        return p
    }

    /// A new customer, or new settings: escalations that waited for it are routed.
    func onboarded(_ event: CloudEvent, _ work: inout Work) throws -> [CloudEvent] {
        let id = try Self.string(event, "customerId")
        _ = try CustomerFacts.build(profile: event.data) // refuse what cannot make a calendar before storing it
        try work.store.lock(customer: id, exclusive: true)
        guard try work.store.upsertCustomer(id, profile: event.data, version: event.time) else { return [] }
        return try startWaiting(try work.store.unrouted(customerId: id), &work)
    }

    func startWaiting(_ list: [Escalation], _ work: inout Work) throws -> [CloudEvent] {
        var events: [CloudEvent] = []
        for var e in list {
            try engine.route(&e, &work)
            events += try engine.advance(&e, &work)
            work.changed[e.id] = e
        }
        return events
    }

    /// What one fact does to its ticket: the row as it becomes, escalations to open, escalations ended.
    struct Outcome {
        var opened: [Escalation] = []
        var events: [CloudEvent] = []
    }

    /// `ticket.received`, `ticket.classified`, `ticket.reclassified`, `ticket.transitioned`,
    /// `sla.warning`, `sla.breached`, consecutive ones of one type together. Each fact is decided
    /// on a copy of its ticket and refused before anything is written for it.
    public func handleBatch(_ events: [CloudEvent], context: CommandContext) throws -> [Result<[CloudEvent], CommandRejection>] {
        var work = Work(context, now: engine.clock.now(), cache: engine.cache)
        var numbers: [String?] = []
        for event in events { numbers.append(try? Self.trackingNumber(event)) }
        var tickets = try work.store.tickets(Set(numbers.compactMap { $0 }))
        // Escalations a transition may end, read (and locked) once for the batch.
        var live = events.first?.type == EventType.ticketTransitioned ? try work.store.live(of: Set(numbers.compactMap { $0 })) : [:]
        var changedTickets = Set<String>()
        var outcomes: [Result<Outcome, CommandRejection>] = []
        for (event, number) in zip(events, numbers) {
            do {
                guard let number else { throw CommandRejection(code: ErrorCode.missingField, field: "data.trackingNumber", message: "\(event.type) carries no trackingNumber") }
                var ticket = tickets[number]!
                let outcome = try apply(event, to: &ticket, live: &live, &work)
                tickets[number] = ticket
                if event.type != EventType.slaWarning && event.type != EventType.slaBreached { changedTickets.insert(number) }
                outcomes.append(.success(outcome))
            } catch let rejection as CommandRejection {
                outcomes.append(.failure(rejection))
            }
        }
        // Every fact is decided: write. Two facts of the batch that open one escalation (the same
        // threshold under two event ids) open it once, and its events go with the first.
        var claimed = Set<String>()
        outcomes = outcomes.map { result in
            result.map { o in
                var o = o
                o.opened = o.opened.filter { claimed.insert($0.id).inserted }
                return o
            }
        }
        let opened = try engine.open(outcomes.flatMap { (try? $0.get())?.opened ?? [] }, &work)
        try work.store.save(changedTickets.map { tickets[$0]! }, at: work.now)
        try work.flush()
        return outcomes.map { result in
            result.map { $0.events + $0.opened.flatMap { opened[$0.id] ?? [] } }
        }
    }

    func apply(_ event: CloudEvent, to ticket: inout TicketRow, live: inout [String: [Escalation]], _ work: inout Work) throws -> Outcome {
        var row = ticket
        var outcome = Outcome()
        if event.type != EventType.slaWarning && event.type != EventType.slaBreached {
            if let c = event.data["customerId"]?.stringValue { row.customerId = c }
            if let k = event.data["kind"]?.stringValue { row.kind = k }
        }
        let number = row.trackingNumber
        // ticket.classified repeats ticket.received's facts (a ticket.received is only still consumed
        // when one was left in the queue by a release that bound it); ticket.transitioned names the contact.
        if event.type == EventType.ticketReceived || event.type == EventType.ticketClassified {
            if let phone = event.data["phoneRequired"]?.boolValue { row.phoneRequired = phone }
        }
        if event.type == EventType.ticketReceived || event.type == EventType.ticketClassified || event.type == EventType.ticketTransitioned,
           let email = event.data["contactEmail"]?.stringValue {
            row.contactEmail = email.lowercased()
        }
        switch event.type {
        case EventType.ticketReceived:
            if row.status == nil { row.status = .new }
        case EventType.ticketClassified, EventType.ticketReclassified:
            let isClassified = event.type == EventType.ticketClassified
            let priority = try Self.priority(event, isClassified ? "priority" : "to")
            let at = Self.time(event, isClassified ? "classifiedAt" : "at")
            if row.priorityAt.map({ $0 <= at }) ?? true {
                row.priority = priority
                row.priorityAt = at
            }
            if row.status == nil || row.status == .new { row.status = .classified }
            // R-ESC-1: a Critical incident pages at once, 24x7, also when it becomes Critical later.
            if priority == .p1, row.kind == TicketKind.incident.rawValue, !row.isDone, let customerId = row.customerId {
                outcome.opened.append(Escalation(id: Escalation.id(trackingNumber: number, reason: .criticalIncident), trackingNumber: number,
                                                 customerId: customerId, team: nil, priority: .p1, reason: .criticalIncident,
                                                 phoneRequired: row.phoneRequired, openedAt: Instant.seconds(work.now)))
            }
        case EventType.ticketTransitioned:
            outcome = try transitioned(event, &row, live: &live, &work)
        default:
            if let e = try threshold(event, row, now: work.now) { outcome.opened.append(e) }
        }
        ticket = row
        return outcome
    }

    func transitioned(_ event: CloudEvent, _ ticket: inout TicketRow, live: inout [String: [Escalation]], _ work: inout Work) throws -> Outcome {
        guard let raw = event.data["action"]?.stringValue, let action = TicketAction(rawValue: raw) else {
            throw CommandRejection(code: ErrorCode.invalidField, field: "data.action", message: "data.action must be one of \(TicketAction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let at = event.data["at"]?.stringValue.flatMap(RFC3339.parse) else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.at", message: "ticket.transitioned carries no RFC 3339 time in data.at")
        }
        // Whether this transition is the ticket's newest: a late one about an earlier moment (a restore
        // that arrives after the reopen that followed it) ends nothing.
        let newest = ticket.statusAt.map { $0 <= at } ?? true
        if newest {
            ticket.status = event.data["status"]?.stringValue.flatMap(TicketStatus.init(rawValue:)) ?? ticket.status
            ticket.statusAt = at
        }
        let number = ticket.trackingNumber
        var outcome = Outcome()
        func end(_ cause: String, _ matching: (Escalation) -> Bool = { _ in true }) {
            outcome.events = engine.resolve(live[number] ?? [], cause: cause, &work, matching: matching)
            // Ended ones are no longer live for a later fact of this batch.
            live[number] = (live[number] ?? []).map { work.changed[$0.id] ?? $0 }.filter { $0.state == .open || $0.state == .unrouted }
        }
        switch action {
        case .restore, .close:
            if newest { end(action == .restore ? "restored" : "closed") } // R-ESC-6: a ticket restored or closed ends its open escalations
        case .respond:
            end("responded") { $0.target == "response" }
        case .customerReplied:
            end("customer_replied") { $0.isCustomerEscalation }
        case .awaitCustomer:
            // R-CUS-5: the ticket now needs a contact who is unavailable.
            if let customerId = ticket.customerId, let email = ticket.contactEmail, try work.store.isUnavailable(customerId: customerId, email: email),
               !(live[number] ?? []).contains(where: \.isCustomerEscalation), let e = Self.customerEscalation(&ticket, now: work.now) {
                outcome.opened.append(e)
            }
        case .reopen:
            break
        }
        return outcome
    }

    /// R-ESC-4, R-CUS-5: one message on `customer.<id>` to the primary POC and the success manager,
    /// one per episode of unavailability.
    static func customerEscalation(_ ticket: inout TicketRow, now: Date) -> Escalation? {
        guard let customerId = ticket.customerId, !ticket.isDone else { return nil }
        ticket.contactEpisodes += 1
        return Escalation(id: Escalation.id(trackingNumber: ticket.trackingNumber, reason: .contactUnavailable, episode: ticket.contactEpisodes),
                          trackingNumber: ticket.trackingNumber, customerId: customerId, team: nil, priority: ticket.priority ?? .p4,
                          reason: .contactUnavailable, phoneRequired: ticket.phoneRequired, openedAt: Instant.seconds(now))
    }

    /// `customer.contact.availability_changed` (R-CUS-5).
    func availability(_ event: CloudEvent, _ work: inout Work) throws -> [CloudEvent] {
        let customerId = try Self.string(event, "customerId")
        let email = try Self.string(event, "email").lowercased()
        guard let available = event.data["available"]?.boolValue else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.available", message: "customer.contact.availability_changed carries no available flag")
        }
        guard try work.store.setAvailability(customerId: customerId, email: email, available: available, at: event.time) else { return [] }
        let numbers = try available ? work.store.ticketsOfContact(customerId: customerId, contactEmail: email)
                                    : work.store.ticketsAwaiting(customerId: customerId, contactEmail: email)
        var tickets = try work.store.tickets(numbers)
        let live = try work.store.live(of: numbers)
        var events: [CloudEvent] = []
        var opened: [Escalation] = []
        for number in numbers.sorted() {
            if available {
                events += engine.resolve(live[number] ?? [], cause: "contact_available", &work) { $0.isCustomerEscalation }
            } else if !(live[number] ?? []).contains(where: \.isCustomerEscalation), let e = Self.customerEscalation(&tickets[number]!, now: work.now) {
                opened.append(e)
            }
        }
        try work.store.save(Array(tickets.values), at: work.now)
        return try events + engine.open(opened, &work).sorted { $0.key < $1.key }.flatMap(\.value)
    }

    /// `sla.warning` and `sla.breached` (R-ESC-2): the owning team's on-call, then up the chain; nil
    /// when the ticket is restored or closed already.
    func threshold(_ event: CloudEvent, _ ticket: TicketRow, now: Date) throws -> Escalation? {
        let number = ticket.trackingNumber
        let target = try Self.string(event, "target")
        guard target == "response" || target == "restoration" else {
            throw CommandRejection(code: ErrorCode.invalidField, field: "data.target", message: "data.target must be response or restoration")
        }
        let breached = event.type == EventType.slaBreached
        var threshold: Double?
        if !breached {
            guard let t = event.data["threshold"]?.numberValue, t > 0, t < 1 else {
                throw CommandRejection(code: ErrorCode.invalidField, field: "data.threshold", message: "sla.warning needs a threshold between 0 and 1")
            }
            threshold = t
        }
        guard let customerId = event.data["customerId"]?.stringValue ?? ticket.customerId else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.customerId", message: "\(event.type) carries no customerId and the ticket is unknown")
        }
        if ticket.isDone { return nil } // restored or closed meanwhile: nothing to escalate
        let priority = (try? Self.priority(event, "priority")) ?? ticket.priority ?? .p4
        let dueAt = event.data["dueAt"]?.stringValue.flatMap(RFC3339.parse).map(Instant.seconds)
        let reason: EscalationReason = breached ? .slaBreached : .slaWarning
        return Escalation(id: Escalation.id(trackingNumber: number, reason: reason, target: target, threshold: threshold),
                          trackingNumber: number, customerId: customerId, team: nil, priority: priority, reason: reason,
                          target: target, threshold: threshold, dueAt: dueAt, phoneRequired: ticket.phoneRequired, openedAt: Instant.seconds(now))
    }
}

/// Moves chains when their timers fall due.
public struct EscalationTimers: TimerHandler {
    let engine: EscalationEngine

    public func fire(_ timers: [DueTimer], now: Date, context: CommandContext) throws -> [CloudEvent] {
        var work = Work(context, now: now, cache: engine.cache)
        var found = try work.store.escalations(timers.map(\.key))
        var events: [CloudEvent] = []
        for id in found.keys.sorted() {
            // An acknowledged or resolved escalation has no next step: its old timer does nothing (R-ESC-6).
            guard found[id]!.state == .open else { continue }
            events += try engine.advance(&found[id]!, &work)
        }
        try work.flush()
        return events
    }
}

/// `escalation.ack`: one acknowledgement stops the whole chain (R-ESC-6).
public struct Acknowledge: Sendable, Equatable {
    public var escalationId: String
    public var by: String

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> Acknowledge {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let id = r.string("escalationId", maxLength: 200)
        let by = r.string("by", maxLength: 254)
        try errors.throwIfAny()
        return Acknowledge(escalationId: id!, by: by!)
    }
}

/// The service's commands: schedules, on-call look-ups, acknowledgements, open escalations.
public struct EscalationCommands: CommandHandler {
    let engine: EscalationEngine

    public var commandNames: [String] {
        [CommandName.oncallScheduleSet, CommandName.oncallGet, CommandName.escalationAck, CommandName.escalationList]
    }

    public func isReadOnly(_ command: String) -> Bool {
        command == CommandName.oncallGet || command == CommandName.escalationList
    }

    public func orderingKeys(_ command: IncomingCommand) -> [OrderingKey] {
        switch command.name {
        case CommandName.oncallScheduleSet: return command.body["team"]?.stringValue.map { [.exclusive("team:\($0)")] } ?? []
        case CommandName.escalationAck: return command.body["escalationId"]?.stringValue.map { [.exclusive("escalation:\($0)")] } ?? []
        default: return []
        }
    }

    public func handle(_ command: IncomingCommand, context: CommandContext) throws -> CommandOutcome {
        let store = EscalationStore(session: context.session)
        switch command.name {
        case CommandName.oncallScheduleSet: return try setSchedule(command, store: store, context: context)
        case CommandName.oncallGet: return try onCall(command, store: store)
        case CommandName.escalationAck: return try acknowledge(command, store: store, context: context)
        default: return try list(command, store: store)
        }
    }

    /// R-ESC-5: replaces the team's schedule; escalations that waited for it start now.
    func setSchedule(_ command: IncomingCommand, store: EscalationStore, context: CommandContext) throws -> CommandOutcome {
        let (schedule, by) = try OnCallSchedule.parse(command.body)
        let now = engine.clock.now()
        try store.lock(team: schedule.team, exclusive: true)
        let revision = try store.setSchedule(schedule, by: by, at: now)
        let event = context.events.make(EventType.oncallScheduleUpdated, subject: schedule.team, data: [
            "team": .string(schedule.team), "revision": .int(revision), "timeZone": .string(schedule.timeZone),
            "members": .int(schedule.members.count), "levels": .int(schedule.levels.count), "overrides": .int(schedule.overrides.count),
            "by": .optional(by),
        ], time: now, id: "escalation:schedule:\(schedule.team):\(revision)")
        var work = Work(context, now: now, cache: engine.cache)
        let started = try EscalationEvents(engine: engine).startWaiting(try store.unrouted(team: schedule.team), &work)
        try work.flush()
        return CommandOutcome(result: ["team": .string(schedule.team), "revision": .int(revision)], events: [event] + started)
    }

    /// R-ESC-5: who is on call for a team at an instant, and the next hand-offs.
    func onCall(_ command: IncomingCommand, store: EscalationStore) throws -> CommandOutcome {
        let errors = ValidationErrors()
        let r = try FieldReader.body(command.body, errors: errors)
        let team = Identifier.read(r, "team")
        let at = r.timestamp("at", required: false) ?? engine.clock.now()
        let count = r.integer("handoffs", required: false, range: 1...50) ?? 5
        try errors.throwIfAny()
        guard let rotation = try engine.cache.rotation(team!, store: store) else {
            throw CommandRejection(code: ErrorCode.unknownTeam, field: "team", message: "team \(team!) has no on-call schedule (oncall.schedule.set)")
        }
        let t = Instant.seconds(at)
        return CommandOutcome(result: [
            "team": .string(team!), "timeZone": .string(rotation.schedule.timeZone), "at": .string(RFC3339.format(at)),
            "onCall": rotation.onCall(at: t)?.json ?? .null,
            "handoffs": .array(rotation.handoffs(after: t, count: count).map { ["at": .string(Instant.format($0.at)), "onCall": $0.onCall?.json ?? .null] }),
            "levels": .array(rotation.schedule.levels.map(\.json)),
        ])
    }

    func acknowledge(_ command: IncomingCommand, store: EscalationStore, context: CommandContext) throws -> CommandOutcome {
        let ack = try Acknowledge.parse(command.body)
        guard var e = try store.escalations([ack.escalationId])[ack.escalationId] else {
            throw CommandRejection(code: ErrorCode.unknownEscalation, field: "escalationId", message: "no escalation \(ack.escalationId) is known")
        }
        let now = engine.clock.now()
        var events: [CloudEvent] = []
        if e.acknowledge(by: ack.by, at: Instant.seconds(now)) {
            try store.save([e], at: now)
            events.append(context.events.make(EventType.escalationAcknowledged, subject: e.trackingNumber, data: [
                "escalationId": .string(e.id), "trackingNumber": .string(e.trackingNumber), "by": .string(ack.by),
                "acknowledgedAt": .string(Instant.format(e.acknowledgedAt!)),
                "level": e.lastLevel.map { .int($0 + 1) } ?? .null, "attempt": e.lastAttempt.map { .int($0) } ?? .null,
            ], time: now, id: "escalation:acknowledged:\(e.id)"))
        }
        return CommandOutcome(result: [
            "escalationId": .string(e.id), "state": .string(e.state.rawValue), "acknowledgedBy": .optional(e.acknowledgedBy),
            "acknowledgedAt": .optional(e.acknowledgedAt.map(Instant.format)),
        ], events: events)
    }

    func list(_ command: IncomingCommand, store: EscalationStore) throws -> CommandOutcome {
        let errors = ValidationErrors()
        let r = try FieldReader.body(command.body, errors: errors)
        let team = Identifier.read(r, "team")
        let state = r.string("state", required: false, maxLength: 20) ?? "open"
        let limit = r.integer("limit", required: false, range: 1...500) ?? 100
        let states: [EscalationState]
        switch state {
        case "all": states = [.unrouted, .open, .acknowledged, .resolved]
        case "open": states = [.unrouted, .open] // waiting for a schedule is open too
        case "acknowledged", "resolved": states = [EscalationState(rawValue: state)!]
        default:
            errors.add(ErrorCode.unknownValue, "state", "state must be one of open, acknowledged, resolved, all; got \"\(state)\"")
            states = []
        }
        try errors.throwIfAny()
        guard try store.scheduleRevision(team!) != nil || store.hasEscalations(team: team!) else {
            throw CommandRejection(code: ErrorCode.unknownTeam, field: "team", message: "team \(team!) has no on-call schedule and no escalation")
        }
        let list = try store.list(team: team!, states: states, limit: limit)
        return CommandOutcome(result: ["team": .string(team!), "escalations": .array(list.map(EscalationEngine.summary))])
    }
}

/// The three handlers of the `escalation` service, sharing one cache.
public struct EscalationHandlers: Sendable {
    public let commands: EscalationCommands
    public let events: EscalationEvents
    public let timers: EscalationTimers

    public init(clock: any CSSModel.Clock) {
        let engine = EscalationEngine(cache: EscalationCache(), clock: clock)
        commands = EscalationCommands(engine: engine)
        events = EscalationEvents(engine: engine)
        timers = EscalationTimers(engine: engine)
    }
}
