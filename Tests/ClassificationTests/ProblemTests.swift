@testable import ClassificationService
import CSSModel
import Foundation
import Testing

@Suite struct TrendRuleTests {
    let day: TimeInterval = 86_400
    let t0 = Date(timeIntervalSince1970: 1_780_000_000)

    func incidents(_ days: [Double]) -> [(number: String, receivedAt: Date)] {
        days.enumerated().map { ("INC-\($0.offset)", t0.addingTimeInterval($0.element * day)) }
    }

    // R-PRB-2 Decision: 3 incidents of one component within 30 days.
    @Test func threeWithinThirtyDaysMakeATrend() {
        let rule = TrendRule()
        #expect(rule.window(incidents([0, 10]), containing: "INC-1") == nil)
        #expect(rule.window(incidents([0, 10, 30]), containing: "INC-2") == ["INC-0", "INC-1", "INC-2"])
        #expect(rule.window(incidents([0, 10, 30.01]), containing: "INC-2") == nil)
        // 0, 20, 40, 45: the window that holds the newest is 20..50.
        #expect(rule.window(incidents([0, 20, 40, 45]), containing: "INC-3") == ["INC-1", "INC-2", "INC-3"])
    }

    // Events out of order: the trend is found whichever incident arrives last.
    @Test func theOrderOfArrivalDoesNotMatter() {
        let rule = TrendRule()
        let all = incidents([5, 0, 12])
        for newest in ["INC-0", "INC-1", "INC-2"] {
            #expect(rule.window(all, containing: newest) == ["INC-1", "INC-0", "INC-2"])
        }
        #expect(rule.window(all, containing: "INC-9") == nil)
    }
}

@Suite struct ProblemRuleTests {
    func row(_ number: String, customer: String = "acme", kind: TicketKind = .incident) -> TicketRow {
        var t = ticket(kind)
        t.trackingNumber = number
        t.customerId = customer
        return TicketRow(ticket: t, everCritical: false, status: "classified")
    }

    // R-PRB-2: a POC logs a problem; R-PRB-3: staff record, only incidents of that customer are linked.
    @Test func whoMayOpenRecordAndLink() throws {
        let acme = try customer()
        #expect(ProblemRules.refusal(openedBy: "ana@acme.example", customer: acme) == nil)
        #expect(ProblemRules.refusal(openedBy: "cio@acme.example", customer: acme)?.codes == [ErrorCode.notAContact])
        let open = Problem(problemId: "PRB-000001", customerId: "acme", source: .customer, status: .open, summary: "s", openedBy: "ana@acme.example",
                           openedAt: Date(), incidents: [])
        #expect(ProblemRules.refusal(updating: open, by: "sam@vendor.example", customer: acme) == nil)
        #expect(ProblemRules.refusal(updating: open, by: "ana@acme.example", customer: acme)?.codes == [ErrorCode.notSupportStaff])
        var resolved = open
        resolved.status = .resolved
        #expect(ProblemRules.refusal(updating: resolved, by: "sam@vendor.example", customer: acme)?.codes == [ErrorCode.alreadyResolved])
        let tickets = ["INC-1": row("INC-1"), "INC-2": row("INC-2", customer: "globex"), "SR-3": row("SR-3", kind: .serviceRequest)]
        let refusal = ProblemRules.refusal(linking: tickets, numbers: ["INC-1", "INC-2", "SR-3", "INC-4"], customerId: "acme", field: "incidents")
        #expect(refusal?.errors.map(\.code) == [ErrorCode.otherCustomer, ErrorCode.notAnIncident, ErrorCode.unknownTicket])
        #expect(refusal?.errors.map(\.field) == ["incidents[1]", "incidents[2]", "incidents[3]"])
    }

    @Test func updateNeedsSomethingToRecord() {
        #expect(throws: CommandRejection.self) { try UpdateProblem.parse(["problemId": "PRB-000001", "by": "sam@vendor.example"]) }
        let u = try? UpdateProblem.parse(["problemId": "PRB-000001", "by": "sam@vendor.example", "cause": "disk full", "resolution": "bigger disk"])
        #expect(u?.recorded.map(\.0) == [.cause, .resolution])
    }
}
