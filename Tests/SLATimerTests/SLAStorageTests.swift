import CSSCalendar
import CSSModel
import Foundation
@testable import SLATimerService
import Testing

@Suite("SLA clock storage")
struct SLAStorageTests {
    // R-SLA-4, R-SLA-6: what is stored (pauses, stops, thresholds sent, events published) reads back unchanged.
    @Test("A clock with pauses, a reopen, thresholds sent and events published reads back as it was written")
    func clockRoundTrip() throws {
        let f = Fixture()
        let received = "2026-03-10T13:00:00Z"
        let log = [Fixture.classified(.p1, received), Fixture.action(.respond, "2026-03-10T13:10:00Z"),
                   Fixture.action(.awaitCustomer, "2026-03-10T13:20:00Z"), Fixture.action(.customerReplied, "2026-03-10T13:40:00Z"),
                   Fixture.action(.restore, "2026-03-10T15:00:00Z"), Fixture.action(.reopen, "2026-03-10T16:00:00Z"),
                   Fixture.action(.awaitCustomer, "2026-03-10T16:30:00Z")]
        var (clock, _) = try f.clock(received, log)
        _ = try clock.fire(.restoration, now: Fixture.s("2026-03-10T20:00:00Z"), f.env)
        let back = try TicketClock(stored: JSONValue.parse(clock.stored.jsonText))
        #expect(back == clock)
        #expect(back.targets[1].pausedSince != nil)
        #expect(!back.emitted.isEmpty)
        let facts = try JSONValue.parse(JSONValue.array(log.map(\.stored)).jsonText).arrayValue!.map(SLAInput.init(stored:))
        #expect(facts == log)
        #expect(throws: StoredValueError.self) { try TicketClock(stored: ["trackingNumber": "INC-1"]) }
    }
}
