import CSSCalendar
import CSSModel
import Foundation
import SLATimerService
import Testing

/// A customer in Toronto with Ontario's holidays, as the clock sees it.
struct Fixture {
    let env: SLAEnvironment

    init(policy: SLAPolicy = .handbook, exclusions: [InstantRange] = [], zone: String = "America/Toronto", region: String? = "CA-ON") {
        let business = try! CalendarSpec(kind: .business, timeZone: zone, region: region).build()
        let always = try! CalendarSpec(kind: .twentyFourSeven, timeZone: zone).build()
        env = SLAEnvironment(calendars: SLACalendars(business: business, always: always), policy: policy, exclusions: exclusions)
    }

    static func t(_ text: String) -> Date { RFC3339.parse(text)! }
    static func s(_ text: String) -> Int64 { Int64(RFC3339.parse(text)!.timeIntervalSince1970) }

    /// The clocks after these inputs (the first one classifies), as the service would replay them.
    func clock(_ received: String, _ inputs: [SLAInput], now: String? = nil) throws -> (TicketClock, [SLAEffect]) {
        let at = now.map(Self.s) ?? Self.s(received)
        return try TicketClock.replay(inputs, trackingNumber: "INC-1", customerId: "acme", receivedAt: Self.t(received),
                                      previous: nil, now: at, environment: env)!
    }

    static func classified(_ p: Priority, _ at: String) -> SLAInput {
        SLAInput(kind: .classified, at: SLAInput.micros(t(at)), id: "c", priority: p)
    }

    static func action(_ a: TicketAction, _ at: String, id: String? = nil) -> SLAInput {
        SLAInput(kind: .transitioned, at: SLAInput.micros(t(at)), id: id ?? "\(a.rawValue)@\(at)", action: a)
    }

    static func reclassified(_ p: Priority, _ at: String) -> SLAInput {
        SLAInput(kind: .reclassified, at: SLAInput.micros(t(at)), id: "r@\(at)", priority: p)
    }
}

extension SLAEffect {
    var type: String? { if case .publish(let type, _, _) = self { return type } else { return nil } }
    var data: JSONObject? { if case .publish(_, _, let data) = self { return data } else { return nil } }
}

/// The target `name` in the last event of `type` that mentions it.
func target(_ effects: [SLAEffect], _ type: String, _ name: String) -> JSONObject? {
    for e in effects.reversed() where e.type == type {
        if let list = e.data?["targets"]?.arrayValue {
            if let o = list.compactMap(\.objectValue).first(where: { $0["target"]?.stringValue == name }) { return o }
        } else if e.data?["target"]?.stringValue == name {
            return e.data
        }
    }
    return nil
}

func due(_ effects: [SLAEffect], _ type: String, _ name: String) -> String? {
    target(effects, type, name)?["dueAt"]?.stringValue
}

@Suite("SLA clock: starting (R-SLA-1, R-SLA-2, R-SLA-3)")
struct SLAStartTests {
    let f = Fixture()

    @Test("R-SLA-1 R-SLA-3: a P1 counts 1 h and 8 h around the clock from the receipt rounded down to the second")
    func p1() throws {
        let (clock, effects) = try f.clock("2026-03-07T23:30:00.700Z", [Fixture.classified(.p1, "2026-03-07T23:30:00.700Z")])
        #expect(clock.start == Fixture.s("2026-03-07T23:30:00Z"))
        let started = try #require(effects.first { $0.type == EventType.slaStarted }?.data)
        #expect(started["startedAt"]?.stringValue == "2026-03-07T23:30:00Z")
        #expect(started["receivedAt"]?.stringValue == "2026-03-07T23:30:00.7Z")
        #expect(due(effects, EventType.slaStarted, "response") == "2026-03-08T00:30:00Z")
        #expect(due(effects, EventType.slaStarted, "restoration") == "2026-03-08T07:30:00Z")
        #expect(target(effects, EventType.slaStarted, "response")?["calendar"]?.stringValue == "24x7")
        #expect(target(effects, EventType.slaStarted, "response")?["allowedSeconds"]?.numberValue == Double(3600))
        // The first timer is the 50 % warning of the response target.
        #expect(effects.contains(.arm(target: .response, at: Fixture.s("2026-03-08T00:00:00Z"))))
    }

