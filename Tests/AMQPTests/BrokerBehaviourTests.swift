@testable import CSSAMQP
import Foundation
import Logging
import Testing

// In the serialized AMQPTests suite: the memory test measures the whole process.
extension AMQPTests {
    @Test func truncatesAnOversizedBodyWithBoundedMemory() async throws {
        let queue = freshQueue()
        let topology = Topology(queues: [.init(queue, durable: false, autoDelete: true)])
        let publisher = AMQPPublisher(configuration: configuration, topology: topology, name: "test-publisher", logger: logger)
        let size = 100 << 20, kept = 256 << 10
        var body = [UInt8](repeating: 0, count: size)
        for i in 0..<(1 << 20) { body[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        let message = OutgoingMessage(exchange: "", routingKey: queue, body: body, properties: MessageProperties(messageID: "big"))
        try await retryingUntilConnected { _ = try await publisher.publish([message, message, message, message], timeout: .seconds(60)) }
        // The publisher holds its 100 MiB array throughout: measure around consumption only.
        let before = residentBytes()
        let consumer = AMQPConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 1, maxBodyBytes: kept, name: "test-consumer", logger: logger)
        for _ in 0..<4 {
            let batch = try #require(await nextBatch(consumer, max: 1, within: .seconds(60)))
            let d = try #require(batch.first)
            #expect(d.body.count == kept)
            #expect(d.bodySize == size)
            #expect(d.isTruncated)
            #expect(d.body == Array(body.prefix(kept)))
            consumer.ack(d)
        }
        let growth = residentBytes() - before
        print("oversized bodies: resident memory grew by \(growth) bytes while consuming 4 × \(size) bytes")
        // Four 100 MiB bodies went through; what stays is a few frames and the kept prefixes.
        #expect(growth < 32 << 20, "resident memory grew by \(growth) bytes")
        await consumer.close()
        await publisher.close()
        withExtendedLifetime(body) {}
    }

    @Test func pausesReadingAboveTheBufferCapAndStaysConnected() async throws {
        var config = configuration
        config.heartbeatSeconds = 2
        let queue = freshQueue()
        let topology = Topology(queues: [.init(queue, durable: false, autoDelete: true)])
        let publisher = AMQPPublisher(configuration: config, topology: topology, name: "test-publisher", logger: logger)
        let count = 300, cap = 8 * 1024
        let messages = (0..<count).map { i in
            OutgoingMessage(exchange: "", routingKey: queue, body: Array(repeating: UInt8(i % 251), count: 1024), properties: MessageProperties(messageID: "\(i)"))
        }
        try await retryingUntilConnected { _ = try await publisher.publish(messages) }
        let consumer = AMQPConsumer(configuration: config, topology: topology, queue: queue, prefetch: 100, maxBufferedBytes: cap, name: "test-consumer", logger: logger)
        let first = try #require(await nextBatch(consumer, max: 1))
        // Hold everything for longer than two heartbeats while the cap stops the reading.
        try await Task.sleep(for: .seconds(5))
        #expect(consumer.isConnected)
        #expect(consumer.unackedBytes <= cap + 1024)
        var held = first
        var seen: [String: Int] = [:]
        var generations = Set<Int>()
        while seen.count < count {
            for d in held {
                seen[d.properties.messageID ?? "", default: 0] += 1
                generations.insert(d.generation)
                #expect(!d.redelivered)
            }
            consumer.ack(held)
            try await Task.sleep(for: .milliseconds(10))
            guard seen.count < count else { break }
            held = try #require(await nextBatch(consumer, max: 5))
            #expect(consumer.unackedBytes <= cap + 1024)
        }
        #expect(seen.count == count)
        #expect(seen.values.allSatisfy { $0 == 1 })
        #expect(generations.count == 1)
        #expect(consumer.isConnected)
        await consumer.close()
        await publisher.close()
    }

    @Test func acksShuffledBatchesWithMultipleAndLeavesTheQueueEmpty() async throws {
        let queue = "test.amqp.multiple.\(UUID().uuidString.lowercased())"
        let topology = Topology(queues: [.init(queue, durable: true)])
        let publisher = AMQPPublisher(configuration: configuration, topology: topology, name: "test-publisher", logger: logger)
        let count = 1000
        let messages = (0..<count).map { i in
            OutgoingMessage(exchange: "", routingKey: queue, body: Array("\(i)".utf8), properties: MessageProperties(messageID: "\(i)"))
        }
        try await retryingUntilConnected { _ = try await publisher.publish(messages) }
        let consumer = AMQPConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 300, name: "test-consumer", logger: logger)
        var seen = Set<String>()
        var held: [Delivery] = []
        while seen.count < count {
            let batch = try #require(await nextBatch(consumer, max: 100))
            for d in batch { seen.insert(d.properties.messageID ?? "") }
            held += batch
            held.shuffle()
            // Ack most of what is held in random chunks; keep a few back so gaps form.
            let keep = seen.count < count ? min(held.count, Int.random(in: 0...20)) : 0
            var toAck = Array(held.dropFirst(keep))
            held = Array(held.prefix(keep))
            while !toAck.isEmpty {
                let n = min(toAck.count, Int.random(in: 1...40))
                consumer.ack(Array(toAck.prefix(n)))
                toAck.removeFirst(n)
            }
        }
        consumer.ack(held)
        #expect(seen.count == count)
        #expect(try await eventually { consumer.unackedBytes == 0 })
        #expect(consumer.ackFramesSent < count)
        await consumer.close()
        let left = try withAdminLink(configuration) { link throws(AMQPError) in
            let n = try link.messageCount(queue: queue)
            try link.deleteQueue(queue)
            return n
        }
        #expect(left == 0)
        await publisher.close()
    }

