import CSSCalendar
import CSSModel
import Foundation
@testable import EscalationService
import Testing

/// Wednesday 4 March 2026 15:00Z: the chain tests' t0 (the wall clock is never read).
let t0 = Fx.s("2026-03-04T15:00:00Z")

/// engineer at once, team lead 15 min after, duty manager 30 min after that.
let threeLevels = [Level(role: .engineer, after: 0), Level(role: .teamLead, after: 900, contact: Fx.lead),
                   Level(role: .dutyManager, after: 1800, contact: Fx.duty)]

/// The message of `level` (0-based), repeat `attempt`, to `to` at `at`.
func msg(_ level: Int, _ attempt: Int, _ role: String, _ to: Contact, _ at: Int64) -> ChainEffect {
    .send(level: level, attempt: attempt, role: role, recipients: [to], at: at)
}

/// The first message of `level`.
func msg(_ level: Int, _ role: String, _ to: Contact, _ at: Int64) -> ChainEffect { msg(level, 1, role, to, at) }

/// Advances `e` at `now` and checks the effects are exactly `expected`.
func expectAdvance(_ e: inout Escalation, now: Int64, _ env: ChainEnvironment, _ expected: [ChainEffect],
                   sourceLocation: SourceLocation = #_sourceLocation) {
    let effects = e.advance(now: now, env)
    #expect(effects == expected, sourceLocation: sourceLocation)
}

/// An escalation routed at `at` with `levels`.
func routed(_ levels: [Level], priority: Priority = .p2, at: Int64 = t0) -> Escalation {
    var e = Fx.escalation(priority: priority, openedAt: at)
    e.route(levels: levels, now: at)
    return e
}

@Suite("Escalation chain timing (R-ESC-2, R-ESC-6)")
struct ChainTimingTests {
    let env = Fx.env()

    // R-ESC-2: level 0 at once, each next level `after` the previous level's first message; nothing after the last.
    @Test("R-ESC-2: engineer at once, team lead at +15 min, duty manager 30 min later, then nothing")
    func levels() {
        var e = Fx.escalation(openedAt: t0)
        #expect(e.state == .unrouted)
        expectAdvance(&e, now: t0, env, []) // unrouted: nobody to tell yet
        e.route(levels: threeLevels, now: t0)
        #expect(e.state == .open)
        #expect(e.next == ChainStep(level: 0, attempt: 1, at: t0))
        expectAdvance(&e, now: t0, env, [msg(0, "engineer", Fx.ana, t0), .arm(at: t0 + 900)])
        expectAdvance(&e, now: t0 + 899, env, [.arm(at: t0 + 900)]) // a timer that fires early sends nothing
        expectAdvance(&e, now: t0 + 900, env, [msg(1, "team_lead", Fx.lead, t0 + 900), .arm(at: t0 + 2700)])
        expectAdvance(&e, now: t0 + 2700, env, [msg(2, "duty_manager", Fx.duty, t0 + 2700)])
        #expect(e.next == nil)
        #expect(e.state == .open) // open until acknowledged or resolved
        expectAdvance(&e, now: t0 + 100_000, env, [])
        #expect(e.lastLevel == 2)
        #expect(e.lastAttempt == 1)
        #expect(e.lastSentAt == t0 + 2700)
        // Routing again changes nothing.
        e.route(levels: [], now: t0 + 100_000)
        #expect(e.levels == threeLevels)
    }

    // R-ESC-2: a level repeats `every` until it has sent `times` messages; the next level comes `after` its first.
    @Test("R-ESC-2: engineer repeats every 5 min, 3 messages in all, then the team lead at +30 min")
    func repeats() {
        var e = routed([Level(role: .engineer, after: 0, every: 300, times: 3), Level(role: .teamLead, after: 1800, contact: Fx.lead)])
        expectAdvance(&e, now: t0, env, [msg(0, 1, "engineer", Fx.ana, t0), .arm(at: t0 + 300)])
        expectAdvance(&e, now: t0 + 300, env, [msg(0, 2, "engineer", Fx.ana, t0 + 300), .arm(at: t0 + 600)])
        expectAdvance(&e, now: t0 + 600, env, [msg(0, 3, "engineer", Fx.ana, t0 + 600), .arm(at: t0 + 1800)])
        expectAdvance(&e, now: t0 + 1800, env, [msg(1, 1, "team_lead", Fx.lead, t0 + 1800)])
        expectAdvance(&e, now: t0 + 100_000, env, [])
    }

