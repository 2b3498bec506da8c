import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// The whole pipeline from `ticket.submit` on: intake, classification, sla and escalation, as deployed.
let classificationEnv = ["CSS_CLOUD_PRODUCTS": "OT Cloud,Extended ECM", "CSS_THIRD_PARTY_PRODUCTS": "SAP,Microsoft Teams"]

func pipeline(escalation: Int = 1, _ body: (SystemHarness) async throws -> Void) async throws {
    try await SystemHarness.with([.intake(), .classification(env: classificationEnv), .sla(), .escalation(count: escalation)], body)
}

/// SLA clocks long enough that no warning pages during a test about something else.
let quietPolicy: JSONValue = ["P1": ["response": "PT1H", "restoration": "PT8H"], "P2": ["response": "PT2H", "restoration": "PT16H", "calendar": "24x7"]]

let jane: JSONValue = ["name": "Jane Doe", "email": "jdoe@support.example", "phone": "+1 555 0199"]
let raj: JSONValue = ["name": "Raj Patel", "email": "rpatel@support.example"]
let lee: JSONValue = ["name": "Lee Chen", "email": "lchen@support.example", "phone": "+1 555 0110"]
let dana: JSONValue = ["name": "Dana Duty", "email": "duty@support.example", "phone": "+1 555 0111"]
let sam: JSONValue = ["name": "Sam Okafor", "email": "sam@vendor.example", "phone": "+1 555 0150"]

extension SystemHarness {
    /// `oncall.schedule.set` for cloud-ops: Jane then Raj, daily at 00:00 UTC from 2026-01-01 (Jane on call on odd day numbers).
    @discardableResult
    func setSchedule(team: String = "cloud-ops", levels: [JSONValue], overrides: [JSONValue] = []) async throws -> Reply {
        try await client.send(CommandName.oncallScheduleSet, [
            "team": .string(team), "timeZone": "UTC", "members": [jane, raj], "handoffTime": "00:00", "rotationDays": 1,
            "start": "2026-01-01", "levels": .array(levels), "overrides": .array(overrides), "by": "lead@support.example",
        ])
    }

    /// Jane covers the next day, so the on-call engineer in a test is always Jane.
    func janeCovers() -> [JSONValue] {
        let now = Date()
        return [["member": jane, "start": .string(RFC3339.format(now.addingTimeInterval(-3600))),
                 "end": .string(RFC3339.format(now.addingTimeInterval(86_400))), "reason": "test"]]
    }

    func pages(_ escalationId: String) -> [ContractClient.Page] {
        client.pages.filter { $0.body["escalationId"]?.stringValue == escalationId }
    }

    func escalationEvents(_ type: String, _ escalationId: String) -> [CloudEvent] {
        client.events(ofType: type).filter { $0.data["escalationId"]?.stringValue == escalationId }
    }

    @discardableResult
    func awaitPages(_ escalationId: String, count: Int = 1, timeout: Duration = .seconds(30)) async throws -> [ContractClient.Page] {
        #expect(await eventually(timeout: timeout) { pages(escalationId).count >= count },
                "\(count) page(s) of \(escalationId) never arrived; got \(pages(escalationId).map(\.body))")
        return pages(escalationId)
    }

    func transition(_ number: String, _ action: String) async throws {
        let reply = try await client.send(CommandName.ticketTransition, ["trackingNumber": .string(number), "action": .string(action), "by": "eng@vendor.example"])
        #expect(reply.result != nil, "\(action) refused: \(reply)")
    }

    func ack(_ escalationId: String, by: String = "jdoe@support.example") async throws -> Reply {
        try await client.send(CommandName.escalationAck, ["escalationId": .string(escalationId), "by": .string(by)])
    }

    /// Every message id on `css.escalations` exactly once (R-ESC-3).
    func expectNoDuplicatePages() {
        let ids = client.pages.compactMap(\.messageID)
        #expect(Set(ids).count == ids.count, "a message was sent twice: \(ids.sorted())")
    }
}
