import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// The pipeline from `ticket.submit` on through the real `intake`, `classification` and
/// `sla` executables, with SLA clocks of seconds (`slaPolicy`) so thresholds fall due in the test.
let classificationEnv = ["CSS_CLOUD_PRODUCTS": "OT Cloud,Extended ECM", "CSS_THIRD_PARTY_PRODUCTS": "SAP,Microsoft Teams"]

func system(sla: Int = 1, slaEnv: [String: String] = [:], _ body: (SystemHarness) async throws -> Void) async throws {
    try await SystemHarness.with([.intake(), .classification(env: classificationEnv), .sla(count: sla, env: slaEnv)], body)
}

/// P1 clocks of seconds around the clock; P3 in seconds too, also 24x7 so the test does not depend on the hour.
let fastPolicy: JSONValue = [
    "P1": ["response": "PT4S", "restoration": "PT10S"],
    "P2": ["response": "PT20S", "restoration": "PT40S", "calendar": "24x7"],
    "P3": ["response": "PT30S", "restoration": "PT60S", "calendar": "24x7"],
    "warnAt": [0.5],
]

extension SystemHarness {
    func transition(_ number: String, _ action: String) async throws {
        let reply = try await client.send(CommandName.ticketTransition, ["trackingNumber": .string(number), "action": .string(action), "by": "eng@vendor.example"])
        #expect(reply.result != nil, "\(action) refused: \(reply)")
    }

    /// The events of `type` about ticket `number`.
    func sla(_ type: String, _ number: String, target: String? = nil) -> [CloudEvent] {
        client.events(ofType: type).filter { $0.subject == number && (target == nil || $0.data["target"]?.stringValue == target) }
    }

    /// Waits for `count` events of `type` about `number` and returns them.
    @discardableResult
    func await(_ type: String, _ number: String, target: String? = nil, count: Int = 1, timeout: Duration = .seconds(30)) async throws -> [CloudEvent] {
        #expect(await eventually(timeout: timeout) { sla(type, number, target: target).count >= count },
                "\(count) × \(type) \(target ?? "") for \(number) never arrived; got \(sla(type, number, target: target).count)")
        return sla(type, number, target: target)
    }
}

func target(_ event: CloudEvent, _ name: String) -> JSONValue? {
    event.data["targets"]?.arrayValue?.first { $0["target"]?.stringValue == name }
}

func instant(_ value: JSONValue?) -> Date? { value?.stringValue.flatMap(RFC3339.parse) }

