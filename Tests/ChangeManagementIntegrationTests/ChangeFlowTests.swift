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
}