    // A binding an earlier release declared is removed at declare, so the broker stops routing copies
    // to a queue whose service no longer consumes them; removing one already gone is harmless.
    @Test func removesRetiredBindingsAtDeclare() async throws {
        let exchange = "test.amqp.events.\(UUID().uuidString.lowercased())"
        let queue = freshQueue()
        func binding(_ key: String) -> Topology.Binding { .init(queue: queue, exchange: exchange, routingKey: key) }
        let earlier = Topology(exchanges: [.init(exchange, type: "topic")], queues: [.init(queue, durable: false)],
                               bindings: [binding("kept"), binding("retired")])
        try withAdminLink(configuration) { link throws(AMQPError) in try link.declare(earlier) }
        let now = Topology(exchanges: [.init(exchange, type: "topic")], queues: [.init(queue, durable: false)],
                           bindings: [binding("kept")], retiredBindings: [binding("retired"), binding("never.bound")])
        let publisher = AMQPPublisher(configuration: configuration, topology: now, name: "test-publisher", logger: logger)
        func message(_ key: String) -> OutgoingMessage {
            OutgoingMessage(exchange: exchange, routingKey: key, body: Array(key.utf8), properties: MessageProperties(messageID: key))
        }
        var outcomes: [PublishOutcome] = []
        try await retryingUntilConnected { outcomes = try await publisher.publish([message("kept"), message("retired")]) }
        #expect(outcomes == [.delivered, .returned(replyCode: 312, replyText: "NO_ROUTE")])
        // Declared again (every reconnect does): the binding is gone already, and that is fine.
        try withAdminLink(configuration) { link throws(AMQPError) in try link.declare(now) }
        #expect(try withAdminLink(configuration) { link throws(AMQPError) in try link.messageCount(queue: queue) } == 1)
        await publisher.close()
        try withAdminLink(configuration) { link throws(AMQPError) in
            try link.deleteQueue(queue)
            try link.deleteExchange(exchange)
        }
    }

    @Test func mandatoryPublishesReportReturnsPerMessage() async throws {
        let exchange = "test.amqp.events.\(UUID().uuidString.lowercased())"
        let queue = freshQueue()
        let topology = Topology(exchanges: [.init(exchange, type: "topic")], queues: [.init(queue, durable: false, exclusive: true)],
                                bindings: [.init(queue: queue, exchange: exchange, routingKey: "bound.#")])
        let publisher = AMQPPublisher(configuration: configuration, topology: topology, name: "test-publisher", logger: logger)
        func message(_ exchange: String, _ key: String, _ id: String) -> OutgoingMessage {
            OutgoingMessage(exchange: exchange, routingKey: key, body: Array(id.utf8), properties: MessageProperties(messageID: id))
        }
        var single: PublishOutcome?
        try await retryingUntilConnected { single = try await publisher.publish(message(exchange, "nobody.listens", "u-1")) }
        #expect(single == .returned(replyCode: 312, replyText: "NO_ROUTE"))
        #expect(try await publisher.publish(message(exchange, "bound.one", "b-1")) == .delivered)
        let noQueue = "test.amqp.nonexistent.\(UUID().uuidString.lowercased())"
        #expect(try await publisher.publish(message("", noQueue, "r-1")) == .returned(replyCode: 312, replyText: "NO_ROUTE"))
        // Mixed: outcomes stay per message and in order.
        let outcomes = try await publisher.publish([
            message(exchange, "nobody.listens", "m-1"),
            message(exchange, "bound.two", "m-2"),
            message("", noQueue, "m-3"),
            message(exchange, "bound.three", "m-4"),
        ])
        let returned = PublishOutcome.returned(replyCode: 312, replyText: "NO_ROUTE")
        #expect(outcomes == [returned, .delivered, returned, .delivered])
        // One id twice in flight: a return names no sequence number, so which of the two
        // gets it is not knowable (the lowest unconfirmed one does); exactly one does.
        let twins = try await publisher.publish([message(exchange, "bound.four", "same"), message(exchange, "nobody.either", "same")])
        #expect(twins.filter { $0 == returned }.count == 1)
        await publisher.close()
        try withAdminLink(configuration) { link throws(AMQPError) in try link.deleteExchange(exchange) }
    }

