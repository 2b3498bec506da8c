import CSSModel
import Foundation

/// R-CHG-1: how a change is approved.
public enum ChangeType: String, Codable, CaseIterable, Sendable {
    /// A pre-approved template of the standard-change catalogue: no CAB.
    case standard
    /// Assessed, then approved or rejected by the Change Advisory Board.
    case normal
    /// Only for an open Critical or High production incident; the emergency board approves it.
    case emergency
}

/// R-CHG-3: where a change stands. The main path runs in ``stage`` order; `rejected`,
/// `cancelled` and `failed` end a change off it.
public enum ChangeState: String, Codable, CaseIterable, Sendable {
    case requested, agreed, assessed, approved
    case scheduledTest = "scheduled_test"
    case deployedTest = "deployed_test"
    case verifiedTest = "verified_test"
    case scheduledProduction = "scheduled_production"
    case implementing, implemented, closed
    case rejected, cancelled, failed

    /// The position on the main path; the end states come after all of it.
    public var stage: Int { Self.allCases.firstIndex(of: self)! }

    public var isEnded: Bool { self == .closed || self == .rejected || self == .cancelled || self == .failed }
}

/// The environment a schedule is for.
public enum Deployment: String, Codable, CaseIterable, Sendable {
    case test, production
}

/// Why a Production implementation may take place when it does (R-CHG-4).
public enum Maintenance: String, Codable, CaseIterable, Sendable {
    /// Inside one of the customer's routine maintenance windows.
    case window
    /// Outside the windows, with the customer's agreement (a change contact's).
    case agreed
    /// An Emergency change, as soon as possible.
    case emergency
}

/// An interval of whole seconds [start, end).
public struct Interval: Codable, Equatable, Hashable, Sendable {
    public var start: Int64
    public var end: Int64

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    public func overlaps(_ other: Interval) -> Bool { start < other.end && other.start < end }
}

/// A component a change installed or changed (R-CHG-6).
public struct InstalledComponent: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable { case patch, configuration, customization }
    public var component: String
    public var kind: Kind
    public var version: String

    public init(component: String, kind: Kind, version: String) {
        self.component = component
        self.kind = kind
        self.version = version
    }
}

/// One vote of a board member.
public struct Vote: Codable, Equatable, Sendable {
    public var member: String
    public var approve: Bool
    public var reason: String
    public var at: Int64
}

/// A Change Advisory Board: who votes, and how many approvals approve.
public struct Board: Codable, Equatable, Sendable {
    public var members: [String]
    public var quorum: Int

    public init(members: [String], quorum: Int) {
        self.members = members
        self.quorum = quorum
    }
}

/// One audited transition.
public struct ChangeTransition: Codable, Equatable, Sendable {
    public var action: String
    public var from: ChangeState
    public var to: ChangeState
    public var by: String
    public var at: Int64
    /// The window a `schedule` set (the deployment timeline shows each schedule as it was).
    public var window: Interval?
}

/// What a change costs the customer (R-CHG-2).
public struct Cost: Codable, Equatable, Sendable {
    public var amount: Double
    public var currency: String

    public init(amount: Double, currency: String) {
        self.amount = amount
        self.currency = currency
    }
}

/// What the requester said the change is (R-CHG-2): why, the work, its impact, its cost, where
/// it goes and when the customer would like it in Production.
public struct RequestDetails: Codable, Equatable, Sendable {
    public var reason: String
    public var work: String
    public var impact: String
    public var cost: Cost
    public var environments: [Deployment]
    public var requestedWindow: Interval

    public init(reason: String, work: String, impact: String, cost: Cost, environments: [Deployment], requestedWindow: Interval) {
        self.reason = reason
        self.work = work
        self.impact = impact
        self.cost = cost
        self.environments = environments
        self.requestedWindow = requestedWindow
    }
}

/// The risk and plan support staff recorded.
public struct Assessment: Codable, Equatable, Sendable {
    public var risk: String
    public var plan: String
    public var by: String
    public var at: Int64
}

/// A Test or Production schedule: the window, the kind of maintenance (Production), who agreed it.
public struct Schedule: Codable, Equatable, Sendable {
    public var window: Interval
    public var maintenance: Maintenance?
    public var agreedBy: String?
    public var by: String
    public var at: Int64

    public init(window: Interval, maintenance: Maintenance? = nil, agreedBy: String? = nil, by: String, at: Int64) {
        self.window = window
        self.maintenance = maintenance
        self.agreedBy = agreedBy
        self.by = by
        self.at = at
    }
}

