import CSSCalendar
import CSSModel
import Foundation
@testable import EscalationService
import Testing

/// Hand-off instants `0..<count` of `rotation`.
func handoffs(_ r: Rotation, _ count: Int64) -> [Int64] { (0..<count).map(r.handoff) }

/// Checks that `who` takes over exactly at `at`: `before` is on call one second earlier.
func expectTakeover(_ r: Rotation, at: Int64, from before: Contact?, to who: Contact, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.onCall(at: at - 1)?.member == before, sourceLocation: sourceLocation)
    #expect(r.onCall(at: at) == OnCall(member: who, source: .rotation), sourceLocation: sourceLocation)
}

@Suite("On-call rotation across DST (R-ESC-5)")
struct RotationDSTTests {
    // R-ESC-5: a 09:00 hand-off is 09:00 New York wall time on both sides of the March change
    // (14:00Z in EST, 13:00Z in EDT), and the members follow one another day by day.
    @Test("R-ESC-5: New York daily 09:00 hand-off across the March change")
    func newYorkMarchDaily() throws {
        let r = try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(9), rotationDays: 1, start: "2026-03-06")
        #expect(handoffs(r, 5) == [Fx.s("2026-03-06T14:00:00Z"), Fx.s("2026-03-07T14:00:00Z"), Fx.s("2026-03-08T13:00:00Z"),
                                   Fx.s("2026-03-09T13:00:00Z"), Fx.s("2026-03-10T13:00:00Z")])
        #expect(r.onCall(at: Fx.s("2026-03-06T13:59:59Z")) == nil) // before the first hand-off
        expectTakeover(r, at: Fx.s("2026-03-06T14:00:00Z"), from: nil, to: Fx.ana)
        expectTakeover(r, at: Fx.s("2026-03-07T14:00:00Z"), from: Fx.ana, to: Fx.bo)
        expectTakeover(r, at: Fx.s("2026-03-08T13:00:00Z"), from: Fx.bo, to: Fx.cy) // 09:00 EDT, not 10:00
        expectTakeover(r, at: Fx.s("2026-03-09T13:00:00Z"), from: Fx.cy, to: Fx.ana)
        expectTakeover(r, at: Fx.s("2026-03-10T13:00:00Z"), from: Fx.ana, to: Fx.bo)
        let next = r.handoffs(after: Fx.s("2026-03-06T00:00:00Z"), count: 5)
        #expect(next.map(\.at) == handoffs(r, 5))
        #expect(next.map(\.onCall?.member) == [Fx.ana, Fx.bo, Fx.cy, Fx.ana, Fx.bo])
    }

    // R-ESC-5: weekly hand-offs on Sundays: the change day's hand-off is 13:00Z, the one before 14:00Z.
    @Test("R-ESC-5: New York weekly 09:00 hand-off across the March change")
    func newYorkMarchWeekly() throws {
        let r = try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(9), rotationDays: 7, start: "2026-03-01")
        #expect(handoffs(r, 4) == [Fx.s("2026-03-01T14:00:00Z"), Fx.s("2026-03-08T13:00:00Z"), Fx.s("2026-03-15T13:00:00Z"),
                                   Fx.s("2026-03-22T13:00:00Z")])
        expectTakeover(r, at: Fx.s("2026-03-01T14:00:00Z"), from: nil, to: Fx.ana)
        expectTakeover(r, at: Fx.s("2026-03-08T13:00:00Z"), from: Fx.ana, to: Fx.bo)
        expectTakeover(r, at: Fx.s("2026-03-15T13:00:00Z"), from: Fx.bo, to: Fx.cy)
        expectTakeover(r, at: Fx.s("2026-03-22T13:00:00Z"), from: Fx.cy, to: Fx.ana)
        // In the middle of a week: whoever took over last.
        #expect(r.onCall(at: Fx.s("2026-03-11T03:00:00Z"))?.member == Fx.bo)
        #expect(r.onCall(at: Fx.s("2026-04-02T12:00:00Z"))?.member == Fx.bo) // week of 29 March: hand-off 4, member 4 % 3
        #expect(r.handoff(4) == Fx.s("2026-03-29T13:00:00Z"))
    }

    // R-ESC-5: the November change: 09:00 EDT (13:00Z) before, 09:00 EST (14:00Z) on the day of the change;
    // 13:00Z that day is 08:00 EST, still the previous member's shift.
    @Test("R-ESC-5: New York 09:00 hand-off across the November change, daily and weekly")
    func newYorkNovember() throws {
        let daily = try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(9), rotationDays: 1, start: "2026-10-30")
        #expect(handoffs(daily, 4) == [Fx.s("2026-10-30T13:00:00Z"), Fx.s("2026-10-31T13:00:00Z"), Fx.s("2026-11-01T14:00:00Z"),
                                       Fx.s("2026-11-02T14:00:00Z")])
        expectTakeover(daily, at: Fx.s("2026-10-31T13:00:00Z"), from: Fx.ana, to: Fx.bo)
        #expect(daily.onCall(at: Fx.s("2026-11-01T13:00:00Z"))?.member == Fx.bo)
        expectTakeover(daily, at: Fx.s("2026-11-01T14:00:00Z"), from: Fx.bo, to: Fx.cy)
        expectTakeover(daily, at: Fx.s("2026-11-02T14:00:00Z"), from: Fx.cy, to: Fx.ana)

        let weekly = try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(9), rotationDays: 7, start: "2026-10-18")
        #expect(handoffs(weekly, 4) == [Fx.s("2026-10-18T13:00:00Z"), Fx.s("2026-10-25T13:00:00Z"), Fx.s("2026-11-01T14:00:00Z"),
                                        Fx.s("2026-11-08T14:00:00Z")])
        expectTakeover(weekly, at: Fx.s("2026-11-01T14:00:00Z"), from: Fx.bo, to: Fx.cy)
        expectTakeover(weekly, at: Fx.s("2026-11-08T14:00:00Z"), from: Fx.cy, to: Fx.ana)
        let next = weekly.handoffs(after: Fx.s("2026-10-20T00:00:00Z"), count: 3)
        #expect(next.map(\.at) == [Fx.s("2026-10-25T13:00:00Z"), Fx.s("2026-11-01T14:00:00Z"), Fx.s("2026-11-08T14:00:00Z")])
        #expect(next.map(\.onCall?.member) == [Fx.bo, Fx.cy, Fx.ana])
    }

    // R-ESC-5: London changes on the last Sunday of March (29th) and of October (25th) 2026:
    // 09:00 GMT is 09:00Z, 09:00 BST is 08:00Z.
    @Test("R-ESC-5: London 09:00 hand-off across both 2026 changes")
    func london() throws {
        let spring = try Fx.rotation(zone: "Europe/London", handoff: Fx.hm(9), rotationDays: 1, start: "2026-03-27")
        #expect(handoffs(spring, 4) == [Fx.s("2026-03-27T09:00:00Z"), Fx.s("2026-03-28T09:00:00Z"), Fx.s("2026-03-29T08:00:00Z"),
                                        Fx.s("2026-03-30T08:00:00Z")])
        expectTakeover(spring, at: Fx.s("2026-03-29T08:00:00Z"), from: Fx.bo, to: Fx.cy)
        expectTakeover(spring, at: Fx.s("2026-03-30T08:00:00Z"), from: Fx.cy, to: Fx.ana)

        let autumn = try Fx.rotation(zone: "Europe/London", handoff: Fx.hm(9), rotationDays: 1, start: "2026-10-23")
        #expect(handoffs(autumn, 4) == [Fx.s("2026-10-23T08:00:00Z"), Fx.s("2026-10-24T08:00:00Z"), Fx.s("2026-10-25T09:00:00Z"),
                                        Fx.s("2026-10-26T09:00:00Z")])
        #expect(autumn.onCall(at: Fx.s("2026-10-25T08:00:00Z"))?.member == Fx.bo) // 08:00 GMT: still Bo
        expectTakeover(autumn, at: Fx.s("2026-10-25T09:00:00Z"), from: Fx.bo, to: Fx.cy)

        let weekly = try Fx.rotation(zone: "Europe/London", handoff: Fx.hm(9), rotationDays: 7, start: "2026-03-22")
        #expect(handoffs(weekly, 3) == [Fx.s("2026-03-22T09:00:00Z"), Fx.s("2026-03-29T08:00:00Z"), Fx.s("2026-04-05T08:00:00Z")])
        expectTakeover(weekly, at: Fx.s("2026-03-29T08:00:00Z"), from: Fx.ana, to: Fx.bo)
        expectTakeover(weekly, at: Fx.s("2026-04-05T08:00:00Z"), from: Fx.bo, to: Fx.cy)
    }

    // R-ESC-5: Lord Howe moves its clocks by 30 minutes. On 4 October 2026 02:00 (+10:30) becomes
    // 02:30 (+11:00): a 02:15 hand-off does not exist that day and happens when the clocks jump,
    // 2026-10-03T15:30:00Z; the days around it hand off at 02:15 local.
    @Test("R-ESC-5: Lord Howe, a hand-off in the 30-minute spring-forward gap happens at the jump")
    func lordHoweGap() throws {
        let r = try Fx.rotation(zone: "Australia/Lord_Howe", handoff: Fx.hm(2, 15), rotationDays: 1, start: "2026-10-03")
        #expect(handoffs(r, 3) == [Fx.s("2026-10-02T15:45:00Z"), Fx.s("2026-10-03T15:30:00Z"), Fx.s("2026-10-04T15:15:00Z")])
        expectTakeover(r, at: Fx.s("2026-10-03T15:30:00Z"), from: Fx.ana, to: Fx.bo)
        expectTakeover(r, at: Fx.s("2026-10-04T15:15:00Z"), from: Fx.bo, to: Fx.cy)
    }

    // R-ESC-5: on 5 April 2026 Lord Howe falls back from 02:00 (+11:00) to 01:30 (+10:30): 01:45
    // happens twice (14:45Z and 15:15Z); the hand-off is at the first, and the second is no hand-off.
    @Test("R-ESC-5: Lord Howe, a hand-off in the fall-back fold happens at its first occurrence, once")
    func lordHoweFold() throws {
        let r = try Fx.rotation(zone: "Australia/Lord_Howe", handoff: Fx.hm(1, 45), rotationDays: 1, start: "2026-04-04")
        #expect(handoffs(r, 3) == [Fx.s("2026-04-03T14:45:00Z"), Fx.s("2026-04-04T14:45:00Z"), Fx.s("2026-04-05T15:15:00Z")])
        expectTakeover(r, at: Fx.s("2026-04-04T14:45:00Z"), from: Fx.ana, to: Fx.bo)
        #expect(r.onCall(at: Fx.s("2026-04-04T15:15:00Z"))?.member == Fx.bo) // the second 01:45: still Bo
        expectTakeover(r, at: Fx.s("2026-04-05T15:15:00Z"), from: Fx.bo, to: Fx.cy) // the next day's 01:45 at +10:30
        let next = r.handoffs(after: Fx.s("2026-04-04T14:00:00Z"), count: 2)
        #expect(next.map(\.at) == [Fx.s("2026-04-04T14:45:00Z"), Fx.s("2026-04-05T15:15:00Z")])
        #expect(next.map(\.onCall?.member) == [Fx.bo, Fx.cy])
    }

    // R-ESC-5: New York's gap is 02:00–03:00 on 8 March: a 02:30 hand-off happens at the jump,
    // 07:00Z; 02:30 on 1 November exists once (07:30Z, EST).
    @Test("R-ESC-5: New York 02:30 hand-off in the March gap happens at the jump")
    func newYorkGap() throws {
        let r = try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(2, 30), rotationDays: 1, start: "2026-03-07")
        #expect(handoffs(r, 3) == [Fx.s("2026-03-07T07:30:00Z"), Fx.s("2026-03-08T07:00:00Z"), Fx.s("2026-03-09T06:30:00Z")])
        expectTakeover(r, at: Fx.s("2026-03-08T07:00:00Z"), from: Fx.ana, to: Fx.bo)
        expectTakeover(r, at: Fx.s("2026-03-09T06:30:00Z"), from: Fx.bo, to: Fx.cy)
        let november = try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(2, 30), rotationDays: 1, start: "2026-10-31")
        #expect(handoffs(november, 3) == [Fx.s("2026-10-31T06:30:00Z"), Fx.s("2026-11-01T07:30:00Z"), Fx.s("2026-11-02T07:30:00Z")])
    }

    // R-ESC-5: New York's fold is 01:00–02:00 on 1 November: a 01:30 hand-off happens at the first
    // 01:30 (EDT, 05:30Z), and the second 01:30 (EST, 06:30Z) changes nothing.
    @Test("R-ESC-5: New York 01:30 hand-off in the November fold happens at its first occurrence")
    func newYorkFold() throws {
        let r = try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(1, 30), rotationDays: 1, start: "2026-10-31")
        #expect(handoffs(r, 3) == [Fx.s("2026-10-31T05:30:00Z"), Fx.s("2026-11-01T05:30:00Z"), Fx.s("2026-11-02T06:30:00Z")])
        expectTakeover(r, at: Fx.s("2026-11-01T05:30:00Z"), from: Fx.ana, to: Fx.bo)
        #expect(r.onCall(at: Fx.s("2026-11-01T06:30:00Z"))?.member == Fx.bo)
        #expect(r.onCall(at: Fx.s("2026-11-02T06:29:59Z"))?.member == Fx.bo)
        expectTakeover(r, at: Fx.s("2026-11-02T06:30:00Z"), from: Fx.bo, to: Fx.cy)
    }
}

