import CSSAMQP
import CSSModel
import CSSRuntime
import Foundation
import Logging

/// Talks to the services the way an integrator does: publishes commands to
/// `css.commands` with a `reply_to`, matches replies by `correlation_id`, and keeps
/// every event published on `css.events`, every message on `css.escalations` and every dead letter.
public final class ContractClient: @unchecked Sendable {
    /// A message on `css.escalations`, as an on-call engineer's pager integration receives it.
    public struct Page: Sendable {
        public var routingKey: String
        public var messageID: String?
        public var body: JSONValue
        public var receivedAt: Date
    }

    public let publisher: AMQPPublisher
    let replies: AMQPConsumer
    let eventTap: AMQPConsumer
    let deadTap: AMQPConsumer
    let escalationTap: AMQPConsumer
    public let replyQueue: String
    private let lock = NSLock()
    private var waiting: [String: CheckedContinuation<Reply, Error>] = [:]
    private var early: [String: Reply] = [:]
    private var collected: [CloudEvent] = []
    private var dead: [Delivery] = []
    private var collectedPages: [Page] = []
    private var tasks: [Task<Void, Never>] = []

    /// - Parameter tapEvents: bind a queue to every event on `css.events` and keep them
    ///   (``events``); off for tests of events nobody consumes, which the tap would make routable.
    public init(amqp: AMQPConfiguration, logger: Logger, tapEvents: Bool = true) {
        let id = UUID().uuidString.prefix(8).lowercased()
        replyQueue = "test.replies.\(id)"
        let eventQueue = "test.events.\(id)"
        let deadQueue = "test.dead.\(id)"
        let escalationQueue = "test.escalations.\(id)"
        let topology = ContractTopology.base.merging(Topology(
            queues: [.init(replyQueue), .init(eventQueue), .init(deadQueue), .init(escalationQueue)],
            bindings: (tapEvents ? [.init(queue: eventQueue, exchange: ExchangeName.events, routingKey: "#")] : [])
                + [.init(queue: deadQueue, exchange: ExchangeName.dead, routingKey: ""),
                   .init(queue: escalationQueue, exchange: ExchangeName.escalations, routingKey: "#")]))
        publisher = AMQPPublisher(configuration: amqp, topology: topology, name: "test-client", logger: logger)
        replies = AMQPConsumer(configuration: amqp, topology: topology, queue: replyQueue, prefetch: 1000, name: "test-replies", logger: logger)
        eventTap = AMQPConsumer(configuration: amqp, topology: topology, queue: eventQueue, prefetch: 1000, name: "test-events", logger: logger)
        deadTap = AMQPConsumer(configuration: amqp, topology: topology, queue: deadQueue, prefetch: 100, name: "test-dead", logger: logger)
        escalationTap = AMQPConsumer(configuration: amqp, topology: topology, queue: escalationQueue, prefetch: 1000, name: "test-escalations", logger: logger)
        tasks.append(Task { [replies] in
            while let batch = await replies.nextBatch(max: 500) {
                for d in batch {
                    guard let id = d.properties.correlationID, let json = try? JSONValue.parse(d.body), let reply = Reply(json: json) else { continue }
                    self.resolve(id, reply)
                }
                replies.ack(batch)
            }
        })
        tasks.append(Task { [eventTap] in
            while let batch = await eventTap.nextBatch(max: 500) {
                let events = batch.compactMap { (try? JSONValue.parse($0.body)).flatMap(CloudEvent.init(json:)) }
                self.lock.withLock { self.collected += events }
                eventTap.ack(batch)
            }
        })
        tasks.append(Task { [escalationTap] in
            while let batch = await escalationTap.nextBatch(max: 500) {
                let now = Date()
                let pages = batch.compactMap { d in
                    (try? JSONValue.parse(d.body)).map { Page(routingKey: d.routingKey, messageID: d.properties.messageID, body: $0, receivedAt: now) }
                }
                self.lock.withLock { self.collectedPages += pages }
                escalationTap.ack(batch)
            }
        })
        tasks.append(Task { [deadTap] in
            while let batch = await deadTap.nextBatch(max: 100) {
                self.lock.withLock { self.dead += batch }
                deadTap.ack(batch)
            }
        })
    }