    @Test("R-SLA-2: a P3 received on a Friday afternoon is due on Monday, across the DST change, in business hours")
    func businessAcrossDST() throws {
        // Friday 6 March 2026 16:00 EST; clocks go forward on Sunday 8 March; Monday opens 08:00 EDT (12:00Z).
        let (_, effects) = try f.clock("2026-03-06T21:00:00Z", [Fixture.classified(.p3, "2026-03-06T21:00:00Z")])
        // 1 h on Friday, 3 h on Monday: 11:00 EDT.
        #expect(due(effects, EventType.slaStarted, "response") == "2026-03-09T15:00:00Z")
        #expect(target(effects, EventType.slaStarted, "response")?["calendar"]?.stringValue == "business")
    }

    @Test("R-SLA-2: a statutory holiday of the region does not count (Ontario Family Day)")
    func holiday() throws {
        // Friday 13 February 2026 16:00 EST; Monday 16 February is Family Day in Ontario.
        let (_, effects) = try f.clock("2026-02-13T21:00:00Z", [Fixture.classified(.p4, "2026-02-13T21:00:00Z")])
        // 1 h Friday, 7 h Tuesday from 08:00: 15:00 EST.
        #expect(due(effects, EventType.slaStarted, "response") == "2026-02-17T20:00:00Z")
    }

    @Test("R-SLA-1: the contract's slaPolicy overrides some priorities and keeps the handbook for the rest")
    func policyOverrides() throws {
        let policy = try SLAPolicy.from(slaPolicy: ["P3": ["response": "PT10S", "calendar": "24x7"], "warnAt": [0.5]])
        #expect(policy.terms(.p3, .response) == SLATerms(calendar: .twentyFourSeven, allowedSeconds: 10))
        #expect(policy.terms(.p3, .restoration) == SLATerms(calendar: .twentyFourSeven, allowedSeconds: 48 * 3600))
        #expect(policy.terms(.p2, .response) == SLATerms(calendar: .business, allowedSeconds: 7200))
        #expect(policy.warnAt == [0.5])
        #expect(throws: CommandRejection.self) { try SLAPolicy.from(slaPolicy: ["P1": ["response": "PT1.5S"]]) }
        #expect(throws: CommandRejection.self) { try SLAPolicy.from(slaPolicy: ["P1": ["calendar": "5x8"]]) }
    }

    @Test("R-SLA-1: a ticket's stored terms read back as they were written")
    func policyStorage() throws {
        let policy = try SLAPolicy.from(slaPolicy: ["P2": ["response": "PT90S", "restoration": "PT5M", "calendar": "24x7"], "warnAt": [0.25, 0.8]])
        let text = try JSONEncoder().encode(policy)
        #expect(try JSONDecoder().decode(SLAPolicy.self, from: text) == policy)
        #expect(try JSONDecoder().decode(SLAPolicy.self, from: JSONEncoder().encode(SLAPolicy.handbook)) == .handbook)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(SLAPolicy.self, from: Data(#""P1:x""#.utf8)) }
    }

    @Test("R-SLA-6: thresholds are whole seconds, never rounded down")
    func thresholdRounding() {
        #expect(SLAPolicy.thresholdSeconds(0.9, of: 3600) == 3240)
        #expect(SLAPolicy.thresholdSeconds(0.75, of: 10) == 8)
        #expect(SLAPolicy.thresholdSeconds(0.5, of: 3) == 2)
        #expect(SLAPolicy.thresholdSeconds(0.1, of: 30) == 3)
        #expect(SLAPolicy.key(0.75) == "0.75")
        #expect(SLAPolicy.key(0.5) == "0.5")
    }
}

