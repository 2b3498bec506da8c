import CSSCalendar
import CSSModel
import Foundation
import Testing

@testable import ChangeManagementService

func at(_ text: String) -> Int64 { Int64(RFC3339.parse(text)!.timeIntervalSince1970) }

let toronto = try! CalendarSpec(kind: .business, timeZone: "America/Toronto", region: "CA-ON").build()
/// Saturdays 22:00 to Sunday 06:00, Toronto time: a window that crosses midnight.
let weekend = MaintenancePlan(timeZone: "America/Toronto", windows: [WeeklyWindow(weekday: .saturday, start: 22 * 3600, end: 6 * 3600)])
/// Every day, all day: only notice, freezes and conflicts can refuse.
let always = MaintenancePlan(timeZone: "America/Toronto", windows: Weekday.allCases.map { WeeklyWindow(weekday: $0, start: 0, end: 0) })

func verified(_ type: ChangeType = .normal, interrupts: Bool = true, components: [String] = ["docstore"], id: String = "CHG-000001") -> Change {
    var c = change(type, interrupts: interrupts)
    c.id = id
    c.components = components
    c.state = .verifiedTest
    return c
}

func check(_ c: Change, _ window: Interval, env: Deployment = .production, maintenance: Maintenance? = nil, now: Int64 = t0,
           plan: MaintenancePlan = weekend, others: [ScheduledChange] = []) throws -> Notice {
    try ChangePolicy.check(c, env, window, maintenance: maintenance, now: now, plan: plan, windowCalendar: try! plan.windowCalendar(),
                           business: toronto, others: others)
}

func codes(_ body: () throws -> Notice) -> [String] {
    do {
        _ = try body()
        return []
    } catch let error as CommandRejection {
        return error.errors.map(\.code)
    } catch {
        return ["\(error)"]
    }
}

