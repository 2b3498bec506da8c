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
        #expect(targets[0]["state"] == "stopped")
        #expect(targets[0]["outcome"] == "missed")
        #expect(targets[0]["breached"] == true)
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

    func data(_ target: String, _ extra: JSONObject = [:]) -> JSONValue {
        var o: JSONObject = ["trackingNumber": "INC-000001", "customerId": "acme", "target": .string(target)]
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    func target(_ view: JSONValue, _ name: String) throws -> JSONValue {
        try #require(view.arrayValue?.first { $0["target"] == .string(name) })
    }

    // R-SLA-4: a pause shows the target paused with no due time; the resume gives the new due
    // time and the paused seconds so far.
    @Test func foldsPauseAndResume() throws {
        var view = try SLATargetsView.apply(event(EventType.slaStarted, at: 0, started), to: [])
        view = try SLATargetsView.apply(event(EventType.slaPaused, at: 600, data("restoration", [
            "reason": "await_customer", "pausedAt": "2026-03-02T08:10:00Z", "remainingSeconds": 28200])), to: view)
        var restoration = try target(view, "restoration")
        #expect(restoration["state"] == "paused")
        #expect(restoration["dueAt"] == .null)
        #expect(restoration["pausedAt"] == "2026-03-02T08:10:00Z")
        #expect(restoration["remainingSeconds"] == 28200)
        #expect(try target(view, "response")["state"] == "running", "only the named target pauses")

        view = try SLATargetsView.apply(event(EventType.slaResumed, at: 4200, data("restoration", [
            "reason": "customer_replied", "resumedAt": "2026-03-02T09:10:00Z", "pausedSeconds": 3600,
            "totalPausedSeconds": 3600, "dueAt": "2026-03-02T17:00:00Z"])), to: view)
        restoration = try target(view, "restoration")
        #expect(restoration["state"] == "running")
        #expect(restoration["dueAt"] == "2026-03-02T17:00:00Z")
        #expect(restoration["pausedSeconds"] == 3600)
        #expect(restoration["pausedAt"] == .null)

        // A second pause and resume: pausedSeconds is the total, not this pause alone.
        view = try SLATargetsView.apply(event(EventType.slaPaused, at: 5000, data("restoration", [
            "reason": "await_customer", "pausedAt": "2026-03-02T09:23:20Z", "remainingSeconds": 27400])), to: view)
        view = try SLATargetsView.apply(event(EventType.slaResumed, at: 5600, data("restoration", [
            "reason": "customer_replied", "resumedAt": "2026-03-02T09:33:20Z", "pausedSeconds": 600,
            "totalPausedSeconds": 4200, "dueAt": "2026-03-02T17:10:00Z"])), to: view)
        restoration = try target(view, "restoration")
        #expect(restoration["pausedSeconds"] == 4200)
        #expect(restoration["dueAt"] == "2026-03-02T17:10:00Z")
    }

    // R-SLA-6: a breach is a flag, not a state: the breached target keeps running (and can
    // still pause and resume) until it stops with its outcome.
    @Test func aBreachedTargetKeepsRunningUntilItStops() throws {
        var view = try SLATargetsView.apply(event(EventType.slaStarted, at: 0, started), to: [])
        view = try SLATargetsView.apply(event(EventType.slaBreached, at: 28800, data("restoration", ["dueAt": "2026-03-02T16:00:00Z", "allowedSeconds": 28800])), to: view)
        var restoration = try target(view, "restoration")
        #expect(restoration["state"] == "running")
        #expect(restoration["breached"] == true)
        #expect(restoration["dueAt"] == "2026-03-02T16:00:00Z")

        view = try SLATargetsView.apply(event(EventType.slaPaused, at: 29000, data("restoration", ["pausedAt": "2026-03-02T16:03:20Z", "remainingSeconds": 0])), to: view)
        restoration = try target(view, "restoration")
        #expect(restoration["state"] == "paused")
        #expect(restoration["breached"] == true)
        #expect(restoration["remainingSeconds"] == 0)

        view = try SLATargetsView.apply(event(EventType.slaStopped, at: 30000, data("restoration", [
            "outcome": "missed", "businessSecondsUsed": 29000, "allowedSeconds": 28800, "dueAt": "2026-03-02T16:00:00Z"])), to: view)
        restoration = try target(view, "restoration")
        #expect(restoration["state"] == "stopped")
        #expect(restoration["outcome"] == "missed")
        #expect(restoration["breached"] == true)
        #expect(restoration["businessSecondsUsed"] == 29000)
    }

    // R-SLA-6: a target stopped in time is stopped with outcome met, not breached.
    @Test func aTargetStoppedInTimeIsMet() throws {
        var view = try SLATargetsView.apply(event(EventType.slaStarted, at: 0, started), to: [])
        view = try SLATargetsView.apply(event(EventType.slaStopped, at: 900, data("response", ["outcome": "met", "businessSecondsUsed": 900])), to: view)
        let response = try target(view, "response")
        #expect(response["state"] == "stopped")
        #expect(response["outcome"] == "met")
        #expect(response["breached"] == nil)
        #expect(try target(view, "restoration")["state"] == "running")
    }

    // R-SLA-4, R-SLA-6: sla.started / sla.rescheduled carry whole target objects, taken field by field.
    @Test func rescheduledTargetObjectsAreTakenWhole() throws {
        var view = try SLATargetsView.apply(event(EventType.slaStarted, at: 0, started), to: [])
        let paused: JSONValue = ["trackingNumber": "INC-000001", "reason": "paused", "targets": [
            ["target": "restoration", "calendar": "24x7", "allowedSeconds": 28800, "dueAt": nil, "state": "paused", "breached": false,
             "outcome": nil, "businessSecondsUsed": 600, "remainingSeconds": 28200, "pausedSeconds": 0, "warnAt": [0.5, 0.75, 0.9]]]]
        view = try SLATargetsView.apply(event(EventType.slaRescheduled, at: 600, paused), to: view)
        let restoration = try target(view, "restoration")
        #expect(restoration["state"] == "paused")
        #expect(restoration["dueAt"] == .null)
        #expect(restoration["remainingSeconds"] == 28200)
        #expect(restoration["breached"] == false)
    }

    // Out of order (several workers, redelivery): whatever order the events arrive in, an
    // older event never overwrites what a newer one said.
    @Test func pauseResumeBreachAndStopArrivingOutOfOrder() throws {
        let events = [
            event(EventType.slaStarted, at: 0, started),
            event(EventType.slaPaused, at: 600, data("restoration", ["pausedAt": "2026-03-02T08:10:00Z", "remainingSeconds": 28200])),
            event(EventType.slaResumed, at: 4200, data("restoration", ["totalPausedSeconds": 3600, "dueAt": "2026-03-02T17:00:00Z"])),
            event(EventType.slaBreached, at: 3600, data("response", ["dueAt": "2026-03-02T09:00:00Z"])),
            event(EventType.slaStopped, at: 5000, data("response", ["outcome": "missed", "businessSecondsUsed": 5000])),
        ]
        func fold(_ list: [CloudEvent]) throws -> JSONValue {
            var view: JSONValue = []
            for e in list { view = try SLATargetsView.apply(e, to: view) }
            return view
        }
        for order in [events, events.reversed(), [events[2], events[0], events[4], events[1], events[3]]] {
            let view = try fold(order)
            let restoration = try target(view, "restoration")
            #expect(restoration["state"] == "running", "the resume is newer than the pause")
            #expect(restoration["dueAt"] == "2026-03-02T17:00:00Z", "sla.started's dueAt is older than the resume's")
            #expect(restoration["pausedSeconds"] == 3600)
            let response = try target(view, "response")
            #expect(response["state"] == "stopped", "the stop is newer than the start and the breach")
            #expect(response["outcome"] == "missed")
            #expect(response["breached"] == true)
        }
        // A late, older pause does not pause a target that has since resumed.
        var view = try fold([events[0], events[2]])
        view = try SLATargetsView.apply(events[1], to: view)
        #expect(try target(view, "restoration")["state"] == "running")
        // A late, older breach does not turn a stopped target back to running.
        view = try fold([events[0], events[4]])
        view = try SLATargetsView.apply(events[3], to: view)
        #expect(try target(view, "response")["state"] == "stopped")
    }

    // R-SLA-4: intake's read model consumes the pause and resume events too.
    @Test func theReadModelConsumesPauseAndResume() {
        let types = Set(TicketReadModel().eventTypes)
        #expect(types.isSuperset(of: [EventType.slaStarted, EventType.slaRescheduled, EventType.slaWarning, EventType.slaBreached,
                                      EventType.slaStopped, EventType.slaPaused, EventType.slaResumed]))
    }

    @Test func refusesEventsWithoutTheirTarget() {
        #expect(throws: CommandRejection.self) {
            try SLATargetsView.apply(event(EventType.slaWarning, at: 0, ["trackingNumber": "INC-000001"]), to: [])
        }
        #expect(throws: CommandRejection.self) {
            try SLATargetsView.apply(event(EventType.slaStarted, at: 0, ["trackingNumber": "INC-000001"]), to: [])
        }
        #expect(throws: CommandRejection.self) {
            try SLATargetsView.apply(event(EventType.slaPaused, at: 0, ["trackingNumber": "INC-000001"]), to: [])
        }
        #expect(throws: CommandRejection.self) {
            try SLATargetsView.apply(event(EventType.slaResumed, at: 0, ["trackingNumber": "INC-000001"]), to: [])
        }
    }
}