@Suite("SLA clock: stopping, pausing, reclassifying (R-SLA-4, R-SLA-5, R-SLA-6, R-SLA-7)")
struct SLATransitionTests {
    let f = Fixture()
    let received = "2026-03-10T13:00:00Z" // Tuesday 09:00 EDT

    @Test("R-SLA-3 R-SLA-6: respond stops the response target, met inside the time and missed after it")
    func respond() throws {
        let (_, met) = try f.clock(received, [Fixture.classified(.p3, received), Fixture.action(.respond, "2026-03-10T17:00:00Z")])
        let stopped = try #require(target(met, EventType.slaStopped, "response"))
        #expect(stopped["outcome"]?.stringValue == "met")
        // A stop at the due instant has used exactly the allowed time.
        #expect(stopped["businessSecondsUsed"]?.numberValue == Double(4 * 3600))
        let (_, missed) = try f.clock(received, [Fixture.classified(.p3, received), Fixture.action(.respond, "2026-03-10T17:00:01Z")])
        #expect(target(missed, EventType.slaStopped, "response")?["outcome"]?.stringValue == "missed")
        #expect(target(missed, EventType.slaStopped, "restoration") == nil)
    }

    @Test("R-SLA-4: waiting for the customer pauses restoration and the reply moves its due time by the business time paused")
    func pauseResume() throws {
        let inputs = [Fixture.classified(.p2, received), Fixture.action(.respond, "2026-03-10T14:00:00Z"),
                      Fixture.action(.awaitCustomer, "2026-03-10T15:00:00Z")]
        let (paused, effects) = try f.clock(received, inputs, now: "2026-03-10T16:00:00Z")
        let p = try #require(target(effects, EventType.slaPaused, "restoration"))
        #expect(p["remainingSeconds"]?.numberValue == Double(10 * 3600)) // 12 h allowed, 2 h used
        #expect(target(effects, EventType.slaRescheduled, "restoration")?["dueAt"] == .null)
        #expect(target(effects, EventType.slaRescheduled, "restoration")?["state"]?.stringValue == "paused")
        #expect(effects.contains(.cancel(target: .restoration)))
        #expect(try paused.nextThreshold(paused.targets[1], f.env) == nil)

        // Unpaused, 12 business hours from Tuesday 09:00 EDT end Wednesday 12:00 EDT. Paused 3 business hours: 15:00 EDT.
        let (_, resumed) = try f.clock(received, inputs + [Fixture.action(.customerReplied, "2026-03-10T18:00:00Z")], now: "2026-03-10T18:00:00Z")
        let r = try #require(target(resumed, EventType.slaResumed, "restoration"))
        #expect(r["pausedSeconds"]?.numberValue == Double(3 * 3600))
        #expect(r["dueAt"]?.stringValue == "2026-03-11T19:00:00Z")
        #expect(due(resumed, EventType.slaRescheduled, "restoration") == "2026-03-11T19:00:00Z")
        // The response target never pauses.
        #expect(target(resumed, EventType.slaRescheduled, "response")?["state"]?.stringValue == "stopped")
    }

    @Test("R-SLA-4: a pause over the night only moves the due time by the business hours it covered")
    func pauseOverNight() throws {
        let inputs = [Fixture.classified(.p2, received), Fixture.action(.awaitCustomer, "2026-03-10T20:00:00Z"), // 16:00 EDT
                      Fixture.action(.customerReplied, "2026-03-11T13:00:00Z")] // 09:00 EDT next day
        let (_, effects) = try f.clock(received, inputs)
        // 2 business hours paused (16-17, 08-09): 12:00 EDT + 2 h.
        #expect(due(effects, EventType.slaResumed, "restoration") == "2026-03-11T18:00:00Z")
    }