    private func resolve(_ id: String, _ reply: Reply) {
        let c: CheckedContinuation<Reply, Error>? = lock.withLock {
            if let c = waiting.removeValue(forKey: id) { return c }
            early[id] = reply
            return nil
        }
        c?.resume(returning: reply)
    }

    /// Publishes a raw command and waits for its reply.
    public func sendRaw(_ command: String, body: [UInt8], messageID: String? = UUID().uuidString, contentType: String? = "application/json",
                        timeout: Duration = .seconds(30)) async throws -> Reply {
        let correlationID = UUID().uuidString
        try await publish(command, body: body, messageID: messageID, correlationID: correlationID, replyTo: replyQueue, contentType: contentType)
        return try await reply(correlationID: correlationID, timeout: timeout)
    }

    public func send(_ command: String, _ body: JSONValue, messageID: String = UUID().uuidString, timeout: Duration = .seconds(30)) async throws -> Reply {
        try await sendRaw(command, body: body.encoded(), messageID: messageID, timeout: timeout)
    }

    /// Publishes without waiting for a reply (with or without `reply_to`).
    public func publish(_ command: String, body: [UInt8], messageID: String?, correlationID: String? = nil, replyTo: String? = nil,
                        contentType: String? = "application/json") async throws {
        let message = OutgoingMessage(exchange: ExchangeName.commands, routingKey: command, body: body, properties: MessageProperties(
            contentType: contentType, messageID: messageID, correlationID: correlationID, replyTo: replyTo, persistent: true))
        try await publish(message)
    }

    /// Publishes any message (hostile properties included), retrying while the link reconnects.
    public func publish(_ message: OutgoingMessage) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let failure: AMQPError?
            do {
                try await publisher.publish(message)
                failure = nil
            } catch {
                failure = error
            }
            guard let failure else { return }
            guard failure.code == "connection_lost", ContinuousClock.now < deadline else { throw failure }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Publishes an event to `css.events` as a service would (structured CloudEvent, `message_id` = its id).
    public func publish(event: CloudEvent) async throws {
        try await publish(OutgoingMessage(exchange: ExchangeName.events, routingKey: event.type, body: event.json.encoded(),
                                          properties: MessageProperties(contentType: CloudEvent.contentType, messageID: event.id, persistent: true)))
    }

    /// Waits for the reply with `correlationID`.
    public func reply(correlationID: String, timeout: Duration = .seconds(30)) async throws -> Reply {
        try await withThrowingTaskGroup(of: Reply.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { c in
                    let ready: Reply? = self.lock.withLock {
                        if let r = self.early.removeValue(forKey: correlationID) { return r }
                        self.waiting[correlationID] = c
                        return nil
                    }
                    if let ready { c.resume(returning: ready) }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                let c = self.lock.withLock { self.waiting.removeValue(forKey: correlationID) }
                c?.resume(throwing: TestSupportError("no reply for \(correlationID) within \(timeout)"))
                throw TestSupportError("no reply for \(correlationID) within \(timeout)")
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }

    public var events: [CloudEvent] { lock.withLock { collected } }
    public var deadLetters: [Delivery] { lock.withLock { dead } }
    /// Every message received on `css.escalations`, in arrival order.
    public var pages: [Page] { lock.withLock { collectedPages } }

    public func events(ofType type: String) -> [CloudEvent] { events.filter { $0.type == type } }

    public func close() async {
        await replies.stopConsuming()
        await eventTap.stopConsuming()
        await deadTap.stopConsuming()
        await escalationTap.stopConsuming()
        for t in tasks { await t.value }
        await replies.close()
        await eventTap.close()
        await deadTap.close()
        await escalationTap.close()
        await publisher.close()
    }
}