    @Test func consumesAgainWhenTheBrokerCancelsTheConsumer() async throws {
        let queue = "test.amqp.cancel.\(UUID().uuidString.lowercased())"
        let topology = Topology(queues: [.init(queue, durable: true)])
        let publisher = AMQPPublisher(configuration: configuration, name: "test-publisher", logger: logger)
        let consumer = AMQPConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 10, name: "test-consumer", logger: logger)
        #expect(try await eventually { consumer.isConnected })
        func send(_ id: String) async throws {
            // Until the consumer has (re)declared the queue, the message is returned: try again.
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                var outcome: PublishOutcome?
                try await retryingUntilConnected {
                    outcome = try await publisher.publish(OutgoingMessage(exchange: "", routingKey: queue, body: Array(id.utf8), properties: MessageProperties(messageID: id)))
                }
                if outcome == .delivered || ContinuousClock.now > deadline { return }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await send("before")
        let first = try #require(await nextBatch(consumer, max: 1)?.first)
        #expect(first.properties.messageID == "before")
        try withAdminLink(configuration) { link throws(AMQPError) in try link.deleteQueue(queue) }
        #expect(try await eventually { consumer.consumerCancellations == 1 })
        try await send("after")
        let second = try #require(await nextBatch(consumer, max: 1, within: .seconds(5))?.first)
        #expect(second.properties.messageID == "after")
        #expect(second.generation == first.generation)
        // The tag from before the cancel is still good on this connection.
        consumer.ack(first)
        consumer.ack(second)
        try await send("later")
        let third = try #require(await nextBatch(consumer, max: 1, within: .seconds(5))?.first)
        #expect(third.properties.messageID == "later")
        #expect(third.generation == first.generation)
        consumer.ack(third)
        #expect(consumer.consumerCancellations == 1)
        #expect(try await eventually { consumer.unackedBytes == 0 })
        #expect(consumer.isConnected)
        await consumer.close()
        await publisher.close()
        try withAdminLink(configuration) { link throws(AMQPError) in try link.deleteQueue(queue) }
    }

    @Test func carriesNULBytesAndReportsInvalidUTF8() async throws {
        let queue = freshQueue()
        let topology = Topology(queues: [.init(queue, durable: false, autoDelete: true)])
        let consumer = AMQPConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 10, name: "test-consumer", logger: logger)
        let publisher = AMQPPublisher(configuration: configuration, topology: topology, name: "test-publisher", logger: logger)
        let properties = MessageProperties(
            contentType: "text/plain", messageID: "a\u{0}b", type: "t\u{0}",
            headers: ["x-ok": "é\u{0}z", "x-bad": "replaced"],
            rawOverrides: ["correlation_id": [0xFF, 0xFE, 0x41], "headers.x-bad": [0xC3, 0x28], "headers.x-raw-only": [0x80]],
            rawHeaders: [[0xFF, 0x6B]: Array("v".utf8)])
        try await retryingUntilConnected {
            _ = try await publisher.publish(OutgoingMessage(exchange: "", routingKey: queue, body: [0, 1, 0], properties: properties))
        }
        let d = try #require(await nextBatch(consumer, max: 1)?.first)
        #expect(d.body == [0, 1, 0])
        #expect(d.properties.messageID == "a\u{0}b")
        #expect(d.properties.type == "t\u{0}")
        #expect(d.properties.headers["x-ok"] == "é\u{0}z")
        #expect(d.properties.correlationID == "\u{FFFD}\u{FFFD}A")
        #expect(d.properties.headers["x-bad"] == "\u{FFFD}(")
        #expect(d.properties.headers["\u{FFFD}k"] == "v")
        #expect(d.properties.invalidUTF8 == ["correlation_id", "headers.x-bad", "headers.x-raw-only", "headers.\u{FFFD}k"])
        consumer.ack(d)
        await consumer.close()
        await publisher.close()
    }
}