    @Test("R-SLA-5: an excluded interval overlapping a pause is not counted twice")
    func exclusionOverlapsPause() throws {
        let window = InstantRange(start: Fixture.s("2026-03-10T16:00:00Z"), end: Fixture.s("2026-03-10T19:00:00Z")) // 12:00-15:00 EDT
        let g = Fixture(exclusions: [window])
        let inputs = [Fixture.classified(.p2, received), Fixture.action(.awaitCustomer, "2026-03-10T15:00:00Z"),
                      Fixture.action(.customerReplied, "2026-03-10T18:00:00Z")] // paused 11:00-14:00 EDT
        let (_, effects) = try g.clock(received, inputs)
        // Out of the count: 11:00-15:00 EDT, 4 hours, not 6. 12:00 EDT Wednesday + 4 h.
        #expect(due(effects, EventType.slaResumed, "restoration") == "2026-03-11T20:00:00Z")
        // The response target ignores exclusions: due at 11:00 EDT.
        #expect(due(effects, EventType.slaStarted, "response") == "2026-03-10T15:00:00Z")
    }

    @Test("R-SLA-7 R-CLS-3: reclassification recomputes from the original receipt with pauses before and after still excluded")
    func reclassify() throws {
        let inputs = [Fixture.classified(.p3, received),
                      Fixture.action(.awaitCustomer, "2026-03-10T14:00:00Z"), Fixture.action(.customerReplied, "2026-03-10T15:00:00Z"), // 1 h
                      Fixture.reclassified(.p2, "2026-03-10T16:00:00Z"),
                      Fixture.action(.awaitCustomer, "2026-03-10T17:00:00Z"), Fixture.action(.customerReplied, "2026-03-10T19:00:00Z")] // 2 h
        let (clock, effects) = try f.clock(received, inputs, now: "2026-03-10T19:00:00Z")
        let r = try #require(effects.first { $0.type == EventType.slaRescheduled && $0.data?["reason"]?.stringValue == "reclassified" }?.data)
        #expect(r["priority"]?.stringValue == "P2")
        // P2 restoration: 12 business hours from 09:00 EDT Tuesday with 3 h paused: Wednesday 15:00 EDT.
        #expect(due(effects, EventType.slaResumed, "restoration") == "2026-03-11T19:00:00Z")
        // Response: 2 business hours from receipt, no pause: 11:00 EDT.
        #expect(try TicketClock.format(clock.schedule(f.env)[0]!) == "2026-03-10T15:00:00Z")
    }

    @Test("R-CLS-4 R-SLA-6: the downgrade after restoration keeps the outcome the target already has")
    func downgradeKeepsOutcome() throws {
        let inputs = [Fixture.classified(.p1, received), Fixture.action(.respond, "2026-03-10T13:30:00Z"),
                      Fixture.action(.restore, "2026-03-10T22:00:00Z"), Fixture.reclassified(.p3, "2026-03-10T22:00:01Z")]
        let (clock, effects) = try f.clock(received, inputs)
        #expect(target(effects, EventType.slaStopped, "restoration")?["outcome"]?.stringValue == "missed") // 9 h > 8 h
        #expect(clock.targets[1].outcome == .missed)
        #expect(clock.targets[1].terms.allowedSeconds == 8 * 3600)
        #expect(clock.priority == .p3)
    }

