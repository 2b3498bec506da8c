import CSSModel
import Foundation
import Testing

@testable import ChangeManagementService

/// 2026-03-02T15:00:00Z, a Monday (10:00 in Toronto): every test's injected "now".
let t0: Int64 = 1_772_463_600
let contact = "cio@acme.example"
let board = Board(members: ["a@vendor.example", "b@vendor.example", "c@vendor.example"], quorum: 2)
let authority = ChangeAuthority(changeContacts: [contact], board: board)

func change(_ type: ChangeType = .standard, interrupts: Bool = false) -> Change {
    Change(id: "CHG-000001", customerId: "acme", type: type, title: "Patch the document store", components: ["docstore"],
           interruptsService: interrupts, templateId: type == .standard ? "patch-docstore" : nil,
           incident: type == .emergency ? "INC-000042" : nil, requestedBy: contact, requestedAt: t0)
}

/// Applies an action that must move the change; returns it and the effects.
@discardableResult
func move(_ c: inout Change, _ action: ChangeAction, by: String = "eng@vendor.example", at: Int64 = t0) throws -> [ChangeEffect] {
    guard case .moved(let next, let effects) = try ChangeLifecycle.apply(action, to: c, by: by, at: at, authority: authority) else {
        Issue.record("\(action.name) did not move \(c.state)")
        return []
    }
    c = next
    return effects
}

func refusal(_ c: Change, _ action: ChangeAction, by: String = "eng@vendor.example") -> CommandError? {
    do {
        _ = try ChangeLifecycle.apply(action, to: c, by: by, at: t0, authority: authority)
        return nil
    } catch {
        return error.errors.first
    }
}

func unchanged(_ c: Change, _ action: ChangeAction, by: String = "eng@vendor.example") throws -> Bool {
    try ChangeLifecycle.apply(action, to: c, by: by, at: t0, authority: authority) == .unchanged(c)
}

let testWindow = Interval(start: t0 + 86_400, end: t0 + 90_000)
let prodWindow = Interval(start: t0 + 8 * 86_400, end: t0 + 8 * 86_400 + 3600)

