@testable import CSSAMQP
import CSSSupport
import Foundation
import Logging
import Testing

/// Against ``FakeAMQPServer``: a peer that drops the socket in the middle of a message,
/// or never confirms. Nothing here needs RabbitMQ.
@Suite(.timeLimit(.minutes(2))) struct MisbehavingPeerTests {
    let logger = Logger(label: "amqp-fake-tests")

    func configuration(_ server: FakeAMQPServer) throws -> AMQPConfiguration {
        try AMQPConfiguration(url: server.url, heartbeatSeconds: 2, connectTimeoutSeconds: 2,
                              backoff: Backoff(base: .milliseconds(20), cap: .milliseconds(200)))
    }

    @Test(arguments: [FakeAMQPServer.Drop.afterHeader, .midBodyFrame, .afterBodyFrames(3)])
    func survivesAConnectionDroppedInsideADelivery(_ drop: FakeAMQPServer.Drop) async throws {
        for _ in 0..<3 {
            let finalBody = Array("hello, intact".utf8)
            let server = try FakeAMQPServer(.consumer(drops: 3, drop: drop, finalBody: finalBody))
            defer { server.stop() }
            let consumer = AMQPConsumer(configuration: try configuration(server), topology: Topology(), queue: "q", prefetch: 10, maxBodyBytes: 64 * 1024, name: "fake-consumer", logger: logger)
            let batch = try #require(await nextBatch(consumer, within: .seconds(20)))
            #expect(batch.count == 1)
            let d = try #require(batch.first)
            #expect(d.body == finalBody)
            #expect(d.bodySize == finalBody.count)
            #expect(!d.isTruncated)
            #expect(d.properties.messageID == "final")
            #expect(server.connections >= 4)
            consumer.ack(d)
            await consumer.close()
        }
    }

    @Test func aBatchWithoutConfirmsFailsAtItsTimeout() async throws {
        let server = try FakeAMQPServer(.neverConfirm)
        defer { server.stop() }
        let publisher = AMQPPublisher(configuration: try configuration(server), name: "fake-publisher", logger: logger)
        #expect(try await eventually { publisher.isConnected })
        let message = OutgoingMessage(exchange: "", routingKey: "q", body: [1], properties: MessageProperties(messageID: "t"))
        let started = ContinuousClock.now
        var caught: AMQPError?
        do {
            try await publisher.publish([message, message], timeout: .seconds(1))
        } catch {
            caught = error
        }
        #expect(caught?.code == "confirm_timeout")
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .seconds(1))
        #expect(elapsed < .milliseconds(1500))
        // The link is still usable: the next batch times out the same way, not earlier.
        caught = nil
        do {
            try await publisher.publish(message, timeout: .milliseconds(300))
        } catch {
            caught = error
        }
        #expect(caught?.code == "confirm_timeout")
        #expect(publisher.isConnected)
        await publisher.close()
    }
}
