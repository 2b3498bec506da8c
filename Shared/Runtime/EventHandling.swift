import CSSAMQP
import CSSModel
import CSSPostgres
import CSSSupport
import Foundation
import Logging

/// A service's reaction to other services' events (its read models).
///
/// `handle` runs in the batch's transaction, in a savepoint; the runtime dedupes by
/// CloudEvent id (the inbox), so a redelivered event changes nothing twice. Throwing
/// ``CommandRejection`` means the event cannot be applied: it is rolled back, logged
/// and moved to `css.dead` with the reason, and the queue moves on.
public protocol EventHandler: Sendable {
    /// The event types (routing keys on `css.events`) this service consumes.
    var eventTypes: [String] { get }

    /// Applies one event; returns the events it causes (often none).
    func handle(_ event: CloudEvent, context: CommandContext) throws -> [CloudEvent]
}

/// Consumes a service's event queue in batches: parse, dedupe, apply, commit, ack.
public final class EventProcessor: Sendable {
    let handler: any EventHandler
    let client: PostgresClient
    let consumer: AMQPConsumer
    let relay: OutboxRelay
    let inbox: InboxStore
    let outbox: OutboxStore
    let events: EventFactory
    let clock: any CSSModel.Clock
    let logger: Logger

    public init(service: String, schema: String, handler: any EventHandler, client: PostgresClient, consumer: AMQPConsumer,
                relay: OutboxRelay, clock: any CSSModel.Clock, logger: Logger) {
        self.handler = handler
        self.client = client
        self.consumer = consumer
        self.relay = relay
        self.inbox = InboxStore(schema: schema)
        self.outbox = OutboxStore(schema: schema)
        self.events = EventFactory(service: service, clock: clock)
        self.clock = clock
        self.logger = logger
    }

    public func run(batchSize: Int) async {
        while let batch = await consumer.nextBatch(max: batchSize) {
            await process(batch)
        }
    }

    public func process(_ deliveries: [Delivery]) async {
        var attempt = 0
        while true {
            do {
                let rows = try await commit(deliveries)
                consumer.ack(deliveries)
                await relay.deliver(rows)
                return
            } catch {
                attempt += 1
                if attempt == 1 || attempt % 10 == 0 {
                    logger.warning("event batch not committed; retrying", metadata: ["error.message": "\(error)", "retry.attempt": "\(attempt)"])
                }
                try? await Task.sleep(for: Backoff().delay(attempt: attempt))
            }
        }
    }

    func commit(_ deliveries: [Delivery]) async throws -> [OutboxRow] {
        let handler = self.handler, inbox = self.inbox, outbox = self.outbox, events = self.events, logger = self.logger
        let now = clock.now()
        return try await client.withTransaction { session in
            var messages: [OutboxMessage] = []
            for d in deliveries {
                guard let json = try? JSONValue.parse(d.body), let event = CloudEvent(json: json) else {
                    messages.append(Self.deadLetter(d, reason: "malformed_event: not a CloudEvents 1.0 JSON document"))
                    continue
                }
                let claim = try inbox.claim(messageID: "event:\(event.id)", command: event.type, bodyHash: fnv1a64(d.body), receivedAt: now, session: session)
                guard claim == .new else { continue }
                try session.execute("SAVEPOINT event")
                do {
                    let caused = try handler.handle(event, context: CommandContext(session: session, events: events))
                    try session.execute("RELEASE SAVEPOINT event")
                    messages += caused.map(OutboxMessage.event)
                } catch let rejection as CommandRejection {
                    try session.execute("ROLLBACK TO SAVEPOINT event")
                    logger.warning("event not applied; dead-lettered", metadata: [
                        "event.type": "\(event.type)", "event.id": "\(event.id)", "error.message": "\(rejection)"])
                    messages.append(Self.deadLetter(d, reason: rejection.description))
                }
            }
            return try outbox.insert(messages, session: session)
        }
    }

    static func deadLetter(_ d: Delivery, reason: String) -> OutboxMessage {
        OutboxMessage(exchange: ExchangeName.dead, routingKey: d.routingKey, messageID: d.properties.messageID ?? UUID().uuidString.lowercased(),
                      contentType: d.properties.contentType ?? "application/octet-stream",
                      headers: ["x-css-error": reason, "x-css-original-exchange": d.exchange], body: d.body)
    }
}