    // R-ESC-2: repeats stop when the next level falls due first.
    @Test("R-ESC-2: repeats every 10 min (6 allowed) stop when the team lead is due at +15 min")
    func repeatCutByNextLevel() {
        var e = routed([Level(role: .engineer, after: 0, every: 600, times: 6), Level(role: .teamLead, after: 900, contact: Fx.lead)])
        expectAdvance(&e, now: t0, env, [msg(0, 1, "engineer", Fx.ana, t0), .arm(at: t0 + 600)])
        expectAdvance(&e, now: t0 + 600, env, [msg(0, 2, "engineer", Fx.ana, t0 + 600), .arm(at: t0 + 900)])
        expectAdvance(&e, now: t0 + 900, env, [msg(1, 1, "team_lead", Fx.lead, t0 + 900)])
        expectAdvance(&e, now: t0 + 1200, env, [])
        // A repeat due at the same instant as the next level gives way to it.
        var tie = routed([Level(role: .engineer, after: 0, every: 900, times: 3), Level(role: .teamLead, after: 900, contact: Fx.lead)])
        expectAdvance(&tie, now: t0, env, [msg(0, 1, "engineer", Fx.ana, t0), .arm(at: t0 + 900)])
        expectAdvance(&tie, now: t0 + 900, env, [msg(1, 1, "team_lead", Fx.lead, t0 + 900)])
        // The last level repeats as often as it may, then nothing.
        var last = routed([Level(role: .engineer, after: 0), Level(role: .dutyManager, after: 600, contact: Fx.duty, every: 300, times: 2)])
        expectAdvance(&last, now: t0, env, [msg(0, "engineer", Fx.ana, t0), .arm(at: t0 + 600)])
        expectAdvance(&last, now: t0 + 600, env, [msg(1, 1, "duty_manager", Fx.duty, t0 + 600), .arm(at: t0 + 900)])
        expectAdvance(&last, now: t0 + 900, env, [msg(1, 2, "duty_manager", Fx.duty, t0 + 900)])
        expectAdvance(&last, now: t0 + 1200, env, [])
    }

    // R-ESC-6: a level with nobody to notify is skipped at once, with the reason, and the next
    // level is notified in the same step; a success_manager level without a contact goes to the
    // customer's success manager.
    @Test("R-ESC-6: team lead without contact skipped (no_contact), success manager notified at once from the customer")
    func skipNoContact() {
        let env = Fx.env(successManager: Fx.success)
        var e = routed([Level(role: .engineer, after: 0), Level(role: .teamLead, after: 900),
                        Level(role: .successManager, after: 1200), Level(role: .dutyManager, after: 1800, contact: Fx.duty)])
        expectAdvance(&e, now: t0, env, [msg(0, "engineer", Fx.ana, t0), .arm(at: t0 + 900)])
        expectAdvance(&e, now: t0 + 900, env, [
            .skip(level: 1, role: "team_lead", reason: "no_contact", at: t0 + 900),
            msg(2, "success_manager", Fx.success, t0 + 900),
            .arm(at: t0 + 900 + 1800), // the duty manager counts from the success manager's message
        ])
        expectAdvance(&e, now: t0 + 2700, env, [msg(3, "duty_manager", Fx.duty, t0 + 2700)])
    }

