import CSSCalendar
import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation
import Synchronization

/// A customer's calendars and terms, built from its `customer.onboarded` data.
struct CustomerTerms: Sendable {
    var calendars: SLACalendars
    var policy: SLAPolicy

    /// - Throws: ``CommandRejection`` when the profile cannot make a calendar or a policy:
    ///   intake refuses those, so it is a bug upstream.
    static func build(profile: JSONValue) throws(CommandRejection) -> CustomerTerms {
        let calendars = try CustomerCalendars.build(profile: profile)
        return CustomerTerms(calendars: SLACalendars(business: calendars.business, always: calendars.always),
                             policy: try SLAPolicy.from(slaPolicy: profile["slaPolicy"]))
    }
}

/// Calendars per customer and onboarding version, built once: a calendar holds a century
/// of zone offsets and holidays, far too much to rebuild per event.
final class CustomerCache: Sendable {
    private let entries = Mutex<[String: (version: Date, terms: CustomerTerms)]>([:])

    func terms(_ customerId: String, store: SLAStore) throws -> CustomerTerms? {
        guard let (profile, version) = try store.customer(customerId) else { return nil }
        if let hit = entries.withLock({ $0[customerId] }), hit.version == version { return hit.terms }
        let terms = try CustomerTerms.build(profile: profile)
        entries.withLock { $0[customerId] = (version, terms) }
        return terms
    }
}

/// What the service's three handlers share: the customer cache and the clock logic.
struct SLAEngine: Sendable {
    let cache: CustomerCache
    let clock: any CSSModel.Clock

    static func timerKey(_ trackingNumber: String, _ target: SLATarget) -> String { "\(trackingNumber)/\(target.rawValue)" }

    static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    /// Folds the ticket's facts into its clocks (no I/O); the effects to carry out. Leaves the
    /// row untouched when it throws, so a refused fact writes nothing.
    func step(_ row: inout SLATicketRow, added: SLAInput?, now: Date, customers: inout CustomerLookup) throws -> [SLAEffect] {
        guard let receivedAt = row.receivedAt, let customerId = row.customerId,
              let (terms, exclusions) = try customers.get(customerId) else { return [] }
        let env = SLAEnvironment(calendars: terms.calendars, policy: row.policy ?? terms.policy, exclusions: exclusions)
        let replayed: (TicketClock, [SLAEffect])?
        do {
            replayed = try TicketClock.replay(row.log, trackingNumber: row.trackingNumber, customerId: customerId, receivedAt: receivedAt,
                                              previous: row.clock, added: added, now: Self.seconds(now), environment: env)
        } catch {
            throw CommandRejection(code: ErrorCode.invalidField, field: "data", message: "the ticket's clocks cannot be computed: \(error.message)")
        }
        guard let (clock, effects) = replayed else { return [] }
        row.clock = clock
        row.policy = env.policy
        return effects
    }
}

/// Customers' terms and exclusions, read once per unit of work.
struct CustomerLookup {
    let cache: CustomerCache
    let store: SLAStore
    private var seen: [String: (CustomerTerms, [InstantRange])?] = [:]

    init(cache: CustomerCache, store: SLAStore) {
        self.cache = cache
        self.store = store
    }

    mutating func get(_ customerId: String) throws -> (CustomerTerms, [InstantRange])? {
        if let hit = seen[customerId] { return hit }
        var terms = try cache.terms(customerId, store: store)
        if terms == nil {
            // Not known yet: wait for an onboarding of it that is committing, then look again. Either
            // it commits first and is seen now, or it starts after this ticket commits and finds it waiting.
            try store.lockCustomer(customerId, exclusive: false)
            terms = try cache.terms(customerId, store: store)
        }
        let found = try terms.map { ($0, try store.exclusions(of: customerId).map(\.range)) }
        seen[customerId] = found
        return found
    }
}

/// The effects of a unit of work, carried out together: one statement for the timers armed,
/// one for those cancelled, whatever the number of tickets.
struct EffectSink {
    let now: Date
    let factory: EventFactory
    private var timers: [String: Date?] = [:]

