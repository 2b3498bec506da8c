import CSSCalendar
import CSSModel
import Foundation

/// One fact about a ticket that moves its clocks, as the SLA service learned it.
///
/// The clock is a fold over these, sorted by when they happened (`at`), so events that
/// arrive out of order (several intake replicas, redelivery) give the same clocks as
/// events in order.
public struct SLAInput: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case classified
        case reclassified
        case transitioned
    }

    public var kind: Kind
    /// When it happened, in microseconds since 1970 (contract times carry fractions).
    public var at: Int64
    /// The CloudEvent it came from: names the effects it causes, breaks ties of `at`.
    public var id: String
    public var priority: Priority?
    public var action: TicketAction?

    public init(kind: Kind, at: Int64, id: String, priority: Priority? = nil, action: TicketAction? = nil) {
        self.kind = kind
        self.at = at
        self.id = id
        self.priority = priority
        self.action = action
    }

    /// The whole second it happened in: the calendar is exact to the second.
    public var second: Int64 { at >= 0 ? at / 1_000_000 : (at - 999_999) / 1_000_000 }

    public static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
    }

    static func ordered(_ a: SLAInput, _ b: SLAInput) -> Bool {
        (a.at, a.kind == .classified ? 0 : 1, a.id) < (b.at, b.kind == .classified ? 0 : 1, b.id)
    }
}

/// What a step of the clock asks the service to do.
public enum SLAEffect: Equatable, Sendable {
    /// Publish an event with this id (derived from the fact, so a replay repeats the id).
    case publish(type: String, id: String, data: JSONObject)
    /// Arm the target's timer at this instant (Unix seconds), replacing any earlier one.
    case arm(target: SLATarget, at: Int64)
    /// No threshold of the target is pending: drop its timer.
    case cancel(target: SLATarget)

    public var eventID: String? {
        if case .publish(_, let id, _) = self { return id }
        return nil
    }
}

/// One target's clock.
public struct TargetClock: Codable, Equatable, Sendable {
    public enum Outcome: String, Codable, Sendable {
        case met
        case missed
    }

    public var target: SLATarget
    public var terms: SLATerms
    /// Closed pauses `[start, end)`: customer waits (R-SLA-4) and the gap between a restore and a reopen.
    public var pauses: [InstantRange] = []
    /// The start of the pause in progress.
    public var pausedSince: Int64?
    public var stoppedAt: Int64?
    public var outcome: Outcome?
    public var usedAtStop: Int64?
    /// Threshold keys already sent (`0.5`, `breach`): never sent twice for this target (R-SLA-6).
    public var sent: [String] = []
    public var stops = 0
    public var pauseCount = 0

    public init(target: SLATarget, terms: SLATerms) {
        self.target = target
        self.terms = terms
    }

    public var isStopped: Bool { stoppedAt != nil }
    public var isPaused: Bool { pausedSince != nil }
    public var isRunning: Bool { !isStopped && !isPaused }
}

/// The SLA clocks of one ticket: a pure state machine.
///
/// (clock, input, environment) → (clock, effects). Every due time comes from the calendar
/// engine; nothing here reads the wall clock: `now` is an argument. Due times are whole
/// seconds counted from `start`, the receipt rounded down to the second.
public struct TicketClock: Codable, Equatable, Sendable {
    public var trackingNumber: String
    public var customerId: String
    public var priority: Priority
    /// The receipt as the contract gave it (with fractions), for `sla.started`.
    public var receivedAt: String
    /// The receipt rounded down to the second: where every clock starts.
    public var start: Int64
    public var targets: [TargetClock]
    /// The warning fractions of the terms the clocks started with (R-SLA-6).
    public var warnAt: [Double]
    /// Ids of events already published for this ticket: a replay publishes none of them again.
    public var emitted: [String] = []

    // MARK: Starting and replaying