    // R-ESC-6: without a customer success manager that level is skipped too.
    @Test("R-ESC-6: success_manager level without a contact or a customer success manager → no_contact")
    func skipSuccessManager() {
        var e = routed([Level(role: .engineer, after: 0), Level(role: .successManager, after: 600),
                        Level(role: .dutyManager, after: 1200, contact: Fx.duty)])
        expectAdvance(&e, now: t0, env, [msg(0, "engineer", Fx.ana, t0), .arm(at: t0 + 600)])
        expectAdvance(&e, now: t0 + 600, env, [.skip(level: 1, role: "success_manager", reason: "no_contact", at: t0 + 600),
                                                   msg(2, "duty_manager", Fx.duty, t0 + 600)])
        // A level's own contact comes first, even for a success_manager level.
        let own = Contact(name: "Own", email: "own@example.com")
        var f = routed([Level(role: .engineer, after: 0), Level(role: .successManager, after: 600, contact: own)])
        _ = f.advance(now: t0, Fx.env(successManager: Fx.success))
        expectAdvance(&f, now: t0 + 600, Fx.env(successManager: Fx.success), [msg(1, "success_manager", own, t0 + 600)])
    }

    // R-ESC-6: an engineer level with nobody on call (rotation not started, or no schedule) is skipped at once.
    @Test("R-ESC-6: engineer level with nobody on call → nobody_on_call, next level at once")
    func nobodyOnCall() throws {
        let later = try Fx.rotation(zone: "America/Toronto", handoff: Fx.hm(9), rotationDays: 1, start: "2026-04-01")
        for env in [Fx.env(rotation: later), Fx.env(rotation: nil)] {
            var e = routed(threeLevels)
            expectAdvance(&e, now: t0, env, [.skip(level: 0, role: "engineer", reason: "nobody_on_call", at: t0),
                                                msg(1, "team_lead", Fx.lead, t0), .arm(at: t0 + 1800)])
        }
        // An override before the rotation starts: its member is paged.
        let covered = try Fx.rotation(zone: "America/Toronto", handoff: Fx.hm(9), rotationDays: 1, start: "2026-04-01", overrides: [
            Override(member: Fx.sub, start: t0 - 3600, end: t0 + 3600, reason: nil),
        ])
        var e = routed(threeLevels)
        expectAdvance(&e, now: t0, Fx.env(rotation: covered), [msg(0, "engineer", Fx.sub, t0), .arm(at: t0 + 900)])
        // Nobody at all: every level skipped, nothing armed.
        var alone = routed([Level(role: .engineer, after: 0), Level(role: .teamLead, after: 600)])
        expectAdvance(&alone, now: t0, Fx.env(rotation: nil), [.skip(level: 0, role: "engineer", reason: "nobody_on_call", at: t0),
                                                                   .skip(level: 1, role: "team_lead", reason: "no_contact", at: t0)])
        #expect(alone.next == nil)
        expectAdvance(&alone, now: t0 + 600, Fx.env(), [])
    }

    // R-ESC-2: who is on call is looked up when each message goes out, not when the chain starts.
    @Test("R-ESC-2: a repeat after a hand-off goes to the new on-call engineer")
    func repeatAfterHandoff() throws {
        // Daily 10:00 Toronto hand-offs (15:00Z, EST): Ana from 3 March, Bo from 4 March 15:00Z, which is t0.
        let r = try Fx.rotation(zone: "America/Toronto", members: [Fx.ana, Fx.bo], handoff: Fx.hm(10), rotationDays: 1, start: "2026-03-03")
        let start = t0 - 300
        var e = routed([Level(role: .engineer, after: 0, every: 300, times: 2)], at: start)
        expectAdvance(&e, now: start, Fx.env(rotation: r), [msg(0, 1, "engineer", Fx.ana, start), .arm(at: t0)])
        expectAdvance(&e, now: t0, Fx.env(rotation: r), [msg(0, 2, "engineer", Fx.bo, t0)])
    }
}

@Suite("Acknowledgement, resolution and late timers (R-ESC-6, R-ESC-3)")
struct ChainStopTests {
    let env = Fx.env()