    init(now: Date, factory: EventFactory) {
        self.now = now
        self.factory = factory
    }

    /// Records the timer changes; returns the events.
    mutating func take(_ effects: [SLAEffect], trackingNumber: String) -> [CloudEvent] {
        var events: [CloudEvent] = []
        for effect in effects {
            switch effect {
            case .publish(let type, let id, let data):
                events.append(factory.make(type, subject: trackingNumber, data: .object(data), time: now, id: id))
            case .arm(let target, let at):
                timers[SLAEngine.timerKey(trackingNumber, target)] = Date(timeIntervalSince1970: TimeInterval(at))
            case .cancel(let target):
                timers[SLAEngine.timerKey(trackingNumber, target)] = .some(nil)
            }
        }
        return events
    }

    func flush(_ session: PostgresSession) throws {
        let store = TimerStore(schema: SLASchema.name)
        try store.cancel(timers.filter { $0.value == nil }.map(\.key).sorted(), session: session)
        try store.arm(timers.compactMap { k, v in v.map { DueTimer(key: k, dueAt: $0) } }.sorted { $0.key < $1.key }, now: now, session: session)
    }
}

/// The SLA service's reaction to other services' events: customers, classification,
/// reclassification, transitions, excluded intervals.
public struct SLAEvents: EventHandler {
    let engine: SLAEngine

    public var eventTypes: [String] {
        [EventType.customerOnboarded, EventType.ticketClassified, EventType.ticketReclassified, EventType.ticketTransitioned,
         EventType.slaExclusionAdded]
    }

    /// Ticket facts go set-wise: one read, one write and one timer statement per batch.
    public func handlesInBatches(_ type: String) -> Bool {
        type == EventType.ticketClassified || type == EventType.ticketReclassified || type == EventType.ticketTransitioned
    }

    public func handle(_ event: CloudEvent, context: CommandContext) throws -> [CloudEvent] {
        let store = SLAStore(session: context.session)
        switch event.type {
        case EventType.customerOnboarded:
            return try onboarded(event, store: store, context: context)
        case EventType.slaExclusionAdded:
            return try exclusionAdded(event, store: store, context: context)
        default:
            switch try handleBatch([event], context: context)[0] {
            case .success(let events): return events
            case .failure(let rejection): throw rejection
            }
        }
    }

