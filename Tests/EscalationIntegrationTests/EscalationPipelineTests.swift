import CSSAMQP
import CSSCalendar
import CSSModel
import CSSTestSupport
import Foundation
import Testing

/// Escalation through the real `intake`, `classification`, `sla` and `escalation` executables,
/// from `ticket.submit` on, with chain levels of seconds.
@Suite(.serialized, .timeLimit(.minutes(10))) struct EscalationPipelineTests {
    // R-ESC-1, R-ESC-5, R-ESC-6: a P1 incident pages the on-call engineer at once on oncall.<team>.p1 with
    // phoneRequired; the acknowledgement stops the chain (no level 2, although its timer was pending);
    // a second ack is harmless; an unknown id is a clear error.
    @Test func criticalIncidentPagesAtOnceAndAckStopsTheChain() async throws {
        try await pipeline { h in
            let set = try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"], ["role": "team_lead", "after": "PT3S", "contact": lee]],
                                              overrides: h.janeCovers())
            #expect(set.result?["revision"] == 1, "\(set)")
            _ = try await h.onboard(extra: ["slaPolicy": quietPolicy])
            let number = try await h.submit()
            let id = "ESC-\(number)-critical"
            let page = try #require(try await h.awaitPages(id).first)
            #expect(page.routingKey == "oncall.cloud-ops.p1")
            #expect(page.messageID == "\(id)/1/1")
            #expect(page.body["reason"] == "critical_incident")
            #expect(page.body["priority"] == "P1")
            #expect(page.body["trackingNumber"] == .string(number))
            #expect(page.body["customerId"] == "acme")
            #expect(page.body["level"] == 1)
            #expect(page.body["role"] == "engineer")
            #expect(page.body["recipient"]?["email"] == "jdoe@support.example")
            #expect(page.body["phoneRequired"] == true)
            #expect(page.body["acknowledge"]?["routingKey"] == "escalation.ack")
            #expect(page.body["acknowledge"]?["body"]?["escalationId"] == .string(id))
            // Published with the page, but it reaches this client through another queue: it may come a moment later.
            #expect(await eventually(timeout: .seconds(10)) { !h.escalationEvents(EventType.escalationSent, id).isEmpty })
            let sent = try #require(h.escalationEvents(EventType.escalationSent, id).first)
            #expect(sent.source == "/css/escalation")
            #expect(sent.data["level"] == 1 && sent.data["role"] == "engineer" && sent.data["reason"] == "critical_incident")

            let ack = try await h.ack(id)
            #expect(ack.result?["state"] == "acknowledged", "\(ack)")
            #expect(ack.result?["acknowledgedBy"] == "jdoe@support.example")
            // Level 2 was due 3 s after the page: nothing comes, whatever timer was pending.
            try await Task.sleep(for: .seconds(5))
            #expect(h.pages(id).count == 1, "paged after the ack: \(h.pages(id).map(\.body))")
            #expect(h.escalationEvents(EventType.escalationAcknowledged, id).count == 1)

            let again = try await h.ack(id, by: "rpatel@support.example")
            #expect(again.result?["state"] == "acknowledged")
            #expect(again.result?["acknowledgedBy"] == "jdoe@support.example") // the first ack stands
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.escalationEvents(EventType.escalationAcknowledged, id).count == 1)

            let unknown = try await h.ack("ESC-INC-999999-critical")
            #expect(unknown.errors.map(\.code) == [ErrorCode.unknownEscalation])
            #expect(unknown.errors.first?.field == "escalationId")
            let open = try await h.client.send(CommandName.escalationList, ["team": "cloud-ops", "state": "all"])
            let listed = try #require(open.result?["escalations"]?.arrayValue?.first { $0["escalationId"] == .string(id) })
            #expect(listed["state"] == "acknowledged")
            h.expectNoDuplicatePages()
        }
    }

    // R-ESC-2, R-ESC-6: no ack → the engineer is repeated a bounded number of times, the team lead level with
    // nobody to notify is skipped at once (reason recorded), the duty manager is paged at once, and nothing after.
    @Test func noAckEscalatesRepeatsBoundedAndSkipsAnEmptyLevel() async throws {
        try await pipeline { h in
            try await h.setSchedule(levels: [
                ["role": "engineer", "after": "PT0S", "repeat": ["every": "PT1S", "times": 3]],
                ["role": "team_lead", "after": "PT4S"],
                ["role": "duty_manager", "after": "PT30S", "contact": dana],
            ], overrides: h.janeCovers())
            _ = try await h.onboard(extra: ["slaPolicy": quietPolicy])
            let number = try await h.submit()
            let id = "ESC-\(number)-critical"
            let pages = try await h.awaitPages(id, count: 4, timeout: .seconds(20))
            try await Task.sleep(for: .seconds(3))
            let all = h.pages(id)
            #expect(all.map(\.messageID) == ["\(id)/1/1", "\(id)/1/2", "\(id)/1/3", "\(id)/3/1"])
            #expect(all.last?.body["role"] == "duty_manager")
            #expect(all.last?.body["recipient"]?["email"] == "duty@support.example")
            let skipped = try #require(h.escalationEvents(EventType.escalationSkipped, id).first)
            #expect(skipped.data["level"] == 2 && skipped.data["role"] == "team_lead" && skipped.data["reason"] == "no_contact")
            // Skipped at once: the duty manager's page follows the skip, not 30 s later.
            let sentTimes = h.escalationEvents(EventType.escalationSent, id).compactMap { $0.data["sentAt"]?.stringValue.flatMap(RFC3339.parse) }
            #expect(sentTimes.count == 4)
            if sentTimes.count == 4 {
                #expect(sentTimes[1].timeIntervalSince(sentTimes[0]) == 1 && sentTimes[2].timeIntervalSince(sentTimes[0]) == 2)
                #expect(sentTimes[3].timeIntervalSince(sentTimes[0]) == 4)
            }
            #expect(pages.count >= 4)
            h.expectNoDuplicatePages()
        }
    }

    // R-ESC-2, R-ESC-3: sla.warning and sla.breached page the owning team's on-call, one message per
    // (ticket, target, threshold, level); an SLA event delivered again changes nothing.
    @Test func warningAndBreachRouteToTheOwningTeamOnce() async throws {
        try await pipeline { h in
            try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"]], overrides: h.janeCovers())
            _ = try await h.onboard(extra: ["slaPolicy": ["P1": ["response": "PT4S", "restoration": "PT1H"], "warnAt": [0.5]]])
            let number = try await h.submit()
            let warningId = "ESC-\(number)-response-0.5"
            let breachId = "ESC-\(number)-response-breached"
            let warning = try #require(try await h.awaitPages(warningId).first)
            #expect(warning.routingKey == "oncall.cloud-ops.p1")
            #expect(warning.body["reason"] == "sla.warning" && warning.body["target"] == "response" && warning.body["threshold"] == 0.5)
            let slaWarning = try #require(h.client.events(ofType: EventType.slaWarning).first { $0.subject == number })
            #expect(warning.body["dueAt"] == slaWarning.data["dueAt"])
            let breach = try #require(try await h.awaitPages(breachId).first)
            #expect(breach.body["reason"] == "sla.breached" && breach.body["target"] == "response" && breach.body["threshold"] == .null)

            // The SLA service's events once more, as a redelivery or a replay would bring them.
            let slaBreach = try #require(h.client.events(ofType: EventType.slaBreached).first { $0.subject == number })
            try await h.client.publish(event: slaWarning)
            try await h.client.publish(event: slaBreach)
            var replay = slaBreach
            replay.id = UUID().uuidString // a new id for the same fact: the escalation id still dedupes it
            try await h.client.publish(event: replay)
            try await Task.sleep(for: .seconds(2))
            #expect(h.pages(warningId).count == 1 && h.pages(breachId).count == 1)
            #expect(h.escalationEvents(EventType.escalationSent, breachId).count == 1)
            h.expectNoDuplicatePages()
        }
    }

    // R-ESC-1: a P2 notification outside the customer's business hours is held to its next opening
    // (escalation.held), not sent at night; P1 pages regardless (the other tests, at any hour).
    @Test func lowerPriorityWaitsForBusinessHours() async throws {
        // A zone where it is outside business hours for the next minute, whenever the test runs.
        let zones = ["Pacific/Kiritimati", "Asia/Tokyo", "Asia/Kolkata", "Europe/London", "America/New_York", "America/Los_Angeles", "Pacific/Honolulu"]
        var chosen: (zone: String, calendar: BusinessCalendar)?
        let now = Int64(Date().timeIntervalSince1970)
        for zone in zones {
            let calendar = try CalendarSpec(kind: .business, timeZone: zone).build()
            if try !calendar.isBusinessTime(now), try !calendar.isBusinessTime(now + 60), try calendar.nextOpening(atOrAfter: now) ?? 0 > now + 120 {
                chosen = (zone, calendar)
                break
            }
        }
        let (zone, calendar) = try #require(chosen, "no zone is outside business hours now")
        try await pipeline { h in
            try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"]], overrides: h.janeCovers())
            // A region without statutory rules, with one far-off holiday of its own: only the hours and the weekend close it.
            _ = try await h.onboard(extra: ["timeZone": .string(zone), "supportRegion": "ZZ", "extraHolidays": ["2099-01-02"],
                                            "slaPolicy": ["P2": ["response": "PT2S", "restoration": "PT1H", "calendar": "24x7"], "warnAt": [0.5]]])
            let number = try await h.submit(["impact": "degraded"]) // a P2 production incident
            let id = "ESC-\(number)-response-breached"
            #expect(await eventually(timeout: .seconds(20)) { !h.escalationEvents(EventType.escalationHeld, id).isEmpty })
            let held = try #require(h.escalationEvents(EventType.escalationHeld, id).first)
            #expect(held.data["reason"] == "outside_business_hours")
            let until = try #require(held.data["until"]?.stringValue.flatMap(RFC3339.parse))
            let expected = try #require(try calendar.nextOpening(atOrAfter: Int64(held.time.timeIntervalSince1970.rounded(.down))))
            #expect(Int64(until.timeIntervalSince1970) == expected)
            try await Task.sleep(for: .seconds(1))
            #expect(h.pages(id).isEmpty, "paged outside business hours")
            #expect(h.client.pages.allSatisfy { $0.body["priority"] != "P2" })
        }
    }

    // R-ESC-6: a ticket restored ends its open escalations (escalation.resolved); the chain sends nothing more.
    @Test func restoredTicketEndsItsEscalations() async throws {
        try await pipeline { h in
            try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"], ["role": "team_lead", "after": "PT3S", "contact": lee]],
                                    overrides: h.janeCovers())
            _ = try await h.onboard(extra: ["slaPolicy": quietPolicy])
            let number = try await h.submit()
            let id = "ESC-\(number)-critical"
            try await h.awaitPages(id)
            try await h.transition(number, "respond")
            try await h.transition(number, "restore")
            #expect(await eventually(timeout: .seconds(10)) { !h.escalationEvents(EventType.escalationResolved, id).isEmpty })
            #expect(h.escalationEvents(EventType.escalationResolved, id).first?.data["cause"] == "restored")
            try await Task.sleep(for: .seconds(4))
            #expect(h.pages(id).count == 1, "paged after the ticket was restored")
            let late = try await h.ack(id)
            #expect(late.result?["state"] == "resolved")
        }
    }

    // R-ESC-4, R-CUS-5: the ticket's contact is marked unavailable while the ticket awaits the customer →
    // one message on customer.<id> to the primary POC and the success manager; customer_replied resolves it.
    @Test func unavailableContactEscalatesToTheCustomer() async throws {
        try await pipeline { h in
            try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"]], overrides: h.janeCovers())
            _ = try await h.onboard(extra: ["slaPolicy": quietPolicy, "successManager": sam])
            let number = try await h.submit(["contactEmail": "bo@acme.example"])
            try await h.transition(number, "respond")
            try await h.transition(number, "await_customer")
            let away = try await h.client.send(CommandName.contactAvailability, ["customerId": "acme", "email": "bo@acme.example", "available": false])
            #expect(away.result != nil, "\(away)")
            let id = "ESC-\(number)-contact-1"
            let page = try #require(try await h.awaitPages(id).first)
            #expect(page.routingKey == "customer.acme")
            #expect(page.body["reason"] == "contact_unavailable" && page.body["role"] == "primary_contact")
            #expect(page.body["recipient"]?["email"] == "ana@acme.example")
            #expect(page.body["recipients"]?.arrayValue?.compactMap { $0["email"]?.stringValue } == ["ana@acme.example", "sam@vendor.example"])
            try await h.transition(number, "customer_replied")
            #expect(await eventually(timeout: .seconds(10)) { h.escalationEvents(EventType.escalationResolved, id).first?.data["cause"] == "customer_replied" })
            h.expectNoDuplicatePages()
        }
    }

    // An escalation for a team with no schedule waits, and is paged once the schedule is set: nothing lost.
    // Bad schedules are refused with specific errors and change nothing.
    @Test func unscheduledTeamWaitsAndBadSchedulesAreRefused() async throws {
        try await pipeline { h in
            _ = try await h.onboard(extra: ["slaPolicy": quietPolicy])
            let number = try await h.submit()
            let id = "ESC-\(number)-critical"
            try await Task.sleep(for: .seconds(2))
            #expect(h.pages(id).isEmpty)

            let overlapping = try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"]], overrides: [
                ["member": jane, "start": "2026-03-01T00:00:00Z", "end": "2026-03-03T00:00:00Z"],
                ["member": raj, "start": "2026-03-02T00:00:00Z", "end": "2026-03-04T00:00:00Z"],
            ])
            #expect(overlapping.errors.map(\.code) == [ErrorCode.overlappingOverrides])
            #expect(overlapping.errors.first?.field == "overrides[1]")
            let unordered = try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"], ["role": "duty_manager", "after": "PT5M"],
                                                             ["role": "team_lead", "after": "PT5M"]])
            #expect(unordered.errors.map(\.field) == ["levels[2].role"])
            let empty = try await h.client.send(CommandName.oncallScheduleSet, [
                "team": "cloud-ops", "timeZone": "Mars/Olympus", "members": [], "handoffTime": "25:00", "rotationDays": 0,
                "start": "2026-01-01", "levels": []])
            #expect(Set(empty.errors.compactMap(\.field)) == ["timeZone", "members", "handoffTime", "rotationDays", "levels"])
            let unknown = try await h.client.send(CommandName.oncallGet, ["team": "cloud-ops"])
            #expect(unknown.errors.map(\.code) == [ErrorCode.unknownTeam]) // nothing was stored
            #expect(h.pages(id).isEmpty)

            try await h.setSchedule(levels: [["role": "engineer", "after": "PT0S"]], overrides: h.janeCovers())
            let page = try #require(try await h.awaitPages(id).first)
            #expect(page.body["recipient"]?["email"] == "jdoe@support.example")
            let who = try await h.client.send(CommandName.oncallGet, ["team": "cloud-ops", "handoffs": 2])
            #expect(who.result?["onCall"]?["email"] == "jdoe@support.example")
            #expect(who.result?["onCall"]?["source"] == "override")
            #expect(who.result?["handoffs"]?.arrayValue?.count == 2)
        }
    }

    // R-ESC-3: restart mid-chain (kill -9) and two escalation processes at once: every message of every chain
    // exactly once, none lost.
    @Test func restartMidChainAndTwoProcessesPageEachMessageOnce() async throws {
        try await pipeline(escalation: 2) { h in
            try await h.setSchedule(levels: [
                ["role": "engineer", "after": "PT0S", "repeat": ["every": "PT2S", "times": 2]],
                ["role": "team_lead", "after": "PT4S", "contact": lee],
            ], overrides: h.janeCovers())
            _ = try await h.onboard(extra: ["slaPolicy": quietPolicy])
            var numbers: [String] = []
            for _ in 0..<6 { numbers.append(try await h.submit()) }
            for n in numbers { try await h.awaitPages("ESC-\(n)-critical") }
            // Kill one process mid-chain, hard; the other carries on, and the killed one comes back.
            let victim = h.processes(of: "escalation")[0]
            victim.signal(SIGKILL)
            _ = await victim.waitForExit(timeout: .seconds(10))
            try victim.start()
            for n in numbers { try await h.awaitPages("ESC-\(n)-critical", count: 3, timeout: .seconds(30)) }
            try await Task.sleep(for: .seconds(2))
            for n in numbers {
                let id = "ESC-\(n)-critical"
                #expect(h.pages(id).compactMap(\.messageID).sorted() == ["\(id)/1/1", "\(id)/1/2", "\(id)/2/1"])
            }
            h.expectNoDuplicatePages()
        }
    }
}