    // R-ESC-6: one acknowledgement stops the whole chain, whatever timer fires later.
    @Test("R-ESC-6: after an acknowledgement nothing more is sent; a second acknowledgement is refused")
    func acknowledge() {
        var e = routed(threeLevels)
        _ = e.advance(now: t0, env)
        let first = e.acknowledge(by: "ana@example.com", at: t0 + 60)
        #expect(first)
        #expect(e.state == .acknowledged)
        #expect(e.acknowledgedBy == "ana@example.com")
        #expect(e.acknowledgedAt == t0 + 60)
        #expect(e.next == nil)
        expectAdvance(&e, now: t0 + 900, env, []) // the armed timer fires anyway
        expectAdvance(&e, now: t0 + 100_000, env, [])
        let again = e.acknowledge(by: "lead@example.com", at: t0 + 120)
        #expect(!again)
        #expect(e.acknowledgedBy == "ana@example.com")
        #expect(e.acknowledgedAt == t0 + 60)
        let resolvedAfter = e.resolve(cause: "restored", at: t0 + 180)
        #expect(!resolvedAfter)
        #expect(e.state == .acknowledged)
        // Acknowledged before it could be routed: it never starts.
        var early = Fx.escalation(openedAt: t0)
        let earlyAck = early.acknowledge(by: "ana@example.com", at: t0)
        #expect(earlyAck)
        early.route(levels: threeLevels, now: t0 + 10)
        #expect(early.state == .acknowledged)
        expectAdvance(&early, now: t0 + 10, env, [])
    }

    // R-ESC-6: a ticket restored or closed ends its escalations.
    @Test("R-ESC-6: after resolution nothing more is sent; resolving or acknowledging again is refused")
    func resolve() {
        var e = routed(threeLevels)
        _ = e.advance(now: t0, env)
        _ = e.advance(now: t0 + 900, env)
        let resolved = e.resolve(cause: "restored", at: t0 + 1000)
        #expect(resolved)
        #expect(e.state == .resolved)
        #expect(e.resolution == "restored")
        #expect(e.resolvedAt == t0 + 1000)
        expectAdvance(&e, now: t0 + 2700, env, [])
        let resolvedAgain = e.resolve(cause: "closed", at: t0 + 3000)
        #expect(!resolvedAgain)
        #expect(e.resolution == "restored")
        let ackAfter = e.acknowledge(by: "lead@example.com", at: t0 + 3000)
        #expect(!ackAfter)
        #expect(e.acknowledgedBy == nil)
    }

    // R-ESC-3: after a stop, the overdue step goes out once and the chain counts on from then.
    @Test("R-ESC-3: a timer firing long after several due times sends one message, then counts from it")
    func lateTimer() {
        var e = routed(threeLevels)
        _ = e.advance(now: t0, env)
        // Down from t0 + 1 to t0 + 5000: the team lead (t0 + 900) and the duty manager (t0 + 2700) were both due.
        expectAdvance(&e, now: t0 + 5000, env, [msg(1, "team_lead", Fx.lead, t0 + 5000), .arm(at: t0 + 5000 + 1800)])
        expectAdvance(&e, now: t0 + 6799, env, [.arm(at: t0 + 6800)])
        expectAdvance(&e, now: t0 + 6800, env, [msg(2, "duty_manager", Fx.duty, t0 + 6800)])
    }

    // R-ESC-3: repeats missed while down are not sent in a burst.
    @Test("R-ESC-3: missed repeats are not sent in a burst; the next repeat counts from the late one")
    func lateRepeat() {
        let levels = [Level(role: .engineer, after: 0, every: 300, times: 3), Level(role: .teamLead, after: 1800, contact: Fx.lead)]
        var e = routed(levels)
        _ = e.advance(now: t0, env)
        // Repeats 2 (t0 + 300) and 3 (t0 + 600) were both due: one message.
        expectAdvance(&e, now: t0 + 1000, env, [msg(0, 2, "engineer", Fx.ana, t0 + 1000), .arm(at: t0 + 1300)])
        expectAdvance(&e, now: t0 + 1300, env, [msg(0, 3, "engineer", Fx.ana, t0 + 1300), .arm(at: t0 + 1800)])
        expectAdvance(&e, now: t0 + 1800, env, [msg(1, "team_lead", Fx.lead, t0 + 1800)])
    }

    // R-ESC-2, R-ESC-3: when the next level fell due while down, the engineer's repeats are over:
    // the one message is the team lead's.
    @Test("R-ESC-3: down past the next level's due time, only the next level is sent")
    func lateRepeatPastNextLevel() {
        let levels = [Level(role: .engineer, after: 0, every: 300, times: 3), Level(role: .teamLead, after: 1800, contact: Fx.lead),
                      Level(role: .dutyManager, after: 1800, contact: Fx.duty)]
        var e = routed(levels)
        _ = e.advance(now: t0, env)
        expectAdvance(&e, now: t0 + 5000, env, [msg(1, "team_lead", Fx.lead, t0 + 5000), .arm(at: t0 + 6800)])
        #expect(e.lastLevel == 1)
        expectAdvance(&e, now: t0 + 6800, env, [msg(2, "duty_manager", Fx.duty, t0 + 6800)])
    }
}

