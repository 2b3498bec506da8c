import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// Intake learns priority and SLA targets from other services' events, never their tables.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ReadModelTests {
    func publishEvent(_ h: IntakeHarness, _ event: CloudEvent) async throws {
        try await h.client.publish(event: event)
    }

    // R-CLS-1, R-SLA-3
    @Test func ticketGetShowsClassificationAndSLATargetsFromEvents() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            let number = try #require(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).result?["trackingNumber"]?.stringValue)
            let classified = CloudEvent(id: UUID().uuidString, type: EventType.ticketClassified, source: "/css/classification", time: Date(),
                                        subject: number, data: ["trackingNumber": .string(number), "priority": "P1", "requestedPriority": nil,
                                                                "requestClass": nil, "dispatch": "success_services"])
            try await publishEvent(h, classified)
            try await publishEvent(h, classified) // a redelivery: applied once
            let started = CloudEvent(id: UUID().uuidString, type: EventType.slaStarted, source: "/css/sla", time: Date(), subject: number,
                                     data: ["trackingNumber": .string(number), "priority": "P1", "targets": [
                                        ["target": "response", "calendar": "24x7", "allowedSeconds": 3600, "dueAt": "2026-03-02T09:00:00Z"]]])
            try await publishEvent(h, started)
            let ready = try await eventually {
                let t = try await h.client.send(CommandName.ticketGet, ["trackingNumber": .string(number)]).result
                return t?["priority"] == "P1" && t?["slaTargets"]?.arrayValue?.count == 1
            }
            #expect(ready)
            let ticket = try #require(try await h.client.send(CommandName.ticketGet, ["trackingNumber": .string(number)]).result)
            #expect(ticket["status"] == "classified")
            #expect(ticket["dispatch"] == "success_services")
            #expect(ticket["slaTargets"]?.arrayValue?.first?["dueAt"] == "2026-03-02T09:00:00Z")
            #expect(ticket["audit"]?.arrayValue?.filter { $0["event"] == "classified" }.count == 1)
            // An event about a ticket intake never had is set aside, not retried forever.
            let stray = CloudEvent(id: UUID().uuidString, type: EventType.ticketClassified, source: "/css/classification", time: Date(),
                                   subject: "INC-999999", data: ["trackingNumber": "INC-999999", "priority": "P2"])
            try await publishEvent(h, stray)
            #expect(await eventually { h.client.deadLetters.contains { $0.properties.messageID == stray.id } })
        }
    }

    // R-CLS-1, R-SLA-3, R-SLA-6: classification's and the SLA service's events interleave in intake's
    // queue and are applied together, set-wise. Published back to back for 30 tickets (with a redelivery,
    // an sla.started of a ticket intake never had and one without targets among them): every ticket
    // shows its priority and both targets, the warning and the breach; only the two bad events are
    // dead-lettered, and the classification is audited once per ticket.
    @Test func interleavedClassificationAndSLAEventsAreAppliedTogether() async throws {
        try await IntakeHarness.with { h in
            _ = try await h.onboard()
            var numbers: [String] = []
            for _ in 0..<30 {
                numbers.append(try #require(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).result?["trackingNumber"]?.stringValue))
            }
            func event(_ type: String, _ number: String, _ data: JSONObject, at: Date = Date()) -> CloudEvent {
                var d = data
                d["trackingNumber"] = .string(number)
                return CloudEvent(id: UUID().uuidString, type: type, source: type.hasPrefix("sla") ? "/css/sla" : "/css/classification", time: at,
                                  subject: number, data: .object(d))
            }
            let t0 = Date()
            let targets: JSONValue = [["target": "response", "calendar": "24x7", "allowedSeconds": 3600, "dueAt": "2026-03-02T09:00:00Z"],
                                      ["target": "restoration", "calendar": "24x7", "allowedSeconds": 14400, "dueAt": "2026-03-02T12:00:00Z"]]
            let unknown = event(EventType.slaStarted, "INC-999998", ["priority": "P2", "targets": targets])
            let noTargets = event(EventType.slaStarted, numbers[7], ["priority": "P2"])
            var burst: [CloudEvent] = []
            for (i, n) in numbers.enumerated() {
                let classified = event(EventType.ticketClassified, n, ["priority": "P2", "requestedPriority": nil, "requestClass": nil, "dispatch": "success_services"], at: t0)
                burst += [classified, event(EventType.slaStarted, n, ["priority": "P2", "targets": targets], at: t0.addingTimeInterval(1)),
                          event(EventType.slaWarning, n, ["target": "restoration", "threshold": 0.5, "dueAt": "2026-03-02T12:00:00Z"], at: t0.addingTimeInterval(2)),
                          event(EventType.slaBreached, n, ["target": "response", "dueAt": "2026-03-02T09:00:00Z"], at: t0.addingTimeInterval(3))]
                if i == 3 { burst += [classified, unknown] }
                if i == 7 { burst.append(noTargets) }
            }
            for e in burst { try await h.client.publish(event: e) }
            #expect(await eventually { h.client.deadLetters.count >= 2 })
            for n in numbers {
                let shown = try await eventually {
                    let t = try await h.client.send(CommandName.ticketGet, ["trackingNumber": .string(n)]).result
                    let views = t?["slaTargets"]?.arrayValue ?? []
                    return t?["priority"] == "P2" && views.count == 2
                        && views.contains { $0["target"] == "restoration" && $0["lastWarning"] == 0.5 }
                        && views.contains { $0["target"] == "response" && $0["breached"] == true }
                }
                #expect(shown, "\(n) does not show its classification and SLA view")
                let ticket = try await h.client.send(CommandName.ticketGet, ["trackingNumber": .string(n)]).result
                #expect(ticket?["audit"]?.arrayValue?.filter { $0["event"] == "classified" }.count == 1)
            }
            #expect(Set(h.client.deadLetters.compactMap(\.properties.messageID)) == [unknown.id, noTargets.id])
        }
    }
}
