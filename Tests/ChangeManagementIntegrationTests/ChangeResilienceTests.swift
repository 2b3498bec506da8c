import CSSAMQP
import CSSModel
import CSSPostgres
import CSSRuntime
import CSSTestSupport
import Foundation
import Testing

/// Change management under the delivery guarantees of the contract: commands twice, replayed and
/// reordered; other services' facts out of order; a crash mid-flow; two processes racing.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ChangeResilienceTests {
    // Commands are idempotent by message_id: the same command twice (one after the other, or back to back)
    // gets the identical reply and has one effect, a refusal included; the id reused for another body is refused.
    @Test("idempotency: the same message_id twice gets the identical reply and one event")
    func sameMessageIdTwiceHasOneEffect() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            let body = SystemHarness.changeRequest("standard")
            let requestID = UUID().uuidString
            let first = try await h.client.send(CommandName.changeRequest, body, messageID: requestID)
            let second = try await h.client.send(CommandName.changeRequest, body, messageID: requestID)
            let id = try #require(first.result?["changeId"]?.stringValue)
            #expect(second == first)
            #expect(try await h.count("SELECT count(*) FROM change.changes") == 1)

            // Back to back, before either is answered.
            let agreeID = UUID().uuidString
            let agree: JSONValue = ["changeId": .string(id), "by": .string(cio)]
            let (a, b) = try await h.sendTwice(CommandName.changeAgree, agree, messageID: agreeID)
            #expect(a.result?["state"] == "approved" && a == b, "\(a) / \(b)")
            // A third copy much later: still the stored reply, not the change as it is now.
            try await h.accept(CommandName.changeSchedule, id, h.testFields(window(days: 1)))
            let late = try await h.client.send(CommandName.changeAgree, agree, messageID: agreeID)
            #expect(late == a)
            #expect(try await h.change(id)?["state"] == "scheduled_test")

            // A refusal is answered the same way every time, and changes nothing.
            let strangerID = UUID().uuidString
            let stranger: JSONValue = ["changeId": .string(id), "environment": "test", "start": window(days: 2)["start"]!,
                                       "end": window(days: 2)["end"]!, "maintenance": "window", "by": .string(staff)]
            let (r1, r2) = try await h.sendTwice(CommandName.changeSchedule, stranger, messageID: strangerID)
            #expect(r1.errors.map(\.code) == [ErrorCode.invalidField] && r1 == r2, "\(r1) / \(r2)")
            // The same message_id with another body or another command: duplicate_message_id, no effect.
            let other = try await h.client.send(CommandName.changeAgree, ["changeId": .string(id), "by": "CIO@acme.example "], messageID: agreeID)
            #expect(other.errors.map(\.code) == ["duplicate_message_id"], "\(other)")
            let otherCommand = try await h.client.send(CommandName.changeDeploy, ["changeId": .string(id), "by": .string(staff)], messageID: agreeID)
            #expect(otherCommand.errors.map(\.code) == ["duplicate_message_id"], "\(otherCommand)")
            #expect(try await h.change(id)?["state"] == "scheduled_test")

            try await h.expectQuietEvents(id, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled])
            #expect(h.client.events(ofType: EventType.changeRequested).count == 1)
        }
    }

    // R-CHG-3 and the lifecycle's "never backwards": replayed and reordered commands with new message ids whose
    // stage the change passed are answered ok with the change as it is and emit nothing; commands ahead of
    // the stage are refused illegal_transition.
    @Test("R-CHG-3: replayed and reordered commands never move a change backwards")
    func replayedAndReorderedCommandsNeverMoveAChangeBackwards() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            let id = try await h.requestChange("standard")
            // Reordered: deploy and verify before the Test schedule are refused; in order they pass.
            #expect(try await h.accept(CommandName.changeAgree, id, by: cio) == "approved")
            try await h.expectRefusedAs(CommandName.changeDeploy, id, [:], code: ErrorCode.illegalTransition, field: "changeId")
            try await h.expectRefusedAs(CommandName.changeVerify, id, ["accepted": true], by: cio, code: ErrorCode.illegalTransition, field: "changeId")
            try await h.throughTest(id)
            let scheduled = try #require(try await h.change(id))
            #expect(scheduled["state"] == "scheduled_production")

            // Earlier steps replayed in reverse order, back to back (new message ids): all ok as it is, nothing moves.
            let replay: [(String, [String: JSONValue], String)] = [
                (CommandName.changeVerify, ["accepted": false, "notes": "late copy"], cio), (CommandName.changeDeploy, [:], staff),
                (CommandName.changeSchedule, h.testFields(window(days: 5)), staff), (CommandName.changeVote, ["approve": false, "reason": "late"], "x@vendor.example"),
                (CommandName.changeAssess, ["risk": "high", "plan": "late"], staff), (CommandName.changeAgree, [:], cio),
            ]
            let replies = try await h.sendBackToBack(replay.map { (command, fields, by) in (command, h.body(id, fields, by: by)) })
            for (reply, (command, _, _)) in zip(replies, replay) {
                #expect(reply.result == scheduled, "\(command) replayed at scheduled_production: \(reply)")
            }
            // Ahead of the stage: complete and close before the implementation.
            try await h.expectRefusedAs(CommandName.changeComplete, id, ["outcome": "implemented", "installed": [
                ["component": "document-store-db", "kind": "patch", "version": "16.2"]]], code: ErrorCode.illegalTransition, field: "changeId")
            try await h.expectRefusedAs(CommandName.changeClose, id, [:], code: ErrorCode.illegalTransition, field: "changeId")

            #expect(try await h.accept(CommandName.changeImplement, id) == "implementing")
            let implementing = try #require(try await h.change(id))
            // After implement: agree, schedule (Test and Production), deploy, verify and implement again are ok as it is.
            for (command, fields, by) in [(CommandName.changeAgree, [:], cio), (CommandName.changeSchedule, h.testFields(window(days: 2)), staff),
                                          (CommandName.changeSchedule, h.productionFields(window(days: 15)), staff), (CommandName.changeDeploy, [:], staff),
                                          (CommandName.changeVerify, ["accepted": true], cio), (CommandName.changeImplement, [:], staff)]
                as [(String, [String: JSONValue], String)] {
                let reply = try await h.step(command, id, fields, by: by)
                #expect(reply.result == implementing, "\(command) replayed while implementing: \(reply)")
            }
            try await h.expectRefusedAs(CommandName.changeClose, id, [:], code: ErrorCode.illegalTransition, field: "changeId")
            try await h.expectRefusedAs(CommandName.changeCancel, id, ["reason": "late"], code: ErrorCode.illegalTransition, field: "changeId")
            #expect(try await h.accept(CommandName.changeComplete, id, ["outcome": "implemented", "installed": [
                ["component": "document-store-db", "kind": "patch", "version": "16.2"]]]) == "implemented")
            let implemented = try #require(try await h.change(id))
            let again = try await h.step(CommandName.changeComplete, id, ["outcome": "implemented", "installed": [
                ["component": "document-store-db", "kind": "patch", "version": "99.9"]]])
            #expect(again.result == implemented, "a second complete: \(again)")
            #expect(try await h.accept(CommandName.changeClose, id) == "closed")
            let closed = try #require(try await h.change(id))
            #expect(try await h.step(CommandName.changeClose, id).result == closed)
            // An ended change takes no further command.
            try await h.expectRefusedAs(CommandName.changeAgree, id, [:], by: cio, code: ErrorCode.illegalTransition, field: "changeId")
            try await h.expectRefusedAs(CommandName.changeCancel, id, ["reason": "late"], code: ErrorCode.illegalTransition, field: "changeId")
            try await h.expectRefusedAs(CommandName.changeComplete, id, ["outcome": "implemented", "installed": [
                ["component": "document-store-db", "kind": "patch", "version": "16.2"]]], code: ErrorCode.illegalTransition, field: "changeId")

            #expect(closed["history"]?.arrayValue?.map { $0["action"]?.stringValue ?? "" } ==
                    ["agree", "schedule", "deploy", "verify", "schedule", "implement", "complete", "close"])
            #expect(closed["test"]?["start"] == scheduled["test"]?["start"])
            #expect(closed["installed"]?.arrayValue?.first?["version"] == "16.2")
            let directory = try await h.client.send(CommandName.changeDirectoryGet, ["customerId": "acme"]).result
            #expect(directory?["components"]?.arrayValue?.map { $0["version"]?.stringValue ?? "" } == ["16.2"])
            try await h.expectQuietEvents(id, [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeScheduled,
                                               EventType.changeDeployed, EventType.changeVerified, EventType.changeScheduled, EventType.changeImplementing,
                                               EventType.slaExclusionAdded, EventType.changeImplemented, EventType.changeClosed])
        }
    }

    // R-CHG-1 with intake's and classification's facts out of order: a restore that arrives before the
    // ticket's ticket.classified (P1) keeps the incident unusable; a late, older ticket.transitioned does not
    // undo the newer one; a newer reopen makes it usable again; an older reclassification does not lower it.
    @Test("R-CHG-1: incident facts out of order decide which Emergency changes are accepted")
    func incidentFactsOutOfOrder() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            let intake = IntakeFacts(), classification = ClassificationFacts()
            let number = "INC-900001"
            let received = Date().addingTimeInterval(-600)
            let t1 = Date().addingTimeInterval(-300), t2 = Date().addingTimeInterval(-200), t3 = Date().addingTimeInterval(-100)
            // Restored at T2, seen before anything else about the ticket: not known as a production incident.
            try await h.client.publish(event: intake.transitioned(number, "restore", status: "restored", at: t2))
            #expect(try await eventually {
                try await h.count("SELECT count(*) FROM change.incidents WHERE tracking_number = $1 AND status = 'restored' AND kind IS NULL", [.string(number)]) == 1
            }, "the early ticket.transitioned was not kept")
            try await h.expectRequestRefusal(["incident": .string(number)], code: ErrorCode.unknownIncident, field: "incident")
            // Its classification (P1, production incident) arrives late: the restore is newer, so still not open.
            try await h.client.publish(event: classification.classified(number, priority: "P1", receivedAt: received, at: received.addingTimeInterval(5)))
            try await h.waitForIncident(number, "kind = 'incident' AND environment = 'production' AND priority = 'P1' AND status = 'restored'")
            try await h.expectRequestRefusal(["incident": .string(number)], code: ErrorCode.unknownIncident, field: "incident")
            // A late, older respond (T1) arrives after the restore: it must not reopen the incident.
            try await h.client.publish(event: intake.transitioned(number, "respond", status: "responded", at: t1))
            // A marker fact behind it on the same queue: once it is stored, the late one was handled.
            try await h.client.publish(event: classification.classified("INC-900099", priority: "P4", receivedAt: Date()))
            try await h.waitForIncident("INC-900099", "kind = 'incident'")
            try await h.waitForIncident(number, "status = 'restored'")
            try await h.expectRequestRefusal(["incident": .string(number)], code: ErrorCode.unknownIncident, field: "incident")
            // A newer reopen (T3) opens it again.
            try await h.client.publish(event: intake.transitioned(number, "reopen", status: "in_progress", at: t3))
            try await h.waitForIncident(number, "status = 'in_progress'")
            let accepted = try await h.requestChange("emergency", ["incident": .string(number)])
            #expect(try await h.change(accepted)?["incident"] == .string(number))
            // An older reclassification to P3 after the newer classification to P1 does not lower it.
            try await h.client.publish(event: classification.reclassified(number, from: "P1", to: "P3", at: received))
            try await h.client.publish(event: classification.classified("INC-900098", priority: "P4", receivedAt: Date()))
            try await h.waitForIncident("INC-900098", "kind = 'incident'")
            try await h.waitForIncident(number, "priority = 'P1'")
            #expect(try await h.requestChange("emergency", ["incident": .string(number)]).hasPrefix("CHG-"))
            // A newer downgrade to P3 (as classification does on restoration) makes it unusable.
            try await h.client.publish(event: classification.reclassified(number, from: "P1", to: "P3", at: Date()))
            try await h.waitForIncident(number, "priority = 'P3'")
            try await h.expectRequestRefusal(["incident": .string(number)], code: ErrorCode.unknownIncident, field: "incident")
            #expect(h.client.events(ofType: EventType.changeRequested).count == 2)

            // Facts it cannot apply are dead-lettered with the reason, and the queue goes on.
            try await h.client.publish(event: intake.transitioned(number, "teleport", status: "teleported", at: Date()))
            var anonymous = classification.classified("INC-900097", priority: "P4", receivedAt: Date())
            anonymous.subject = nil
            var data = anonymous.data.objectValue!
            data["trackingNumber"] = nil
            anonymous.data = .object(data)
            try await h.client.publish(event: anonymous)
            try await h.client.publish(event: classification.classified("INC-900096", priority: "P4", receivedAt: Date()))
            try await h.waitForIncident("INC-900096", "kind = 'incident'")
            #expect(await eventually { h.client.deadLetters.count >= 2 })
            let reasons = h.client.deadLetters.compactMap { $0.properties.headers["x-css-error"] }
            for field in ["data.status", "data.trackingNumber"] {
                #expect(reasons.contains { $0.contains(field) }, "no dead letter names \(field): \(reasons)")
            }
            try await h.waitForIncident(number, "status = 'in_progress' AND priority = 'P3'")
        }
    }

    // kill -9 of the change process while a burst of lifecycle commands of 20 changes is in flight (and the
    // rest published while it is down); restarted, every change completes its flow, with every step's event
    // announced exactly once (one CloudEvent id per fact) and the final state right. A step re-sent with the
    // same message_id after the crash gets the same reply.
    @Test("kill -9 mid-flow: after a restart every change completes, each event exactly once")
    func killMinusNineMidFlowCompletesEveryFlowOnce() async throws {
        try await changeSystem { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            let count = 20
            var ids: [String] = []
            for _ in 0..<count { ids.append(try await h.requestChange("standard")) }
            // Every change: its own Test and Production windows (2 hours apart) so none conflicts with another.
            func steps(_ i: Int) -> [(String, JSONValue)] {
                let id = ids[i]
                let test = window(days: 1 + Double(i) / 12), production = window(days: 14 + Double(i) / 12)
                return [
                    (CommandName.changeAgree, h.body(id, [:], by: cio)),
                    (CommandName.changeSchedule, h.body(id, h.testFields(test))),
                    (CommandName.changeDeploy, h.body(id, [:])),
                    (CommandName.changeVerify, h.body(id, ["accepted": true], by: cio)),
                    (CommandName.changeSchedule, h.body(id, h.productionFields(production))),
                    (CommandName.changeImplement, h.body(id, [:])),
                    (CommandName.changeComplete, h.body(id, ["outcome": "implemented", "installed": [
                        ["component": .string("component-\(i)"), "kind": "patch", "version": "2.0"]]])),
                    (CommandName.changeClose, h.body(id, [:])),
                ]
            }
            let plan = (0..<count).map(steps)
            var sent: [(command: String, body: JSONValue, messageID: String, correlationID: String)] = []
            func publish(wave: Int) async throws {
                for i in 0..<count {
                    let (command, body) = plan[i][wave]
                    let message = (command: command, body: body, messageID: UUID().uuidString, correlationID: UUID().uuidString)
                    try await h.client.publish(command, body: body.encoded(), messageID: message.messageID, correlationID: message.correlationID,
                                               replyTo: h.client.replyQueue)
                    sent.append(message)
                }
            }
            // The first four steps of every change, back to back; kill -9 as soon as the first Test deployment is announced.
            for wave in 0..<4 { try await publish(wave: wave) }
            #expect(await eventually(timeout: .seconds(60), interval: .milliseconds(2)) { !h.client.events(ofType: EventType.changeDeployed).isEmpty })
            let victim = h.processes(of: "change")[0]
            victim.signal(SIGKILL)
            #expect(await victim.waitForExit(timeout: .seconds(10)) != nil)
            // Mid-flow: some change reached Test, none is past verified_test (the rest is not even published yet).
            let progressed = try await h.count("SELECT count(*) FROM change.changes WHERE state <> 'approved' AND state <> 'requested'")
            let verifiedAtCrash = try await h.count("SELECT count(*) FROM change.changes WHERE state = 'verified_test'")
            #expect(progressed > 0)
            #expect(try await h.count("SELECT count(*) FROM change.changes WHERE state IN ('scheduled_production', 'implementing', 'implemented', 'closed')") == 0)
            print("kill -9 landed with \(progressed) of \(count) changes past approved, \(verifiedAtCrash) verified on Test")
            // The rest of every flow is published while the service is down.
            for wave in 4..<8 { try await publish(wave: wave) }
            let restarted = try ServiceProcess(name: "change", amqp: h.amqp, database: h.database)
            try restarted.start()
            defer { Task { await restarted.stop() } }

            var replies: [Reply] = []
            for message in sent {
                var reply = try? await h.client.reply(correlationID: message.correlationID, timeout: .seconds(60))
                if reply == nil { // lost with the crash: the integrator retries with the same message_id
                    reply = try await h.client.send(message.command, message.body, messageID: message.messageID, timeout: .seconds(60))
                }
                replies.append(reply!)
            }
            let refused = zip(sent, replies).filter { !$0.1.isOK }.map { "\($0.0.command) \($0.0.body["changeId"]?.stringValue ?? ""): \($0.1)" }
            #expect(refused.isEmpty, "refused after the crash: \(refused)")
            // A step re-sent with its message_id now gets the reply it got the first time.
            let agreeOfFirst = try #require(sent.first)
            #expect(try await h.client.send(agreeOfFirst.command, agreeOfFirst.body, messageID: agreeOfFirst.messageID) == replies[0])

            let once = [EventType.changeRequested, EventType.changeAgreed, EventType.changeApproved, EventType.changeDeployed, EventType.changeVerified,
                        EventType.changeImplementing, EventType.slaExclusionAdded, EventType.changeImplemented, EventType.changeClosed]
            #expect(await eventually(timeout: .seconds(60)) {
                ids.allSatisfy { id in Set(h.changeEvents(id).filter { $0.type == EventType.changeClosed }.map(\.id)).count == 1 }
            }, "not every change was closed")
            try await Task.sleep(for: .seconds(1))
            for (i, id) in ids.enumerated() {
                var idsByType: [String: Set<String>] = [:]
                for e in h.changeEvents(id) { idsByType[e.type, default: []].insert(e.id) }
                for type in once { #expect(idsByType[type]?.count == 1, "\(id): \(type) × \(idsByType[type]?.count ?? 0)") }
                #expect(idsByType[EventType.changeScheduled]?.count == 2, "\(id): change.scheduled × \(idsByType[EventType.changeScheduled]?.count ?? 0)")
                #expect(idsByType.keys.count == once.count + 1, "\(id): unexpected events \(idsByType.keys.sorted())")
                let change = try #require(try await h.change(id))
                #expect(change["state"] == "closed")
                #expect(change["history"]?.arrayValue?.map { $0["action"]?.stringValue ?? "" } ==
                        ["agree", "schedule", "deploy", "verify", "schedule", "implement", "complete", "close"], "\(id)")
                #expect(change["installed"]?.arrayValue?.first?["component"] == .string("component-\(i)"))
            }
            let directory = try await h.client.send(CommandName.changeDirectoryGet, ["customerId": "acme"]).result
            #expect(directory?["components"]?.arrayValue?.count == count)
            #expect(try await eventually { try await h.count("SELECT count(*) FROM change.outbox") == 0 })
            await restarted.stop()
        }
    }

    // R-CHG-5 with two change processes: Production schedules of two changes of one customer with overlapping
    // windows, sent at once, are checked one after the other: exactly one is accepted, the other refused
    // change_conflict naming it. Five rounds.
    @Test("R-CHG-5: two processes, overlapping schedules at once: exactly one accepted, the other change_conflict")
    func concurrentOverlappingSchedulesAcceptExactlyOne() async throws {
        try await SystemHarness.with([.intake(), .change(count: 2)]) { h in
            try await h.onboardForChanges()
            try await h.setTemplate()
            for round in 0..<5 {
                // Different components: the conflict is the customer's overlapping Production implementations.
                let a = try await h.requestChange("standard", ["components": .array([.string("a-\(round)")])])
                let b = try await h.requestChange("standard", ["components": .array([.string("b-\(round)")])])
                for id in [a, b] {
                    #expect(try await h.accept(CommandName.changeAgree, id, by: cio) == "approved")
                    try await h.accept(CommandName.changeSchedule, id, h.testFields(window(days: 1)))
                    try await h.accept(CommandName.changeDeploy, id)
                    #expect(try await h.accept(CommandName.changeVerify, id, ["accepted": true], by: cio) == "verified_test")
                }
                let wa = window(days: 20 + Double(round), hours: 2), wb = window(days: 20 + Double(round) + 1.0 / 24, hours: 2)
                let replies = try await h.sendBackToBack([(CommandName.changeSchedule, h.body(a, h.productionFields(wa))),
                                                          (CommandName.changeSchedule, h.body(b, h.productionFields(wb)))])
                let accepted = zip([a, b], replies).filter { $0.1.isOK }.map(\.0)
                let refusals = replies.flatMap(\.errors)
                #expect(accepted.count == 1, "round \(round): \(replies)")
                #expect(refusals.map { "\($0.code)@\($0.field ?? "null")" } == ["change_conflict@start"], "round \(round): \(replies)")
                if let winner = accepted.first {
                    #expect(refusals.first?.message.contains(winner) == true, "round \(round): the refusal does not name \(winner): \(refusals)")
                }
                #expect(try await h.count("SELECT count(*) FROM change.changes WHERE change_id = ANY($1::text[]) AND state = 'scheduled_production'",
                                          [PostgresArray.text([a, b])]) == 1)
            }
            // One Production change.scheduled per round.
            #expect(await eventually { h.client.events(ofType: EventType.changeScheduled).filter { $0.data["environment"] == "production" }.count >= 5 })
            try await Task.sleep(for: .milliseconds(500))
            #expect(Set(h.client.events(ofType: EventType.changeScheduled).filter { $0.data["environment"] == "production" }.map(\.id)).count == 5)
        }
    }

    // An upgrade in place: the broker still has css.change.events bound to ticket.received (as an earlier
    // release declared it), with one such event waiting. The change service removes that binding at start
    // and still applies the waiting event; a later ticket.received no longer reaches its queue.
    @Test("R-CHG-1: an upgraded broker stops routing ticket.received to change management; one already queued is applied")
    func retiredTicketReceivedBindingIsRemovedAtStart() async throws {
        try await SystemHarness.with([.intake()]) { h in
            let intake = IntakeFacts(), classification = ClassificationFacts()
            let earlier = Topology(exchanges: [.init(ExchangeName.events, type: "topic")], queues: [.init(ContractTopology.eventQueueName(service: "change"))],
                                   bindings: [.init(queue: ContractTopology.eventQueueName(service: "change"), exchange: ExchangeName.events,
                                                    routingKey: EventType.ticketReceived)])
            let old = AMQPPublisher(configuration: h.amqp, topology: earlier, name: "earlier-release", logger: h.logger)
            let waiting = intake.received("INC-700001", at: Date().addingTimeInterval(-60))
            #expect(try await old.publish(OutgoingMessage(exchange: ExchangeName.events, routingKey: waiting.type, body: waiting.json.encoded(),
                                                          properties: MessageProperties(contentType: CloudEvent.contentType, messageID: waiting.id))) == .delivered)
            await old.close()

            let change = try ServiceProcess(name: "change", amqp: h.amqp, database: h.database)
            try change.start()
            defer { Task { await change.stop() } }
            #expect(await eventually {
                (try? await h.client.send(CommandName.changeGet, ["changeId": "CHG-000000"], timeout: .seconds(2)))?.errors.first?.code == ErrorCode.unknownChange
            }, "the change service never answered")
            try await h.waitForIncident("INC-700001", "kind = 'incident' AND environment = 'production' AND status = 'new'")

            try await h.client.publish(event: intake.received("INC-700002", at: Date()))
            try await h.client.publish(event: classification.classified("INC-700003", priority: "P4", receivedAt: Date()))
            try await h.waitForIncident("INC-700003", "kind = 'incident'")
            #expect(try await h.count("SELECT count(*) FROM change.incidents WHERE tracking_number = 'INC-700002'") == 0,
                    "a ticket.received still reached css.change.events after the upgrade")
            // (intake dead-letters the markers' ticket.classified: it never saw those tickets)
            #expect(!h.client.deadLetters.contains { $0.properties.headers["x-css-original-routing-key"] == EventType.ticketReceived })
            await change.stop()
        }
    }

    // R-CHG-1 with two change processes: a new ticket's ticket.classified and ticket.transitioned (respond)
    // taken side by side by the two processes (classification and intake publish them moments apart). Neither
    // fact may be lost: every such ticket must end up an open P1 production incident, responded, that an
    // Emergency change may reference.
    @Test("R-CHG-1: two processes taking a ticket's classified and transitioned side by side lose neither fact")
    func incidentFactsTakenSideBySideAreAllKept() async throws {
        try await SystemHarness.with([.intake(), .change(count: 2)]) { h in
            try await h.onboardForChanges()
            // Both processes consume the event queue (the readiness probe is answered by one).
            #expect(await eventually {
                h.processes(of: "change").allSatisfy { $0.log.contains("amqp.queue=css.change.events [CSSAMQP] consuming") }
            }, "both change processes should consume css.change.events")
            let intake = IntakeFacts(), classification = ClassificationFacts()
            let numbers = (0..<40).map { "INC-8" + String(format: "%05d", $0) }
            let at = Date().addingTimeInterval(-60)
            for number in numbers {
                try await h.client.publish(event: classification.classified(number, priority: "P1", receivedAt: at, at: at.addingTimeInterval(1)))
                try await h.client.publish(event: intake.transitioned(number, "respond", status: "responded", at: at.addingTimeInterval(2)))
            }
            let complete = "kind = 'incident' AND environment = 'production' AND priority = 'P1' AND status = 'responded' AND customer_id = 'acme'"
            let kept = try await eventually(timeout: .seconds(30)) {
                try await h.count("SELECT count(*) FROM change.incidents WHERE tracking_number LIKE 'INC-8%' AND \(complete)") == numbers.count
            }
            let lost = kept ? [] : try await h.incidentRows("tracking_number LIKE 'INC-8%' AND NOT coalesce(\(complete), false)")
            #expect(kept, "facts lost when two processes took them side by side: \(lost)")
            // Over the wire: an Emergency change may reference every one of them.
            var refused: [String] = []
            for number in numbers {
                let reply = try await h.client.send(CommandName.changeRequest, SystemHarness.changeRequest("emergency", ["incident": .string(number)]))
                if !reply.isOK { refused.append("\(number): \(reply.errors.map(\.message))") }
            }
            #expect(refused.isEmpty, "Emergency changes refused for open P1 incidents: \(refused)")
        }
    }
}

