import CSSCalendar
import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation
import Synchronization

/// Which customer each change belongs to (it never changes), as far as this process has seen:
/// enough to order a change's schedules and completions with its customer's other commands.
/// Bounded; a change it does not know is still handled correctly, only without that ordering.
final class ChangeOwners: Sendable {
    private let owners = Mutex<[String: String]>([:])
    let capacity: Int

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    func customer(of changeId: String) -> String? { owners.withLock { $0[changeId] } }

    func record(_ changeId: String, customer: String) {
        owners.withLock { map in
            if map.count >= capacity, map[changeId] == nil {
                // Forget an arbitrary tenth: those changes are ordered by change alone until seen again.
                for key in map.keys.prefix(Swift.max(1, capacity / 10)) { map.removeValue(forKey: key) }
            }
            map[changeId] = customer
        }
    }
}

/// The service's commands: the catalogue, the boards, maintenance windows, and every step of a
/// change's lifecycle (R-CHG-1..6), each checked by the pure lifecycle and scheduling policy.
public struct ChangeCommands: CommandHandler {
    let clock: any CSSModel.Clock
    let owners = ChangeOwners()

    public var commandNames: [String] {
        [CommandName.changeTemplateSet, CommandName.changeBoardSet, CommandName.maintenanceWindowsSet, CommandName.changeRequest,
         CommandName.changeAgree, CommandName.changeAssess, CommandName.changeVote, CommandName.changeSchedule, CommandName.changeDeploy,
         CommandName.changeVerify, CommandName.changeImplement, CommandName.changeComplete, CommandName.changeClose, CommandName.changeCancel,
         CommandName.changeGet, CommandName.changeDirectoryGet]
    }

    public func isReadOnly(_ command: String) -> Bool {
        command == CommandName.changeGet || command == CommandName.changeDirectoryGet
    }

    /// Commands about one change run in order; a request or a customer's windows by customer.
    /// Schedules of different changes of one customer meet on a transaction lock (conflicts, R-CHG-5).
    public func orderingKeys(_ command: IncomingCommand) -> [OrderingKey] {
        let b = command.body
        switch command.name {
        case CommandName.changeTemplateSet: return b["templateId"]?.stringValue.map { [.exclusive("template:\($0)")] } ?? []
        case CommandName.changeBoardSet: return b["board"]?.stringValue.map { [.exclusive("board:\($0)")] } ?? []
        case CommandName.maintenanceWindowsSet, CommandName.changeRequest:
            return b["customerId"]?.stringValue.map { [.exclusive("customer:\($0)")] } ?? []
        case CommandName.changeDirectoryGet: return []
        default:
            guard let id = b["changeId"]?.stringValue?.uppercased() else { return [] }
            // A schedule (the customer's conflict check) and a completion (its Service Update and
            // reminder) touch the customer's rows too: they wait for each other across workers, in
            // delivery order, instead of deadlocking.
            if command.name == CommandName.changeSchedule || command.name == CommandName.changeComplete, let customer = owners.customer(of: id) {
                return [.exclusive("change:\(id)"), .exclusive("customer:\(customer)")]
            }
            return [.exclusive("change:\(id)")]
        }
    }

    public func handle(_ command: IncomingCommand, context: CommandContext) throws -> CommandOutcome {
        let store = ChangeStore(session: context.session)
        let now = clock.now()
        switch command.name {
        case CommandName.changeTemplateSet:
            let (template, by) = try ChangeBodies.template(command.body)
            let revision = try store.setTemplate(template, by: by, at: now)
            return CommandOutcome(result: ["templateId": .string(template.templateId), "revision": .int(revision)])
        case CommandName.changeBoardSet:
            let (name, board, by) = try ChangeBodies.board(command.body)
            let revision = try store.setBoard(name, board, by: by, at: now)
            return CommandOutcome(result: ["board": .string(name.rawValue), "revision": .int(revision)])
        case CommandName.maintenanceWindowsSet:
            return try setWindows(command, store: store, context: context, now: now)
        case CommandName.changeRequest:
            return try request(command, store: store, context: context, now: now)
        case CommandName.changeGet:
            let errors = ValidationErrors()
            let r = try FieldReader.body(command.body, errors: errors)
            let id = ChangeBodies.changeId(r)
            try errors.throwIfAny()
            guard let change = try store.change(id!.uppercased(), lock: false) else { throw Self.unknownChange(id!) }
            return CommandOutcome(result: ChangeCoding.json(change))
        case CommandName.changeDirectoryGet:
            return try directory(command, store: store)
        default:
            return try step(command, store: store, context: context, now: now)
        }
    }