/// The customer's last verification on Test.
public struct Verification: Codable, Equatable, Sendable {
    public var accepted: Bool
    public var notes: String?
    public var by: String
    public var at: Int64
}

/// Why and by whom a change was cancelled.
public struct Cancellation: Codable, Equatable, Sendable {
    public var reason: String
    public var by: String
    public var at: Int64
}

/// A change request and everything that happened to it.
public struct Change: Codable, Equatable, Sendable {
    public var id: String
    public var customerId: String
    public var type: ChangeType
    public var title: String
    public var components: [String]
    public var interruptsService: Bool
    public var templateId: String?
    /// The incident an Emergency change addresses.
    public var incident: String?
    public var requestedBy: String
    public var requestedAt: Int64
    public var details: RequestDetails?
    public var state: ChangeState
    public var assessment: Assessment?
    /// The board's quorum when the last vote was recorded.
    public var quorum: Int?
    public var votes: [Vote] = []
    public var test: Schedule?
    public var production: Schedule?
    public var verification: Verification?
    public var implementationStartedAt: Int64?
    public var implementationEndedAt: Int64?
    public var installed: [InstalledComponent] = []
    public var rollback: String?
    public var cancellation: Cancellation?
    public var history: [ChangeTransition] = []

    public init(id: String, customerId: String, type: ChangeType, title: String, components: [String], interruptsService: Bool,
                templateId: String? = nil, incident: String? = nil, requestedBy: String, requestedAt: Int64, details: RequestDetails? = nil) {
        self.id = id
        self.customerId = customerId
        self.type = type
        self.title = title
        self.components = components
        self.interruptsService = interruptsService
        self.templateId = templateId
        self.incident = incident
        self.requestedBy = requestedBy
        self.requestedAt = requestedAt
        self.details = details
        self.state = .requested
    }

    public var testWindow: Interval? { test?.window }
    public var productionWindow: Interval? { production?.window }
    /// The board that decides the change; nil for a Standard change.
    public var board: BoardName? {
        switch type {
        case .standard: nil
        case .normal: .normal
        case .emergency: .emergency
        }
    }
}

/// The two boards (R-CHG-1): the Change Advisory Board for Normal changes, the emergency board for Emergency ones.
public enum BoardName: String, Codable, CaseIterable, Sendable {
    case normal, emergency
}

/// What someone asks of a change.
public enum ChangeAction: Equatable, Sendable {
    case agree
    case assess(risk: String, plan: String = "")
    case vote(approve: Bool, reason: String)
    /// Production schedules are checked against windows, notice, freezes and conflicts by
    /// ``ChangePolicy`` first; the lifecycle only knows whether the change may be scheduled.
    case schedule(Deployment, Interval, maintenance: Maintenance?, agreedBy: String?)
    case deploy
    case verify(accepted: Bool, notes: String? = nil)
    case implement
    case complete(installed: [InstalledComponent])
    case fail(rollback: String)
    case close
    case cancel(reason: String)

    public var name: String {
        switch self {
        case .agree: "agree"
        case .assess: "assess"
        case .vote: "vote"
        case .schedule: "schedule"
        case .deploy: "deploy"
        case .verify: "verify"
        case .implement: "implement"
        case .complete: "complete"
        case .fail: "fail"
        case .close: "close"
        case .cancel: "cancel"
        }
    }
}

/// Who may do what: the customer's Authorized Change Contacts (R-CUS-4) and the board that votes.
public struct ChangeAuthority: Sendable {
    public var changeContacts: Set<String>
    /// The customer's Points of Contact: like its change contacts, they are not support staff.
    public var pointsOfContact: Set<String>
    public var board: Board?

    public init(changeContacts: Set<String>, pointsOfContact: Set<String> = [], board: Board?) {
        self.changeContacts = changeContacts
        self.pointsOfContact = pointsOfContact
        self.board = board
    }
}

/// What a transition does besides moving the change: the facts to publish.
public enum ChangeEffect: Equatable, Sendable {
    /// `change.<name>` (`change.agreed`, `change.vote.recorded`, ...).
    case event(String)
    /// R-SLA-5: the Production implementation of a customer-requested change, excluded from that
    /// customer's restoration clocks (an `sla.exclusion.added`).
    case excludeFromSLA(Interval)
}

/// The outcome of an action: the change moved (with what to publish), or it had already passed
/// that stage (a replayed or reordered command: nothing happens, nothing is published).
public enum ChangeOutcome: Equatable, Sendable {
    case moved(Change, [ChangeEffect])
    case unchanged(Change)
}

