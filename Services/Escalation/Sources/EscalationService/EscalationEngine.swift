import CSSCalendar
import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation
import Synchronization

/// What a customer's escalations need from its onboarding: the owning team, the business
/// hours P2–P4 messages wait for, the primary POC and the success manager.
struct CustomerFacts: Sendable {
    var team: String?
    var businessHours: BusinessCalendar
    var primaryContact: Contact?
    var successManager: Contact?

    static func build(profile: JSONValue) throws(CommandRejection) -> CustomerFacts {
        let calendars = try CustomerCalendars.build(profile: profile)
        let primary = profile["contacts"]?.arrayValue?.first { $0["primary"]?.boolValue == true }
        return CustomerFacts(team: profile["team"]?.stringValue, businessHours: calendars.business,
                             primaryContact: Contact(json: primary), successManager: Contact(json: profile["successManager"]))
    }
}

/// Built once per customer onboarding and per schedule revision: a calendar holds a century of
/// zone offsets and holidays, a rotation its zone's rules, far too much to rebuild per message.
final class EscalationCache: Sendable {
    private let customers = Mutex<[String: (version: Date, facts: CustomerFacts)]>([:])
    private let rotations = Mutex<[String: (revision: Int, rotation: Rotation)]>([:])

    func customer(_ id: String, store: EscalationStore) throws -> CustomerFacts? {
        // The version alone first: parsing a profile (a holiday calendar may be 200,000 characters) per message would cost more than the rest.
        guard let current = try store.customerVersion(id) else { return nil }
        if let hit = customers.withLock({ $0[id] }), hit.version == current { return hit.facts }
        guard let (profile, version) = try store.customer(id) else { return nil }
        let facts = try CustomerFacts.build(profile: profile)
        customers.withLock { $0[id] = (version, facts) }
        return facts
    }

    func rotation(_ team: String, store: EscalationStore) throws -> Rotation? {
        guard let current = try store.scheduleRevision(team) else { return nil }
        if let hit = rotations.withLock({ $0[team] }), hit.revision == current { return hit.rotation }
        guard let (schedule, revision) = try store.schedule(team) else { return nil }
        let rotation: Rotation
        do {
            rotation = try Rotation(schedule)
        } catch {
            throw CommandRejection(code: ErrorCode.invalidField, field: "timeZone", message: "the schedule of \(team) cannot be used: \(error.message)")
        }
        rotations.withLock { $0[team] = (revision, rotation) }
        return rotation
    }
}

/// The work of the service's handlers: opening, routing, advancing and ending escalations,
/// and turning a chain's effects into messages, events and timers.
struct EscalationEngine: Sendable {
    let cache: EscalationCache
    let clock: any CSSModel.Clock

    static let timers = TimerStore(schema: EscalationSchema.name)

    /// Stores new escalations (one statement) and starts those that can be routed; one that exists
    /// already is the same fact again and does nothing. Returns the events, by escalation id.
    func open(_ list: [Escalation], _ work: inout Work) throws -> [String: [CloudEvent]] {
        guard !list.isEmpty else { return [:] }
        let fresh = try work.store.insert(list, at: work.now)
        var out: [String: [CloudEvent]] = [:]
        for var e in list where fresh.contains(e.id) {
            try route(&e, &work)
            out[e.id] = try advance(&e, &work)
            work.changed[e.id] = e
        }
        return out
    }

    /// Routes an unrouted escalation once its customer and (for support staff) its team's schedule
    /// are known; leaves it unrouted otherwise, holding the locks that make the onboarding or
    /// schedule that arrives later find it.
    func route(_ e: inout Escalation, _ work: inout Work) throws {
        guard e.state == .unrouted else { return }
        var customer = try work.customer(e.customerId)
        if customer == nil {
            try work.store.lock(customer: e.customerId, exclusive: false)
            customer = try work.customer(e.customerId, again: true)
        }
        guard let customer else { return }
        if e.isCustomerEscalation {
            let recipients = [customer.primaryContact, customer.successManager].compactMap { $0 }
            e.route(levels: [], customerRecipients: recipients, now: Instant.seconds(work.now))
            return
        }
        guard let team = customer.team else { return }
        e.team = team
        var rotation = try work.rotation(team)
        if rotation == nil {
            try work.store.lock(team: team, exclusive: false)
            rotation = try work.rotation(team, again: true)
        }
        guard let rotation else { return }
        e.route(levels: rotation.schedule.levels, now: Instant.seconds(work.now))
    }