    static func unknownChange(_ id: String) -> CommandRejection {
        CommandRejection(code: ErrorCode.unknownChange, field: "changeId", message: "no change \(id) is known")
    }

    static func customer(_ id: String, _ store: ChangeStore) throws -> CustomerRow {
        guard let c = try store.customer(id) else {
            throw CommandRejection(code: ErrorCode.unknownCustomer, field: "customerId",
                                   message: "no customer \(id) is known to change management (its customer.onboarded has not arrived)")
        }
        return c
    }

    /// `maintenance.windows.set` (R-CHG-4): the customer's routine windows and freezes.
    func setWindows(_ command: IncomingCommand, store: ChangeStore, context: CommandContext, now: Date) throws -> CommandOutcome {
        let body = try ChangeBodies.windows(command.body)
        let customer = try Self.customer(body.customerId, store)
        let plan = MaintenancePlan(timeZone: customer.timeZone, windows: body.windows, freezes: body.freezes)
        do { _ = try plan.windowCalendar() } catch {
            throw CommandRejection(code: ErrorCode.invalidField, field: "windows", message: "the windows cannot be read in \(customer.timeZone): \(error.message)")
        }
        let revision = try store.setPlan(body.customerId, plan, by: body.by, at: now)
        let event = context.events.make(EventType.maintenanceWindowsUpdated, subject: body.customerId,
                                        data: ChangeCoding.plan(body.customerId, plan, revision: revision, by: body.by, at: Instant.seconds(now)),
                                        time: now, id: "change:windows:\(body.customerId):\(revision)")
        return CommandOutcome(result: ["customerId": .string(body.customerId), "revision": .int(revision)], events: [event])
    }

    /// `change.request` (R-CHG-1, R-CHG-2, R-CUS-4).
    func request(_ command: IncomingCommand, store: ChangeStore, context: CommandContext, now: Date) throws -> CommandOutcome {
        let r = try ChangeBodies.request(command.body)
        let customer = try Self.customer(r.customerId, store)
        let errors = ValidationErrors()
        if !customer.changeContacts.contains(r.by) {
            errors.add(ErrorCode.notAChangeContact, "by", "\(r.by) is not an Authorized Change Contact of \(r.customerId); only one may request a change (R-CUS-4)")
        }
        if let templateId = r.templateId, try store.template(templateId) == nil {
            errors.add(ErrorCode.unknownTemplate, "templateId", "the standard-change catalogue has no template \(templateId) (change.template.set)")
        }
        if let incident = r.incident {
            let facts = try store.incidents([incident])[incident]
            if !(facts?.isOpenCriticalOrHigh ?? false) || facts?.customerId != r.customerId {
                let what = facts.map { Self.describe($0) } ?? "no such ticket is known"
                errors.add(ErrorCode.unknownIncident, "incident",
                           "\(incident) is not an open P1 or P2 production incident of \(r.customerId) (\(what)); an Emergency change must address one (R-CHG-1)")
            }
        }
        try errors.throwIfAny()
        let change = Change(id: try store.nextChangeId(), customerId: r.customerId, type: r.type, title: r.title, components: r.components,
                            interruptsService: r.interruptsService, templateId: r.templateId, incident: r.incident, requestedBy: r.by,
                            requestedAt: Instant.seconds(now), details: r.details)
        try store.save(change, at: now)
        owners.record(change.id, customer: change.customerId)
        let event = context.events.make(EventType.changeRequested, subject: change.id, data: ChangeCoding.requested(change), time: now)
        return CommandOutcome(result: ["changeId": .string(change.id), "state": .string(change.state.rawValue)], events: [event])
    }

    static func describe(_ f: IncidentFacts) -> String {
        var parts: [String] = []
        if let c = f.customerId { parts.append("customer \(c)") }
        if let k = f.kind { parts.append(k) }
        if let e = f.environment { parts.append(e) }
        parts.append(f.priority?.rawValue ?? "not classified")
        if let s = f.status { parts.append(s.rawValue) }
        return parts.joined(separator: ", ")
    }