/// R-CHG-1..3 as a pure state machine: (change, action, by, now) → change and effects, or a
/// refusal naming what is missing. A change never moves backwards.
public enum ChangeLifecycle {
    public static func apply(_ action: ChangeAction, to change: Change, by: String, at now: Int64,
                             authority: ChangeAuthority) throws(CommandRejection) -> ChangeOutcome {
        var c = change
        let from = c.state
        func illegal(_ needed: String) -> CommandRejection {
            CommandRejection(code: ErrorCode.illegalTransition, field: "changeId",
                             message: "\(action.name) is not possible for \(c.id) in state \(from.rawValue): \(needed)")
        }
        func requireContact(_ who: String, _ field: String) throws(CommandRejection) {
            guard authority.changeContacts.contains(who.lowercased()) else {
                throw CommandRejection(code: ErrorCode.notAChangeContact, field: field,
                                       message: "\(who) is not an Authorized Change Contact of \(c.customerId) (R-CUS-4)")
            }
        }
        if from.isEnded {
            switch (action, from) {
            case (.close, .closed), (.cancel, .cancelled): return .unchanged(c) // the same end again
            default: throw CommandRejection(code: ErrorCode.illegalTransition, field: "changeId", message: "\(c.id) is \(from.rawValue): nothing more can happen to it")
            }
        }
        var effects: [ChangeEffect] = []
        switch action {
        case .agree:
            // R-CHG-2, R-CUS-4: the customer's change contact agrees before any work starts.
            if from.stage >= ChangeState.agreed.stage { return .unchanged(c) }
            try requireContact(by, "by")
            c.state = .agreed
            effects.append(.event("change.agreed"))
            if c.type == .standard { // a pre-approved template: no CAB
                c.state = .approved
                effects.append(.event("change.approved"))
            }
        case .assess(let risk, let plan):
            if from.stage >= ChangeState.assessed.stage { return .unchanged(c) }
            guard from == .agreed else { throw illegal("the change must be agreed by the customer first") }
            guard c.type != .standard else { throw illegal("a Standard change is pre-approved and not assessed") }
            let who = by.lowercased()
            if authority.changeContacts.contains(who) || authority.pointsOfContact.contains(who) {
                throw CommandRejection(code: ErrorCode.notSupportStaff, field: "by",
                                       message: "\(by) is a contact of \(c.customerId): only support staff assess a change")
            }
            c.assessment = Assessment(risk: risk, plan: plan, by: who, at: now)
            c.state = .assessed
            effects.append(.event("change.assessed"))
        case .vote(let approve, let reason):
            if from.stage >= ChangeState.approved.stage { return .unchanged(c) }
            guard c.type != .standard else { throw illegal("a Standard change is pre-approved: no board votes on it") }
            guard from == .assessed || (c.type == .emergency && from == .agreed) else {
                throw illegal(c.type == .normal ? "a Normal change is assessed before the board votes" : "the change must be agreed first")
            }
            guard let board = authority.board else {
                throw CommandRejection(code: ErrorCode.unknownBoard, field: "changeId",
                                       message: "no \(c.type == .emergency ? "emergency" : "normal") Change Advisory Board is set (change.board.set)")
            }
            let member = by.lowercased()
            guard board.members.contains(member) else {
                throw CommandRejection(code: ErrorCode.notABoardMember, field: "by", message: "\(by) is not a member of the \(c.type == .emergency ? "emergency " : "")Change Advisory Board")
            }
            if let earlier = c.votes.first(where: { $0.member == member }) {
                if earlier.approve == approve { return .unchanged(c) } // the same vote again
                throw CommandRejection(code: ErrorCode.alreadyVoted, field: "by", message: "\(by) already voted \(earlier.approve ? "to approve" : "to reject") \(c.id)")
            }
            c.votes.append(Vote(member: member, approve: approve, reason: reason, at: now))
            c.quorum = board.quorum
            effects.append(.event("change.vote.recorded"))
            // Votes count against the board as it is now: a member who left no longer counts.
            let current = c.votes.filter { board.members.contains($0.member) }
            let approvals = current.filter(\.approve).count
            let outstanding = board.members.count - current.count
            if approvals >= board.quorum {
                c.state = .approved
                effects.append(.event("change.approved"))
            } else if approvals + outstanding < board.quorum {
                c.state = .rejected
                effects.append(.event("change.rejected"))
            }
        case .schedule(let environment, let window, let maintenance, let agreedBy):
            switch environment {
            case .test:
                if from.stage > ChangeState.scheduledTest.stage { return .unchanged(c) }
                guard from == .approved || from == .scheduledTest else { throw illegal("the change must be approved first") }
                c.test = Schedule(window: window, by: by.lowercased(), at: now)
                c.state = .scheduledTest
            case .production:
                if from.stage > ChangeState.scheduledProduction.stage { return .unchanged(c) }
                guard from == .verifiedTest || from == .scheduledProduction else {
                    // R-CHG-3: Test first, verified by the customer, then Production.
                    throw CommandRejection(code: ErrorCode.testNotVerified, field: "environment",
                                           message: "\(c.id) is \(from.rawValue): a change goes to Production only after the customer verified it on Test (R-CHG-3)")
                }
                if maintenance == .agreed { try requireContact(agreedBy ?? "", "agreedBy") }
                c.production = Schedule(window: window, maintenance: maintenance ?? (c.type == .emergency ? .emergency : .window),
                                        agreedBy: maintenance == .agreed ? agreedBy?.lowercased() : nil, by: by.lowercased(), at: now)
                c.state = .scheduledProduction
            }
            effects.append(.event("change.scheduled"))
        case .deploy:
            if from.stage > ChangeState.deployedTest.stage { return .unchanged(c) }
            guard from == .scheduledTest || from == .deployedTest else { throw illegal("the change must be scheduled for Test first") }
            c.state = .deployedTest
            effects.append(.event("change.deployed"))
        case .verify(let accepted, let notes):
            if from.stage >= ChangeState.verifiedTest.stage { return .unchanged(c) }
            guard from == .deployedTest else { throw illegal("the change must be deployed to Test first") }
            try requireContact(by, "by")
            c.verification = Verification(accepted: accepted, notes: notes, by: by.lowercased(), at: now)
            if accepted { c.state = .verifiedTest }
            effects.append(.event("change.verified"))
        case .implement:
            if from.stage >= ChangeState.implementing.stage { return .unchanged(c) }
            guard from == .scheduledProduction else {
                throw from.stage < ChangeState.verifiedTest.stage
                    ? CommandRejection(code: ErrorCode.testNotVerified, field: "changeId", message: "\(c.id) is \(from.rawValue): it must be verified on Test and scheduled for Production first (R-CHG-3)")
                    : illegal("the change must be scheduled for Production first")
            }
            c.state = .implementing
            c.implementationStartedAt = now
            effects.append(.event("change.implementing"))
            // R-SLA-5: the customer's restoration clocks stop counting from now to the end of the window
            // the customer agreed; an overrun is excluded when the implementation ends.
            effects.append(.excludeFromSLA(Interval(start: now, end: max(c.productionWindow?.end ?? now + 1, now + 1))))
        case .complete(let installed):
            if from.stage >= ChangeState.implemented.stage { return .unchanged(c) }
            guard from == .implementing else { throw illegal("the Production implementation must be started first") }
            c.state = .implemented
            c.implementationEndedAt = now
            c.installed = installed
            effects.append(.event("change.implemented"))
            effects += Self.overrun(c, now: now)
        case .fail(let rollback):
            guard from == .implementing else { throw illegal("only a change being implemented can fail") }
            c.state = .failed
            c.implementationEndedAt = now
            c.rollback = rollback
            effects.append(.event("change.failed"))
            effects += Self.overrun(c, now: now)
        case .close:
            if from == .closed { return .unchanged(c) }
            guard from == .implemented else { throw illegal("only an implemented change can be closed") }
            c.state = .closed
            effects.append(.event("change.closed"))
        case .cancel(let reason):
            guard from.stage < ChangeState.implementing.stage else { throw illegal("a change being implemented or implemented cannot be cancelled") }
            c.state = .cancelled
            c.cancellation = Cancellation(reason: reason, by: by.lowercased(), at: now)
            effects.append(.event("change.cancelled"))
        }
        var window: Interval?
        if case .schedule(_, let w, _, _) = action { window = w }
        c.history.append(ChangeTransition(action: action.name, from: from, to: c.state, by: by.lowercased(), at: now, window: window))
        return .moved(c, effects)
    }

    /// The part of an implementation after the end of its window, excluded too (R-SLA-5).
    static func overrun(_ c: Change, now: Int64) -> [ChangeEffect] {
        guard let started = c.implementationStartedAt else { return [] }
        let excludedUntil = max(c.productionWindow?.end ?? started + 1, started + 1)
        return now > excludedUntil ? [.excludeFromSLA(Interval(start: excludedUntil, end: now))] : []
    }
}