    /// The clocks as of a `classified` input (R-SLA-1, R-SLA-3): both targets from the receipt.
    public static func start(trackingNumber: String, customerId: String, priority: Priority, receivedAt: Date,
                             environment env: SLAEnvironment) -> TicketClock {
        let micros = SLAInput.micros(receivedAt)
        let start = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        return TicketClock(trackingNumber: trackingNumber, customerId: customerId, priority: priority,
                           receivedAt: RFC3339.format(receivedAt), start: start,
                           targets: SLATarget.allCases.map { TargetClock(target: $0, terms: env.policy.terms(priority, $0)) },
                           warnAt: env.policy.warnAt)
    }

    /// The clocks after every input, applied in the order they happened, with what was
    /// sent before (`previous`) carried over: thresholds sent stay sent, and events already
    /// published are not returned again. The effects end with the timers to arm or cancel.
    ///
    /// - Parameters:
    ///   - log: every input known for the ticket, in any order; one must be `classified`.
    ///   - added: the input just learned, when there is one: if it happened before inputs
    ///     already applied, the due times it moves are published once more (`reordered`).
    ///   - now: the current instant (Unix seconds), for the views in the events.
    /// - Returns: nil when no `classified` input is known yet (the clocks cannot start).
    /// - Throws: `CalendarError` when an instant lies outside the calendar's years.
    public static func replay(_ log: [SLAInput], trackingNumber: String, customerId: String, receivedAt: Date,
                              previous: TicketClock?, added: SLAInput? = nil, now: Int64, environment env: SLAEnvironment) throws(CalendarError) -> (TicketClock, [SLAEffect])? {
        let sorted = log.sorted(by: SLAInput.ordered)
        guard let first = sorted.firstIndex(where: { $0.kind == .classified }), let priority = sorted[first].priority else { return nil }
        var clock = start(trackingNumber: trackingNumber, customerId: customerId, priority: priority, receivedAt: receivedAt, environment: env)
        var effects: [SLAEffect] = [.publish(type: EventType.slaStarted, id: "sla:\(trackingNumber):started",
                                             data: try clock.data(now: now, env, extra: ["receivedAt": .string(clock.receivedAt),
                                                                                         "startedAt": .string(Self.format(clock.start))]))]
        for (i, input) in sorted.enumerated() where i != first {
            effects += try clock.apply(input, now: now, env)
        }
        if let previous {
            for i in clock.targets.indices {
                if let old = previous.targets.first(where: { $0.target == clock.targets[i].target }) {
                    clock.targets[i].sent = Array(Set(old.sent).union(clock.targets[i].sent)).sorted()
                }
            }
            clock.emitted = previous.emitted
        }
        var fresh = effects.filter { e in e.eventID.map { !clock.emitted.contains($0) } ?? true }
        if previous != nil, let added, added != sorted.last,
           !fresh.contains(where: { if case .publish(EventType.slaRescheduled, _, _) = $0 { return true } else { return false } }) {
            // An input older than the last one applied moved the clocks: publish where they stand now.
            fresh.append(.publish(type: EventType.slaRescheduled, id: "sla:\(trackingNumber):rescheduled:\(added.id):reordered",
                                  data: try clock.data(now: now, env, extra: ["reason": "reordered"])))
        }
        clock.emitted += fresh.compactMap(\.eventID)
        fresh += try clock.timers(env)
        return (clock, fresh)
    }

    /// The due time of every target (nil while paused or stopped): what a reschedule changes.
    public func schedule(_ env: SLAEnvironment) throws(CalendarError) -> [Int64?] {
        try targets.map { t throws(CalendarError) in t.isRunning ? try dueAt(t, env) : nil }
    }

    // MARK: Inputs

    /// Applies one input in time order and returns the events it causes.
    mutating func apply(_ input: SLAInput, now: Int64, _ env: SLAEnvironment) throws(CalendarError) -> [SLAEffect] {
        let at = max(input.second, start)
        switch input.kind {
        case .classified:
            return []
        case .reclassified:
            // R-CLS-3, R-SLA-7: from the original receipt, paused time still excluded; a stopped target keeps its outcome.
            guard let to = input.priority, to != priority else { return [] }
            priority = to
            for i in targets.indices where !targets[i].isStopped {
                targets[i].terms = env.policy.terms(to, targets[i].target)
            }
            return [.publish(type: EventType.slaRescheduled, id: "sla:\(trackingNumber):rescheduled:\(input.id)",
                             data: try data(now: now, env, extra: ["reason": "reclassified"]))]
        case .transitioned:
            guard let action = input.action else { return [] }
            return try transition(action, at: at, input: input, now: now, env)
        }
    }