    /// Every lifecycle command: the pure lifecycle decides, the policy checks schedules, the store keeps the result.
    func step(_ command: IncomingCommand, store: ChangeStore, context: CommandContext, now: Date) throws -> CommandOutcome {
        let step = try ChangeBodies.step(command.name, command.body)
        guard let change = try store.change(step.changeId, lock: true) else { throw Self.unknownChange(step.changeId) }
        owners.record(change.id, customer: change.customerId)
        let customer = try Self.customer(change.customerId, store)
        let board: Board? = if case .vote = step.action, let name = change.board { try store.board(name) } else { nil }
        let authority = ChangeAuthority(changeContacts: customer.changeContacts, pointsOfContact: customer.pointsOfContact, board: board)
        let t = Instant.seconds(now)
        guard case .moved(let moved, let effects) = try ChangeLifecycle.apply(step.action, to: change, by: step.by, at: t, authority: authority) else {
            return CommandOutcome(result: ChangeCoding.json(change)) // a replay or a late command: the change as it is
        }
        var events: [CloudEvent] = []
        var announcement: CloudEvent?
        if case .schedule(let environment, let window, let maintenance, _) = step.action {
            let notice = try checkSchedule(moved, environment, window, maintenance: maintenance, customer: customer, store: store, now: t)
            if environment == .production, notice.announce {
                announcement = (context.events.make(EventType.maintenanceAnnounced, subject: change.customerId, data: ChangeCoding.announced(
                    moved, from: change.state, by: step.by, at: t, noticeBusinessDays: notice.businessDays,
                    // The customer's change contacts; the requester if the customer has none any more.
                    addressedTo: customer.changeContacts.isEmpty ? [moved.requestedBy] : Array(customer.changeContacts)), time: now))
            }
        }
        try store.save(moved, at: now)
        if case .complete = step.action {
            try store.install(moved, at: now)
            if ServiceUpdates.isServiceUpdate(moved.installed), try store.recordServiceUpdate(moved.customerId, at: now) {
                try ChangeTimers.arm(customerId: moved.customerId, since: t, store: store, now: now)
            }
        }
        var exclusions = 0
        for effect in effects {
            switch effect {
            case .event(let name):
                events.append(context.events.make(name, subject: moved.id, data: ChangeCoding.data(name, moved, from: change.state, by: step.by, at: t, board: board), time: now))
            case .excludeFromSLA(let interval):
                // R-SLA-5: the implementation window (and an overrun) does not count toward the customer's restoration clocks.
                let part = exclusions == 0 && step.action == .implement ? "implementation" : "overrun"
                exclusions += 1
                for (exclusionId, data) in ChangeCoding.exclusions(moved, interval, part: part, by: step.by) {
                    events.append(context.events.make(EventType.slaExclusionAdded, subject: moved.customerId, data: data, time: now,
                                                      id: "change:exclusion:\(moved.customerId):\(exclusionId)"))
                }
            }
        }
        // maintenance.announced goes right after the change.scheduled it belongs to.
        if let announcement { events.append(announcement) }
        return CommandOutcome(result: ChangeCoding.json(moved), events: events)
    }

    /// R-CHG-4, R-CHG-5 for a schedule the lifecycle accepts.
    func checkSchedule(_ change: Change, _ environment: Deployment, _ window: Interval, maintenance: Maintenance?, customer: CustomerRow,
                       store: ChangeStore, now: Int64) throws -> (announce: Bool, businessDays: Int) {
        // Two schedules of one customer's changes are checked one after the other (conflicts).
        try store.session.advisoryLocks(exclusive: ["change:schedules:\(change.customerId)"])
        let plan = try store.plan(change.customerId) ?? MaintenancePlan(timeZone: customer.timeZone, windows: [])
        let calendars = try CustomerCalendars.build(profile: customer.profile)
        let windowCalendar: BusinessCalendar?
        do { windowCalendar = try plan.windowCalendar() } catch {
            throw CommandRejection(code: ErrorCode.invalidField, field: "start", message: "the customer's windows cannot be read: \(error.message)")
        }
        let others = try store.scheduled(customerId: change.customerId, environment: environment, overlapping: window)
        let notice = try ChangePolicy.check(change, environment, window, maintenance: maintenance, now: now, plan: plan, windowCalendar: windowCalendar,
                                            business: calendars.business, others: others)
        let days = notice.announce ? ChangePolicy.businessDaysOfNotice(from: now, to: window.start, business: calendars.business) : 0
        return (notice.announce, days)
    }

    /// `change.directory.get` (R-CHG-6): installed components and the deployment timeline.
    func directory(_ command: IncomingCommand, store: ChangeStore) throws -> CommandOutcome {
        let errors = ValidationErrors()
        let r = try FieldReader.body(command.body, errors: errors)
        let customerId = Identifier.read(r, "customerId")
        try errors.throwIfAny()
        _ = try Self.customer(customerId!, store)
        let timeline = try store.changes(of: customerId!).flatMap(ChangeCoding.timeline).sorted { a, b in
            (a["at"]?.stringValue ?? "", a["changeId"]?.stringValue ?? "") < (b["at"]?.stringValue ?? "", b["changeId"]?.stringValue ?? "")
        }
        return CommandOutcome(result: ["customerId": .string(customerId!), "components": .array(try store.directory(of: customerId!)),
                                       "timeline": .array(timeline)])
    }
}