@Suite(.serialized, .timeLimit(.minutes(10))) struct SLAPipelineTests {
    // R-SLA-1, R-SLA-3, R-SLA-6: submit → classified → sla.started; the warning and the breach fire once, on the
    // second they are due; respond stops the response target as missed; ticket.get shows every target.
    @Test func clocksStartFireOnceAndStop() async throws {
        try await system { h in
            _ = try await h.onboard(extra: ["slaPolicy": fastPolicy])
            let number = try await h.submit()
            let started = try #require(try await h.await(EventType.slaStarted, number).first)
            #expect(started.source == "/css/sla")
            #expect(started.data["priority"] == "P1")
            let ticket = try #require(try await h.ticket(number))
            let received = try #require(instant(ticket["receivedAt"]))
            let start = Date(timeIntervalSince1970: received.timeIntervalSince1970.rounded(.down))
            #expect(instant(started.data["startedAt"]) == start)
            #expect(instant(target(started, "response")?["dueAt"]) == start.addingTimeInterval(4))
            #expect(instant(target(started, "restoration")?["dueAt"]) == start.addingTimeInterval(10))
            #expect(target(started, "response")?["calendar"] == "24x7")
            #expect(target(started, "response")?["allowedSeconds"] == 4)

            let warning = try #require(try await h.await(EventType.slaWarning, number, target: "response").first)
            #expect(warning.data["threshold"] == 0.5)
            #expect(instant(warning.data["reachedAt"]) == start.addingTimeInterval(2))
            #expect(warning.time >= start.addingTimeInterval(2)) // never early
            let breach = try #require(try await h.await(EventType.slaBreached, number, target: "response").first)
            #expect(instant(breach.data["dueAt"]) == start.addingTimeInterval(4))
            #expect(breach.time >= start.addingTimeInterval(4))

            // A response in the due second itself would still be met; answer in a later one.
            try await Task.sleep(until: .now + .seconds(Int64(max(0, start.addingTimeInterval(5).timeIntervalSinceNow.rounded(.up)))) + .milliseconds(100))
            try await h.transition(number, "respond")
            let stopped = try #require(try await h.await(EventType.slaStopped, number, target: "response").first)
            #expect(stopped.data["outcome"] == "missed")
            #expect((stopped.data["businessSecondsUsed"]?.numberValue ?? 0) > 4)

            try await h.await(EventType.slaBreached, number, target: "restoration", timeout: .seconds(30))
            try await Task.sleep(for: .seconds(1))
            // Exactly once each (R-SLA-6), whatever the loop did meanwhile.
            #expect(h.sla(EventType.slaWarning, number).count == 2)
            #expect(h.sla(EventType.slaBreached, number).count == 2)
            #expect(h.sla(EventType.slaStarted, number).count == 1)

            // ticket.get (intake's read model) shows due time, paused seconds, state and outcome of each target.
            #expect(await eventually {
                let t = try? await h.ticket(number)
                let targets = t?["slaTargets"]?.arrayValue ?? t?["sla"]?.arrayValue ?? []
                let response = targets.first { $0["target"] == "response" }
                let restoration = targets.first { $0["target"] == "restoration" }
                return response?["state"] == "stopped" && response?["outcome"] == "missed" && response?["breached"] == true
                    && restoration?["state"] == "running" && restoration?["breached"] == true && restoration?["pausedSeconds"] == 0
                    && restoration?["dueAt"]?.stringValue != nil
            })
        }
    }

    // R-SLA-4: waiting for the customer pauses restoration, nothing fires while paused, the reply moves the due time.
    @Test func pauseHoldsTheClockAndTheReplyMovesTheDueTime() async throws {
        try await system { h in
            _ = try await h.onboard(extra: ["slaPolicy": fastPolicy])
            let number = try await h.submit()
            let started = try #require(try await h.await(EventType.slaStarted, number).first)
            let firstDue = try #require(instant(target(started, "restoration")?["dueAt"]))
            try await h.transition(number, "respond")
            try await h.transition(number, "await_customer")
            let paused = try #require(try await h.await(EventType.slaPaused, number).first)
            #expect(paused.data["target"] == "restoration")
            // Past the unpaused due time: no warning, no breach while paused.
            try await Task.sleep(until: .now + .seconds(Int64(max(0, firstDue.timeIntervalSinceNow.rounded(.up)) + 1)))
            #expect(h.sla(EventType.slaWarning, number, target: "restoration").isEmpty)
            #expect(h.sla(EventType.slaBreached, number, target: "restoration").isEmpty)
            let ticket = try #require(try await h.ticket(number))
            let view = ticket["slaTargets"]?.arrayValue?.first { $0["target"] == "restoration" }
            #expect(view?["state"] == "paused")

            try await h.transition(number, "customer_replied")
            let resumed = try #require(try await h.await(EventType.slaResumed, number).first)
            let pausedSeconds = try #require(resumed.data["pausedSeconds"]?.numberValue)
            #expect(pausedSeconds >= 10)
            let newDue = try #require(instant(resumed.data["dueAt"]))
            #expect(newDue.timeIntervalSince(firstDue) == pausedSeconds)
            let rescheduled = try await h.await(EventType.slaRescheduled, number, count: 2)
            #expect(rescheduled.map { $0.data["reason"] }.contains("resumed"))
            let breach = try #require(try await h.await(EventType.slaBreached, number, target: "restoration").first)
            #expect(instant(breach.data["dueAt"]) == newDue)
            #expect(breach.time >= newDue)
        }
    }

    // R-CLS-3, R-SLA-7: an accepted reclassification recomputes from the original receipt; a target
    // already stopped keeps its outcome; R-CLS-4: the downgrade after restore changes no outcome.
    @Test func reclassificationReschedulesFromTheOriginalReceipt() async throws {
        try await system { h in
            _ = try await h.onboard(extra: ["slaPolicy": fastPolicy])
            let number = try await h.submit(["impact": "minor"]) // P3
            let started = try #require(try await h.await(EventType.slaStarted, number).first)
            #expect(started.data["priority"] == "P3")
            let start = try #require(instant(started.data["startedAt"]))
            try await h.transition(number, "respond")
            try await h.await(EventType.slaStopped, number, target: "response")

            let asked = try await h.client.send(CommandName.reclassifyRequest, ["trackingNumber": .string(number), "priority": "P2",
                                                                                "reason": "Month-end closing is blocked", "by": "ana@acme.example"])
            let requestId = try #require(asked.result?["requestId"]?.stringValue)
            let decided = try await h.client.send(CommandName.reclassifyDecide, ["requestId": .string(requestId), "accept": true,
                                                                                 "reason": "Confirmed", "by": "sam@vendor.example"])
            #expect(decided.result != nil)
            let rescheduled = try #require(try await h.await(EventType.slaRescheduled, number).first { $0.data["reason"] == "reclassified" })
            #expect(rescheduled.data["priority"] == "P2")
            // P2 restoration: 40 s from the original receipt, not from the decision.
            #expect(instant(target(rescheduled, "restoration")?["dueAt"]) == start.addingTimeInterval(40))
            #expect(target(rescheduled, "response")?["outcome"] == "met")
            #expect(target(rescheduled, "response")?["allowedSeconds"] == 30) // stopped: keeps its terms and outcome

            try await h.transition(number, "restore")
            let stopped = try #require(try await h.await(EventType.slaStopped, number, target: "restoration").first)
            #expect(stopped.data["outcome"] == "met")
            #expect(stopped.data["allowedSeconds"] == 40)
        }
    }
}
