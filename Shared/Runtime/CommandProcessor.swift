import CSSAMQP
import CSSModel
import CSSPostgres
import CSSSupport
import Foundation
import Logging

/// Turns batches of deliveries from `css.commands` into committed effects, replies
/// and events: validation, inbox, handler, outbox, commit, then ack.
///
/// A batch is one database transaction; each command in it runs in a savepoint, so
/// one refused command does not undo its neighbours. A delivery is acknowledged only
/// after its transaction committed. When the database is unreachable the batch is
/// retried with backoff and nothing is acknowledged; a message that fails with a
/// non-transient database error is answered `internal_error` and moved to `css.dead`
/// (a poison message never blocks the queue).
public final class CommandProcessor: Sendable {
    public let service: String
    let handler: any CommandHandler
    let client: PostgresClient
    let consumer: AMQPConsumer
    let relay: OutboxRelay
    let inbox: InboxStore
    let outbox: OutboxStore
    let events: EventFactory
    let clock: any CSSModel.Clock
    let logger: Logger
    let commandNames: Set<String>

    public init(service: String, schema: String, handler: any CommandHandler, client: PostgresClient, consumer: AMQPConsumer,
                relay: OutboxRelay, clock: any CSSModel.Clock, logger: Logger) {
        self.service = service
        self.handler = handler
        self.client = client
        self.consumer = consumer
        self.relay = relay
        self.inbox = InboxStore(schema: schema)
        self.outbox = OutboxStore(schema: schema)
        self.events = EventFactory(service: service, clock: clock)
        self.clock = clock
        self.logger = logger
        self.commandNames = Set(handler.commandNames)
    }

    /// Takes batches until the consumer stops, processing each to the end.
    public func run(batchSize: Int) async {
        while let batch = await consumer.nextBatch(max: batchSize) {
            await process(batch)
        }
    }

    /// Processes one batch until it is committed, then acknowledges it and hands
    /// the outbox rows to the relay.
    public func process(_ deliveries: [Delivery]) async {
        let prepared = deliveries.map(prepare)
        var attempt = 0
        while true {
            do {
                let rows = try await commit(prepared)
                consumer.ack(deliveries)
                await relay.deliver(rows)
                return
            } catch {
                attempt += 1
                if attempt == 1 || attempt % 10 == 0 {
                    logger.warning("command batch not committed; retrying", metadata: [
                        "error.message": "\(error)", "batch.size": "\(deliveries.count)", "retry.attempt": "\(attempt)"])
                }
                try? await Task.sleep(for: Backoff().delay(attempt: attempt))
            }
        }
    }

    // MARK: - Before the transaction: everything that needs no database

    struct Prepared: Sendable {
        enum Kind: Sendable {
            case command(IncomingCommand)
            /// Refused before reaching a handler; `deadLetter` when it could not be read at all.
            case refused([CommandError], deadLetter: Bool)
        }

        var kind: Kind
        var name: String
        var messageID: String?
        var replyTo: String?
        var correlationID: String?
        var bodyHash: Int64
        var delivery: Delivery
        var receivedAt: Date
    }

