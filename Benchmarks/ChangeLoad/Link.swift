import CSSAMQP
import CSSModel
import CSSRuntime
import CSSTestSupport
import Foundation
import LoadSupport
import Logging

/// The tool's side of the broker, all declared before the service starts: one publisher
/// (events and commands), the reply queue, the event tap (a transient queue bound to
/// `change.#`, `maintenance.#` and `sla.exclusion.added` on `css.events`, as a change portal
/// would), and drains: the other services' event queues (they are not running, but every
/// service declares the whole contract, so `customer.onboarded` and each `sla.exclusion.added`
/// land there too; consumed and acked as those services would) and the dead letters.
final class BenchLink: @unchecked Sendable {
    let publisher: AMQPPublisher
    let replyQueue: String
    let replies: ReplyTap
    let events: DeliveryTap?
    let drains: [(service: String, tap: DeliveryTap)]
    let deadLetters: DeliveryTap
    let eventCounts = RoutingKeyCounts()
    let drainCounts = RoutingKeyCounts()
    let router: ReplyRouter

    static let drainedServices = ["intake", "classification", "sla", "escalation"]

    init(amqp: AMQPConfiguration, runID: String, router: ReplyRouter, tapEvents: Bool, logger: Logger) {
        self.router = router
        replyQueue = "bench.chg-replies.\(runID)"
        let eventQueue = "bench.chg-events.\(runID)"
        // Transient, like an RPC client's reply queue and a portal's event queue.
        var extra = Topology(queues: [.init(replyQueue, durable: false, autoDelete: true)])
        if tapEvents {
            extra = extra.merging(Topology(
                queues: [.init(eventQueue, durable: false, autoDelete: true)],
                bindings: ["change.#", "maintenance.#", EventType.slaExclusionAdded].map { .init(queue: eventQueue, exchange: ExchangeName.events, routingKey: $0) }))
        }
        let topology = ContractTopology.all.merging(extra)
        publisher = AMQPPublisher(configuration: amqp, topology: topology, name: "change-load-publisher", logger: logger)
        replies = ReplyTap(amqp: amqp, topology: topology, queue: replyQueue, logger: logger, record: router.record)
        let counts = eventCounts
        events = tapEvents ? DeliveryTap(amqp: amqp, topology: topology, queue: eventQueue, name: "change-load-events", logger: logger, record: counts.record) : nil
        let drained = drainCounts
        drains = Self.drainedServices.map { service in
            (service, DeliveryTap(amqp: amqp, topology: topology, queue: ContractTopology.eventQueueName(service: service),
                                  name: "change-load-\(service)-drain", logger: logger, record: drained.record))
        }
        deadLetters = DeliveryTap(amqp: amqp, topology: topology, queue: ContractTopology.deadLetterQueue, prefetch: 100,
                                  name: "change-load-dead", logger: logger)
    }

    var taps: [DeliveryTap] { (events.map { [$0] } ?? []) + drains.map(\.tap) + [deadLetters] }
    var isConnected: Bool { publisher.isConnected && replies.isConnected && taps.allSatisfy(\.isConnected) }

    /// Sends one command and waits for its reply: the reply, its latency in ms and its size in bytes; nil after `timeout`.
    func request(_ name: String, _ body: JSONValue, timeout: Duration) async throws -> (reply: Reply, ms: Double, bytes: Int)? {
        let id = "ctl-\(UUID().uuidString.lowercased())"
        let start = monotonicNanos()
        _ = try await publisher.publishConfirmed([Wire.command(name, body, messageID: "cmd-\(id)", correlationID: id, replyTo: replyQueue)])
        _ = await eventually(timeout: timeout, interval: .milliseconds(2)) { self.router.control(id) != nil }
        return router.control(id).map { ($0.reply, Double($0.at &- start) / 1e6, $0.bytes) }
    }

    func close() async {
        await replies.close()
        for t in taps { await t.close() }
        await publisher.close()
    }
}

/// The reply queue's consumer: LoadSupport's ``DeliveryTap`` with room for long replies
/// (`change.directory.get` lists every component and the whole deployment timeline of a
/// customer: hundreds of KiB after a run, beyond the consumer's default 256 KiB per body).
final class ReplyTap: @unchecked Sendable {
    static let maxBodyBytes = 64 * 1024 * 1024
    let consumer: AMQPConsumer
    private var task: Task<Void, Never>?

    init(amqp: AMQPConfiguration, topology: Topology, queue: String, logger: Logger,
         record: @escaping @Sendable (_ batch: [Delivery], _ at: UInt64) -> Void) {
        let consumer = AMQPConsumer(configuration: amqp, topology: topology, queue: queue, prefetch: 2000, maxBodyBytes: Self.maxBodyBytes,
                                    maxBufferedBytes: 256 * 1024 * 1024, name: "change-load-replies", logger: logger)
        self.consumer = consumer
        task = Task {
            while let batch = await consumer.nextBatch(max: 1000) {
                record(batch, monotonicNanos())
                consumer.ack(batch)
            }
        }
    }

    var isConnected: Bool { consumer.isConnected }

    func close() async {
        await consumer.stopConsuming()
        await task?.value
        await consumer.close()
    }
}
