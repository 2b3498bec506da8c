@testable import ClassificationService
import CSSModel
import Foundation
import Testing

@Suite struct ReclassificationRuleTests {
    func classified(_ priority: Priority = .p3, dispatch: Dispatch = .investigation) -> TicketRow {
        TicketRow(ticket: ticket(impact: .minor), classification: Classification(priority: priority, source: .handbook, requestedPriority: nil,
                                                                               requestClass: nil, dispatch: dispatch, thirdParty: nil),
                  classifiedAt: Date(), everCritical: false, status: "classified", statusAt: nil)
    }

    func pending(_ id: String = "RCL-000001") -> ReclassificationRequest {
        ReclassificationRequest(requestId: id, trackingNumber: "INC-000001", from: .p3, to: .p1, reason: "r", requestedBy: "ana@acme.example",
                                requestedAt: Date(), state: .pending)
    }

    // R-CLS-3: only a POC of the ticket's customer asks; not for the priority it has; one open request at a time.
    @Test func whoMayAskForReclassification() throws {
        let acme = try customer()
        func ask(_ by: String, _ p: Priority, pending: ReclassificationRequest? = nil) -> String? {
            ClassificationRules.refusal(of: RequestReclassification(trackingNumber: "INC-000001", priority: p, reason: "r", by: by),
                                        ticket: classified(), customer: acme, pending: pending)?.codes.first
        }
        #expect(ask("ana@acme.example", .p1) == nil)
        #expect(ask("BO@acme.example", .p2) == nil)
        #expect(ask("cio@acme.example", .p1) == ErrorCode.notAContact) // a change contact is not a POC
        #expect(ask("eve@vendor.example", .p1) == ErrorCode.notAContact)
        #expect(ask("ana@acme.example", .p3) == ErrorCode.samePriority)
        #expect(ask("ana@acme.example", .p1, pending: pending()) == ErrorCode.requestPending)
        var waiting = classified()
        waiting.classification = nil
        #expect(ClassificationRules.refusal(of: RequestReclassification(trackingNumber: "INC-000001", priority: .p1, reason: "r", by: "ana@acme.example"),
                                            ticket: waiting, customer: acme, pending: nil)?.codes == [ErrorCode.notClassified])
    }

    // R-CLS-3: support staff (nobody on the customer's side) decide, once.
    @Test func whoMayDecideAndOnlyOnce() throws {
        let acme = try customer()
        func decide(_ by: String, _ request: ReclassificationRequest) -> String? {
            ClassificationRules.refusal(of: DecideReclassification(requestId: request.requestId, accept: true, reason: "ok", by: by),
                                        request: request, customer: acme)?.codes.first
        }
        #expect(decide("sam@vendor.example", pending()) == nil)
        #expect(decide("ana@acme.example", pending()) == ErrorCode.notSupportStaff)
        #expect(decide("CIO@acme.example", pending()) == ErrorCode.notSupportStaff)
        var decided = pending()
        decided.state = .declined
        decided.decidedBy = "sam@vendor.example"
        #expect(decide("sam@vendor.example", decided) == ErrorCode.alreadyDecided)
    }

    // R-CLS-6: a ticket in investigation is dispatched by support staff once its source is known.
    @Test func dispatchRules() throws {
        let acme = try customer()
        func send(_ to: Dispatch, _ by: String = "sam@vendor.example", thirdParty: String? = nil, from: Dispatch = .investigation) -> String? {
            ClassificationRules.refusal(of: DispatchTicket(trackingNumber: "INC-000001", dispatch: to, by: by, reason: nil, thirdParty: thirdParty),
                                        ticket: classified(dispatch: from), customer: acme)?.codes.first
        }
        #expect(send(.successServices) == nil)
        #expect(send(.thirdParty, thirdParty: "SAP") == nil)
        #expect(send(.investigation) == ErrorCode.sameDispatch)
        #expect(send(.vendor, "ana@acme.example") == ErrorCode.notSupportStaff)
        #expect(send(.thirdParty, thirdParty: "Salesforce", from: .thirdParty) == nil)
    }

    @Test func dispatchCommandNeedsTheThirdPartyForThirdParty() {
        #expect(throws: CommandRejection.self) {
            try DispatchTicket.parse(["trackingNumber": "INC-000001", "dispatch": "third_party", "by": "sam@vendor.example"])
        }
        let ok = try? DispatchTicket.parse(["trackingNumber": "INC-000001", "dispatch": "vendor", "by": "sam@vendor.example", "thirdParty": "x"])
        #expect(ok?.thirdParty == nil)
    }
}
