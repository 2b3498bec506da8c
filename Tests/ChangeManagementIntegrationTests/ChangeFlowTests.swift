import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// Each type's whole flow over the real broker and database, from onboarding through intake on.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ChangeFlowTests {
    /// R-CHG-1 (standard: pre-approved, no CAB), R-CHG-2, R-CHG-3, R-CHG-6.
    @Test func standardChangeRunsTheWholeLifecycle() async throws {
        try await changeSystem { system in
            try await system.onboardForChanges()
            try await system.setTemplate()
            let id = try await system.requestChange("standard")
            #expect(id.hasPrefix("CHG-"))
            #expect(try await system.accept(CommandName.changeAgree, id, by: cio) == "approved")
            try await system.throughTest(id)
            #expect(try await system.accept(CommandName.changeImplement, id) == "implementing")
            #expect(try await system.accept(CommandName.changeComplete, id, [
                "outcome": "implemented", "installed": [["component": "document-store-db", "kind": "patch", "version": "16.2"]]]) == "implemented")
            #expect(try await system.accept(CommandName.changeClose, id) == "closed")
            try await system.awaitChangeEvents(EventType.changeClosed, id)
            let types = system.changeEvents(id).map(\.type)
            #expect(types == [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled,
                              EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled, EventType.changeImplementing,
                              EventType.slaExclusionAdded, EventType.changeImplemented, EventType.changeClosed])
            let change = try await system.client.send(CommandName.changeGet, ["changeId": .string(id)]).result
            #expect(change?["state"] == "closed")
            // agree (straight to approved), schedule, deploy, verify, schedule, implement, complete, close.
            #expect(change?["history"]?.arrayValue?.map { $0["action"]?.stringValue ?? "" } ==
                    ["agree", "schedule", "deploy", "verify", "schedule", "implement", "complete", "close"])
            let directory = try await system.client.send(CommandName.changeDirectoryGet, ["customerId": "acme"]).result
            #expect(directory?["components"]?.arrayValue?.first?["version"] == "16.2")
            #expect(directory?["components"]?.arrayValue?.first?["changeId"]?.stringValue == id)
            #expect(directory?["timeline"]?.arrayValue?.map { $0["state"]?.stringValue ?? "" } ==
                    ["scheduled_test", "deployed_test", "verified_test", "scheduled_production", "implementing", "implemented"])
        }
    }

    /// R-CHG-1 (normal: assessed, then approved by the Change Advisory Board's quorum, each vote
    /// recorded), R-CHG-4 (routine maintenance that interrupts service announced to the change
    /// contacts), R-SLA-5 (an overrun past the window is excluded too).
    @Test func normalChangeIsAssessedApprovedByTheBoardAndAnnounced() async throws {
        try await changeSystem { system in
            try await system.onboardForChanges()
            try await system.setBoard("normal", members: ["ann@vendor.example", "ben@vendor.example", "cat@vendor.example"], quorum: 2)
            let id = try await system.requestChange("normal", ["interruptsService": true])
            #expect(try await system.accept(CommandName.changeAgree, id, by: cio) == "agreed")
            #expect(try await system.accept(CommandName.changeAssess, id, ["risk": "medium", "plan": "Snapshot, upgrade, smoke test; restore the snapshot on failure"]) == "assessed")
            #expect(try await system.accept(CommandName.changeVote, id, ["approve": true, "reason": "tested upstream"], by: "ann@vendor.example") == "assessed")
            #expect(try await system.accept(CommandName.changeVote, id, ["approve": false, "reason": "Friday"], by: "ben@vendor.example") == "assessed")
            #expect(try await system.accept(CommandName.changeVote, id, ["approve": true, "reason": "fine"], by: "cat@vendor.example") == "approved")
            let votes = try await system.awaitChangeEvents(EventType.changeVoteRecorded, id, count: 3)
            #expect(votes.map { $0.data["approvals"]?.numberValue ?? -1 } == [1, 1, 2])
            #expect(votes.map { $0.data["rejections"]?.numberValue ?? -1 } == [0, 1, 1])
            let approved = try await system.awaitChangeEvents(EventType.changeApproved, id)
            #expect(approved.first?.data["board"] == "normal" && approved.first?.data["quorum"] == 2)
            // 14 calendar days ahead is at least 5 business days ahead (R-CHG-4).
            try await system.throughTest(id, production: window(days: 14, hours: 2))
            let announced = try await system.awaitChangeEvents(EventType.maintenanceAnnounced, id)
            #expect(announced.first?.subject == "acme")
            #expect(announced.first?.data["addressedTo"] == [.string(cio)])
            #expect((announced.first?.data["noticeBusinessDays"]?.numberValue ?? 0) >= 5)
            #expect(try await system.accept(CommandName.changeImplement, id) == "implementing")
            let failed = try await system.step(CommandName.changeComplete, id, ["outcome": "failed", "rollback": "restored the snapshot"])
            #expect(failed.result?["state"] == "failed" && failed.result?["rollback"] == "restored the snapshot")
            try await system.awaitChangeEvents(EventType.changeFailed, id)
            // A failed change is ended: nothing more happens to it.
            #expect(try await system.step(CommandName.changeClose, id).errors.map(\.code) == [ErrorCode.illegalTransition])
            // Nothing was delivered: the directory stays empty.
            let directory = try await system.client.send(CommandName.changeDirectoryGet, ["customerId": "acme"]).result
            #expect(directory?["components"] == [])
        }
    }

    /// R-CHG-1 (emergency: only for an open Critical or High production incident, which it
    /// references; approved by the emergency board without assessment), R-CHG-4 (emergency
    /// maintenance at any time, in a freeze, outside the windows), R-CHG-5 (over another change).
    @Test func emergencyChangeForAnOpenCriticalIncident() async throws {
        let classification = ServiceSpec.classification(env: ["CSS_CLOUD_PRODUCTS": "OT Cloud,Extended ECM", "CSS_THIRD_PARTY_PRODUCTS": "SAP,Microsoft Teams"])
        try await changeSystem([classification]) { system in
            let freeze: JSONValue = [["start": .string(RFC3339.format(Date().addingTimeInterval(-3600))),
                                      "end": .string(RFC3339.format(Date().addingTimeInterval(30 * 86_400))), "reason": "year-end freeze"]]
            try await system.onboardForChanges(windows: [], freezes: freeze)
            try await system.setBoard("emergency", members: ["duty@vendor.example"], quorum: 1)
            let number = try await system.submit(["impact": "outage"]) // P1 production incident
            var request = SystemHarness.changeRequest("emergency", ["incident": .string(number)])
            var reply = try await system.client.send(CommandName.changeRequest, request)
            // The incident's classification reaches change management asynchronously.
            let deadline = ContinuousClock.now + .seconds(30)
            while reply.errors.first?.code == ErrorCode.unknownIncident, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                reply = try await system.client.send(CommandName.changeRequest, request)
            }
            let id = try #require(reply.result?["changeId"]?.stringValue, "emergency change refused: \(reply)")
            #expect(try await system.accept(CommandName.changeAgree, id, by: cio) == "agreed")
            #expect(try await system.accept(CommandName.changeVote, id, ["approve": true, "reason": "outage"], by: "duty@vendor.example") == "approved")
            // In the freeze, without any window, at once: emergency maintenance.
            try await system.throughTest(id, production: window(days: 0.01))
            let change = try await system.client.send(CommandName.changeGet, ["changeId": .string(id)]).result
            #expect(change?["production"]?["maintenance"] == "emergency")
            #expect(change?["incident"]?.stringValue == number)
            #expect(try await system.accept(CommandName.changeImplement, id) == "implementing")
            // A restored incident no longer justifies a new Emergency change.
            let restored = try await system.client.send(CommandName.ticketTransition, ["trackingNumber": .string(number), "action": "respond", "by": "eng@vendor.example"])
            #expect(restored.result != nil)
            _ = try await system.client.send(CommandName.ticketTransition, ["trackingNumber": .string(number), "action": "restore", "by": "eng@vendor.example"])
            request = SystemHarness.changeRequest("emergency", ["incident": .string(number)])
            var refused = false
            for _ in 0..<300 where !refused {
                refused = try await system.client.send(CommandName.changeRequest, request).errors.map(\.code) == [ErrorCode.unknownIncident]
                if !refused { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(refused, "an Emergency change for a restored incident was accepted")
        }
    }
}