@Suite("Business hours (R-ESC-1)")
struct BusinessHoursTests {
    // Saturday 7 March 2026 03:00 EST; Toronto opens Monday 9 March at 08:00 EDT (DST began on the 8th): 12:00Z.
    let saturday = Fx.s("2026-03-07T08:00:00Z")
    let monday = Fx.s("2026-03-09T12:00:00Z")

    // R-ESC-1: a P2–P4 message outside business hours waits for the next opening, announced once.
    @Test("R-ESC-1: a P3 at Saturday 03:00 is held to Monday 08:00, then sent, and the chain counts from then")
    func heldOverWeekend() {
        let env = Fx.env(businessHours: Fx.toronto())
        var e = routed(threeLevels, priority: .p3, at: saturday)
        expectAdvance(&e, now: saturday, env, [.hold(level: 0, until: monday, at: saturday), .arm(at: monday)])
        #expect(e.heldUntil == monday)
        #expect(e.next == ChainStep(level: 0, attempt: 1, at: monday))
        // Woken again while still held: no second hold.
        expectAdvance(&e, now: saturday + 7200, env, [.arm(at: monday)])
        expectAdvance(&e, now: monday - 1, env, [.arm(at: monday)])
        expectAdvance(&e, now: monday, env, [msg(0, "engineer", Fx.ana, monday), .arm(at: monday + 900)])
        #expect(e.heldUntil == nil)
        expectAdvance(&e, now: monday + 900, env, [msg(1, "team_lead", Fx.lead, monday + 900), .arm(at: monday + 2700)])
    }

    // R-ESC-1: a level falling due after closing is held; the next one counts from when it went out.
    @Test("R-ESC-1: the team lead due at Friday 17:05 is held to Monday, the duty manager 30 min after that")
    func heldMidChain() {
        let env = Fx.env(businessHours: Fx.toronto())
        let friday = Fx.s("2026-03-06T21:50:00Z") // 16:50 EST
        var e = routed(threeLevels, priority: .p2, at: friday)
        expectAdvance(&e, now: friday, env, [msg(0, "engineer", Fx.ana, friday), .arm(at: friday + 900)])
        expectAdvance(&e, now: friday + 900, env, [.hold(level: 1, until: monday, at: friday + 900), .arm(at: monday)])
        expectAdvance(&e, now: monday, env, [msg(1, "team_lead", Fx.lead, monday), .arm(at: monday + 1800)])
        // Closing time itself is outside: 17:00 EST Friday is held.
        var closing = routed(threeLevels, priority: .p4, at: Fx.s("2026-03-06T22:00:00Z"))
        expectAdvance(&closing, now: Fx.s("2026-03-06T22:00:00Z"), env, [.hold(level: 0, until: monday, at: Fx.s("2026-03-06T22:00:00Z")), .arm(at: monday)])
    }

