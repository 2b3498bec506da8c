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

    /// Whether ``handleBatch(_:context:)`` applies events of `type` set-wise.
    func handlesInBatches(_ type: String) -> Bool

    /// Set-wise types with the same family go to ``handleBatch(_:context:)`` together when
    /// consecutive (by default each type is its own family): a queue where two producers'
    /// events interleave (`ticket.classified`, `sla.started`) still gets whole batches.
    func batchFamily(_ type: String) -> String

    /// Applies consecutive new events of one family together; one result per event, in
    /// order. There is no savepoint per event on this path: an event must be refused
    /// before anything is written for it.
    func handleBatch(_ events: [CloudEvent], context: CommandContext) throws -> [Result<[CloudEvent], CommandRejection>]
}

extension EventHandler {
    public func handlesInBatches(_ type: String) -> Bool { false }

    public func batchFamily(_ type: String) -> String { type }

    public func handleBatch(_ events: [CloudEvent], context: CommandContext) throws -> [Result<[CloudEvent], CommandRejection>] {
        throw CommandRejection(code: ErrorCode.internalError, message: "this service applies events one at a time")
    }
}

/// Consumes a service's event queue in batches: validate, dedupe, apply, commit, ack.
///
/// Failures are handled like commands (``CommandProcessor``): transient ones retry the
/// batch and store nothing; a permanent one re-runs the batch one event per
/// transaction, so only the event that causes it is dead-lettered with the reason.
/// An event that cannot be read, or carries text PostgreSQL cannot store, is
/// dead-lettered before it reaches the handler.
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
    let retry: RetryLoop
    let limits: RuntimeLimits

    public init(service: String, schema: String, handler: any EventHandler, client: PostgresClient, consumer: AMQPConsumer,
                relay: OutboxRelay, clock: any CSSModel.Clock, logger: Logger, shutdown: ShutdownSignal = ShutdownSignal(),
                limits: RuntimeLimits = RuntimeLimits()) {
        self.handler = handler
        self.client = client
        self.consumer = consumer
        self.relay = relay
        self.inbox = InboxStore(schema: schema)
        self.outbox = OutboxStore(schema: schema)
        self.events = EventFactory(service: service, clock: clock)
        self.clock = clock
        self.logger = logger
        self.retry = RetryLoop(shutdown: shutdown, logger: logger)
        self.limits = limits
    }

    /// One worker: events are applied in the order they were delivered.
    public func run(batchSize: Int) async {
        while let batch = await consumer.nextBatch(max: batchSize, maxBytes: limits.maxBatchBytes) {
            await process(batch)
        }
    }

    /// An event as read from a delivery, or why it cannot be applied.
    enum Parsed {
        case event(CloudEvent)
        case invalid(String)
    }

    func parse(_ d: Delivery) -> Parsed {
        if d.isTruncated || d.bodySize > limits.maxBodyBytes {
            return .invalid("too_large: the event is \(d.bodySize) bytes; the limit is \(limits.maxBodyBytes)")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(d.body)
        } catch {
            return .invalid("malformed_event: not a JSON document: \(error.description)")
        }
        if let field = StorableText.firstNUL(in: json) {
            return .invalid("invalid_field: \(field) contains a NUL character, which cannot be stored")
        }
        guard let event = CloudEvent(json: json) else {
            return .invalid("malformed_event: not a CloudEvents 1.0 document (specversion, id, type, source and an RFC 3339 time from year 0001 are required)")
        }
        return .event(event)
    }

    public func process(_ deliveries: [Delivery]) async {
        let all = await retry.run("event batch", metadata: ["batch.size": "\(deliveries.count)"]) {
            try await self.commit(deliveries)
        }
        switch all {
        case .done(let rows):
            consumer.ack(deliveries)
            await relay.deliver(rows)
        case .abandoned:
            return
        case .permanent(let error):
            logger.warning("event batch failed permanently; applying its events one at a time", metadata: ["error.message": "\(error)"])
            let rows = await oneByOne(deliveries, delivery: { $0 }, consumer: consumer, retry: retry,
                                      commit: { d in try await self.commit([d]) },
                                      poison: { d, error in await self.poison(d, error) })
            await relay.deliver(rows)
        }
    }

    /// Dead-letters an event that fails permanently; nil when abandoned at shutdown.
    func poison(_ d: Delivery, _ error: any Error) async -> [OutboxRow]? {
        logger.error("event failed permanently; dead-lettered", metadata: ["error.message": "\(error)"])
        let reason = "internal_error: the event could not be applied (\(CommandProcessor.code(of: error)))"
        let outbox = self.outbox
        let dead = await retry.run("event dead letter") {
            try await self.client.withTransaction { session in try outbox.insert([Self.deadLetter(d, reason: reason)], session: session) }
        }
        switch dead {
        case .done(let rows): return rows
        case .abandoned: return nil
        case .permanent(let last):
            logger.critical("an event could not even be dead-lettered; dropped", metadata: ["error.message": "\(last)"])
            return []
        }
    }

    func commit(_ deliveries: [Delivery]) async throws -> [OutboxRow] {
        let handler = self.handler, inbox = self.inbox, outbox = self.outbox, events = self.events, logger = self.logger
        let parsed = deliveries.map(parse)
        let now = clock.now()
        return try await client.withTransaction { session in
            var messages: [OutboxMessage] = []
            let context = CommandContext(session: session, events: events)

            // 1. Claim the inbox for every readable event at once; a copy within the batch follows the first.
            var entries: [InboxEntry] = []
            var seen = Set<String>()
            for (d, p) in zip(deliveries, parsed) {
                guard case .event(let e) = p, seen.insert(e.id).inserted else { continue }
                entries.append(InboxEntry(messageID: "event:\(e.id)", command: e.type, bodyHash: fnv1a64(d.body), receivedAt: now))
            }
            let fresh = try inbox.claim(entries, session: session)

            // 2. In delivery order; consecutive new events of one batchable family go set-wise.
            var run: [(delivery: Delivery, event: CloudEvent)] = []
            func rejected(_ d: Delivery, _ event: CloudEvent, _ rejection: CommandRejection) {
                logger.warning("event not applied; dead-lettered", metadata: [
                    "event.type": "\(event.type)", "event.id": "\(event.id)", "error.message": "\(rejection)"])
                messages.append(Self.deadLetter(d, reason: rejection.description))
            }
            func flush() throws {
                guard !run.isEmpty else { return }
                let items = run
                run = []
                let results = try handler.handleBatch(items.map(\.event), context: context)
                precondition(results.count == items.count, "handleBatch must return one result per event")
                for (item, result) in zip(items, results) {
                    switch result {
                    case .success(let caused): messages += caused.flatMap(OutboxMessage.messages)
                    case .failure(let rejection): rejected(item.delivery, item.event, rejection)
                    }
                }
            }
            var claimed = Set<String>()
            for (d, p) in zip(deliveries, parsed) {
                let event: CloudEvent
                switch p {
                case .invalid(let reason):
                    try flush()
                    logger.warning("event cannot be read; dead-lettered", metadata: ["amqp.routing_key": "\(StorableText.escaped(d.routingKey))", "error.message": "\(reason)"])
                    messages.append(Self.deadLetter(d, reason: reason))
                    continue
                case .event(let e):
                    event = e
                }
                guard fresh.contains("event:\(event.id)"), claimed.insert(event.id).inserted else { continue }
                if handler.handlesInBatches(event.type) {
                    if let last = run.last, handler.batchFamily(last.event.type) != handler.batchFamily(event.type) { try flush() }
                    run.append((d, event))
                    continue
                }
                try flush()
                try session.execute("SAVEPOINT event")
                do {
                    let caused = try handler.handle(event, context: context)
                    try session.execute("RELEASE SAVEPOINT event")
                    messages += caused.flatMap(OutboxMessage.messages)
                } catch let rejection as CommandRejection {
                    try session.execute("ROLLBACK TO SAVEPOINT event")
                    rejected(d, event, rejection)
                }
            }
            try flush()
            return try outbox.insert(messages, session: session)
        }
    }

    static func deadLetter(_ d: Delivery, reason: String) -> OutboxMessage {
        var headers = DeadLetter.headers(of: d)
        headers["x-css-error"] = StorableText.escaped(reason)
        return DeadLetter.message(d, headers: headers)
    }
}