@Suite("On-call overrides (R-ESC-5)")
struct OverrideTests {
    /// Daily 09:00 New York hand-offs from 1 June 2026 (13:00Z, EDT); Sub covers 2 June 20:00Z to 3 June 15:00Z,
    /// and someone covers 31 May 00:00Z–06:00Z, before the rotation starts.
    static func rotation() throws -> Rotation {
        try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(9), rotationDays: 1, start: "2026-06-01", overrides: [
            Override(member: Fx.lead, start: Fx.s("2026-05-31T00:00:00Z"), end: Fx.s("2026-05-31T06:00:00Z"), reason: "pre-launch"),
            Override(member: Fx.sub, start: Fx.s("2026-06-02T20:00:00Z"), end: Fx.s("2026-06-03T15:00:00Z"), reason: "swap"),
        ])
    }

    // R-ESC-5: an override covers [start, end) exactly, over the rotation hand-off inside it.
    @Test("R-ESC-5: an override covers the rotation over [start, end), reported as source override")
    func covers() throws {
        let r = try Self.rotation()
        #expect(r.onCall(at: Fx.s("2026-06-02T19:59:59Z")) == Fx.onCall(Fx.bo))
        #expect(r.onCall(at: Fx.s("2026-06-02T20:00:00Z")) == Fx.covering(Fx.sub))
        #expect(r.onCall(at: Fx.s("2026-06-03T13:00:00Z")) == Fx.covering(Fx.sub)) // Cy's hand-off is covered
        #expect(r.onCall(at: Fx.s("2026-06-03T14:59:59Z")) == Fx.covering(Fx.sub))
        #expect(r.onCall(at: Fx.s("2026-06-03T15:00:00Z")) == Fx.onCall(Fx.cy))
        #expect(r.onCall(at: Fx.s("2026-06-03T15:00:00Z"))?.json["source"] == "rotation")
        #expect(r.onCall(at: Fx.s("2026-06-03T14:00:00Z"))?.json["source"] == "override")
    }

    // R-ESC-5: before the first hand-off nobody is on call from the rotation; an override still applies.
    @Test("R-ESC-5: before the first hand-off nobody is on call, unless an override covers it")
    func beforeStart() throws {
        let r = try Self.rotation()
        #expect(r.onCall(at: Fx.s("2026-05-30T12:00:00Z")) == nil)
        #expect(r.onCall(at: Fx.s("2026-05-31T00:00:00Z")) == Fx.covering(Fx.lead))
        #expect(r.onCall(at: Fx.s("2026-05-31T05:59:59Z")) == Fx.covering(Fx.lead))
        #expect(r.onCall(at: Fx.s("2026-05-31T06:00:00Z")) == nil)
        #expect(r.onCall(at: Fx.s("2026-06-01T12:59:59Z")) == nil)
        #expect(r.onCall(at: Fx.s("2026-06-01T13:00:00Z")) == Fx.onCall(Fx.ana))
        let next = r.handoffs(after: Fx.s("2026-05-30T00:00:00Z"), count: 3)
        #expect(next.map(\.at) == [Fx.s("2026-05-31T00:00:00Z"), Fx.s("2026-05-31T06:00:00Z"), Fx.s("2026-06-01T13:00:00Z")])
        #expect(next.map(\.onCall) == [Fx.covering(Fx.lead), nil, Fx.onCall(Fx.ana)])
    }

    // R-ESC-5: the hand-offs list the instants where who is on call changes, in order: rotation
    // hand-offs and override edges; a hand-off inside an override changes nothing and is left out.
    @Test("R-ESC-5: handoffs(after:count:) lists override edges and rotation hand-offs in order")
    func handoffList() throws {
        let r = try Self.rotation()
        let next = r.handoffs(after: Fx.s("2026-06-01T12:00:00Z"), count: 5)
        #expect(next.map(\.at) == [Fx.s("2026-06-01T13:00:00Z"), Fx.s("2026-06-02T13:00:00Z"), Fx.s("2026-06-02T20:00:00Z"),
                                   Fx.s("2026-06-03T15:00:00Z"), Fx.s("2026-06-04T13:00:00Z")])
        #expect(next.map(\.onCall) == [Fx.onCall(Fx.ana), Fx.onCall(Fx.bo), Fx.covering(Fx.sub), Fx.onCall(Fx.cy), Fx.onCall(Fx.ana)])
        // From inside the override: its end comes first.
        let inside = r.handoffs(after: Fx.s("2026-06-03T13:00:00Z"), count: 2)
        #expect(inside.map(\.at) == [Fx.s("2026-06-03T15:00:00Z"), Fx.s("2026-06-04T13:00:00Z")])
        #expect(inside.map(\.onCall) == [Fx.onCall(Fx.cy), Fx.onCall(Fx.ana)])
        // Strictly after `t`: a hand-off at `t` itself is not listed.
        #expect(r.handoffs(after: Fx.s("2026-06-01T13:00:00Z"), count: 1).map(\.at) == [Fx.s("2026-06-02T13:00:00Z")])
    }

    // R-ESC-5: a long override (here 30 days over a daily rotation) hides many hand-offs; the
    // list still reaches past its end.
    @Test("R-ESC-5: handoffs(after:count:) reaches past a long override covering many hand-offs")
    func longOverride() throws {
        let r = try Fx.rotation(zone: "America/New_York", handoff: Fx.hm(9), rotationDays: 1, start: "2026-06-01", overrides: [
            Override(member: Fx.sub, start: Fx.s("2026-06-10T00:00:00Z"), end: Fx.s("2026-07-10T00:00:00Z"), reason: "parental leave cover"),
        ])
        let next = r.handoffs(after: Fx.s("2026-06-09T00:00:00Z"), count: 4)
        // 9 June 13:00Z is hand-off 8 (Cy); 10 July 13:00Z is hand-off 39 (Ana).
        #expect(next.map(\.at) == [Fx.s("2026-06-09T13:00:00Z"), Fx.s("2026-06-10T00:00:00Z"), Fx.s("2026-07-10T00:00:00Z"),
                                   Fx.s("2026-07-10T13:00:00Z")])
        #expect(next.map(\.onCall) == [Fx.onCall(Fx.cy), Fx.covering(Fx.sub), Fx.onCall(Fx.cy), Fx.onCall(Fx.ana)])
    }
}