    // R-ESC-1: statutory holidays of the customer's region, and its extra holidays, are not business days.
    @Test("R-ESC-1: Christmas, observed Boxing Day (CA-ON) and an extra holiday are skipped")
    func holidays() {
        // Thursday 24 December 2026 18:00 EST. Friday 25th is Christmas; Boxing Day (Saturday 26th) is observed Monday 28th.
        let eve = Fx.s("2026-12-24T23:00:00Z")
        let tuesday = Fx.s("2026-12-29T13:00:00Z") // 08:00 EST
        let wednesday = Fx.s("2026-12-30T13:00:00Z")
        var e = routed(threeLevels, priority: .p2, at: eve)
        expectAdvance(&e, now: eve, Fx.env(businessHours: Fx.toronto()), [.hold(level: 0, until: tuesday, at: eve), .arm(at: tuesday)])
        // The customer's own extra holiday on the 29th: Wednesday.
        var f = routed(threeLevels, priority: .p2, at: eve)
        let extra = Fx.env(businessHours: Fx.toronto(extraHolidays: ["2026-12-29"]))
        expectAdvance(&f, now: eve, extra, [.hold(level: 0, until: wednesday, at: eve), .arm(at: wednesday)])
        expectAdvance(&f, now: wednesday, extra, [msg(0, "engineer", Fx.ana, wednesday), .arm(at: wednesday + 900)])
        // Good Friday (3 April 2026): Thursday after closing waits for Monday 6 April 08:00 EDT.
        var g = routed(threeLevels, priority: .p3, at: Fx.s("2026-04-02T21:30:00Z"))
        expectAdvance(&g, now: Fx.s("2026-04-02T21:30:00Z"), Fx.env(businessHours: Fx.toronto()), [.hold(level: 0, until: Fx.s("2026-04-06T12:00:00Z"), at: Fx.s("2026-04-02T21:30:00Z")), .arm(at: Fx.s("2026-04-06T12:00:00Z"))])
        // Inside business hours on Christmas Eve: sent at once.
        var h = routed(threeLevels, priority: .p2, at: Fx.s("2026-12-24T15:00:00Z"))
        expectAdvance(&h, now: Fx.s("2026-12-24T15:00:00Z"), Fx.env(businessHours: Fx.toronto()), [msg(0, "engineer", Fx.ana, Fx.s("2026-12-24T15:00:00Z")), .arm(at: Fx.s("2026-12-24T15:15:00Z"))])
    }

    // R-ESC-1: a P1 pages at once, 24x7 (the service gives it no business hours).
    @Test("R-ESC-1: a P1 (no business hours) pages at Saturday 03:00 at once")
    func p1() {
        var e = routed(threeLevels, priority: .p1, at: saturday)
        expectAdvance(&e, now: saturday, Fx.env(businessHours: nil), [msg(0, "engineer", Fx.ana, saturday), .arm(at: saturday + 900)])
        #expect(e.heldUntil == nil)
    }
}

@Suite("Customer escalation (R-ESC-4, R-CUS-5)")
struct CustomerEscalationTests {
    // R-ESC-4, R-CUS-5: the customer is told once, the primary POC and the success manager together.
    @Test("R-ESC-4 R-CUS-5: one message to the primary contact and the success manager, nothing after")
    func customer() {
        let id = Escalation.id(trackingNumber: "INC-000051", reason: .contactUnavailable, episode: 2)
        var e = Escalation(id: id, trackingNumber: "INC-000051", customerId: "acme", team: nil, priority: .p2,
                           reason: .contactUnavailable, phoneRequired: false, openedAt: t0)
        #expect(e.isCustomerEscalation)
        e.route(levels: [], customerRecipients: [Fx.primary, Fx.success], now: t0)
        let env = Fx.env(rotation: nil, successManager: Fx.success)
        expectAdvance(&e, now: t0, env, [.send(level: 0, attempt: 1, role: "primary_contact", recipients: [Fx.primary, Fx.success], at: t0)])
        #expect(e.next == nil)
        #expect(e.lastSentAt == t0)
        #expect(e.state == .open)
        expectAdvance(&e, now: t0 + 86_400, env, [])
        let resolved = e.resolve(cause: "customer_replied", at: t0 + 90_000)
        #expect(resolved)
        #expect(!Fx.escalation(openedAt: t0).isCustomerEscalation)
    }

    // R-ESC-1, R-ESC-4: outside the customer's business hours (P2–P4) the customer message waits too.
    @Test("R-ESC-1 R-ESC-4: a customer escalation outside business hours is held, then sent once")
    func customerHeld() {
        let saturday = Fx.s("2026-03-07T08:00:00Z"), monday = Fx.s("2026-03-09T12:00:00Z")
        var e = Escalation(id: "ESC-INC-000051-contact-1", trackingNumber: "INC-000051", customerId: "acme", team: nil, priority: .p3,
                           reason: .contactUnavailable, phoneRequired: false, openedAt: saturday)
        e.route(levels: [], customerRecipients: [Fx.primary, Fx.success], now: saturday)
        let env = Fx.env(rotation: nil, successManager: Fx.success, businessHours: Fx.toronto())
        expectAdvance(&e, now: saturday, env, [.hold(level: 0, until: monday, at: saturday), .arm(at: monday)])
        expectAdvance(&e, now: monday, env, [.send(level: 0, attempt: 1, role: "primary_contact", recipients: [Fx.primary, Fx.success], at: monday)])
        expectAdvance(&e, now: monday + 3600, env, [])
    }
}

