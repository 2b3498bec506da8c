import CSSAMQP
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// The pipeline from `ticket.submit` on: the real `intake` and `classification`
/// executables over the real broker and database.
let classificationEnv = ["CSS_CLOUD_PRODUCTS": "OT Cloud,Extended ECM", "CSS_THIRD_PARTY_PRODUCTS": "SAP,Microsoft Teams"]

func pipeline(classifiers: Int = 1, env: [String: String] = [:], _ body: (SystemHarness) async throws -> Void) async throws {
    try await SystemHarness.with([.intake(), .classification(count: classifiers, env: classificationEnv.merging(env) { $1 })], body)
}

extension SystemHarness {
    /// The one `ticket.classified` of `number`, once it arrived.
    func classified(_ number: String, timeout: Duration = .seconds(30)) async throws -> CloudEvent {
        #expect(await eventually(timeout: timeout) { !client.events(ofType: EventType.ticketClassified).filter { $0.subject == number }.isEmpty },
                "\(number) was never classified")
        return try #require(client.events(ofType: EventType.ticketClassified).first { $0.subject == number })
    }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct PipelineTests {
    // R-CLS-1, R-CLS-2, R-CLS-5, R-CLS-6: submit → ticket.classified → ticket.get shows it.
    @Test func submittedTicketsAreClassifiedOnceAndIntakeShowsThePriority() async throws {
        try await pipeline { h in
            _ = try await h.onboard()
            let outage = try await h.submit(["requestedPriority": "P2", "product": "Extended ECM"])
            let event = try await h.classified(outage)
            #expect(event.source == "/css/classification")
            #expect(event.data["priority"] == "P1")
            #expect(event.data["requestedPriority"] == "P2")
            #expect(event.data["reclassificationCandidate"] == true)
            #expect(event.data["requestClass"] == .null)
            #expect(event.data["dispatch"] == "success_services")
            #expect(event.data["customerId"] == "acme")
            #expect(event.data["receivedAt"] == (try await h.ticket(outage))?["receivedAt"])
            // The ticket's facts the other services would otherwise read from ticket.received.
            #expect(event.data["kind"] == "incident" && event.data["environment"] == "production")
            #expect(event.data["phoneRequired"] == (try await h.ticket(outage))?["phoneRequired"])
            #expect(event.data["contactEmail"] == "ana@acme.example")

            let standard = try await h.submit(["kind": "service_request", "catalogItem": "password-reset", "impact": nil, "summary": "Reset Bo's password"])
            let request = try await h.classified(standard)
            #expect(request.data["priority"] == "P3")
            #expect(request.data["requestClass"] == "standard")
            #expect(request.data["dispatch"] == "success_services")

            let vague = try await h.submit(["impact": "minor", "summary": "Something is slow", "environment": "non_production"])
            let investigated = try await h.classified(vague)
            #expect(investigated.data["priority"] == "P4")
            #expect(investigated.data["dispatch"] == "investigation")
            let third = try await h.classified(try await h.submit(["impact": "degraded", "urgency": "low", "summary": "SAP export fails"]))
            #expect(third.data["priority"] == "P3") // Decision: low urgency lowers a degraded incident
            #expect(third.data["dispatch"] == "third_party")
            #expect(third.data["thirdParty"] == "sap")

            // Intake's ticket.get shows what classification decided.
            #expect(try await eventually { try await h.ticket(outage)?["priority"] == "P1" })
            let shown = try #require(try await h.ticket(outage))
            #expect(shown["status"] == "classified")
            #expect(shown["dispatch"] == "success_services")
            // Exactly one ticket.classified per ticket.
            try await Task.sleep(for: .milliseconds(500))
            let numbers = h.client.events(ofType: EventType.ticketClassified).compactMap(\.subject)
            #expect(numbers.count == 4 && Set(numbers).count == 4)
        }
    }

    // R-CLS-1 Decision: the customer's contract overrides the handbook's table.
    @Test func contractPriorityRulesApply() async throws {
        try await pipeline { h in
            let onboarded = try await h.onboard(extra: ["priorityRules": [["kind": "incident", "impact": "minor", "priority": "P2"]]])
            #expect(onboarded.isOK)
            let event = try await h.classified(try await h.submit(["impact": "minor"]))
            #expect(event.data["priority"] == "P2")
            #expect(event.data["policy"] == "contract")
            let refused = try await h.onboard(extra: ["priorityRules": [["priority": "P1"]]])
            #expect(refused.errors.map(\.field) == ["priorityRules[0]"])
        }
    }

    // R-QTA-1, R-QTA-2: each classified request consumes once; warnings and the exceeded flag; never blocked.
    @Test func quotasAreCountedWarnedAndFlagged() async throws {
        try await pipeline(env: ["CSS_QUOTA_TREND_MIN": "PT0S"]) { h in
            _ = try await h.onboard(extra: ["quotas": ["standard": 120, "nonStandard": 2]])
            var numbers: [String] = []
            for i in 0..<4 {
                let n = try await h.submit(["kind": "service_request", "catalogItem": .string("migrate-\(i)"), "impact": nil, "summary": "Migrate"])
                _ = try await h.classified(n)
                numbers.append(n)
            }
            #expect(await eventually { h.client.events(ofType: EventType.quotaExceeded).count == 1 })
            let quota = try #require(try await h.client.send(CommandName.quotaGet, ["customerId": "acme"]).result)
            let nonStandard = try #require(quota["quotas"]?.arrayValue?.first { $0["quota"] == "nonStandard" })
            #expect(nonStandard["used"] == .int(4))
            #expect(nonStandard["limit"] == .int(2))
            #expect(nonStandard["remaining"] == .int(0))
            #expect(nonStandard["exceeded"] == true)
            #expect(nonStandard["projectedExhaustion"]?.stringValue != nil)
            let standard = try #require(quota["quotas"]?.arrayValue?.first { $0["quota"] == "standard" })
            #expect(standard["used"] == .int(0))
            #expect(quota["timeZone"] == "America/Toronto")
            #expect(quota["contractYear"]?["start"]?.stringValue?.hasSuffix("T05:00:00Z") == true) // local midnight, EST

            let exceeded = h.client.events(ofType: EventType.quotaExceeded)
            #expect(exceeded.first?.data["used"] == .int(3))
            #expect(exceeded.first?.data["trackingNumber"] == .string(numbers[2]))
            // Used 2 of 2 projects exhaustion now: warned; used 3 projects it a third of the elapsed year earlier: warned again.
            let warnings = h.client.events(ofType: EventType.quotaWarning)
            #expect(warnings.first?.data["used"] == .int(2))
            #expect(warnings.first?.data["previousProjection"] == .null)
            #expect(warnings.allSatisfy { $0.data["quota"] == "nonStandard" && $0.data["limit"] == .int(2) })
            // Nothing was blocked: every request was accepted and classified.
            #expect(try await h.count("SELECT count(*) FROM classification.quota_consumption") == 4)
        }
    }

    // R-CLS-3: a POC asks, support staff decide once; intake and the SLA timer learn the new priority.
    @Test func reclassificationIsRequestedDecidedOnceAndAudited() async throws {
        try await pipeline { h in
            _ = try await h.onboard()
            let number = try await h.submit(["impact": "minor"])
            _ = try await h.classified(number)

            let stranger = try await h.client.send(CommandName.reclassifyRequest, ["trackingNumber": .string(number), "priority": "P1",
                                                                                   "reason": "urgent", "by": "eve@vendor.example"])
            #expect(stranger.errors.map(\.code) == [ErrorCode.notAContact])
            let unknown = try await h.client.send(CommandName.reclassifyRequest, ["trackingNumber": "INC-999999", "priority": "P1",
                                                                                  "reason": "urgent", "by": "ana@acme.example"])
            #expect(unknown.errors.map(\.code) == [ErrorCode.unknownTicket])
            let invalid = try await h.client.send(CommandName.reclassifyRequest, ["trackingNumber": .string(number), "priority": "P0"])
            #expect(Set(invalid.errors.map(\.field)) == ["priority", "reason", "by"])

            let messageID = UUID().uuidString
            let body: JSONValue = ["trackingNumber": .string(number), "priority": "P1", "reason": "Month-end closing is blocked", "by": "ana@acme.example"]
            let asked = try await h.client.send(CommandName.reclassifyRequest, body, messageID: messageID)
            let requestId = try #require(asked.result?["requestId"]?.stringValue)
            #expect(requestId.hasPrefix("RCL-"))
            #expect(try await h.client.send(CommandName.reclassifyRequest, body, messageID: messageID) == asked) // R-TKT-4 style idempotency
            let second = try await h.client.send(CommandName.reclassifyRequest, ["trackingNumber": .string(number), "priority": "P2",
                                                                                 "reason": "x", "by": "bo@acme.example"])
            #expect(second.errors.map(\.code) == [ErrorCode.requestPending])

            let byCustomer = try await h.client.send(CommandName.reclassifyDecide, ["requestId": .string(requestId), "accept": true,
                                                                                    "reason": "ok", "by": "cio@acme.example"])
            #expect(byCustomer.errors.map(\.code) == [ErrorCode.notSupportStaff])
            let decided = try await h.client.send(CommandName.reclassifyDecide, ["requestId": .string(requestId), "accept": true,
                                                                                 "reason": "Confirmed: all finance users blocked", "by": "sam@vendor.example"])
            let ticket = try #require(decided.result)
            #expect(ticket["priority"] == "P1")
            #expect(ticket["reclassifications"]?.arrayValue?.first?["state"] == "accepted")
            #expect(ticket["audit"]?.arrayValue?.map { $0["event"]?.stringValue ?? "" } == [
                "classified", "reclassification_requested", "reclassification_accepted", "reclassified"])
            let again = try await h.client.send(CommandName.reclassifyDecide, ["requestId": .string(requestId), "accept": false,
                                                                               "reason": "no", "by": "sam@vendor.example"])
            #expect(again.errors.map(\.code) == [ErrorCode.alreadyDecided])

            #expect(await eventually { !h.client.events(ofType: EventType.ticketReclassified).isEmpty })
            let reclassified = try #require(h.client.events(ofType: EventType.ticketReclassified).first)
            #expect(reclassified.data["from"] == "P3")
            #expect(reclassified.data["to"] == "P1")
            #expect(reclassified.data["by"] == "sam@vendor.example")
            #expect(reclassified.data["cause"] == "request")
            #expect(reclassified.data["receivedAt"] == (try await h.ticket(number))?["receivedAt"])
            #expect(h.client.events(ofType: EventType.reclassifyRequested).count == 1)
            #expect(h.client.events(ofType: EventType.reclassifyDecided).count == 1)
            #expect(try await eventually { try await h.ticket(number)?["priority"] == "P1" })
        }
    }

    // R-CLS-4: restoring a Critical production incident downgrades it to P3.
    @Test func restorationDowngradesCriticalIncidents() async throws {
        try await pipeline { h in
            _ = try await h.onboard()
            let number = try await h.submit()
            _ = try await h.classified(number)
            for action in ["respond", "restore"] {
                let r = try await h.client.send(CommandName.ticketTransition, ["trackingNumber": .string(number), "action": .string(action), "by": "eng@vendor.example"])
                #expect(r.isOK, "\(action): \(r)")
            }
            #expect(await eventually { !h.client.events(ofType: EventType.ticketReclassified).isEmpty })
            let downgrade = try #require(h.client.events(ofType: EventType.ticketReclassified).first)
            #expect(downgrade.data["from"] == "P1")
            #expect(downgrade.data["to"] == "P3")
            #expect(downgrade.data["reason"] == "restored")
            #expect(downgrade.data["cause"] == "restored")
            #expect(try await eventually { try await h.ticket(number)?["priority"] == "P3" })
            // A reopen and a second restore of a P3 change nothing more.
            for action in ["reopen", "restore"] {
                _ = try await h.client.send(CommandName.ticketTransition, ["trackingNumber": .string(number), "action": .string(action), "by": "eng@vendor.example"])
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.client.events(ofType: EventType.ticketReclassified).count == 1)
        }
    }

    // R-CLS-6: a ticket in investigation is dispatched later, as an audited event.
    @Test func investigatedTicketsAreDispatchedLater() async throws {
        try await pipeline { h in
            _ = try await h.onboard()
            let number = try await h.submit(["summary": "Users cannot log in", "impact": "degraded"])
            #expect(try await h.classified(number).data["dispatch"] == "investigation")
            let missing = try await h.client.send(CommandName.ticketDispatch, ["trackingNumber": .string(number), "dispatch": "third_party",
                                                                               "by": "sam@vendor.example"])
            #expect(missing.errors.map(\.field) == ["thirdParty"])
            let sent = try await h.client.send(CommandName.ticketDispatch, ["trackingNumber": .string(number), "dispatch": "third_party",
                                                                            "thirdParty": "Okta", "reason": "SSO provider outage",
                                                                            "by": "sam@vendor.example"])
            #expect(sent.result?["dispatch"] == "third_party")
            #expect(sent.result?["thirdParty"] == "Okta")
            #expect(sent.result?["audit"]?.arrayValue?.last?["event"] == "dispatched")
            let same = try await h.client.send(CommandName.ticketDispatch, ["trackingNumber": .string(number), "dispatch": "third_party",
                                                                            "thirdParty": "Okta", "by": "sam@vendor.example"])
            #expect(same.errors.map(\.code) == [ErrorCode.sameDispatch])
            #expect(await eventually { h.client.events(ofType: EventType.ticketDispatched).count == 1 })
            let event = try #require(h.client.events(ofType: EventType.ticketDispatched).first)
            #expect(event.data["from"] == "investigation")
            #expect(event.data["to"] == "third_party")
        }
    }
}