    /// Sends what is due of the chain at `now`; records its timer for what comes next.
    func advance(_ e: inout Escalation, _ work: inout Work) throws -> [CloudEvent] {
        guard e.state == .open, let customer = try work.customer(e.customerId) else { return [] }
        let rotation = try e.team.map { try work.rotation($0) } ?? nil
        // R-ESC-1: P1 never waits; P2–P4 messages go out in the customer's business hours.
        let env = ChainEnvironment(rotation: rotation, successManager: customer.successManager,
                                   businessHours: e.priority == .p1 ? nil : customer.businessHours)
        let now = work.now, factory = work.context.events
        var events: [CloudEvent] = []
        for effect in e.advance(now: Instant.seconds(now), env) {
            switch effect {
            case .arm(let at):
                work.timers.append(DueTimer(key: e.id, dueAt: Instant.date(at)))
            case .send(let level, let attempt, let role, let recipients, let at):
                events.append(Self.sent(e, level: level, attempt: attempt, role: role, recipients: recipients, at: at, factory: factory))
            case .skip(let level, let role, let reason, let at):
                events.append(factory.make(EventType.escalationSkipped, subject: e.trackingNumber, data: [
                    "escalationId": .string(e.id), "trackingNumber": .string(e.trackingNumber), "level": .int(level + 1),
                    "role": .string(role), "reason": .string(reason), "at": .string(Instant.format(at)),
                ], time: now, id: "escalation:skipped:\(e.id)/\(level + 1)"))
            case .hold(let level, let until, let at):
                events.append(factory.make(EventType.escalationHeld, subject: e.trackingNumber, data: [
                    "escalationId": .string(e.id), "trackingNumber": .string(e.trackingNumber), "level": .int(level + 1),
                    "priority": .string(e.priority.rawValue), "until": .string(Instant.format(until)),
                    "reason": "outside_business_hours", "at": .string(Instant.format(at)),
                ], time: now, id: "escalation:held:\(e.id)/\(level + 1)/\(until)"))
            }
        }
        work.changed[e.id] = e
        return events
    }

    /// `escalation.sent`, carrying the message on `css.escalations` as its companion: both are
    /// written to the outbox together. Ids derive from (escalation, level, attempt) (R-ESC-3).
    static func sent(_ e: Escalation, level: Int, attempt: Int, role: String, recipients: [Contact], at: Int64,
                     factory: EventFactory) -> CloudEvent {
        let routingKey = e.isCustomerEscalation ? "customer.\(e.customerId)" : "oncall.\(e.team ?? "unassigned").\(e.priority.rawValue.lowercased())"
        let messageID = "\(e.id)/\(level + 1)/\(attempt)"
        var body: JSONObject = [
            "escalationId": .string(e.id), "trackingNumber": .string(e.trackingNumber), "customerId": .string(e.customerId),
            "team": .optional(e.isCustomerEscalation ? nil : e.team), "priority": .string(e.priority.rawValue), "reason": .string(e.reason.rawValue),
            "target": .optional(e.target), "threshold": e.threshold.map(JSONValue.number) ?? .null,
            "dueAt": .optional(e.dueAt.map(Instant.format)), "level": .int(level + 1), "role": .string(role), "attempt": .int(attempt),
            "recipient": recipients.first?.json ?? .null, "recipients": .array(recipients.map(\.json)),
            "phoneRequired": .bool(e.phoneRequired), "sentAt": .string(Instant.format(at)),
        ]
        body["acknowledge"] = ["exchange": .string(ExchangeName.commands), "routingKey": .string(CommandName.escalationAck),
                               "body": ["escalationId": .string(e.id)]]
        var data = body
        data["acknowledge"] = nil
        data["recipients"] = nil
        data["routingKey"] = .string(routingKey)
        data["messageId"] = .string(messageID)
        var event = factory.make(EventType.escalationSent, subject: e.trackingNumber, data: .object(data), time: Instant.date(at),
                                 id: "escalation:sent:\(messageID)")
        event.companion = CloudEvent.Companion(exchange: ExchangeName.escalations, routingKey: routingKey, messageID: messageID, body: .object(body))
        return event
    }

