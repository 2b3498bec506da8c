import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// Intake (which onboards customers and takes tickets) and change management, as deployed.
func changeSystem(_ extra: [ServiceSpec] = [], _ body: (SystemHarness) async throws -> Void) async throws {
    try await SystemHarness.with([.intake(), .change()] + extra, body)
}

/// acme's Authorized Change Contact (from `SystemHarness.onboard`).
let cio = "cio@acme.example"
let staff = "eng@vendor.example"

/// A window `days` from now, `hours` long, on whole minutes.
func window(days: Double, hours: Double = 1) -> JSONValue {
    let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + days * 86_400).rounded(.down) / 60 * 60)
    let startMinute = Date(timeIntervalSince1970: (start.timeIntervalSince1970 / 60).rounded(.down) * 60)
    return ["start": .string(RFC3339.format(startMinute)), "end": .string(RFC3339.format(startMinute.addingTimeInterval(hours * 3600)))]
}

/// Every day of the week is a maintenance window, all day.
let allWeek: JSONValue = .array(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"].map {
    ["weekday": .string($0), "start": "00:00", "end": "00:00"]
})

extension SystemHarness {
    /// Onboards acme and waits until change management knows it (a `maintenance.windows.set` is accepted).
    func onboardForChanges(windows: JSONValue = allWeek, freezes: JSONValue = []) async throws {
        let onboarded = try await onboard()
        #expect(onboarded.result != nil, "onboarding refused: \(onboarded)")
        var reply = try await setWindows(windows, freezes: freezes)
        let deadline = ContinuousClock.now + .seconds(30)
        while reply.errors.first?.code == ErrorCode.unknownCustomer, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            reply = try await setWindows(windows, freezes: freezes)
        }
        #expect(reply.result != nil, "maintenance.windows.set refused: \(reply)")
    }

    func setWindows(_ windows: JSONValue, freezes: JSONValue = [], customerId: String = "acme") async throws -> Reply {
        try await client.send(CommandName.maintenanceWindowsSet, ["customerId": .string(customerId), "windows": windows, "freezes": freezes, "by": "cab@vendor.example"])
    }

    func setTemplate(_ id: String = "db-minor-patch") async throws {
        let reply = try await client.send(CommandName.changeTemplateSet, [
            "templateId": .string(id), "title": "Minor database patch", "description": "Apply a minor patch of the document store; rollback by snapshot.",
            "components": ["document-store-db"], "by": "cab@vendor.example"])
        #expect(reply.result?["revision"] != nil, "template refused: \(reply)")
    }

    func setBoard(_ board: String, members: [String], quorum: Int) async throws {
        let reply = try await client.send(CommandName.changeBoardSet, [
            "board": .string(board), "members": .array(members.map { .string($0) }), "quorum": .int(quorum), "by": "cab@vendor.example"])
        #expect(reply.result?["revision"] != nil, "board refused: \(reply)")
    }

    /// A `change.request` body of acme's change contact, with `overrides`.
    static func changeRequest(_ type: String, _ overrides: [String: JSONValue] = [:]) -> JSONValue {
        var body: JSONObject = [
            "customerId": "acme", "type": .string(type), "title": "Upgrade the document store database", "reason": "End of support",
            "work": "Upgrade on Test, then Production", "impact": "Portal read-only for 30 minutes", "cost": ["amount": 1200, "currency": "CAD"],
            "environments": ["test", "production"], "requestedWindow": window(days: 20), "components": ["document-store-db"],
            "interruptsService": false, "by": .string(cio),
        ]
        if type == "standard" { body["templateId"] = "db-minor-patch" }
        for (k, v) in overrides { body[k] = v }
        return .object(body)
    }

    /// Requests a change and returns its id; throws when refused.
    func requestChange(_ type: String, _ overrides: [String: JSONValue] = [:]) async throws -> String {
        let reply = try await client.send(CommandName.changeRequest, SystemHarness.changeRequest(type, overrides))
        guard let id = reply.result?["changeId"]?.stringValue else { throw TestSupportError("change.request refused: \(reply)") }
        return id
    }

    /// Sends a lifecycle command about `changeId`.
    @discardableResult
    func step(_ command: String, _ changeId: String, _ fields: [String: JSONValue] = [:], by: String = staff, messageID: String = UUID().uuidString) async throws -> Reply {
        var body: JSONObject = ["changeId": .string(changeId), "by": .string(by)]
        for (k, v) in fields { body[k] = v }
        return try await client.send(command, .object(body), messageID: messageID)
    }

    /// The step must be accepted; returns the change's state after it.
    @discardableResult
    func accept(_ command: String, _ changeId: String, _ fields: [String: JSONValue] = [:], by: String = staff) async throws -> String? {
        let reply = try await step(command, changeId, fields, by: by)
        #expect(reply.result != nil, "\(command) of \(changeId) refused: \(reply)")
        return reply.result?["state"]?.stringValue
    }

    /// Takes an approved change through Test, the customer's verification and a Production schedule.
    func throughTest(_ changeId: String, production: JSONValue = window(days: 14), maintenance: JSONValue = .null, agreedBy: JSONValue = .null) async throws {
        let test = window(days: 1)
        try await accept(CommandName.changeSchedule, changeId, ["environment": "test", "start": test["start"]!, "end": test["end"]!])
        try await accept(CommandName.changeDeploy, changeId)
        try await accept(CommandName.changeVerify, changeId, ["accepted": true, "notes": "regression suite green"], by: cio)
        #expect(try await accept(CommandName.changeSchedule, changeId, [
            "environment": "production", "start": production["start"]!, "end": production["end"]!, "maintenance": maintenance, "agreedBy": agreedBy,
        ]) == "scheduled_production")
    }

    func changeEvents(_ changeId: String) -> [CloudEvent] {
        client.events.filter { $0.source == "/css/change" && $0.data["changeId"]?.stringValue == changeId }
    }

    /// Waits for `count` events of `type` about `changeId`.
    @discardableResult
    func awaitChangeEvents(_ type: String, _ changeId: String, count: Int = 1) async throws -> [CloudEvent] {
        let found = { self.changeEvents(changeId).filter { $0.type == type } }
        #expect(await eventually { found().count >= count }, "\(count) \(type) of \(changeId) never arrived; got \(changeEvents(changeId).map(\.type))")
        return found()
    }
}