/// What change management learns from other services' events: customers (change contacts,
/// zone, business calendar) and the tickets an Emergency change may reference.
public struct ChangeEvents: EventHandler {
    let clock: any CSSModel.Clock

    public var eventTypes: [String] {
        [EventType.customerOnboarded, EventType.ticketReceived, EventType.ticketClassified, EventType.ticketReclassified, EventType.ticketTransitioned]
    }

    /// Ticket facts go set-wise: one read and one write of the incidents per batch.
    public func handlesInBatches(_ type: String) -> Bool { type != EventType.customerOnboarded }

    public func handle(_ event: CloudEvent, context: CommandContext) throws -> [CloudEvent] {
        guard event.type == EventType.customerOnboarded else {
            switch try handleBatch([event], context: context)[0] {
            case .success(let caused): return caused
            case .failure(let rejection): throw rejection
            }
        }
        guard let id = event.data["customerId"]?.stringValue, Identifier.isValid(id) else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.customerId", message: "customer.onboarded carries no valid customerId")
        }
        _ = try CustomerCalendars.build(profile: event.data) // refuse what cannot make a calendar before storing it
        let store = ChangeStore(session: context.session)
        let now = clock.now()
        if try store.upsertCustomer(id, profile: event.data, version: event.time, now: now) {
            // R-CHG-7: a customer without any Service Update is overdue a year after it arrived.
            try ChangeTimers.arm(customerId: id, since: Instant.seconds(now), store: store, now: now)
        }
        return []
    }

    public func handleBatch(_ events: [CloudEvent], context: CommandContext) throws -> [Result<[CloudEvent], CommandRejection>] {
        let store = ChangeStore(session: context.session)
        let numbers = events.map { try? IncidentFacts.trackingNumber($0) }
        var facts = try store.incidents(Set(numbers.compactMap { $0 }))
        var changed = Set<String>()
        var results: [Result<[CloudEvent], CommandRejection>] = []
        for (event, number) in zip(events, numbers) {
            do {
                let number = try number ?? IncidentFacts.trackingNumber(event)
                var f = facts[number] ?? IncidentFacts(trackingNumber: number)
                try f.apply(event)
                facts[number] = f
                changed.insert(number)
                results.append(.success([]))
            } catch let rejection as CommandRejection {
                results.append(.failure(rejection))
            }
        }
        try store.save(changed.sorted().map { facts[$0]! })
        return results
    }
}

/// R-CHG-7 with the shared durable timers: one per customer, due when its last Service Update
/// (or its arrival, without one) is a year old.
public struct ChangeTimers: TimerHandler {
    let clock: any CSSModel.Clock

    static func key(_ customerId: String) -> String { "overdue:\(customerId)" }

    static func arm(customerId: String, since: Int64, store: ChangeStore, now: Date) throws {
        let due = Instant.date(ServiceUpdates.overdueSince(since))
        try ChangeStore.timers.arm([DueTimer(key: key(customerId), dueAt: due, payload: ["customerId": .string(customerId)])], now: now, session: store.session)
    }

    public func fire(_ timers: [DueTimer], now: Date, context: CommandContext) throws -> [CloudEvent] {
        let store = ChangeStore(session: context.session)
        var events: [CloudEvent] = []
        for timer in timers {
            guard let customerId = timer.payload["customerId"]?.stringValue, let customer = try store.customer(customerId) else { continue }
            let since = customer.lastUpdateAt ?? customer.firstSeen
            let overdue = ServiceUpdates.overdueSince(Instant.seconds(since))
            // Flagged only when the last update really is more than a year old (a later update re-arms the timer).
            guard overdue <= Instant.seconds(now) else { continue }
            let last = customer.lastUpdateAt.map(RFC3339.format)
            events.append(context.events.make(EventType.serviceUpdateOverdue, subject: customerId, data: [
                "customerId": .string(customerId), "lastUpdateAt": .optional(last), "overdueSince": ChangeCoding.time(overdue),
            ], time: now, id: "change:overdue:\(customerId):\(last ?? "none")"))
        }
        return events
    }
}

/// The three handlers of the `change` service.
public struct ChangeHandlers: Sendable {
    public let commands: ChangeCommands
    public let events: ChangeEvents
    public let timers: ChangeTimers

    public init(clock: any CSSModel.Clock) {
        commands = ChangeCommands(clock: clock)
        events = ChangeEvents(clock: clock)
        timers = ChangeTimers(clock: clock)
    }
}
