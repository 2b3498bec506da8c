import CSSAMQP
import CSSModel
import CSSPostgres
import CSSTestSupport
import Foundation
import Testing

/// Issue 6, items 1 and 3: a poison message never blocks a queue; memory is bounded by
/// what the runtime keeps, not by what arrives.
@Suite(.serialized, .timeLimit(.minutes(10))) struct PoisonInputTests {
    static func command(_ name: String, body: [UInt8], _ properties: MessageProperties) -> OutgoingMessage {
        OutgoingMessage(exchange: ExchangeName.commands, routingKey: name, body: body, properties: properties)
    }

    @Test func nulInABodyIsRefusedWithTheFieldAndStoresNothing() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            let messageID = UUID().uuidString
            let reply = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(["kind": "\u{0}"]), messageID: messageID)
            #expect(reply.errors.map(\.code) == [ErrorCode.invalidField])
            #expect(reply.errors.first?.field == "kind")
            #expect(reply.errors.first?.message.contains("NUL") == true)
            // In a key, deep inside: the path names it, escaped.
            let deep = try await h.client.send(CommandName.customerOnboard, ["customerId": "acme", "contacts": [["em\u{0}ail": "x"]]])
            #expect(deep.errors.first?.field == "contacts[0].em\\u0000ail")
            // The refusal was stored, so the same message id gets the same answer.
            let again = try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident(["kind": "\u{0}"]), messageID: messageID)
            #expect(again == reply)
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == 0)
            #expect(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).isOK)
        }
    }

    /// NUL or invalid UTF-8 in message_id, correlation_id, reply_to, content_type: answered
    /// when there is somewhere to answer, dead-lettered once, and the rest of the batch and
    /// the next command go through.
    @Test func hostilePropertiesAreDeadLetteredOnceAndNeverBlockTheQueue() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            let body = IntakeHarness.incident().encoded()
            let reply = h.client.replyQueue
            var poison: [(MessageProperties, answered: String?)] = []
            let c1 = UUID().uuidString, c2 = UUID().uuidString, c3 = UUID().uuidString, c4 = UUID().uuidString
            poison.append((MessageProperties(contentType: "application/json", messageID: "id-\u{0}-1", correlationID: c1, replyTo: reply), c1))
            poison.append((MessageProperties(contentType: "application/json", messageID: UUID().uuidString, correlationID: "c-\u{0}", replyTo: reply), nil))
            poison.append((MessageProperties(contentType: "application/json", messageID: UUID().uuidString, correlationID: c2, replyTo: "q\u{0}"), nil))
            poison.append((MessageProperties(contentType: "application/\u{0}json", messageID: UUID().uuidString, correlationID: c3, replyTo: reply), c3))
            var invalid = MessageProperties(contentType: "application/json", messageID: "placeholder", correlationID: c4, replyTo: reply)
            invalid.rawOverrides["message_id"] = [0x69, 0x64, 0xFF, 0xFE]
            poison.append((invalid, c4))
            // Two of each, interleaved with good commands, so both workers meet poison at once.
            var good: [String] = []
            for round in 0..<2 {
                for (i, p) in poison.enumerated() {
                    var props = p.0
                    if round == 1, let id = props.messageID, !id.contains("\u{0}"), props.rawOverrides.isEmpty { props.messageID = id + "-2" }
                    try await h.client.publish(Self.command(CommandName.ticketSubmit, body: body, props))
                    let corr = UUID().uuidString
                    good.append(corr)
                    try await h.client.publish(CommandName.ticketSubmit, body: IntakeHarness.incident(["summary": .string("good \(round) \(i)")]).encoded(),
                                               messageID: UUID().uuidString, correlationID: corr, replyTo: reply)
                }
            }
            for corr in good {
                #expect(try await h.client.reply(correlationID: corr, timeout: .seconds(30)).isOK)
            }
            for (p, answered) in poison {
                guard let answered else { continue }
                let r = try await h.client.reply(correlationID: answered, timeout: .seconds(30))
                #expect(!r.isOK)
                _ = p
            }
            let expectedDead = poison.count * 2
            #expect(await eventually { h.client.deadLetters.count >= expectedDead })
            try await Task.sleep(for: .milliseconds(500))
            #expect(h.client.deadLetters.count == expectedDead)
            let reasons = h.client.deadLetters.compactMap { $0.properties.headers["x-css-error"] }
            #expect(reasons.filter { $0.contains("NUL") }.count == 8)
            #expect(reasons.filter { $0.hasPrefix("invalid_utf8") }.count == 2)
            #expect(h.client.deadLetters.allSatisfy { $0.properties.headers["x-css-body-size"] == String(body.count) })
            #expect(try await h.count("SELECT count(*) FROM intake.tickets") == good.count)
            #expect(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).isOK)
            #expect(try await eventually { try await h.count("SELECT count(*) FROM intake.outbox") == 0 })
        }
    }

    /// Events that cannot be stored (NUL in id or data, year 0000) are dead-lettered; the
    /// event after them is applied.
    @Test func poisonEventsAreDeadLetteredAndTheNextOneIsApplied() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            let number = try #require(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).result?["trackingNumber"]?.stringValue)
            func event(id: String, time: String = "2026-03-02T08:00:00Z", data: JSONValue) -> OutgoingMessage {
                let json: JSONValue = ["specversion": "1.0", "id": .string(id), "type": .string(EventType.ticketClassified), "source": "/css/classification",
                                       "time": .string(time), "subject": .string(number), "data": data]
                return OutgoingMessage(exchange: ExchangeName.events, routingKey: EventType.ticketClassified, body: json.encoded(),
                                       properties: MessageProperties(contentType: CloudEvent.contentType, messageID: UUID().uuidString))
            }
            let data: JSONValue = ["trackingNumber": .string(number), "priority": "P2", "requestedPriority": nil, "requestClass": nil, "dispatch": "investigation"]
            try await h.client.publish(event(id: "e-\u{0}", data: data))
            try await h.client.publish(event(id: UUID().uuidString, data: ["trackingNumber": .string(number), "priority": "P2", "note": "a\u{0}b"]))
            try await h.client.publish(event(id: UUID().uuidString, time: "0000-01-01T00:00:00Z", data: data))
            try await h.client.publish(event(id: UUID().uuidString, data: data))
            let applied = try await eventually {
                try await h.client.send(CommandName.ticketGet, ["trackingNumber": .string(number)]).result?["priority"] == "P2"
            }
            #expect(applied)
            #expect(await eventually { h.client.deadLetters.count == 3 })
            let reasons = h.client.deadLetters.compactMap { $0.properties.headers["x-css-error"] }
            #expect(reasons.filter { $0.hasPrefix("invalid_field") }.count == 2)
            #expect(reasons.filter { $0.hasPrefix("malformed_event") }.count == 1)
        }
    }

    /// Four 100 MiB bodies: answered `too_large`, dead-lettered with their properties and
    /// the first 256 KiB, and intake's resident memory stays under 150 MiB.
    @Test func hundredMiBBodiesAreNotAccumulated() async throws {
        try await IntakeHarness.with { h in
            #expect(try await h.onboard().isOK)
            let pid = try #require(h.processes[0].pid)
            let before = try #require(residentMiB(pid))
            var huge = [UInt8](repeating: UInt8(ascii: " "), count: 100 * 1024 * 1024)
            huge[0] = UInt8(ascii: "{")
            var correlations: [String] = []
            for i in 0..<4 {
                let corr = UUID().uuidString
                correlations.append(corr)
                try await h.client.publish(Self.command(CommandName.ticketSubmit, body: huge, MessageProperties(
                    contentType: "application/json", messageID: "huge-\(i)", correlationID: corr, replyTo: h.client.replyQueue,
                    headers: ["x-origin": "load-test"])))
            }
            var peak = before
            for corr in correlations {
                let reply = try await h.client.reply(correlationID: corr, timeout: .seconds(120))
                #expect(reply.errors.map(\.code) == [ErrorCode.tooLarge])
                #expect(reply.errors.first?.message.contains("104857600") == true)
                peak = max(peak, residentMiB(pid) ?? 0)
            }
            #expect(try await h.client.send(CommandName.ticketSubmit, IntakeHarness.incident()).isOK)
            peak = max(peak, residentMiB(pid) ?? 0)
            #expect(peak < 150, "intake grew from \(before) MiB to \(peak) MiB")
            #expect(await eventually { h.client.deadLetters.count == 4 })
            for d in h.client.deadLetters {
                #expect(d.body.count == ContractLimits.maxBodyBytes)
                #expect(d.body.first == UInt8(ascii: "{"))
                #expect(d.properties.headers["x-css-body-size"] == "104857600")
                #expect(d.properties.headers["x-css-body-truncated"] == "true")
                #expect(d.properties.headers["x-origin"] == "load-test")
                #expect(d.properties.headers["x-css-original-content-type"] == "application/json")
            }
        }
    }

    /// Item 6: ten oversized commands over two processes make exactly ten dead letters and
    /// ten replies: no outbox row is published by two relays.
    @Test func tenOversizedCommandsMakeTenDeadLettersOverTwoProcesses() async throws {
        try await IntakeHarness.with(processes: 2) { h in
            let big = [UInt8](repeating: UInt8(ascii: "x"), count: 20 * 1024 * 1024)
            var correlations: [String] = []
            for i in 0..<10 {
                let corr = UUID().uuidString
                correlations.append(corr)
                try await h.client.publish(Self.command(CommandName.ticketSubmit, body: big, MessageProperties(
                    contentType: "application/json", messageID: "big-\(i)", correlationID: corr, replyTo: h.client.replyQueue)))
            }
            for corr in correlations {
                #expect(try await h.client.reply(correlationID: corr, timeout: .seconds(120)).errors.map(\.code) == [ErrorCode.tooLarge])
            }
            #expect(await eventually { h.client.deadLetters.count >= 10 })
            // Longer than a lease, so a second publication by a sweeper would have happened.
            try await Task.sleep(for: .seconds(3))
            #expect(h.client.deadLetters.count == 10)
            #expect(Set(h.client.deadLetters.compactMap(\.properties.messageID)).count == 10)
            #expect(try await h.count("SELECT count(*) FROM intake.outbox") == 0)
        }
    }
}

/// A process's resident set size in MiB, from /proc.
func residentMiB(_ pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
        return kb.map { $0 / 1024 }
    }
    return nil
}