    @Test("R-TKT-3 R-SLA-4: reopen resumes restoration where it stood; the time restored does not count")
    func reopen() throws {
        let inputs = [Fixture.classified(.p1, received), Fixture.action(.respond, "2026-03-10T13:10:00Z"),
                      Fixture.action(.restore, "2026-03-10T15:00:00Z"), // 2 h used
                      Fixture.action(.reopen, "2026-03-10T20:00:00Z")]
        let (clock, effects) = try f.clock(received, inputs, now: "2026-03-10T20:00:00Z")
        let resumed = try #require(target(effects, EventType.slaResumed, "restoration"))
        #expect(resumed["reason"]?.stringValue == "reopen")
        #expect(resumed["dueAt"]?.stringValue == "2026-03-11T02:00:00Z") // 6 h left from 20:00Z
        #expect(!clock.targets[1].isStopped)
        let (again, more) = try f.clock(received, inputs + [Fixture.action(.restore, "2026-03-10T21:00:00Z")])
        let stops = more.filter { $0.type == EventType.slaStopped && $0.data?["target"]?.stringValue == "restoration" }
        #expect(stops.count == 2)
        #expect(stops.last?.data?["businessSecondsUsed"]?.numberValue == Double(3 * 3600))
        #expect(again.targets[1].stops == 2)
    }
}

@Suite("SLA clock: thresholds, exactly once (R-SLA-6)")
struct SLAThresholdTests {
    let f = Fixture()

    /// Drives the clock like the timer loop does: fire each target at its armed instant.
    func run(_ clock: inout TicketClock, until end: Int64) throws -> [(at: Int64, effect: SLAEffect)] {
        var out: [(Int64, SLAEffect)] = []
        while true {
            let next = try SLATarget.allCases.compactMap { t -> (SLATarget, Int64)? in
                try clock.nextThreshold(clock.targets.first { $0.target == t }!, f.env).map { (t, $0) }
            }.min { $0.1 < $1.1 }
            guard let (t, at) = next, at <= end else { return out }
            for e in try clock.fire(t, now: at, f.env) where e.type != nil { out.append((at, e)) }
        }
    }

    @Test("R-SLA-6: a P4 over two weeks of business time warns at 50, 75 and 90 % and breaches at 100 %, each once and on the second")
    func weeks() throws {
        let received = "2026-12-18T15:00:00Z" // Friday 10:00 EST, Christmas and Boxing Day ahead
        var (clock, _) = try f.clock(received, [Fixture.classified(.p4, received)])
        let events = try run(&clock, until: Fixture.s("2027-02-01T00:00:00Z"))
        let restoration = events.filter { $0.effect.data?["target"]?.stringValue == "restoration" }
        #expect(restoration.map { $0.effect.type! } == [EventType.slaWarning, EventType.slaWarning, EventType.slaWarning, EventType.slaBreached])
        let business = f.env.calendars.business
        for (fraction, e) in zip([0.5, 0.75, 0.9], restoration) {
            let expected = try business.adding(businessSeconds: Int64(fraction * 48 * 3600), to: clock.start)
            #expect(e.at == expected)
            #expect(e.effect.data?["threshold"]?.numberValue == fraction)
        }
        #expect(restoration.last?.at == (try business.adding(businessSeconds: 48 * 3600, to: clock.start)))
        // Nothing more is armed: every threshold was sent.
        #expect(try run(&clock, until: Fixture.s("2030-01-01T00:00:00Z")).isEmpty)
        #expect(Set(events.compactMap { $0.effect.eventID }).count == events.count)
    }

    @Test("R-SLA-6: a timer that fires late sends every threshold passed, in order, once; a second firing sends nothing")
    func catchUp() throws {
        let received = "2026-03-10T13:00:00Z"
        var (clock, _) = try f.clock(received, [Fixture.classified(.p1, received)])
        let late = try clock.fire(.response, now: Fixture.s("2026-03-10T14:30:00Z"), f.env).filter { $0.type != nil }
        #expect(late.map { $0.type! } == [EventType.slaWarning, EventType.slaWarning, EventType.slaWarning, EventType.slaBreached])
        #expect(late.first?.data?["reachedAt"]?.stringValue == "2026-03-10T13:30:00Z")
        #expect(try clock.fire(.response, now: Fixture.s("2026-03-10T15:00:00Z"), f.env).filter { $0.type != nil }.isEmpty)
    }