    func prepare(_ d: Delivery) -> Prepared {
        let now = clock.now()
        let messageID = d.properties.messageID.flatMap { $0.isEmpty ? nil : $0 }
        let replyTo = d.properties.replyTo.flatMap { $0.isEmpty ? nil : $0 }
        var p = Prepared(kind: .refused([], deadLetter: false), name: d.routingKey, messageID: messageID, replyTo: replyTo,
                         correlationID: d.properties.correlationID, bodyHash: fnv1a64(d.body), delivery: d, receivedAt: now)
        func refuse(_ code: String, _ message: String, deadLetter: Bool) -> Prepared {
            p.kind = .refused([CommandError(code: code, message: message)], deadLetter: deadLetter)
            return p
        }
        if d.body.count > ContractLimits.maxBodyBytes {
            return refuse(ErrorCode.tooLarge, "the body is \(d.body.count) bytes; the limit is \(ContractLimits.maxBodyBytes)", deadLetter: true)
        }
        guard commandNames.contains(d.routingKey) else {
            return refuse(ErrorCode.unknownCommand, "\"\(d.routingKey)\" is not a command this service handles (\(commandNames.sorted().joined(separator: ", ")))", deadLetter: true)
        }
        if let type = d.properties.contentType, !type.isEmpty,
           type.split(separator: ";").first.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) != "application/json" {
            return refuse(ErrorCode.unsupportedContentType, "content_type must be application/json, got \"\(type)\"", deadLetter: true)
        }
        let body: JSONValue
        do {
            body = try JSONValue.parse(d.body)
        } catch {
            let code = error.kind == .invalidUTF8 ? ErrorCode.invalidUTF8 : ErrorCode.malformedJSON
            return refuse(code, "the body is not a JSON document: \(error.description)", deadLetter: true)
        }
        guard let messageID else {
            return refuse(ErrorCode.missingMessageID, "the message_id property is required: it is the idempotency key", deadLetter: false)
        }
        p.kind = .command(IncomingCommand(name: d.routingKey, messageID: messageID, body: body, receivedAt: now))
        return p
    }

    // MARK: - The transaction

    func commit(_ batch: [Prepared]) async throws -> [OutboxRow] {
        let handler = self.handler
        let inbox = self.inbox
        let outbox = self.outbox
        let events = self.events
        let logger = self.logger
        return try await client.withTransaction { session in
            var messages: [OutboxMessage] = []
            for p in batch {
                messages += try Self.handleOne(p, handler: handler, inbox: inbox, events: events, session: session, logger: logger)
            }
            return try outbox.insert(messages, session: session)
        }
    }

    static func handleOne(_ p: Prepared, handler: any CommandHandler, inbox: InboxStore, events: EventFactory,
                          session: PostgresSession, logger: Logger) throws -> [OutboxMessage] {
        let readOnly: Bool
        if case .command(let c) = p.kind { readOnly = handler.isReadOnly(c.name) } else { readOnly = false }
        if let messageID = p.messageID, !readOnly {
            switch try inbox.claim(messageID: messageID, command: p.name, bodyHash: p.bodyHash, receivedAt: p.receivedAt, session: session) {
            case .new:
                break
            case .duplicate(let command, let hash, let stored):
                if command == p.name, hash == p.bodyHash {
                    // R-TKT-4: the same message again gets the same reply and no second effect.
                    guard let replyTo = p.replyTo, let stored, let reply = Reply(json: stored) else { return [] }
                    return [.reply(reply, to: replyTo, correlationID: p.correlationID)]
                }
                let error = CommandError(code: "duplicate_message_id", field: nil,
                                         message: "message_id \(messageID) was already used for another \(command == p.name ? "body" : "command (\(command))"); use a new message_id for a new command")
                return rejectionMessages(p, [error], deadLetter: false, events: events)
            }
        }
        switch p.kind {
        case .refused(let errors, let deadLetter):
            return try refuse(p, errors, deadLetter: deadLetter, inbox: inbox, events: events, session: session)
        case .command(let command):
            let context = CommandContext(session: session, events: events)
            if readOnly {
                do {
                    let outcome = try handler.handle(command, context: context)
                    return replyMessages(p, .ok(outcome.result)) + outcome.events.map(OutboxMessage.event)
                } catch let rejection as CommandRejection {
                    return try refuse(p, rejection.errors, deadLetter: false, inbox: inbox, events: events, session: session)
                }
            }
            try session.execute("SAVEPOINT command")
            do {
                let outcome = try handler.handle(command, context: context)
                try session.execute("RELEASE SAVEPOINT command")
                let reply = Reply.ok(outcome.result)
                try inbox.recordReply(messageID: command.messageID, reply: reply, session: session)
                return replyMessages(p, reply) + outcome.events.map(OutboxMessage.event)
            } catch let rejection as CommandRejection {
                try session.execute("ROLLBACK TO SAVEPOINT command")
                return try refuse(p, rejection.errors, deadLetter: false, inbox: inbox, events: events, session: session)
            } catch let error as PostgresError where !error.isConnectionError && !Self.isRetryable(error) {
                // A statement this message makes fail every time: answer and park it instead of looping.
                try session.execute("ROLLBACK TO SAVEPOINT command")
                logger.error("command failed with a database error; dead-lettered", metadata: [
                    "command.name": "\(p.name)", "command.message_id": "\(command.messageID)", "error.message": "\(error)"])
                let internalError = CommandError(code: ErrorCode.internalError, message: "the command could not be processed and was set aside for an operator (\(error.code))")
                return try refuse(p, [internalError], deadLetter: true, inbox: inbox, events: events, session: session)
            }
        }
    }

    static func isRetryable(_ error: PostgresError) -> Bool {
        // serialization_failure, deadlock_detected: a retry of the whole batch succeeds.
        error.code == "40001" || error.code == "40P01"
    }

    static func replyMessages(_ p: Prepared, _ reply: Reply) -> [OutboxMessage] {
        guard let replyTo = p.replyTo else { return [] }
        return [.reply(reply, to: replyTo, correlationID: p.correlationID)]
    }

    /// The reply, the `command.rejected` event and, for unreadable messages, the dead letter.
    static func rejectionMessages(_ p: Prepared, _ errors: [CommandError], deadLetter: Bool, events: EventFactory) -> [OutboxMessage] {
        var out = replyMessages(p, .rejected(errors))
        var data = JSONObject()
        data["command"] = .string(p.name)
        data["messageId"] = .optional(p.messageID)
        data["errors"] = .array(errors.map(\.json))
        out.append(.event(events.make(EventType.commandRejected, subject: subject(of: p), data: .object(data))))
        if deadLetter {
            let first = errors[0]
            var headers = ["x-css-error": "\(first.code): \(first.message)", "x-css-command": p.name, "x-css-original-exchange": p.delivery.exchange]
            if let id = p.messageID { headers["x-css-message-id"] = id }
            out.append(OutboxMessage(exchange: ExchangeName.dead, routingKey: p.name, messageID: p.messageID ?? UUID().uuidString.lowercased(),
                                     correlationID: p.correlationID, contentType: p.delivery.properties.contentType ?? "application/octet-stream",
                                     headers: headers, body: p.delivery.body))
        }
        return out
    }

    static func refuse(_ p: Prepared, _ errors: [CommandError], deadLetter: Bool, inbox: InboxStore, events: EventFactory, session: PostgresSession) throws -> [OutboxMessage] {
        try inbox.recordRejection(messageID: p.messageID, command: p.name, errors: errors, body: p.delivery.body, receivedAt: p.receivedAt, session: session)
        if let id = p.messageID {
            try inbox.recordReply(messageID: id, reply: .rejected(errors), session: session)
        }
        return rejectionMessages(p, errors, deadLetter: deadLetter, events: events)
    }

    /// The tracking number or customer id a refused command was about, when it says.
    static func subject(of p: Prepared) -> String? {
        guard case .command(let c) = p.kind else { return nil }
        return c.body["trackingNumber"]?.stringValue ?? c.body["customerId"]?.stringValue
    }
}
