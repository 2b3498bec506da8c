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
}