@Suite("Escalation ids and storage")
struct EscalationIdentityTests {
    // R-ESC-3: one escalation per (ticket, target, threshold): the id says which.
    @Test("R-ESC-3: escalation ids")
    func ids() {
        #expect(Escalation.id(trackingNumber: "INC-000042", reason: .criticalIncident) == "ESC-INC-000042-critical")
        #expect(Escalation.id(trackingNumber: "INC-000042", reason: .slaWarning, target: "restoration", threshold: 0.5)
            == "ESC-INC-000042-restoration-0.5")
        #expect(Escalation.id(trackingNumber: "INC-000042", reason: .slaWarning, target: "response", threshold: 0.75)
            == "ESC-INC-000042-response-0.75")
        #expect(Escalation.id(trackingNumber: "INC-000042", reason: .slaBreached, target: "response") == "ESC-INC-000042-response-breached")
        #expect(Escalation.id(trackingNumber: "INC-000051", reason: .contactUnavailable, episode: 2) == "ESC-INC-000051-contact-2")
        #expect(Escalation.id(trackingNumber: "INC-000051", reason: .contactUnavailable) == "ESC-INC-000051-contact-1")
    }

    // R-ESC-3: what is stored reads back unchanged, so a restart resumes the chain where it was.
    @Test("R-ESC-3: an escalation (held, routed, acknowledged, customer) reads back equal through JSON")
    func escalationRoundTrip() throws {
        var held = routed([Level(role: .engineer, after: 0, every: 300, times: 3), Level(role: .teamLead, after: 900, contact: Fx.lead)],
                          priority: .p3, at: Fx.s("2026-03-06T21:55:00Z"))
        _ = held.advance(now: Fx.s("2026-03-06T21:55:00Z"), Fx.env(businessHours: Fx.toronto()))
        _ = held.advance(now: Fx.s("2026-03-06T22:00:00Z"), Fx.env(businessHours: Fx.toronto()))
        #expect(held.heldUntil == Fx.s("2026-03-09T12:00:00Z"))
        #expect(held.levelStartedAt == Fx.s("2026-03-06T21:55:00Z"))
        var acknowledged = routed(threeLevels)
        _ = acknowledged.advance(now: t0, Fx.env())
        _ = acknowledged.acknowledge(by: "ana@example.com", at: t0 + 10)
        var customer = Escalation(id: "ESC-INC-000051-contact-1", trackingNumber: "INC-000051", customerId: "acme", team: nil, priority: .p1,
                                  reason: .contactUnavailable, phoneRequired: true, openedAt: t0)
        customer.route(levels: [], customerRecipients: [Fx.primary, Fx.success], now: t0)
        let critical = Escalation(id: "ESC-INC-000042-critical", trackingNumber: "INC-000042", customerId: "acme", team: nil, priority: .p1,
                                  reason: .criticalIncident, phoneRequired: true, openedAt: t0)
        for e in [held, acknowledged, customer, critical] {
            let back = try JSONDecoder().decode(Escalation.self, from: JSONEncoder().encode(e))
            #expect(back == e)
        }
    }

    // R-ESC-5: a stored schedule reads back unchanged.
    @Test("R-ESC-5: a schedule reads back equal through JSON")
    func scheduleRoundTrip() throws {
        let (s, _) = try OnCallSchedule.parse(scheduleBody())
        let back = try JSONDecoder().decode(OnCallSchedule.self, from: JSONEncoder().encode(s))
        #expect(back == s)
        #expect(back.levels[0].every == 300)
        #expect(back.overrides.count == 2)
        #expect(try Rotation(back).handoff(0) == Fx.s("2026-03-02T14:00:00Z"))
    }
}
