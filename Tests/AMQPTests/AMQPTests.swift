import CSSAMQP
import CSSSupport
import Foundation
import Logging
import Testing

/// Runs against the real RabbitMQ started by deploy/local/servers.sh (CSS_AMQP_URL).
@Suite(.serialized, .timeLimit(.minutes(5))) struct AMQPTests {
    let configuration: AMQPConfiguration
    let logger = Logger(label: "amqp-tests")

    init() throws {
        configuration = try AMQPConfiguration.fromEnvironment(.process)
    }

    func freshQueue() -> String { "test.amqp.\(UUID().uuidString.lowercased())" }

    @Test func publishesWithConfirmsAndConsumesWithManualAck() async throws {
        let queue = freshQueue()
        let topology = Topology(queues: [.init(queue, durable: false, autoDelete: true)])
        let consumer = AMQPConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 50, name: "test-consumer", logger: logger)
        let publisher = AMQPPublisher(configuration: configuration, topology: topology, name: "test-publisher", logger: logger)
        let body = Array("{\"emoji\":\"🚀\",\"sql\":\"'; DROP TABLE x; --\"}".utf8)
        try await retryingUntilConnected {
            try await publisher.publish(OutgoingMessage(exchange: "", routingKey: queue, body: body, properties: MessageProperties(
                contentType: "application/json", messageID: "m-1", correlationID: "c-1", replyTo: "nowhere",
                type: "test", timestamp: 1_700_000_000, headers: ["x-css-error": "malformed_json: é"])))
        }
        let batch = try #require(await consumer.nextBatch(max: 10))
        #expect(batch.count == 1)
        let d = batch[0]
        #expect(d.body == body)
        #expect(d.routingKey == queue)
        #expect(d.properties.messageID == "m-1")
        #expect(d.properties.correlationID == "c-1")
        #expect(d.properties.replyTo == "nowhere")
        #expect(d.properties.contentType == "application/json")
        #expect(d.properties.timestamp == 1_700_000_000)
        #expect(d.properties.headers["x-css-error"] == "malformed_json: é")
        #expect(d.properties.persistent)
        consumer.ack(d)
        await consumer.stopConsuming()
        #expect(await consumer.nextBatch(max: 10) == nil)
        await consumer.close()
        await publisher.close()
    }

    @Test func confirmsALargeBatchAndDeliversEveryMessageOnce() async throws {
        let queue = freshQueue()
        let topology = Topology(queues: [.init(queue, durable: false, autoDelete: true)])
        let consumer = AMQPConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 200, name: "test-consumer", logger: logger)
        let publisher = AMQPPublisher(configuration: configuration, topology: topology, name: "test-publisher", logger: logger)
        let messages = (0..<2000).map { i in
            OutgoingMessage(exchange: "", routingKey: queue, body: Array("\(i)".utf8), properties: MessageProperties(messageID: "\(i)"))
        }
        try await retryingUntilConnected { try await publisher.publish(messages) }
        var seen = Set<String>()
        while seen.count < 2000 {
            let batch = try #require(await consumer.nextBatch(max: 100))
            for d in batch { seen.insert(String(decoding: d.body, as: UTF8.self)) }
            consumer.ack(batch)
        }
        #expect(seen == Set((0..<2000).map(String.init)))
        await consumer.stopConsuming()
        #expect(await consumer.nextBatch(max: 10) == nil)
        await consumer.close()
        await publisher.close()
    }

    @Test func unackedDeliveriesComeBackAfterTheConsumerCloses() async throws {
        let queue = "test.amqp.requeue.\(UUID().uuidString.lowercased())"
        let topology = Topology(queues: [.init(queue, durable: true)])
        let publisher = AMQPPublisher(configuration: configuration, topology: topology, name: "test-publisher", logger: logger)
        try await retryingUntilConnected {
            try await publisher.publish(OutgoingMessage(exchange: "", routingKey: queue, body: [1, 2, 3], properties: MessageProperties(messageID: "r")))
        }
        let first = AMQPConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 1, name: "first", logger: logger)
        let got = try #require(await first.nextBatch(max: 1))
        #expect(got.first?.redelivered == false)
        await first.close() // no ack
        let second = AMQPConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 1, name: "second", logger: logger)
        let again = try #require(await second.nextBatch(max: 1))
        #expect(again.first?.body == [1, 2, 3])
        #expect(again.first?.redelivered == true)
        second.ack(again)
        await second.stopConsuming()
        await second.close()
        await publisher.close()
    }

    @Test func refusesAMalformedURLWithTheVariableName() {
        #expect(throws: ConfigurationError.self) {
            try AMQPConfiguration.fromEnvironment(Environment(["CSS_AMQP_URL": "http://nope"]))
        }
    }
}

/// Publishing fails fast while the link is still connecting; tests wait for it.
func retryingUntilConnected(timeout: Duration = .seconds(20), _ body: () async throws -> Void) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        do {
            try await body()
            return
        } catch let error as AMQPError where error.code == "connection_lost" && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