    /// Ends the live escalations (`live`, locked by the caller) that `matching` selects.
    func resolve(_ live: [Escalation], cause: String, _ work: inout Work, matching: (Escalation) -> Bool = { _ in true }) -> [CloudEvent] {
        var events: [CloudEvent] = []
        for var e in live where matching(e) {
            guard e.resolve(cause: cause, at: Instant.seconds(work.now)) else { continue }
            work.changed[e.id] = e
            events.append(work.context.events.make(EventType.escalationResolved, subject: e.trackingNumber, data: [
                "escalationId": .string(e.id), "trackingNumber": .string(e.trackingNumber), "cause": .string(cause),
                "at": .string(RFC3339.format(work.now)),
            ], time: work.now, id: "escalation:resolved:\(e.id)"))
        }
        return events
    }

    /// Summary of an escalation for queries and replies.
    static func summary(_ e: Escalation) -> JSONValue {
        let level = e.lastLevel.flatMap { e.levels.indices.contains($0) ? e.levels[$0] : nil }
        return [
            "escalationId": .string(e.id), "trackingNumber": .string(e.trackingNumber), "customerId": .string(e.customerId),
            "team": .optional(e.team), "priority": .string(e.priority.rawValue), "reason": .string(e.reason.rawValue),
            "target": .optional(e.target), "threshold": e.threshold.map(JSONValue.number) ?? .null,
            "dueAt": .optional(e.dueAt.map(Instant.format)), "state": .string(e.state.rawValue),
            "level": e.lastLevel.map { .int($0 + 1) } ?? .null,
            "role": .optional(e.isCustomerEscalation && e.lastLevel != nil ? "primary_contact" : level?.role.rawValue),
            "attempt": e.lastAttempt.map { .int($0) } ?? .null,
            "openedAt": .string(Instant.format(e.openedAt)), "lastSentAt": .optional(e.lastSentAt.map(Instant.format)),
            "nextAt": .optional(e.next.map { Instant.format($0.at) }), "heldUntil": .optional(e.heldUntil.map(Instant.format)),
            "acknowledgedBy": .optional(e.acknowledgedBy), "acknowledgedAt": .optional(e.acknowledgedAt.map(Instant.format)),
            "resolvedAt": .optional(e.resolvedAt.map(Instant.format)), "resolution": .optional(e.resolution),
        ]
    }
}

/// One unit of work (a batch of events, a command, a firing): its statements, the customers
/// and rotations it looked up, and what it changed, written together by ``flush()``: one
/// statement for the timers armed, one for the escalations changed.
struct Work {
    let store: EscalationStore
    let context: CommandContext
    let now: Date
    let cache: EscalationCache
    var timers: [DueTimer] = []
    var changed: [String: Escalation] = [:]
    private var customers: [String: CustomerFacts?] = [:]
    private var rotations: [String: Rotation?] = [:]

    init(_ context: CommandContext, now: Date, cache: EscalationCache) {
        self.store = EscalationStore(session: context.session)
        self.context = context
        self.now = now
        self.cache = cache
    }

    /// - Parameter again: look again (after taking the lock that waits for an onboarding being committed).
    mutating func customer(_ id: String, again: Bool = false) throws -> CustomerFacts? {
        if !again, let hit = customers[id] { return hit }
        let found = try cache.customer(id, store: store)
        customers[id] = found
        return found
    }

    mutating func rotation(_ team: String, again: Bool = false) throws -> Rotation? {
        if !again, let hit = rotations[team] { return hit }
        let found = try cache.rotation(team, store: store)
        rotations[team] = found
        return found
    }

    func flush() throws {
        try EscalationEngine.timers.arm(timers, now: now, session: context.session)
        try store.save(changed.keys.sorted().map { changed[$0]! }, at: now)
    }
}