    private mutating func transition(_ action: TicketAction, at: Int64, input: SLAInput, now: Int64, _ env: SLAEnvironment) throws(CalendarError) -> [SLAEffect] {
        switch action {
        case .respond:
            return try stop(.response, at: at, env)
        case .awaitCustomer:
            guard let i = index(.restoration), targets[i].isRunning else { return [] }
            let remaining = try max(0, targets[i].terms.allowedSeconds - used(targets[i], until: at, env))
            targets[i].pausedSince = at
            targets[i].pauseCount += 1
            let n = targets[i].pauseCount
            return [
                .publish(type: EventType.slaPaused, id: "sla:\(trackingNumber):restoration:paused:\(n)", data: base(.restoration, [
                    "reason": "await_customer", "pausedAt": .string(Self.format(at)), "remainingSeconds": .int(Int(remaining))])),
                .publish(type: EventType.slaRescheduled, id: "sla:\(trackingNumber):rescheduled:\(input.id)",
                         data: try data(now: now, env, extra: ["reason": "paused"])),
            ]
        case .customerReplied:
            guard let i = index(.restoration), !targets[i].isStopped, let since = targets[i].pausedSince else { return [] }
            return try resume(i, from: since, at: at, reason: "customer_replied", input: input, now: now, env)
        case .restore:
            // Restoring answers the customer too: a response still running stops with it.
            return try stop(.response, at: at, env) + stop(.restoration, at: at, env)
        case .close:
            return try stop(.response, at: at, env) + stop(.restoration, at: at, env)
        case .reopen:
            // Restoration resumes where it stood: the time it spent restored does not count.
            guard let i = index(.restoration), let stopped = targets[i].stoppedAt else { return [] }
            targets[i].stoppedAt = nil
            targets[i].outcome = nil
            targets[i].usedAtStop = nil
            targets[i].terms = env.policy.terms(priority, .restoration)
            targets[i].pauseCount += 1
            return try resume(i, from: stopped, at: at, reason: "reopen", input: input, now: now, env)
        }
    }

    private mutating func resume(_ i: Int, from since: Int64, at: Int64, reason: String, input: SLAInput, now: Int64,
                                 _ env: SLAEnvironment) throws(CalendarError) -> [SLAEffect] {
        targets[i].pausedSince = nil
        if at > since { targets[i].pauses.append(InstantRange(start: since, end: at)) }
        let due = try dueAt(targets[i], env)
        let n = targets[i].pauseCount
        return [
            .publish(type: EventType.slaResumed, id: "sla:\(trackingNumber):restoration:resumed:\(n)", data: base(.restoration, [
                "reason": .string(reason), "resumedAt": .string(Self.format(at)), "pausedSeconds": .int(Int(max(0, at - since))),
                "totalPausedSeconds": .int(Int(pausedSeconds(targets[i], now: now))), "dueAt": .string(Self.format(due))])),
            .publish(type: EventType.slaRescheduled, id: "sla:\(trackingNumber):rescheduled:\(input.id)",
                     data: try data(now: now, env, extra: ["reason": .string(reason == "reopen" ? "reopened" : "resumed")])),
        ]
    }

    private mutating func stop(_ target: SLATarget, at: Int64, _ env: SLAEnvironment) throws(CalendarError) -> [SLAEffect] {
        guard let i = index(target), !targets[i].isStopped else { return [] }
        if let since = targets[i].pausedSince {
            if at > since { targets[i].pauses.append(InstantRange(start: since, end: at)) }
            targets[i].pausedSince = nil
        }
        let used = try self.used(targets[i], until: at, env)
        let due = try dueAt(targets[i], env)
        targets[i].stoppedAt = at
        targets[i].usedAtStop = used
        // A stop at the due instant itself has used exactly the allowed time: met (R-SLA-6).
        targets[i].outcome = used <= targets[i].terms.allowedSeconds ? .met : .missed
        targets[i].stops += 1
        return [.publish(type: EventType.slaStopped, id: "sla:\(trackingNumber):\(target.rawValue):stopped:\(targets[i].stops)", data: base(target, [
            "outcome": .string(targets[i].outcome!.rawValue), "businessSecondsUsed": .int(Int(used)),
            "allowedSeconds": .int(Int(targets[i].terms.allowedSeconds)), "dueAt": .string(Self.format(due)),
            "stoppedAt": .string(Self.format(at))]))]
    }

