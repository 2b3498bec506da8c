import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

@Suite(.serialized, .timeLimit(.minutes(10))) struct ProblemIntegrationTests {
    func transition(_ h: SystemHarness, _ number: String, _ actions: [String]) async throws {
        for action in actions {
            let r = try await h.client.send(CommandName.ticketTransition, ["trackingNumber": .string(number), "action": .string(action), "by": "eng@vendor.example"])
            #expect(r.isOK, "\(action): \(r)")
        }
    }

    // R-PRB-1: a Critical incident, restored and closed, opens one problem linked to it.
    @Test func aClosedCriticalIncidentOpensOneProblem() async throws {
        try await pipeline { h in
            _ = try await h.onboard()
            let critical = try await h.submit(["component": "search"])
            let minor = try await h.submit(["impact": "minor"])
            _ = try await h.classified(critical)
            _ = try await h.classified(minor)
            try await transition(h, critical, ["respond", "restore", "close"])
            try await transition(h, minor, ["respond", "restore", "close"])
            #expect(await eventually { h.client.events(ofType: EventType.problemOpened).count == 1 })
            let opened = try #require(h.client.events(ofType: EventType.problemOpened).first)
            #expect(opened.data["source"] == "critical_incident")
            #expect(opened.data["incidents"] == [.string(critical)])
            #expect(opened.data["customerId"] == "acme")
            // The close announced again, redelivered and replayed under a new id: still one problem (a unique key).
            let close = try #require(h.client.events(ofType: EventType.ticketTransitioned).first { $0.subject == critical && $0.data["action"] == "close" })
            var replay = close
            replay.id = UUID().uuidString
            try await h.client.publish(event: close)
            try await h.client.publish(event: replay)
            #expect(try await eventually { try await h.count("SELECT count(*) FROM classification.inbox WHERE message_id = $1", [.string("event:" + replay.id)]) == 1 })
            try await Task.sleep(for: .milliseconds(300))
            #expect(h.client.events(ofType: EventType.problemOpened).count == 1)
            let id = try #require(opened.data["problemId"]?.stringValue)
            let problem = try #require(try await h.client.send(CommandName.problemGet, ["problemId": .string(id)]).result)
            #expect(problem["incidents"]?.arrayValue?.map { $0["trackingNumber"] } == [.string(critical)])
            #expect(problem["status"] == "open")
        }
    }

    // R-PRB-2: 3 incidents of one component within 30 days open one trend problem; later ones link to it.
    @Test func recurringIncidentsOfAComponentOpenOneTrendProblem() async throws {
        try await pipeline(classifiers: 2) { h in
            _ = try await h.onboard()
            var numbers: [String] = []
            for i in 0..<2 { numbers.append(try await h.submit(["component": "storage", "impact": "minor", "summary": .string("slow \(i)")])) }
            _ = try await h.submit(["component": "network", "impact": "minor"])
            for n in numbers { _ = try await h.classified(n) }
            #expect(h.client.events(ofType: EventType.problemOpened).isEmpty)
            numbers.append(try await h.submit(["component": "storage", "impact": "minor"]))
            #expect(await eventually { h.client.events(ofType: EventType.problemOpened).count == 1 })
            let opened = try #require(h.client.events(ofType: EventType.problemOpened).first)
            #expect(opened.data["source"] == "trend")
            #expect(opened.data["component"] == "storage")
            #expect(Set((opened.data["incidents"]?.arrayValue ?? []).compactMap(\.stringValue)) == Set(numbers))
            let fourth = try await h.submit(["component": "storage", "impact": "degraded"])
            #expect(await eventually { h.client.events(ofType: EventType.problemIncidentsLinked).count == 1 })
            #expect(h.client.events(ofType: EventType.problemIncidentsLinked).first?.data["incidents"] == [.string(fourth)])
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.client.events(ofType: EventType.problemOpened).count == 1)
        }
    }

    // R-PRB-2, R-PRB-3: a POC logs a problem; staff record cause, workaround, resolution and link incidents.
    @Test func aCustomerProblemIsRecordedLinkedAndResolved() async throws {
        try await pipeline { h in
            _ = try await h.onboard()
            _ = try await h.onboard("globex", contacts: [["email": "hank@globex.example", "name": "Hank", "primary": true]])
            let first = try await h.submit(["impact": "minor"])
            let second = try await h.submit(["impact": "minor"])
            let request = try await h.submit(["kind": "service_request", "catalogItem": "add-user", "impact": nil])
            let foreign = try await h.submit(["customerId": "globex", "contactEmail": "hank@globex.example"])
            for n in [first, second, request, foreign] { _ = try await h.classified(n) }

            let notPOC = try await h.client.send(CommandName.problemOpen, ["customerId": "acme", "summary": "Reports time out", "by": "sam@vendor.example"])
            #expect(notPOC.errors.map(\.code) == [ErrorCode.notAContact])
            let badLinks = try await h.client.send(CommandName.problemOpen, ["customerId": "acme", "summary": "Reports time out", "by": "ana@acme.example",
                                                                            "incidents": [.string(request), .string(foreign), "INC-999999"]])
            #expect(badLinks.errors.map(\.code) == [ErrorCode.notAnIncident, ErrorCode.otherCustomer, ErrorCode.unknownTicket])
            let opened = try await h.client.send(CommandName.problemOpen, ["customerId": "acme", "summary": "Reports time out", "by": "ana@acme.example",
                                                                          "component": "reporting", "incidents": [.string(first)]])
            let id = try #require(opened.result?["problemId"]?.stringValue)
            #expect(id.hasPrefix("PRB-"))

            let byCustomer = try await h.client.send(CommandName.problemUpdate, ["problemId": .string(id), "by": "ana@acme.example", "cause": "x"])
            #expect(byCustomer.errors.map(\.code) == [ErrorCode.notSupportStaff])
            let cause = try await h.client.send(CommandName.problemUpdate, ["problemId": .string(id), "by": "sam@vendor.example",
                                                                           "cause": "Index not rebuilt after upgrade", "workaround": "Run reports after 18:00"])
            #expect(cause.result?["cause"] == "Index not rebuilt after upgrade")
            let linked = try await h.client.send(CommandName.problemLink, ["problemId": .string(id), "by": "sam@vendor.example",
                                                                          "incidents": [.string(first), .string(second)]])
            #expect(linked.result?["incidents"]?.arrayValue?.count == 2)
            let resolved = try await h.client.send(CommandName.problemUpdate, ["problemId": .string(id), "by": "sam@vendor.example",
                                                                              "resolution": "Index rebuilt; patch 24.3.1 rebuilds it on upgrade"])
            #expect(resolved.result?["status"] == "resolved")
            let again = try await h.client.send(CommandName.problemUpdate, ["problemId": .string(id), "by": "sam@vendor.example", "cause": "y"])
            #expect(again.errors.map(\.code) == [ErrorCode.alreadyResolved])
            let unknown = try await h.client.send(CommandName.problemGet, ["problemId": "PRB-999999"])
            #expect(unknown.errors.map(\.code) == [ErrorCode.unknownProblem])

            #expect(await eventually { h.client.events(ofType: EventType.problemResolved).count == 1 })
            #expect(h.client.events(ofType: EventType.problemOpened).filter { $0.data["source"] == "customer" }.count == 1)
            #expect(h.client.events(ofType: EventType.problemCauseRecorded).count == 1)
            #expect(h.client.events(ofType: EventType.problemWorkaroundRecorded).count == 1)
            #expect(h.client.events(ofType: EventType.problemIncidentsLinked).first?.data["incidents"] == [.string(second)])
        }
    }
}
