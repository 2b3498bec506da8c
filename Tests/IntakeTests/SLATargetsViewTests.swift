import CSSModel
import Foundation
import IntakeService
import Testing

@Suite struct SLATargetsViewTests {
    func event(_ type: String, at seconds: TimeInterval, _ data: JSONValue) -> CloudEvent {
        CloudEvent(id: UUID().uuidString, type: type, source: "/css/sla", time: Date(timeIntervalSince1970: 1_772_438_400 + seconds), subject: "INC-000001", data: data)
    }

    let started: JSONValue = ["trackingNumber": "INC-000001", "priority": "P1", "targets": [
        ["target": "response", "calendar": "24x7", "allowedSeconds": 3600, "dueAt": "2026-03-02T09:00:00Z"],
        ["target": "restoration", "calendar": "24x7", "allowedSeconds": 28800, "dueAt": "2026-03-02T16:00:00Z"],
    ]]

    // R-SLA-3, R-SLA-6: ticket.get shows each target's due time and state as the SLA service reports them.
    @Test func foldsStartWarningBreachAndStop() throws {
        var view = try SLATargetsView.apply(event(EventType.slaStarted, at: 0, started), to: [])
        view = try SLATargetsView.apply(event(EventType.slaWarning, at: 1800, ["trackingNumber": "INC-000001", "target": "response", "threshold": 0.5, "dueAt": "2026-03-02T09:00:00Z"]), to: view)
        view = try SLATargetsView.apply(event(EventType.slaBreached, at: 3600, ["trackingNumber": "INC-000001", "target": "response", "dueAt": "2026-03-02T09:00:00Z"]), to: view)
        view = try SLATargetsView.apply(event(EventType.slaStopped, at: 4000, ["trackingNumber": "INC-000001", "target": "response", "outcome": "missed", "businessSecondsUsed": 4000]), to: view)
        let targets = try #require(view.arrayValue)
        #expect(targets.count == 2)
        #expect(targets[0]["target"] == "response")
        #expect(targets[0]["state"] == "missed")
        #expect(targets[0]["lastWarning"] == 0.5)
        #expect(targets[0]["businessSecondsUsed"] == 4000)
        #expect(targets[1]["state"] == "running")
        #expect(targets[1]["dueAt"] == "2026-03-02T16:00:00Z")
    }

    // R-SLA-4: a reschedule moves the due time; an older event arriving late does not undo it.
    @Test func aLateOlderEventDoesNotOverwriteANewerOne() throws {
        var view = try SLATargetsView.apply(event(EventType.slaStarted, at: 0, started), to: [])
        let moved: JSONValue = ["trackingNumber": "INC-000001", "targets": [["target": "restoration", "dueAt": "2026-03-02T18:00:00Z", "pausedSeconds": 7200]]]
        view = try SLATargetsView.apply(event(EventType.slaRescheduled, at: 600, moved), to: view)
        view = try SLATargetsView.apply(event(EventType.slaStarted, at: 0, started), to: view)
        let restoration = try #require(view.arrayValue?.first { $0["target"] == "restoration" })
        #expect(restoration["dueAt"] == "2026-03-02T18:00:00Z")
        #expect(restoration["pausedSeconds"] == 7200)
    }

    @Test func refusesEventsWithoutTheirTarget() {
        #expect(throws: CommandRejection.self) {
            try SLATargetsView.apply(event(EventType.slaWarning, at: 0, ["trackingNumber": "INC-000001"]), to: [])
        }
        #expect(throws: CommandRejection.self) {
            try SLATargetsView.apply(event(EventType.slaStarted, at: 0, ["trackingNumber": "INC-000001"]), to: [])
        }
    }
}
