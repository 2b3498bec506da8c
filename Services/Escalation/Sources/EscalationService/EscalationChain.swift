import CSSCalendar
import CSSModel
import Foundation

/// Why someone is told (the `reason` of the contract's escalation body).
public enum EscalationReason: String, Codable, Sendable {
    case criticalIncident = "critical_incident"
    case slaWarning = "sla.warning"
    case slaBreached = "sla.breached"
    case contactUnavailable = "contact_unavailable"
}

public enum EscalationState: String, Codable, Sendable {
    /// Waiting for its team's schedule or its customer's onboarding before anyone can be told.
    case unrouted
    /// Messages go out as the chain says, until acknowledged or resolved.
    case open
    case acknowledged
    case resolved
}

/// The next message of a chain: which level, which repeat of it, when.
public struct ChainStep: Codable, Equatable, Sendable {
    public var level: Int
    public var attempt: Int
    public var at: Int64
}

/// What advancing a chain does; the service turns these into messages, events and a timer.
public enum ChainEffect: Equatable, Sendable {
    /// A message to `recipients` (the first is the `recipient`) for `level` (0-based), repeat `attempt` (1-based).
    case send(level: Int, attempt: Int, role: String, recipients: [Contact], at: Int64)
    /// A level with nobody to notify, skipped at once (R-ESC-6).
    case skip(level: Int, role: String, reason: String, at: Int64)
    /// A P2–P4 message outside the customer's business hours, held to `until` (R-ESC-1).
    case hold(level: Int, until: Int64, at: Int64)
    /// Wake the chain at `at`.
    case arm(at: Int64)
}

/// What a chain needs to know when it sends: who is on call, the customer's success
/// manager, and the business hours P2–P4 messages wait for (nil: 24x7, P1 never waits).
public struct ChainEnvironment: Sendable {
    public var rotation: Rotation?
    public var successManager: Contact?
    public var businessHours: BusinessCalendar?

    public init(rotation: Rotation?, successManager: Contact?, businessHours: BusinessCalendar?) {
        self.rotation = rotation
        self.successManager = successManager
        self.businessHours = businessHours
    }

    /// Who a level goes to at `t`, or why nobody: its own contact; else the engineer on call,
    /// or the customer's success manager.
    func recipient(_ level: Level, at t: Int64) -> Result<Contact, SkipReason> {
        if let c = level.contact { return .success(c) }
        switch level.role {
        case .engineer:
            return rotation?.onCall(at: t).map { .success($0.member) } ?? .failure(.nobodyOnCall)
        case .successManager:
            return successManager.map { .success($0) } ?? .failure(.noContact)
        case .teamLead, .dutyManager:
            return .failure(.noContact)
        }
    }
}

public enum SkipReason: String, Error, Sendable {
    case nobodyOnCall = "nobody_on_call"
    case noContact = "no_contact"
}

/// One escalation (R-ESC-1..6): a chain of levels for support staff, or a single message to
/// the customer (R-ESC-4), as a pure state machine. The service loads it, calls
/// ``advance(now:_:)`` when it opens and whenever its timer falls due, stores it, and
/// publishes what the effects say; ``acknowledge(by:at:)`` and ``resolve(cause:at:)`` end it.
///
/// Timing: level 0 at once; a level's repeats `every` after its previous message, at most
/// `times` messages; level n+1 `after` level n's first message, which also ends level n's
/// repeats. A level with nobody to notify is skipped and the next notified at once. A
/// message due outside the business hours (P2–P4) waits for the next opening and the chain
/// counts on from when it went out. After a stop (the service down), what is overdue goes
/// out once, and the chain counts on from then: no burst of repeats.
public struct Escalation: Codable, Equatable, Sendable {
    public var id: String
    public var trackingNumber: String
    public var customerId: String
    public var team: String?
    public var priority: Priority
    public var reason: EscalationReason
    public var target: String?
    public var threshold: Double?
    public var dueAt: Int64?
    public var phoneRequired: Bool
    public var openedAt: Int64
    public var state: EscalationState
    /// The team's levels when it was routed; a later schedule does not change them.
    public var levels: [Level]
    /// For an escalation to the customer: the primary POC and the success manager.
    public var customerRecipients: [Contact]?
    public var next: ChainStep?
    /// The first message of the level being sent, and the last message of the chain.
    public var levelStartedAt: Int64?
    public var lastSentAt: Int64?
    public var lastLevel: Int?
    public var lastAttempt: Int?
    public var heldUntil: Int64?
    public var acknowledgedBy: String?
    public var acknowledgedAt: Int64?
    public var resolvedAt: Int64?
    public var resolution: String?

    public init(id: String, trackingNumber: String, customerId: String, team: String?, priority: Priority, reason: EscalationReason,
                target: String? = nil, threshold: Double? = nil, dueAt: Int64? = nil, phoneRequired: Bool, openedAt: Int64) {
        self.id = id
        self.trackingNumber = trackingNumber
        self.customerId = customerId
        self.team = team
        self.priority = priority
        self.reason = reason
        self.target = target
        self.threshold = threshold
        self.dueAt = dueAt
        self.phoneRequired = phoneRequired
        self.openedAt = openedAt
        self.state = .unrouted
        self.levels = []
    }

    public var isCustomerEscalation: Bool { reason == .contactUnavailable }