@Suite("Maintenance windows, notice, freezes, conflicts (R-CHG-4, R-CHG-5)") struct ChangePolicyTests {
    // R-CHG-4: Production inside a routine window, also one that crosses midnight into the night the clocks spring
    // forward (Sat 22:00 EST to Sun 06:00 EDT is 7 hours); a minute outside it is refused naming the windows.
    @Test func productionMustSitInsideAWindowAcrossMidnightAndDST() throws {
        let c = verified(interrupts: false)
        let whole = Interval(start: at("2026-03-08T03:00:00Z"), end: at("2026-03-08T10:00:00Z"))
        #expect(try check(c, whole).announce == false)
        #expect(codes { try check(c, Interval(start: at("2026-03-08T09:30:00Z"), end: at("2026-03-08T10:01:00Z"))) } == [ErrorCode.outsideWindow])
        do {
            _ = try check(c, Interval(start: at("2026-03-08T02:59:00Z"), end: at("2026-03-08T04:00:00Z")))
            Issue.record("a schedule starting before the window was accepted")
        } catch let error as CommandRejection {
            #expect(error.errors.first?.message.contains("saturday 22:00–06:00 (America/Toronto)") == true)
            #expect(error.errors.first?.field == "start")
        }
        // Outside the windows with the customer's agreement, or an Emergency change: no window needed.
        #expect(try check(c, Interval(start: at("2026-03-04T17:00:00Z"), end: at("2026-03-04T18:00:00Z")), maintenance: .agreed).announce == false)
        #expect(try check(verified(.emergency, interrupts: false), Interval(start: at("2026-03-02T16:00:00Z"), end: at("2026-03-02T17:00:00Z"))).announce == false)
        #expect(codes { try check(c, Interval(start: at("2026-03-04T17:00:00Z"), end: at("2026-03-04T18:00:00Z")), maintenance: .emergency) }
                == [ErrorCode.invalidField])
    }

    // R-CHG-4: routine maintenance that interrupts service needs 5 business days' notice, counted in the
    // customer's business calendar: from Monday 2 March 10:00 EST the earliest is Monday 9 March 10:00 EDT
    // (14:00Z, across the DST change), so the window of Saturday 7 March is too soon and the next one is fine.
    @Test func interruptingRoutineMaintenanceNeedsFiveBusinessDaysNotice() throws {
        let c = verified(interrupts: true)
        do {
            _ = try check(c, Interval(start: at("2026-03-08T03:00:00Z"), end: at("2026-03-08T05:00:00Z")))
            Issue.record("too short a notice was accepted")
        } catch let error as CommandRejection {
            #expect(error.errors.map(\.code) == [ErrorCode.insufficientNotice])
            #expect(error.errors.first?.message.contains("2026-03-09T14:00:00Z") == true)
        }
        let notice = try check(c, Interval(start: at("2026-03-15T02:00:00Z"), end: at("2026-03-15T04:00:00Z")))
        #expect(notice.announce && notice.earliestRoutineStart == at("2026-03-09T14:00:00Z"))
        // Agreed maintenance outside the windows is not routine: no 5-day rule, still announced.
        #expect(try check(c, Interval(start: at("2026-03-03T17:00:00Z"), end: at("2026-03-03T18:00:00Z")), maintenance: .agreed).announce)
    }

    // R-CHG-4: Christmas, Boxing Day observed on Monday 28 December and the weekend do not count: announced on
    // Monday 21 December at 10:00, routine maintenance may start on Wednesday 30 December at 10:00 at the earliest.
    @Test func noticeSkipsHolidays() throws {
        let c = verified(interrupts: true)
        let now = at("2026-12-21T15:00:00Z")
        #expect(codes { try check(c, Interval(start: at("2026-12-29T15:00:00Z"), end: at("2026-12-29T16:00:00Z")), now: now, plan: always) }
                == [ErrorCode.insufficientNotice])
        #expect(try check(c, Interval(start: at("2026-12-30T15:00:00Z"), end: at("2026-12-30T16:00:00Z")), now: now, plan: always)
                .earliestRoutineStart == at("2026-12-30T15:00:00Z"))
    }

    // R-CHG-4: a freeze refuses everything but Emergency changes, Test included; the past is refused.
    @Test func freezeRefusesAllButEmergency() throws {
        var plan = always
        plan.freezes = [Freeze(interval: Interval(start: at("2026-12-15T05:00:00Z"), end: at("2027-01-05T05:00:00Z")), reason: "year-end freeze")]
        let window = Interval(start: at("2027-01-04T15:00:00Z"), end: at("2027-01-04T16:00:00Z"))
        let now = at("2026-12-01T15:00:00Z")
        do {
            _ = try check(verified(interrupts: false), window, env: .test, now: now, plan: plan)
            Issue.record("a change in a freeze was accepted")
        } catch let error as CommandRejection {
            #expect(error.errors.map(\.code) == [ErrorCode.inFreeze])
            #expect(error.errors.first?.message.contains("year-end freeze") == true)
        }
        #expect(codes { try check(verified(.emergency, interrupts: false), window, now: now, plan: plan) }.isEmpty)
        #expect(codes { try check(verified(interrupts: false), Interval(start: t0 - 3600, end: t0), env: .test, plan: always) } == [ErrorCode.windowInPast])
    }

    // R-CHG-5: overlapping Production implementations of one customer, or one component changed twice at once,
    // are refused naming the other change, unless one of the two is an Emergency change.
    @Test func conflictsAreRefusedUnlessOneIsEmergency() throws {
        let window = Interval(start: at("2026-03-15T02:00:00Z"), end: at("2026-03-15T04:00:00Z"))
        let other = ScheduledChange(changeId: "CHG-000007", customerId: "acme", type: .normal, environment: .production,
                                    components: ["portal"], window: Interval(start: at("2026-03-15T03:00:00Z"), end: at("2026-03-15T05:00:00Z")))
        let c = verified(interrupts: false)
        do {
            _ = try check(c, window, others: [other])
            Issue.record("an overlapping implementation was accepted")
        } catch let error as CommandRejection {
            #expect(error.errors.map(\.code) == [ErrorCode.changeConflict])
            #expect(error.errors.first?.message.contains("CHG-000007") == true)
        }
        var urgent = other
        urgent.type = .emergency
        #expect(codes { try check(c, window, others: [urgent]) }.isEmpty)
        #expect(codes { try check(verified(.emergency, interrupts: false), window, others: [other]) }.isEmpty)
        var later = other
        later.window = Interval(start: window.end, end: window.end + 3600) // touching is not overlapping
        #expect(codes { try check(c, window, others: [later]) }.isEmpty)
        // Test: the same component at once is a conflict, another component is not.
        let onTest = ScheduledChange(changeId: "CHG-000008", customerId: "acme", type: .standard, environment: .test,
                                     components: ["docstore"], window: Interval(start: t0 + 3600, end: t0 + 7200))
        #expect(codes { try check(c, Interval(start: t0 + 5400, end: t0 + 9000), env: .test, plan: always, others: [onTest]) } == [ErrorCode.changeConflict])
        #expect(codes { try check(verified(interrupts: false, components: ["portal"]), Interval(start: t0 + 5400, end: t0 + 9000),
                                  env: .test, plan: always, others: [onTest]) }.isEmpty)
        // The change itself is not a conflict with its own earlier schedule.
        var own = onTest
        own.changeId = c.id
        #expect(codes { try check(c, Interval(start: t0 + 5400, end: t0 + 9000), env: .test, plan: always, others: [own]) }.isEmpty)
    }
}