    // MARK: Exclusions and timers

    /// The customer's excluded intervals changed (R-SLA-5): running restoration clocks move.
    public mutating func exclusionsChanged(cause: String, old: SLAEnvironment, now: Int64, _ env: SLAEnvironment) throws(CalendarError) -> [SLAEffect] {
        guard try schedule(old) != schedule(env) else { return [] }
        let id = "sla:\(trackingNumber):rescheduled:exclusion:\(cause)"
        guard !emitted.contains(id) else { return [] }
        emitted.append(id)
        return [.publish(type: EventType.slaRescheduled, id: id, data: try data(now: now, env, extra: ["reason": "excluded"]))]
            + (try timers(env))
    }

    /// A target's timer fired at `now`: every threshold reached by then and not yet sent is
    /// sent, in order, exactly once; never while paused, never after the target stopped (R-SLA-6).
    public mutating func fire(_ target: SLATarget, now: Int64, _ env: SLAEnvironment) throws(CalendarError) -> [SLAEffect] {
        guard let i = index(target) else { return [] }
        var effects: [SLAEffect] = []
        if targets[i].isRunning {
            let due = try dueAt(targets[i], env)
            for (key, seconds, fraction) in thresholds(targets[i], env) where !targets[i].sent.contains(key) {
                let reached = try reachedAt(targets[i], seconds: seconds, env)
                guard reached <= now else { break }
                targets[i].sent.append(key)
                let t = targets[i]
                if let fraction {
                    let id = "sla:\(trackingNumber):\(target.rawValue):warning:\(key)"
                    effects.append(.publish(type: EventType.slaWarning, id: id, data: base(target, [
                        "threshold": .number(fraction), "dueAt": .string(Self.format(due)),
                        "reachedAt": .string(Self.format(reached)), "allowedSeconds": .int(Int(t.terms.allowedSeconds))])))
                } else {
                    effects.append(.publish(type: EventType.slaBreached, id: "sla:\(trackingNumber):\(target.rawValue):breached", data: base(target, [
                        "dueAt": .string(Self.format(due)),
                        "allowedSeconds": .int(Int(t.terms.allowedSeconds))])))
                }
            }
        }
        emitted += effects.compactMap(\.eventID)
        return effects + [try timer(i, env)]
    }

    /// The arm or cancel effect of every target.
    func timers(_ env: SLAEnvironment) throws(CalendarError) -> [SLAEffect] {
        try targets.indices.map { i throws(CalendarError) in try timer(i, env) }
    }

    private func timer(_ i: Int, _ env: SLAEnvironment) throws(CalendarError) -> SLAEffect {
        if let at = try nextThreshold(targets[i], env) { return .arm(target: targets[i].target, at: at) }
        return .cancel(target: targets[i].target)
    }

    /// When the earliest threshold not yet sent is reached; nil when paused, stopped or all sent.
    public func nextThreshold(_ t: TargetClock, _ env: SLAEnvironment) throws(CalendarError) -> Int64? {
        guard t.isRunning else { return nil }
        for (key, seconds, _) in thresholds(t, env) where !t.sent.contains(key) {
            return try reachedAt(t, seconds: seconds, env)
        }
        return nil
    }

    /// Warnings by increasing fraction (R-SLA-6), then the breach at 100 %.
    func thresholds(_ t: TargetClock, _ env: SLAEnvironment) -> [(key: String, seconds: Int64, fraction: Double?)] {
        warnAt.map { (SLAPolicy.key($0), SLAPolicy.thresholdSeconds($0, of: t.terms.allowedSeconds), Optional($0)) }
            + [("breach", t.terms.allowedSeconds, nil)]
    }