// MARK: - Helpers of this file

private extension SystemHarness {
    func change(_ id: String) async throws -> JSONValue? {
        try await client.send(CommandName.changeGet, ["changeId": .string(id)]).result
    }

    func body(_ id: String, _ fields: [String: JSONValue], by: String = staff) -> JSONValue {
        var body: JSONObject = ["changeId": .string(id), "by": .string(by)]
        for (k, v) in fields { body[k] = v }
        return .object(body)
    }

    func testFields(_ w: JSONValue) -> [String: JSONValue] {
        ["environment": "test", "start": w["start"]!, "end": w["end"]!]
    }

    func productionFields(_ w: JSONValue) -> [String: JSONValue] {
        ["environment": "production", "start": w["start"]!, "end": w["end"]!]
    }

    /// Publishes the same command twice with one message_id, then waits for both replies.
    func sendTwice(_ command: String, _ body: JSONValue, messageID: String) async throws -> (Reply, Reply) {
        let replies = try await sendBackToBack([(command, body), (command, body)], messageIDs: [messageID, messageID])
        return (replies[0], replies[1])
    }

    /// Publishes every command before waiting for any reply; the replies in the same order.
    func sendBackToBack(_ commands: [(String, JSONValue)], messageIDs: [String]? = nil) async throws -> [Reply] {
        var correlations: [String] = []
        for (i, (command, body)) in commands.enumerated() {
            let correlationID = UUID().uuidString
            try await client.publish(command, body: body.encoded(), messageID: messageIDs?[i] ?? UUID().uuidString, correlationID: correlationID,
                                     replyTo: client.replyQueue)
            correlations.append(correlationID)
        }
        var replies: [Reply] = []
        for c in correlations { replies.append(try await client.reply(correlationID: c)) }
        return replies
    }