    /// Starts the chain with the team's levels (or the customer's recipients): the first message is due now.
    public mutating func route(levels: [Level], customerRecipients: [Contact]? = nil, now: Int64) {
        guard state == .unrouted else { return }
        state = .open
        self.levels = levels
        self.customerRecipients = customerRecipients
        next = ChainStep(level: 0, attempt: 1, at: now)
    }

    /// Sends what is due at `now`, and says when to wake next.
    public mutating func advance(now: Int64, _ env: ChainEnvironment) -> [ChainEffect] {
        guard state == .open else { return [] }
        var effects: [ChainEffect] = []
        // Each turn sends or skips one level; a chain has at most `maxLevels` levels to skip.
        for _ in 0...(levels.count + 1) {
            guard let step = next else { return effects }
            if step.at > now { return effects + [.arm(at: step.at)] }
            // A repeat whose next level fell due meanwhile (a timer fired late) is over: the next level goes instead.
            if step.attempt > 1, step.level + 1 < levels.count, let started = levelStartedAt, started + levels[step.level + 1].after <= now {
                next = ChainStep(level: step.level + 1, attempt: 1, at: started + levels[step.level + 1].after)
                continue
            }
            if let hours = env.businessHours, let opening = Self.opening(hours, atOrAfter: now), opening > now {
                if heldUntil != opening { effects.append(.hold(level: step.level, until: opening, at: now)) }
                heldUntil = opening
                next?.at = opening
                return effects + [.arm(at: opening)]
            }
            heldUntil = nil
            if let recipients = customerRecipients {
                effects.append(.send(level: 0, attempt: 1, role: "primary_contact", recipients: recipients, at: now))
                record(step, sentAt: now)
                next = nil
                return effects
            }
            guard levels.indices.contains(step.level) else { // no level to send (a schedule without levels cannot be set)
                next = nil
                return effects
            }
            let level = levels[step.level]
            switch env.recipient(level, at: now) {
            case .failure(let why):
                effects.append(.skip(level: step.level, role: level.role.rawValue, reason: why.rawValue, at: now))
                next = step.level + 1 < levels.count ? ChainStep(level: step.level + 1, attempt: 1, at: now) : nil
            case .success(let contact):
                effects.append(.send(level: step.level, attempt: step.attempt, role: level.role.rawValue, recipients: [contact], at: now))
                if step.attempt == 1 { levelStartedAt = now }
                record(step, sentAt: now)
                let repeatAt = step.attempt < level.times ? level.every.map { now + $0 } : nil
                let nextLevelAt = step.level + 1 < levels.count ? levelStartedAt! + levels[step.level + 1].after : nil
                if let l = nextLevelAt, repeatAt.map({ l <= $0 }) ?? true {
                    next = ChainStep(level: step.level + 1, attempt: 1, at: l)
                } else if let r = repeatAt {
                    next = ChainStep(level: step.level, attempt: step.attempt + 1, at: r)
                } else {
                    next = nil // the last level sent all it may: the escalation stays open until acknowledged or resolved
                }
            }
        }
        return effects
    }

    private mutating func record(_ step: ChainStep, sentAt: Int64) {
        lastSentAt = sentAt
        lastLevel = step.level
        lastAttempt = step.attempt
    }

    /// The next instant the business calendar is open at or after `t`; nil when it is open at `t`
    /// or has no opening left in its years (then nothing is held).
    static func opening(_ hours: BusinessCalendar, atOrAfter t: Int64) -> Int64? {
        guard let open = try? hours.isBusinessTime(t), !open else { return nil }
        return (try? hours.nextOpening(atOrAfter: t)) ?? nil
    }

    /// R-ESC-6: one acknowledgement stops the whole chain. False when it was not open (again, or already resolved).
    public mutating func acknowledge(by: String, at: Int64) -> Bool {
        guard state == .open || state == .unrouted else { return false }
        state = .acknowledged
        acknowledgedBy = by
        acknowledgedAt = at
        next = nil
        heldUntil = nil
        return true
    }

    /// The ticket was restored or closed (or the cause went away): nothing more is sent.
    public mutating func resolve(cause: String, at: Int64) -> Bool {
        guard state == .open || state == .unrouted else { return false }
        state = .resolved
        resolution = cause
        resolvedAt = at
        next = nil
        heldUntil = nil
        return true
    }

    /// `ESC-<ticket>-critical`, `ESC-<ticket>-<target>-<threshold>`, `ESC-<ticket>-<target>-breached`, `ESC-<ticket>-contact-<n>`.
    public static func id(trackingNumber: String, reason: EscalationReason, target: String? = nil, threshold: Double? = nil, episode: Int = 1) -> String {
        switch reason {
        case .criticalIncident: return "ESC-\(trackingNumber)-critical"
        case .slaWarning: return "ESC-\(trackingNumber)-\(target ?? "sla")-\(threshold.map(formatThreshold) ?? "warning")"
        case .slaBreached: return "ESC-\(trackingNumber)-\(target ?? "sla")-breached"
        case .contactUnavailable: return "ESC-\(trackingNumber)-contact-\(episode)"
        }
    }

    /// A threshold as JSON writes it: 0.5, 0.75, 0.9.
    static func formatThreshold(_ t: Double) -> String {
        JSONValue.number(t).jsonText
    }
}