    @Test("R-SLA-6: nothing is sent while paused or after the target stopped")
    func neverWhilePausedOrStopped() throws {
        let received = "2026-03-10T13:00:00Z"
        var (clock, _) = try f.clock(received, [Fixture.classified(.p1, received), Fixture.action(.respond, "2026-03-10T13:05:00Z"),
                                                Fixture.action(.awaitCustomer, "2026-03-10T13:10:00Z")])
        #expect(try clock.fire(.response, now: Fixture.s("2026-03-11T00:00:00Z"), f.env).filter { $0.type != nil }.isEmpty)
        #expect(try clock.fire(.restoration, now: Fixture.s("2026-03-11T00:00:00Z"), f.env).filter { $0.type != nil }.isEmpty)
    }

    @Test("R-SLA-6 R-SLA-7: a warning sent before a reclassification is not sent again for the same target")
    func notTwiceAcrossReclassification() throws {
        let received = "2026-03-10T13:00:00Z"
        let log = [Fixture.classified(.p1, received)]
        var (clock, _) = try f.clock(received, log)
        let first = try clock.fire(.restoration, now: Fixture.s("2026-03-10T17:00:00Z"), f.env).filter { $0.type != nil }
        #expect(first.map { $0.data?["threshold"]?.numberValue } == [0.5])
        // P1 → P2 gives 12 business hours: 50 % is at 15:00 EDT, later than now, but it was sent already.
        let added = Fixture.reclassified(.p2, "2026-03-10T17:00:00Z")
        let (after, effects) = try TicketClock.replay(log + [added], trackingNumber: "INC-1", customerId: "acme", receivedAt: Fixture.t(received),
                                                      previous: clock, added: added, now: Fixture.s("2026-03-10T17:00:00Z"), environment: f.env)!
        #expect(!effects.contains { $0.type == EventType.slaStarted })
        #expect(effects.contains { $0.type == EventType.slaRescheduled })
        var moved = after
        let later = try moved.fire(.restoration, now: Fixture.s("2026-03-12T23:00:00Z"), f.env).filter { $0.type != nil }
        #expect(later.map { $0.data?["threshold"]?.numberValue } == [0.75, 0.9, nil])
    }
}

@Suite("SLA clock: events out of order")
struct SLAOrderTests {
    let f = Fixture()

    @Test("Every order of arrival gives the same clocks as the order things happened")
    func permutations() throws {
        let received = "2026-03-10T13:00:00Z"
        let inputs = [Fixture.classified(.p3, received), Fixture.action(.respond, "2026-03-10T13:20:00Z"),
                      Fixture.action(.awaitCustomer, "2026-03-10T14:00:00Z"), Fixture.action(.customerReplied, "2026-03-10T15:00:00Z"),
                      Fixture.reclassified(.p2, "2026-03-10T15:30:00Z")]
        let (reference, _) = try f.clock(received, inputs)
        func permute(_ a: [SLAInput]) -> [[SLAInput]] {
            a.count <= 1 ? [a] : a.indices.flatMap { i in permute(Array(a[..<i] + a[(i + 1)...])).map { [a[i]] + $0 } }
        }
        for order in permute(inputs) {
            // Fed one at a time, as events arrive; the clocks start once `classified` is known.
            var clock: TicketClock?
            var published = Set<String>()
            for n in 1...order.count {
                guard let (next, effects) = try TicketClock.replay(Array(order.prefix(n)), trackingNumber: "INC-1", customerId: "acme",
                                                                   receivedAt: Fixture.t(received), previous: clock, added: order[n - 1],
                                                                   now: Fixture.s("2026-03-10T16:00:00Z"), environment: f.env) else { continue }
                for id in effects.compactMap(\.eventID) { #expect(published.insert(id).inserted, "event \(id) published twice") }
                clock = next
            }
            #expect(clock?.targets == reference.targets)
            #expect(clock?.priority == .p2)
        }
    }
}