    /// Refused with one error of `code` on `field`, and the change exactly as it was.
    func expectRefusedAs(_ command: String, _ id: String, _ fields: [String: JSONValue], by: String = staff, code: String, field: String,
                         sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = try await change(id)
        let reply = try await step(command, id, fields, by: by)
        #expect(reply.errors.map(\.code) == [code] && reply.errors.first?.field == field, "\(command) of \(id): \(reply)", sourceLocation: sourceLocation)
        #expect(try await change(id) == before, "the refused \(command) changed \(id)", sourceLocation: sourceLocation)
    }

    /// An Emergency change.request must be refused with exactly one error of `code` on `field`, storing nothing.
    func expectRequestRefusal(_ overrides: [String: JSONValue], code: String, field: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = try await count("SELECT count(*) FROM change.changes")
        let reply = try await client.send(CommandName.changeRequest, SystemHarness.changeRequest("emergency", overrides))
        #expect(reply.errors.map(\.code) == [code] && reply.errors.first?.field == field, "\(reply)", sourceLocation: sourceLocation)
        #expect(try await count("SELECT count(*) FROM change.changes") == before, sourceLocation: sourceLocation)
    }

    /// Waits until change management's facts about `number` satisfy `condition` (SQL over change.incidents).
    func waitForIncident(_ number: String, _ condition: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await eventually {
            try await count("SELECT count(*) FROM change.incidents WHERE tracking_number = $1 AND \(condition)", [.string(number)]) == 1
        }, "change management's facts of \(number) never showed \(condition)", sourceLocation: sourceLocation)
    }

    /// change.incidents rows matching `condition`, as text for a failure message.
    func incidentRows(_ condition: String) async throws -> [String] {
        let sql = """
            SELECT tracking_number || ': kind=' || coalesce(kind, 'NULL') || ' priority=' || coalesce(priority, 'NULL')
                || ' status=' || coalesce(status, 'NULL') FROM change.incidents WHERE \(condition) ORDER BY 1
            """
        return try await db.withSession { session in try session.query(sql).map { try $0.string(0) } }
    }

    /// The change's events, once quiet, deduplicated by CloudEvent id, are exactly `types` in order.
    func expectQuietEvents(_ id: String, _ types: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(await eventually { Set(changeEvents(id).map(\.id)).count >= types.count }, "events of \(id): \(changeEvents(id).map(\.type))",
                sourceLocation: sourceLocation)
        try await Task.sleep(for: .milliseconds(500))
        var seen = Set<String>()
        #expect(changeEvents(id).filter { seen.insert($0.id).inserted }.map(\.type) == types, "events of \(id)", sourceLocation: sourceLocation)
    }
}
