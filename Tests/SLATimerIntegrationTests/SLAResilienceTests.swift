import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// The SLA service alone, fed facts as other services (or their replicas) could deliver them.
func slaAlone(count: Int = 1, _ body: (SystemHarness) async throws -> Void) async throws {
    try await SystemHarness.with([.sla(count: count)], body)
}

extension SystemHarness {
    /// Publishes the events in order.
    func publish(_ events: CloudEvent...) async throws {
        for e in events { try await client.publish(event: e) }
    }

    /// How many times each (ticket, type, target, threshold) was published: exactly once means all 1.
    func firings() -> [String: Int] {
        var counts: [String: Int] = [:]
        for e in client.events where e.type == EventType.slaWarning || e.type == EventType.slaBreached {
            let key = "\(e.subject ?? "")|\(e.type)|\(e.data["target"]?.stringValue ?? "")|\(e.data["threshold"]?.numberValue.map { "\($0)" } ?? "-")"
            counts[key, default: 0] += 1
        }
        return counts
    }
}

let secondsPolicy: JSONValue = ["P1": ["response": "PT3S", "restoration": "PT6S"], "P3": ["response": "PT3S", "restoration": "PT6S", "calendar": "24x7"], "warnAt": [0.5]]

@Suite(.serialized, .timeLimit(.minutes(10))) struct SLAResilienceTests {
    // R-SLA-6: thresholds that fell due while the only SLA process was dead (kill -9) fire at once
    // after the restart, exactly once, and the rest on time.
    @Test func killMinusNineThenEverythingOverdueFiresOnce() async throws {
        try await slaAlone { h in
            let facts = IntakeFacts(), classify = ClassificationFacts()
            try await h.publish(facts.onboarded(at: Date(), extra: ["slaPolicy": secondsPolicy]))
            let t0 = Date()
            let numbers = (1...20).map { String(format: "INC-%06d", $0) }
            for n in numbers { try await h.publish(classify.classified(n, priority: "P1", receivedAt: t0)) }
            #expect(await eventually { h.client.events(ofType: EventType.slaStarted).count == 20 })
            let victim = h.processes(of: "sla")[0]
            victim.signal(SIGKILL)
            #expect(await victim.waitForExit(timeout: .seconds(10)) != nil)
            // Past every response threshold (1.5 s, 3 s) while nobody is running.
            try await Task.sleep(until: .now + .seconds(Int64(max(0, t0.addingTimeInterval(4).timeIntervalSinceNow.rounded(.up)))))
            let restarted = try ServiceProcess(name: "sla", amqp: h.amqp, database: h.database)
            try restarted.start()
            #expect(await eventually(timeout: .seconds(60)) { h.firings().count == 20 * 4 }, "every ticket: two warnings and two breaches")
            try await Task.sleep(for: .seconds(1))
            #expect(h.firings().count == 80)
            #expect(h.firings().values.allSatisfy { $0 == 1 }, "a threshold fired twice: \(h.firings().filter { $0.value > 1 })")
            // The restoration ones fell due after the restart: on time, never early.
            for e in h.client.events(ofType: EventType.slaBreached) where e.data["target"] == "restoration" {
                #expect(e.time >= t0.addingTimeInterval(5))
            }
            #expect(try await h.count("SELECT count(*) FROM sla.timers") == 0)
            await restarted.stop()
        }
    }

    // R-SLA-6, R-ESC-3: two SLA processes share the timers; each threshold of 60 tickets fires exactly once.
    @Test func twoTimerProcessesNeverFireAThresholdTwice() async throws {
        try await slaAlone(count: 2) { h in
            let facts = IntakeFacts(), classify = ClassificationFacts()
            try await h.publish(facts.onboarded(at: Date(), extra: ["slaPolicy": secondsPolicy]))
            let t0 = Date()
            for i in 1...60 { try await h.publish(classify.classified(String(format: "INC-%06d", i), priority: i % 2 == 0 ? "P1" : "P3", receivedAt: t0)) }
            #expect(await eventually(timeout: .seconds(60)) { h.firings().count == 60 * 4 })
            try await Task.sleep(for: .seconds(1))
            #expect(h.firings().count == 240)
            #expect(h.firings().values.allSatisfy { $0 == 1 }, "fired twice: \(h.firings().filter { $0.value > 1 })")
            #expect(h.client.events(ofType: EventType.slaStarted).count == 60)
        }
    }

    // Events out of order and twice: a response before the classification, a classification before
    // its customer, a redelivered transition; the clocks are those of the order things happened.
    @Test func earlyLateAndRepeatedEventsGiveOneEffect() async throws {
        try await slaAlone { h in
            let facts = IntakeFacts(), classify = ClassificationFacts()
            let t0 = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)).addingTimeInterval(-30)
            let respond = facts.transitioned("INC-000001", "respond", status: "responded", at: t0.addingTimeInterval(2))
            try await h.publish(respond, classify.classified("INC-000001", priority: "P1", receivedAt: t0), respond)
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.client.events(ofType: EventType.slaStarted).isEmpty, "no clock starts before the customer is known")

            try await h.publish(facts.onboarded(at: t0, extra: ["slaPolicy": ["P1": ["response": "PT1H", "restoration": "PT8H"]]]))
            #expect(await eventually { h.sla(EventType.slaStopped, "INC-000001").count == 1 })
            let stopped = try #require(h.sla(EventType.slaStopped, "INC-000001").first)
            #expect(stopped.data["target"] == "response")
            #expect(stopped.data["outcome"] == "met")
            #expect(stopped.data["businessSecondsUsed"] == 2)
            #expect(h.client.events(ofType: EventType.slaStarted).count == 1)

            // await_customer and the reply arrive swapped: the pause is still [t0+10, t0+20).
            let replied = facts.transitioned("INC-000001", "customer_replied", status: "in_progress", at: t0.addingTimeInterval(20))
            let waiting = facts.transitioned("INC-000001", "await_customer", status: "awaiting_customer", at: t0.addingTimeInterval(10))
            try await h.publish(replied, waiting, replied)
            #expect(await eventually {
                h.sla(EventType.slaRescheduled, "INC-000001").contains { e in
                    instant(target(e, "restoration")?["dueAt"]) == t0.addingTimeInterval(8 * 3600 + 10)
                        && target(e, "restoration")?["state"] == "running"
                }
            })
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.sla(EventType.slaStopped, "INC-000001").count == 1)
            #expect(h.client.events(ofType: EventType.slaStarted).count == 1)
            var ids = Set<String>()
            for e in h.client.events where e.source == "/css/sla" { #expect(ids.insert(e.id).inserted, "event \(e.id) (\(e.type)) published twice") }
        }
    }

    // Bad facts are dead-lettered with the reason; the queue goes on.
    @Test func unreadableFactsAreDeadLetteredAndTheQueueGoesOn() async throws {
        try await slaAlone { h in
            let facts = IntakeFacts(), classify = ClassificationFacts()
            try await h.publish(facts.onboarded(at: Date()))
            var bad = classify.classified("INC-000009", priority: "P9", receivedAt: Date())
            try await h.publish(bad)
            bad = facts.transitioned("INC-000009", "teleport", status: "x", at: Date())
            try await h.publish(bad)
            try await h.publish(facts.transitioned("INC-000009", "respond", status: "responded", at: Date()).with { e in
                var data = e.data.objectValue!
                data["at"] = nil
                e.data = .object(data)
            })
            try await h.publish(facts.onboarded(at: Date(), extra: ["timeZone": "Mars/Olympus"]))
            try await h.publish(classify.classified("INC-000010", priority: "P2", receivedAt: Date()))
            #expect(await eventually { h.sla(EventType.slaStarted, "INC-000010").count == 1 })
            #expect(await eventually { h.client.deadLetters.count == 4 })
            let reasons = h.client.deadLetters.compactMap { $0.properties.headers["x-css-error"] }
            #expect(reasons.contains { $0.contains("data.priority") })
            #expect(reasons.contains { $0.contains("data.action") })
            #expect(reasons.contains { $0.contains("data.at") })
            #expect(reasons.contains { $0.contains("Mars/Olympus") })
        }
    }

    // R-SLA-5: an excluded interval moves the restoration clocks of the customer's open tickets,
    // once; the same exclusion again is one exclusion; a different window under the same id is refused.
    @Test func exclusionsMoveRestorationOnceAndAreRefusedWithReasons() async throws {
        try await slaAlone { h in
            let facts = IntakeFacts(), classify = ClassificationFacts()
            try await h.publish(facts.onboarded(at: Date(), extra: ["slaPolicy": ["P1": ["response": "PT1H", "restoration": "PT8H"]]]))
            let t0 = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
            try await h.publish(classify.classified("INC-000001", priority: "P1", receivedAt: t0))
            #expect(await eventually { h.sla(EventType.slaStarted, "INC-000001").count == 1 })

            let window: JSONObject = ["customerId": "acme", "exclusionId": "CHG-7", "start": .string(RFC3339.format(t0.addingTimeInterval(3600))),
                                      "end": .string(RFC3339.format(t0.addingTimeInterval(5400))), "reason": "Upgrade the customer asked for",
                                      "by": "ops@vendor.example", "changeId": "CHG-7"]
            let added = try await h.client.send(CommandName.slaExclusionAdd, .object(window))
            #expect(added.result?["exclusionId"] == "CHG-7")
            #expect(await eventually { h.sla(EventType.slaRescheduled, "INC-000001").count == 1 })
            let moved = try #require(h.sla(EventType.slaRescheduled, "INC-000001").first)
            #expect(moved.data["reason"] == "excluded")
            #expect(instant(target(moved, "restoration")?["dueAt"]) == t0.addingTimeInterval(8 * 3600 + 1800))
            #expect(instant(target(moved, "response")?["dueAt"]) == t0.addingTimeInterval(3600)) // response ignores exclusions

            #expect(try await h.client.send(CommandName.slaExclusionAdd, .object(window)).result?["exclusionId"] == "CHG-7")
            var other = window
            other["end"] = .string(RFC3339.format(t0.addingTimeInterval(9000)))
            #expect(try await h.client.send(CommandName.slaExclusionAdd, .object(other)).errors.map(\.code) == [ErrorCode.conflict])
            var stranger = window
            stranger["customerId"] = "nobody"
            #expect(try await h.client.send(CommandName.slaExclusionAdd, .object(stranger)).errors.map(\.code) == [ErrorCode.unknownCustomer])
            var backwards = window
            backwards["end"] = .string(RFC3339.format(t0))
            backwards["start"] = "yesterday"
            backwards["reason"] = .string(String(repeating: "x", count: 501))
            #expect(Set(try await h.client.send(CommandName.slaExclusionAdd, .object(backwards)).errors.map(\.field)) == ["start", "reason"])
            var nul = window
            nul["exclusionId"] = "CHG\u{0}8"
            #expect(try await h.client.send(CommandName.slaExclusionAdd, .object(nul)).errors.map(\.code) == [ErrorCode.invalidField])
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.sla(EventType.slaRescheduled, "INC-000001").count == 1)
            #expect(h.client.events(ofType: EventType.slaExclusionAdded).count == 1)
            #expect(try await h.count("SELECT count(*) FROM sla.exclusions") == 1)
        }
    }
}

extension CloudEvent {
    func with(_ change: (inout CloudEvent) -> Void) -> CloudEvent {
        var copy = self
        change(&copy)
        return copy
    }
}
