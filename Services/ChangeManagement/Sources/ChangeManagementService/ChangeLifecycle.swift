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
    public var state: ChangeState
    public var risk: String?
    public var votes: [Vote] = []
    public var testWindow: Interval?
    public var productionWindow: Interval?
    public var maintenance: Maintenance?
    public var agreedBy: String?
    public var implementationStartedAt: Int64?
    public var implementedAt: Int64?
    public var installed: [InstalledComponent] = []
    public var history: [ChangeTransition] = []

    public init(id: String, customerId: String, type: ChangeType, title: String, components: [String], interruptsService: Bool,
                templateId: String? = nil, incident: String? = nil, requestedBy: String, requestedAt: Int64) {
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
        self.state = .requested
    }
}

/// What someone asks of a change.
public enum ChangeAction: Equatable, Sendable {
    case agree
    case assess(risk: String)
    case vote(approve: Bool, reason: String)
    /// Production schedules are checked against windows, notice, freezes and conflicts by
    /// ``ChangePolicy`` first; the lifecycle only knows whether the change may be scheduled.
    case schedule(Deployment, Interval, maintenance: Maintenance?, agreedBy: String?)
    case deploy
    case verify(accepted: Bool)
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
    public var board: Board?

    public init(changeContacts: Set<String>, board: Board?) {
        self.changeContacts = changeContacts
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
        case .assess(let risk):
            if from.stage >= ChangeState.assessed.stage { return .unchanged(c) }
            guard from == .agreed else { throw illegal("the change must be agreed by the customer first") }
            guard c.type != .standard else { throw illegal("a Standard change is pre-approved and not assessed") }
            c.risk = risk
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
            effects.append(.event("change.vote.recorded"))
            let approvals = c.votes.filter(\.approve).count
            let outstanding = board.members.count - c.votes.count
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
                c.testWindow = window
                c.state = .scheduledTest
            case .production:
                if from.stage > ChangeState.scheduledProduction.stage { return .unchanged(c) }
                guard from == .verifiedTest || from == .scheduledProduction else {
                    // R-CHG-3: Test first, verified by the customer, then Production.
                    throw CommandRejection(code: ErrorCode.testNotVerified, field: "environment",
                                           message: "\(c.id) is \(from.rawValue): a change goes to Production only after the customer verified it on Test (R-CHG-3)")
                }
                if maintenance == .agreed { try requireContact(agreedBy ?? "", "agreedBy") }
                c.productionWindow = window
                c.maintenance = maintenance ?? (c.type == .emergency ? .emergency : .window)
                c.agreedBy = maintenance == .agreed ? agreedBy?.lowercased() : nil
                c.state = .scheduledProduction
            }
            effects.append(.event("change.scheduled"))
        case .deploy:
            if from.stage > ChangeState.deployedTest.stage { return .unchanged(c) }
            guard from == .scheduledTest || from == .deployedTest else { throw illegal("the change must be scheduled for Test first") }
            c.state = .deployedTest
            effects.append(.event("change.deployed"))
        case .verify(let accepted):
            if from.stage >= ChangeState.verifiedTest.stage { return .unchanged(c) }
            guard from == .deployedTest else { throw illegal("the change must be deployed to Test first") }
            try requireContact(by, "by")
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
            c.implementedAt = now
            c.installed = installed
            effects.append(.event("change.implemented"))
            effects += Self.overrun(c, now: now)
        case .fail:
            guard from == .implementing else { throw illegal("only a change being implemented can fail") }
            c.state = .failed
            c.implementedAt = now
            effects.append(.event("change.failed"))
            effects += Self.overrun(c, now: now)
        case .close:
            if from == .closed { return .unchanged(c) }
            guard from == .implemented else { throw illegal("only an implemented change can be closed") }
            c.state = .closed
            effects.append(.event("change.closed"))
        case .cancel:
            guard from.stage < ChangeState.implementing.stage else { throw illegal("a change being implemented or implemented cannot be cancelled") }
            c.state = .cancelled
            effects.append(.event("change.cancelled"))
        }
        c.history.append(ChangeTransition(action: action.name, from: from, to: c.state, by: by.lowercased(), at: now))
        return .moved(c, effects)
    }

    /// The part of an implementation after the end of its window, excluded too (R-SLA-5).
    static func overrun(_ c: Change, now: Int64) -> [ChangeEffect] {
        guard let started = c.implementationStartedAt else { return [] }
        let excludedUntil = max(c.productionWindow?.end ?? started + 1, started + 1)
        return now > excludedUntil ? [.excludeFromSLA(Interval(start: excludedUntil, end: now))] : []
    }
}