    // MARK: Arithmetic through the calendar engine

    /// The target's calendar with what does not count carved out: for restoration, the
    /// customer's pauses, the time it stood restored before a reopen, and the customer's
    /// excluded intervals (R-SLA-4, R-SLA-5); an open pause runs to the end of time.
    func calendar(_ t: TargetClock, _ env: SLAEnvironment) -> BusinessCalendar {
        let base = env.calendars.calendar(t.terms.calendar)
        guard t.target == .restoration else { return base }
        var ranges = t.pauses + env.exclusions
        if let since = t.pausedSince { ranges.append(InstantRange(start: since, end: Int64.max / 4)) }
        return ranges.isEmpty ? base : base.excluding(ranges)
    }

    /// The instant the allowed time is used up, as if the target ran on from now.
    func dueAt(_ t: TargetClock, _ env: SLAEnvironment) throws(CalendarError) -> Int64 {
        try reachedAt(t, seconds: t.terms.allowedSeconds, env)
    }

    func reachedAt(_ t: TargetClock, seconds: Int64, _ env: SLAEnvironment) throws(CalendarError) -> Int64 {
        var calendar = env.calendars.calendar(t.terms.calendar)
        if t.target == .restoration { calendar = calendar.excluding(t.pauses + env.exclusions) }
        return try calendar.adding(businessSeconds: seconds, to: start)
    }

    /// Counted seconds from the start until `until` (or the stop, or the pause, if earlier).
    func used(_ t: TargetClock, until: Int64, _ env: SLAEnvironment) throws(CalendarError) -> Int64 {
        if let u = t.usedAtStop { return u }
        let end = min(until, t.pausedSince ?? until)
        return end <= start ? 0 : try calendar(t, env).businessSeconds(from: start, to: end)
    }

    func pausedSeconds(_ t: TargetClock, now: Int64) -> Int64 {
        t.pauses.reduce(0) { $0 + ($1.end - $1.start) } + (t.pausedSince.map { max(0, now - $0) } ?? 0)
    }

    private func index(_ target: SLATarget) -> Int? { targets.firstIndex { $0.target == target } }

    // MARK: Views

    /// A target as `sla.started`, `sla.rescheduled` and `ticket.get` show it.
    public func view(_ t: TargetClock, now: Int64, _ env: SLAEnvironment) throws(CalendarError) -> JSONValue {
        let used = try self.used(t, until: now, env)
        let state = t.isStopped ? "stopped" : t.isPaused ? "paused" : "running"
        let due: JSONValue = t.isPaused ? .null : .string(Self.format(try dueAt(t, env)))
        return .object([
            "target": .string(t.target.rawValue), "calendar": .string(t.terms.calendar.rawValue),
            "allowedSeconds": .int(Int(t.terms.allowedSeconds)), "dueAt": due, "state": .string(state),
            "breached": .bool(t.sent.contains("breach") || t.outcome == .missed), "outcome": t.outcome.map { .string($0.rawValue) } ?? .null,
            "businessSecondsUsed": .int(Int(used)), "remainingSeconds": .int(Int(max(0, t.terms.allowedSeconds - used))),
            "pausedSeconds": .int(Int(pausedSeconds(t, now: now))), "warnAt": .array(warnAt.map { .number($0) }),
        ])
    }

    func data(now: Int64, _ env: SLAEnvironment, extra: JSONObject = [:]) throws(CalendarError) -> JSONObject {
        var o: JSONObject = ["trackingNumber": .string(trackingNumber), "customerId": .string(customerId), "priority": .string(priority.rawValue)]
        o["targets"] = .array(try targets.map { t throws(CalendarError) in try view(t, now: now, env) })
        for (k, v) in extra { o[k] = v }
        return o
    }

    private func base(_ target: SLATarget, _ extra: JSONObject) -> JSONObject {
        var o: JSONObject = ["trackingNumber": .string(trackingNumber), "customerId": .string(customerId), "priority": .string(priority.rawValue),
                             "target": .string(target.rawValue)]
        for (k, v) in extra { o[k] = v }
        return o
    }

    public static func format(_ seconds: Int64) -> String {
        RFC3339.format(Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}