    /// A new customer, or new settings: tickets that waited for it start their clocks.
    /// Running tickets keep the terms they started with.
    func onboarded(_ event: CloudEvent, store: SLAStore, context: CommandContext) throws -> [CloudEvent] {
        guard let id = event.data["customerId"]?.stringValue else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.customerId", message: "customer.onboarded carries no customerId")
        }
        _ = try CustomerTerms.build(profile: event.data) // refuse what cannot make a calendar before storing it
        // Tickets that find the customer unknown hold this lock shared until they commit: once it is
        // ours, every ticket that waits for this customer is committed and found below.
        try store.lockCustomer(id, exclusive: true)
        guard try store.upsertCustomer(id, profile: event.data, version: event.time) else { return [] }
        let now = engine.clock.now()
        var customers = CustomerLookup(cache: engine.cache, store: store)
        var sink = EffectSink(now: now, factory: context.events)
        var rows = try store.tickets(try store.waitingTickets(of: id))
        var events: [CloudEvent] = []
        for number in rows.keys.sorted() {
            events += sink.take(try engine.step(&rows[number]!, added: nil, now: now, customers: &customers), trackingNumber: number)
        }
        try store.save(rows.values.filter { $0.clock != nil }, at: now)
        try sink.flush(context.session)
        return events
    }

    /// `ticket.classified`, `ticket.reclassified`, `ticket.transitioned`: one more fact in each ticket's log.
    /// Everything that can refuse a fact is decided before anything is written.
    public func handleBatch(_ events: [CloudEvent], context: CommandContext) throws -> [Result<[CloudEvent], CommandRejection>] {
        let store = SLAStore(session: context.session)
        let now = engine.clock.now()
        var rows = try store.tickets(Set(events.compactMap { $0.data["trackingNumber"]?.stringValue ?? $0.subject }))
        var customers = CustomerLookup(cache: engine.cache, store: store)
        var sink = EffectSink(now: now, factory: context.events)
        var changed = Set<String>()
        var results: [Result<[CloudEvent], CommandRejection>] = []
        for event in events {
            do {
                guard let number = event.data["trackingNumber"]?.stringValue ?? event.subject else {
                    throw CommandRejection(code: ErrorCode.missingField, field: "data.trackingNumber", message: "\(event.type) carries no trackingNumber")
                }
                var row = rows[number]!
                guard let input = try Self.learn(event, into: &row) else {
                    results.append(.success([]))
                    continue
                }
                let effects = try engine.step(&row, added: input, now: now, customers: &customers)
                rows[number] = row
                changed.insert(number)
                results.append(.success(sink.take(effects, trackingNumber: number)))
            } catch let rejection as CommandRejection {
                results.append(.failure(rejection))
            }
        }
        try store.save(changed.sorted().map { rows[$0]! }, at: now)
        try sink.flush(context.session)
        return results
    }

    /// Adds the event's fact to the row's log; nil when the row already has it (redelivery)
    /// or it changes nothing (a second classification).
    static func learn(_ event: CloudEvent, into row: inout SLATicketRow) throws -> SLAInput? {
        let input = try Self.input(event)
        if row.log.contains(where: { $0.id == input.id }) { return nil }
        if input.kind == .classified {
            guard let received = event.data["receivedAt"]?.stringValue.flatMap(RFC3339.parse) else {
                throw CommandRejection(code: ErrorCode.missingField, field: "data.receivedAt", message: "ticket.classified carries no RFC 3339 receivedAt")
            }
            guard !row.log.contains(where: { $0.kind == .classified }) else { return nil } // one classification per ticket
            row.receivedAt = received
            row.customerId = event.data["customerId"]?.stringValue ?? row.customerId
        } else if row.customerId == nil {
            row.customerId = event.data["customerId"]?.stringValue
        }
        guard row.customerId != nil || input.kind != .classified else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.customerId", message: "ticket.classified carries no customerId")
        }
        row.log.append(input)
        return input
    }

    static func input(_ event: CloudEvent) throws -> SLAInput {
        func priority(_ key: String) throws -> Priority {
            guard let raw = event.data[key]?.stringValue, let p = Priority(rawValue: raw) else {
                throw CommandRejection(code: ErrorCode.invalidField, field: "data.\(key)", message: "data.\(key) must be P1..P4")
            }
            return p
        }
        switch event.type {
        case EventType.ticketClassified:
            return SLAInput(kind: .classified, at: SLAInput.micros(event.data["receivedAt"]?.stringValue.flatMap(RFC3339.parse) ?? event.time),
                            id: event.id, priority: try priority("priority"))
        case EventType.ticketReclassified:
            let at = event.data["at"]?.stringValue.flatMap(RFC3339.parse) ?? event.time
            return SLAInput(kind: .reclassified, at: SLAInput.micros(at), id: event.id, priority: try priority("to"))
        default:
            guard let raw = event.data["action"]?.stringValue, let action = TicketAction(rawValue: raw) else {
                throw CommandRejection(code: ErrorCode.invalidField, field: "data.action", message: "data.action must be one of \(TicketAction.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let at = event.data["at"]?.stringValue.flatMap(RFC3339.parse) else {
                throw CommandRejection(code: ErrorCode.missingField, field: "data.at", message: "ticket.transitioned carries no RFC 3339 time in data.at")
            }
            return SLAInput(kind: .transitioned, at: SLAInput.micros(at), id: event.id, action: action)
        }
    }

    /// R-SLA-5: an interval that no longer counts toward the customer's restoration clocks.
    func exclusionAdded(_ event: CloudEvent, store: SLAStore, context: CommandContext) throws -> [CloudEvent] {
        let exclusion: Exclusion
        do {
            exclusion = try AddExclusion.parse(event.data, requireBy: false).exclusion
        } catch {
            // The same reasons as the command's, named where they are in the event.
            throw CommandRejection(error.errors.map { e in CommandError(code: e.code, field: e.field.map { "data.\($0)" }, message: e.message) })
        }
        guard let terms = try engine.cache.terms(exclusion.customerId, store: store) else {
            throw CommandRejection(code: ErrorCode.unknownCustomer, field: "data.customerId", message: "no customer \(exclusion.customerId) is known to the SLA service")
        }
        // The command path records its exclusion before publishing, so "before" leaves this one out.
        let before = try store.exclusions(of: exclusion.customerId).filter { $0.exclusionId != exclusion.exclusionId }.map(\.range)
        switch try store.record(exclusion, at: engine.clock.now()) {
        case .conflict(let existing):
            throw CommandRejection(code: ErrorCode.conflict, field: "data.exclusionId",
                                   message: "exclusion \(existing.exclusionId) already covers \(RFC3339.format(existing.start)) to \(RFC3339.format(existing.end))")
        case .added, .same:
            break
        }
        let after = try store.exclusions(of: exclusion.customerId).map(\.range)
        let now = engine.clock.now()
        var sink = EffectSink(now: now, factory: context.events)
        var events: [CloudEvent] = []
        var changed: [SLATicketRow] = []
        for row in try store.tickets(try store.openTickets(of: exclusion.customerId)).values.sorted(by: { $0.trackingNumber < $1.trackingNumber }) {
            var row = row
            guard var clock = row.clock else { continue }
            let policy = row.policy ?? terms.policy
            let old = SLAEnvironment(calendars: terms.calendars, policy: policy, exclusions: before)
            let new = SLAEnvironment(calendars: terms.calendars, policy: policy, exclusions: after)
            let effects: [SLAEffect]
            do {
                effects = try clock.exclusionsChanged(cause: "\(exclusion.exclusionId)", old: old, now: SLAEngine.seconds(now), new)
            } catch {
                throw CommandRejection(code: ErrorCode.invalidField, field: "data", message: "the clocks cannot be computed: \(error.message)")
            }
            guard !effects.isEmpty else { continue }
            row.clock = clock
            changed.append(row)
            events += sink.take(effects, trackingNumber: row.trackingNumber)
        }
        try store.save(changed, at: now)
        try sink.flush(context.session)
        return events
    }
}

