import CSSCalendar
import ChangeManagementService
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import Testing

/// Change management with the services around it: the SLA timer that consumes its exclusions
/// (R-SLA-5), and the durable timer of R-CHG-7.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ChangeAcrossServicesTests {
    /// R-SLA-5 across the whole pipeline (intake → classification → sla, with escalation and change
    /// running): the implementation window of a change acme requested does not count toward the
    /// restoration of acme's open ticket; its due time moves by exactly the business seconds of the
    /// window in acme's business calendar (Toronto, Ontario holidays).
    @Test func implementationWindowMovesRestorationByTheBusinessOverlap() async throws {
        let classification = ServiceSpec.classification(env: ["CSS_CLOUD_PRODUCTS": "OT Cloud,Extended ECM", "CSS_THIRD_PARTY_PRODUCTS": "SAP,Microsoft Teams"])
        try await changeSystem([classification, .sla(), .escalation()]) { system in
            try await system.onboardForChanges()
            try await system.setTemplate()
            let number = try await system.submit(["impact": "minor"]) // a P3 production incident: 48 business hours to restore
            #expect(await eventually { system.client.events(ofType: EventType.slaStarted).contains { $0.subject == number } })
            let started = try #require(system.client.events(ofType: EventType.slaStarted).first { $0.subject == number })
            #expect(started.data["priority"] == "P3")
            let restoration = try #require(started.data["targets"]?.arrayValue?.first { $0["target"] == "restoration" })
            let oldDue = try #require(restoration["dueAt"]?.stringValue.flatMap(RFC3339.parse))

            let id = try await system.requestChange("standard")
            try await system.accept(CommandName.changeAgree, id, by: cio)
            // Four days of Production window: it always holds business hours, and ends before the old due time.
            try await system.throughTest(id, production: window(days: 0.002, hours: 96))
            #expect(try await system.accept(CommandName.changeImplement, id) == "implementing")
            let exclusion = try #require(try await system.awaitChangeEvents(EventType.slaExclusionAdded, id).first)
            #expect(exclusion.source == "/css/change" && exclusion.subject == "acme")
            #expect(exclusion.data["exclusionId"]?.stringValue == "\(id)-implementation")
            let start = try #require(exclusion.data["start"]?.stringValue.flatMap(RFC3339.parse))
            let end = try #require(exclusion.data["end"]?.stringValue.flatMap(RFC3339.parse))

            let calendar = try CustomerCalendars.build(profile: ["timeZone": "America/Toronto", "supportRegion": "CA-ON"]).business
            let s = Int64(start.timeIntervalSince1970), e = Int64(end.timeIntervalSince1970), due = Int64(oldDue.timeIntervalSince1970)
            #expect(e <= due, "the window must end before the old due time for the expectation below")
            let overlap = try calendar.businessSeconds(from: s, to: e)
            #expect(overlap > 0)
            let expected = Date(timeIntervalSince1970: TimeInterval(try calendar.adding(businessSeconds: overlap, to: due)))

            func rescheduled() -> CloudEvent? {
                system.client.events(ofType: EventType.slaRescheduled).first { $0.subject == number && $0.data["reason"] == "excluded" }
            }
            #expect(await eventually { rescheduled() != nil }, "the SLA timer never applied the exclusion")
            let moved = try #require(rescheduled())
            let newDue = moved.data["targets"]?.arrayValue?.first { $0["target"] == "restoration" }?["dueAt"]?.stringValue.flatMap(RFC3339.parse)
            #expect(newDue == expected, "restoration due \(newDue.map(RFC3339.format) ?? "nil"), expected \(RFC3339.format(expected)) (old \(RFC3339.format(oldDue)), overlap \(overlap) s)")
            // ticket.get (intake's read model) shows the moved due time too.
            #expect(await eventually {
                let ticket = try? await system.ticket(number)
                let target = ticket?["slaTargets"]?.arrayValue?.first { $0["target"] == "restoration" }
                return target?["dueAt"]?.stringValue.flatMap(RFC3339.parse) == expected
            })
            // The response target is not moved by exclusions (R-SLA-5 is about restoration).
            #expect(moved.data["targets"]?.arrayValue?.contains { $0["target"] == "response" && $0["dueAt"] != restoration["dueAt"] } ?? true)
        }
    }

    /// R-CHG-7 with the shared durable timers: onboarding arms a reminder a year after the customer
    /// arrived; a Service Update (a change that installed a patch) re-arms it a year after the update;
    /// when it falls due, `customer.service_update.overdue` is published once.
    @Test func serviceUpdateOverdueAYearAfterTheLastPatch() async throws {
        try await changeSystem { system in
            try await system.onboardForChanges()
            func timer() async throws -> Date? {
                try await system.db.withSession { s in try s.query("SELECT due_at FROM change.timers WHERE key = 'overdue:acme'").first?.date(0) }
            }
            let firstSeen = try await system.db.withSession { s in try s.query("SELECT first_seen FROM change.customers WHERE customer_id = 'acme'")[0].date(0) }
            let firstDue = try #require(try await timer())
            #expect(Int64(firstDue.timeIntervalSince1970) == ServiceUpdates.overdueSince(Int64(firstSeen.timeIntervalSince1970.rounded(.down))))

            try await system.setTemplate()
            let id = try await system.requestChange("standard")
            try await system.accept(CommandName.changeAgree, id, by: cio)
            try await system.throughTest(id, production: window(days: 0.01))
            try await system.accept(CommandName.changeImplement, id)
            let done = try await system.step(CommandName.changeComplete, id, [
                "outcome": "implemented", "installed": [["component": "document-store-db", "kind": "patch", "version": "16.2.1"]]])
            let endedAt = try #require(done.result?["implementationEndedAt"]?.stringValue.flatMap(RFC3339.parse))
            let updateAt = try await system.db.withSession { s in try s.query("SELECT last_update_at FROM change.customers WHERE customer_id = 'acme'")[0].date(0) }
            #expect(abs(updateAt.timeIntervalSince(endedAt)) < 1)
            let armed = try #require(try await timer())
            #expect(Int64(armed.timeIntervalSince1970) == ServiceUpdates.overdueSince(Int64(updateAt.timeIntervalSince1970.rounded(.down))))

            // A year passes (the service's clock is the real one): the update is moved a year back and its timer made due.
            let lastUpdate = Date(timeIntervalSince1970: TimeInterval(Int64(updateAt.timeIntervalSince1970) - (ServiceUpdates.overdueSince(Int64(updateAt.timeIntervalSince1970)) - Int64(updateAt.timeIntervalSince1970))))
            try await system.db.withSession { s in
                _ = try s.execute("UPDATE change.customers SET last_update_at = $1 WHERE customer_id = 'acme'", [.date(lastUpdate)])
                _ = try s.execute("UPDATE change.timers SET due_at = now() WHERE key = 'overdue:acme'")
                _ = try s.execute("SELECT pg_notify('change_timers', '')")
            }
            #expect(await eventually { !system.client.events(ofType: EventType.serviceUpdateOverdue).isEmpty })
            let overdue = try #require(system.client.events(ofType: EventType.serviceUpdateOverdue).first)
            #expect(overdue.subject == "acme" && overdue.source == "/css/change")
            #expect(overdue.data["lastUpdateAt"]?.stringValue == RFC3339.format(lastUpdate))
            let since = Date(timeIntervalSince1970: TimeInterval(ServiceUpdates.overdueSince(Int64(lastUpdate.timeIntervalSince1970.rounded(.down)))))
            #expect(overdue.data["overdueSince"]?.stringValue == RFC3339.format(since))
            #expect(overdue.id == "change:overdue:acme:\(RFC3339.format(lastUpdate))")
            try await Task.sleep(for: .seconds(1))
            #expect(system.client.events(ofType: EventType.serviceUpdateOverdue).count == 1)
            #expect(try await timer() == nil)
        }
    }
}