@Suite("Change lifecycle (R-CHG-1, R-CHG-2, R-CHG-3)") struct ChangeLifecycleTests {
    // R-CHG-1, R-CHG-2, R-CHG-3, R-SLA-5: a Standard change, agreed by the customer's change contact, is
    // pre-approved (no CAB) and goes Test → verified → Production → implemented → closed; every step audited;
    // its implementation is excluded from the SLA from its start to the end of its window.
    @Test func standardChangeRunsTheWholeLifecycle() throws {
        var c = change()
        #expect(try move(&c, .agree, by: contact) == [.event("change.agreed"), .event("change.approved")])
        #expect(c.state == .approved)
        try move(&c, .schedule(.test, testWindow, maintenance: nil, agreedBy: nil))
        #expect(c.state == .scheduledTest && c.testWindow == testWindow)
        try move(&c, .deploy)
        #expect(try move(&c, .verify(accepted: true), by: contact) == [.event("change.verified")])
        try move(&c, .schedule(.production, prodWindow, maintenance: nil, agreedBy: nil))
        #expect(c.state == .scheduledProduction && c.production?.maintenance == .window)
        let start = prodWindow.start + 60
        #expect(try move(&c, .implement, at: start) == [.event("change.implementing"), .excludeFromSLA(Interval(start: start, end: prodWindow.end))])
        let installed = [InstalledComponent(component: "docstore", kind: .patch, version: "23.4.1")]
        #expect(try move(&c, .complete(installed: installed), at: start + 1800) == [.event("change.implemented")])
        #expect(c.installed == installed && c.implementationEndedAt == start + 1800)
        try move(&c, .close)
        #expect(c.state == .closed)
        #expect(c.history.map(\.to) == [.approved, .scheduledTest, .deployedTest, .verifiedTest, .scheduledProduction, .implementing, .implemented, .closed])
        #expect(c.history.first?.by == contact)
    }

    // R-CHG-1: a Normal change is assessed, then the board decides: approved at the quorum's approvals;
    // a non-member, a member changing their vote, and a vote before the assessment are refused.
    @Test func normalChangeIsAssessedThenApprovedByTheBoard() throws {
        var c = change(.normal)
        #expect(try move(&c, .agree, by: contact) == [.event("change.agreed")])
        #expect(refusal(c, .vote(approve: true, reason: "ok"), by: "a@vendor.example")?.code == ErrorCode.illegalTransition)
        try move(&c, .assess(risk: "medium"))
        #expect(refusal(c, .vote(approve: true, reason: "ok"), by: "x@vendor.example")?.code == ErrorCode.notABoardMember)
        #expect(try move(&c, .vote(approve: true, reason: "tested"), by: "a@vendor.example") == [.event("change.vote.recorded")])
        #expect(try unchanged(c, .vote(approve: true, reason: "again"), by: "A@vendor.example")) // the same vote again
        #expect(refusal(c, .vote(approve: false, reason: "changed my mind"), by: "a@vendor.example")?.code == ErrorCode.alreadyVoted)
        try move(&c, .vote(approve: false, reason: "risky"), by: "b@vendor.example")
        #expect(c.state == .assessed)
        #expect(try move(&c, .vote(approve: true, reason: "fine"), by: "c@vendor.example") == [.event("change.vote.recorded"), .event("change.approved")])
        #expect(c.state == .approved && c.votes.count == 3)
    }

    // R-CHG-1: rejected as soon as the quorum can no longer be reached.
    @Test func boardRejectsWhenTheQuorumCannotBeReached() throws {
        var c = change(.normal)
        try move(&c, .agree, by: contact)
        try move(&c, .assess(risk: "high"))
        try move(&c, .vote(approve: false, reason: "no rollback plan"), by: "a@vendor.example")
        #expect(try move(&c, .vote(approve: false, reason: "no"), by: "b@vendor.example") == [.event("change.vote.recorded"), .event("change.rejected")])
        #expect(c.state == .rejected)
        #expect(refusal(c, .schedule(.test, testWindow, maintenance: nil, agreedBy: nil))?.code == ErrorCode.illegalTransition)
    }

    // R-CHG-1: an Emergency change goes to the emergency board as soon as it is agreed; a Standard one never votes.
    @Test func emergencyVotesWithoutAssessmentAndStandardNeverVotes() throws {
        var c = change(.emergency)
        try move(&c, .agree, by: contact)
        try move(&c, .vote(approve: true, reason: "outage"), by: "a@vendor.example")
        try move(&c, .vote(approve: true, reason: "outage"), by: "b@vendor.example")
        #expect(c.state == .approved)
        var s = change()
        try move(&s, .agree, by: contact)
        #expect(try unchanged(s, .vote(approve: true, reason: "x"), by: "a@vendor.example")) // past the vote already
        #expect(refusal(change(), .assess(risk: "low")).map(\.code) == ErrorCode.illegalTransition)
        let noBoard = try? ChangeLifecycle.apply(.vote(approve: true, reason: "x"), to: {
            var e = change(.emergency); e.state = .agreed; return e }(), by: "a@vendor.example", at: t0,
            authority: ChangeAuthority(changeContacts: [contact], board: nil))
        #expect(noBoard == nil)
    }

    // R-CHG-3: Production before the customer verified the change on Test is refused, at scheduling and at implementation.
    @Test func productionBeforeTestVerificationIsRefused() throws {
        var c = change()
        try move(&c, .agree, by: contact)
        let early = refusal(c, .schedule(.production, prodWindow, maintenance: nil, agreedBy: nil))
        #expect(early?.code == ErrorCode.testNotVerified && early?.field == "environment")
        try move(&c, .schedule(.test, testWindow, maintenance: nil, agreedBy: nil))
        try move(&c, .deploy)
        #expect(refusal(c, .implement)?.code == ErrorCode.testNotVerified)
        // Not accepted on Test: it stays deployed (fixed and deployed again), still not for Production.
        try move(&c, .verify(accepted: false), by: contact)
        #expect(c.state == .deployedTest)
        #expect(refusal(c, .schedule(.production, prodWindow, maintenance: nil, agreedBy: nil))?.code == ErrorCode.testNotVerified)
        try move(&c, .deploy)
        try move(&c, .verify(accepted: true), by: contact)
        try move(&c, .schedule(.production, prodWindow, maintenance: nil, agreedBy: nil))
        #expect(c.state == .scheduledProduction)
    }

    // R-CUS-4: only an Authorized Change Contact agrees, verifies on Test or agrees maintenance outside the windows.
    @Test func onlyChangeContactsAgreeAndVerify() throws {
        #expect(refusal(change(), .agree, by: "ana@acme.example")?.code == ErrorCode.notAChangeContact)
        var c = change()
        try move(&c, .agree, by: "CIO@acme.example") // e-mails compare case-insensitively
        try move(&c, .schedule(.test, testWindow, maintenance: nil, agreedBy: nil))
        try move(&c, .deploy)
        #expect(refusal(c, .verify(accepted: true), by: "eng@vendor.example")?.code == ErrorCode.notAChangeContact)
        try move(&c, .verify(accepted: true), by: contact)
        let agreed = refusal(c, .schedule(.production, prodWindow, maintenance: .agreed, agreedBy: "ana@acme.example"))
        #expect(agreed?.code == ErrorCode.notAChangeContact && agreed?.field == "agreedBy")
        try move(&c, .schedule(.production, prodWindow, maintenance: .agreed, agreedBy: contact))
        #expect(c.production?.maintenance == .agreed && c.production?.agreedBy == contact)
    }

    // R-CHG-3: a replayed or reordered command never moves a change backwards: one for a stage the change
    // has passed changes nothing; one ahead of the change is refused, naming what comes first.
    @Test func replayedAndReorderedCommandsNeverMoveBackwards() throws {
        var c = change()
        try move(&c, .agree, by: contact)
        let ahead = refusal(c, .deploy)
        #expect(ahead?.code == ErrorCode.illegalTransition && ahead?.message.contains("scheduled for Test") == true)
        try move(&c, .schedule(.test, testWindow, maintenance: nil, agreedBy: nil))
        try move(&c, .deploy)
        try move(&c, .verify(accepted: true), by: contact)
        for late in [ChangeAction.agree, .schedule(.test, testWindow, maintenance: nil, agreedBy: nil), .deploy, .verify(accepted: true)] {
            #expect(try unchanged(c, late, by: contact), "\(late.name) moved a verified change")
        }
        try move(&c, .schedule(.production, prodWindow, maintenance: nil, agreedBy: nil))
        try move(&c, .implement, at: prodWindow.start)
        #expect(refusal(c, .cancel(reason: "too late"))?.code == ErrorCode.illegalTransition)
        #expect(try unchanged(c, .implement))
        try move(&c, .complete(installed: []), at: prodWindow.start + 600)
        try move(&c, .close)
        #expect(try unchanged(c, .close))
        #expect(refusal(c, .implement)?.code == ErrorCode.illegalTransition)
        var x = change()
        try move(&x, .cancel(reason: "no longer needed"), by: contact)
        #expect(try unchanged(x, .cancel(reason: "again")))
        #expect(refusal(x, .agree, by: contact)?.code == ErrorCode.illegalTransition)
    }

    // R-SLA-5: an implementation that runs past its window has the overrun excluded too, once it ends; a failure
    // with rollback ends the change.
    @Test func overrunIsExcludedAndAFailureEndsTheChange() throws {
        var c = change()
        c.state = .scheduledProduction
        c.production = Schedule(window: prodWindow, by: "eng@vendor.example", at: t0)
        try move(&c, .implement, at: prodWindow.start)
        #expect(try move(&c, .complete(installed: []), at: prodWindow.end + 900)
                == [.event("change.implemented"), .excludeFromSLA(Interval(start: prodWindow.end, end: prodWindow.end + 900))])
        var f = change()
        f.state = .scheduledProduction
        f.production = Schedule(window: prodWindow, by: "eng@vendor.example", at: t0)
        try move(&f, .implement, at: prodWindow.start)
        #expect(try move(&f, .fail(rollback: "restored the snapshot"), at: prodWindow.start + 600) == [.event("change.failed")])
        #expect(f.state == .failed)
        #expect(refusal(f, .close)?.code == ErrorCode.illegalTransition)
    }

    @Test func storedChangeRoundTrips() throws {
        var c = change(.normal)
        try move(&c, .agree, by: contact)
        try move(&c, .assess(risk: "low"))
        try move(&c, .vote(approve: true, reason: "ok"), by: "a@vendor.example")
        let decoded = try JSONDecoder().decode(Change.self, from: JSONEncoder().encode(c))
        #expect(decoded == c)
    }
}