/// Fires thresholds (R-SLA-6) when a target's timer falls due.
public struct SLATimers: TimerHandler {
    let engine: SLAEngine

    public func fire(_ timers: [DueTimer], now: Date, context: CommandContext) throws -> [CloudEvent] {
        let store = SLAStore(session: context.session)
        var due: [(number: String, target: SLATarget)] = []
        for timer in timers {
            let parts = timer.key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let target = SLATarget(rawValue: parts[1]) else {
                throw CommandRejection(code: ErrorCode.invalidField, field: "timer", message: "timer key \(timer.key) names no ticket target")
            }
            due.append((parts[0], target))
        }
        var rows = try store.clocks(due.map(\.number))
        var customers = CustomerLookup(cache: engine.cache, store: store)
        var sink = EffectSink(now: now, factory: context.events)
        var events: [CloudEvent] = []
        var changed = Set<String>()
        for (number, target) in due {
            guard var row = rows[number], var clock = row.clock, let customerId = row.customerId,
                  let (terms, exclusions) = try customers.get(customerId) else { continue }
            // Firing reads no policy: the targets carry their terms and the clock its warnAt.
            let env = SLAEnvironment(calendars: terms.calendars, policy: terms.policy, exclusions: exclusions)
            let effects: [SLAEffect]
            do {
                effects = try clock.fire(target, now: SLAEngine.seconds(now), env)
            } catch {
                throw CommandRejection(code: ErrorCode.invalidField, field: "timer", message: "the clocks of \(number) cannot be computed: \(error.message)")
            }
            row.clock = clock
            rows[number] = row
            changed.insert(number)
            events += sink.take(effects, trackingNumber: number)
        }
        try store.saveClocks(changed.sorted().map { rows[$0]! }, at: now)
        try sink.flush(context.session)
        return events
    }
}

/// `sla.exclusion.add` (R-SLA-5): an operator, or change management, records an interval
/// that does not count toward the customer's restoration clocks.
public struct AddExclusion: Sendable, Equatable {
    public var customerId: String
    public var exclusionId: String
    public var start: Date
    public var end: Date
    public var reason: String
    public var changeId: String?
    public var by: String?

    public static let maximumSeconds: TimeInterval = 31 * 86400

    var exclusion: Exclusion {
        Exclusion(customerId: customerId, exclusionId: exclusionId, start: start, end: end, reason: reason, changeId: changeId)
    }

    /// - Parameter requireBy: the command names who adds it; an event from change management may not.
    public static func parse(_ body: JSONValue, requireBy: Bool = true) throws(CommandRejection) -> AddExclusion {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let customerId = Identifier.read(r, "customerId")
        let exclusionId = Identifier.read(r, "exclusionId")
        let start = r.timestamp("start")
        let end = r.timestamp("end")
        let reason = r.string("reason", maxLength: 500)
        let changeId = r.string("changeId", required: false, maxLength: 64)
        let by = r.string("by", required: requireBy, maxLength: 254)
        if let start, let end {
            if end <= start {
                errors.add(ErrorCode.invalidField, "end", "end must be after start")
            } else if end.timeIntervalSince(start) > maximumSeconds {
                errors.add(ErrorCode.invalidField, "end", "an exclusion may last at most 31 days")
            }
        }
        try errors.throwIfAny()
        return AddExclusion(customerId: customerId!, exclusionId: exclusionId!, start: start!, end: end!, reason: reason!, changeId: changeId, by: by)
    }

    var eventData: JSONValue {
        ["customerId": .string(customerId), "exclusionId": .string(exclusionId), "start": .string(RFC3339.format(start)),
         "end": .string(RFC3339.format(end)), "reason": .string(reason), "changeId": .optional(changeId), "by": .optional(by)]
    }
}

/// The SLA service's commands.
public struct SLACommands: CommandHandler {
    let engine: SLAEngine

    public var commandNames: [String] { [CommandName.slaExclusionAdd] }

    public func isReadOnly(_ command: String) -> Bool { false }

    public func orderingKeys(_ command: IncomingCommand) -> [OrderingKey] {
        command.body["customerId"]?.stringValue.map { [.shared("customer:\($0)")] } ?? []
    }

    public func handle(_ command: IncomingCommand, context: CommandContext) throws -> CommandOutcome {
        let add = try AddExclusion.parse(command.body)
        let store = SLAStore(session: context.session)
        guard try store.customer(add.customerId) != nil else {
            throw CommandRejection(code: ErrorCode.unknownCustomer, field: "customerId", message: "no customer \(add.customerId) is known to the SLA service")
        }
        let result: JSONValue = ["exclusionId": .string(add.exclusionId)]
        switch try store.record(add.exclusion, at: command.receivedAt) {
        case .conflict(let existing):
            throw CommandRejection(code: ErrorCode.conflict, field: "exclusionId",
                                   message: "exclusion \(existing.exclusionId) already covers \(RFC3339.format(existing.start)) to \(RFC3339.format(existing.end))")
        case .same:
            return CommandOutcome(result: result) // the same exclusion again: nothing new to say
        case .added:
            break
        }
        // Recorded here so a second command for the id is decided at once; the clocks move when the
        // service's own event consumer applies the event, the same path as one from change management.
        let event = context.events.make(EventType.slaExclusionAdded, subject: add.customerId, data: add.eventData,
                                        id: "sla:exclusion:\(add.customerId):\(add.exclusionId)")
        return CommandOutcome(result: result, events: [event])
    }
}

/// The three handlers of the `sla` service, sharing one customer cache.
public struct SLAHandlers: Sendable {
    public let commands: SLACommands
    public let events: SLAEvents
    public let timers: SLATimers

    public init(clock: any CSSModel.Clock) {
        let engine = SLAEngine(cache: CustomerCache(), clock: clock)
        commands = SLACommands(engine: engine)
        events = SLAEvents(engine: engine)
        timers = SLATimers(engine: engine)
    }
}
