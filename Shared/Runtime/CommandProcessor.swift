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
        var setBased = true
        while true {
            do {
                let rows = try await commit(prepared, setBased: setBased)
                consumer.ack(deliveries)
                await relay.deliver(rows)
                return
            } catch let error as PostgresError where setBased && !error.isConnectionError && !Self.isRetryable(error) {
                // A set-based statement failed for the whole batch: redo it one command at
                // a time, in savepoints, so the command that causes it is isolated.
                logger.warning("set-based batch failed; retrying one command at a time", metadata: ["error.message": "\(error)"])
                setBased = false
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

    /// What one batch's transaction accumulates before writing it set-wise.
    struct Effects {
        var messages: [OutboxMessage] = []
        var replies: [(messageID: String, reply: Reply)] = []
        var rejections: [RejectionRecord] = []
        /// The reply each new command got, for in-batch duplicates of it.
        var replyByID: [String: Reply] = [:]
    }

    func commit(_ batch: [Prepared], setBased: Bool) async throws -> [OutboxRow] {
        let handler = self.handler, inbox = self.inbox, outbox = self.outbox, events = self.events, logger = self.logger
        return try await client.withTransaction { session in
            var effects = Effects()
            let context = CommandContext(session: session, events: events)

            // 1. Claim the inbox for every message id once; later copies in the batch follow the first.
            var first: [String: Int] = [:]
            var entries: [InboxEntry] = []
            for (i, p) in batch.enumerated() {
                guard let id = p.messageID, !Self.isReadOnly(p, handler), first[id] == nil else { continue }
                first[id] = i
                entries.append(InboxEntry(messageID: id, command: p.name, bodyHash: p.bodyHash, receivedAt: p.receivedAt))
            }
            let newIDs = try inbox.claim(entries, session: session)
            let stored = try inbox.stored(entries.map(\.messageID).filter { !newIDs.contains($0) }, session: session)

            // 2. Decide each delivery; collect new commands by name.
            var pending: [String: [(index: Int, command: IncomingCommand)]] = [:]
            var pendingOrder: [String] = []
            var followers: [Int] = []
            for (i, p) in batch.enumerated() {
                if Self.isReadOnly(p, handler), case .command(let c) = p.kind {
                    do {
                        let outcome = try handler.handle(c, context: context)
                        effects.messages += Self.replyMessages(p, .ok(outcome.result)) + outcome.events.map(OutboxMessage.event)
                    } catch let rejection as CommandRejection {
                        Self.refuse(p, rejection.errors, deadLetter: false, recordReply: false, events: events, into: &effects)
                    }
                    continue
                }
                guard let id = p.messageID else {
                    if case .refused(let errors, let deadLetter) = p.kind {
                        Self.refuse(p, errors, deadLetter: deadLetter, recordReply: false, events: events, into: &effects)
                    }
                    continue
                }
                if first[id] != i {
                    followers.append(i)
                    continue
                }
                if case .duplicate(let command, let hash, let reply)? = stored[id] {
                    effects.messages += Self.duplicate(p, command: command, hash: hash, stored: reply.flatMap(Reply.init(json:)), events: events)
                    continue
                }
                switch p.kind {
                case .refused(let errors, let deadLetter):
                    Self.refuse(p, errors, deadLetter: deadLetter, recordReply: true, events: events, into: &effects)
                case .command(let c):
                    if pending[c.name] == nil { pendingOrder.append(c.name) }
                    pending[c.name, default: []].append((i, c))
                }
            }

            // 3. Run the handler: set-wise where it can, else one command per savepoint.
            for name in pendingOrder {
                let items = pending[name]!
                let results: [CommandResult]
                if setBased && handler.handlesInBatches(name) {
                    results = try handler.handleBatch(items.map(\.command), context: context)
                    precondition(results.count == items.count, "handleBatch must return one result per command")
                } else {
                    results = try items.map { try Self.handleInSavepoint($0.command, batch[$0.index], handler: handler, context: context, logger: logger) }
                }
                for (item, result) in zip(items, results) {
                    let p = batch[item.index]
                    switch result {
                    case .success(let outcome):
                        let reply = Reply.ok(outcome.result)
                        effects.replies.append((item.command.messageID, reply))
                        effects.replyByID[item.command.messageID] = reply
                        effects.messages += Self.replyMessages(p, reply) + outcome.events.map(OutboxMessage.event)
                    case .failure(let rejection):
                        let deadLetter = rejection.codes.contains(ErrorCode.internalError)
                        Self.refuse(p, rejection.errors, deadLetter: deadLetter, recordReply: true, events: events, into: &effects)
                    }
                }
            }

            // 4. Copies of a message id within this batch get what the first got.
            for i in followers {
                let p = batch[i]
                let firstP = batch[first[p.messageID!]!]
                var reply = effects.replyByID[p.messageID!]
                if reply == nil, case .duplicate(_, _, let r)? = stored[p.messageID!] { reply = r.flatMap(Reply.init(json:)) }
                effects.messages += Self.duplicate(p, command: firstP.name, hash: firstP.bodyHash, stored: reply, events: events)
            }

            // 5. Write everything with one statement per table.
            try inbox.recordReplies(effects.replies, session: session)
            try inbox.recordRejections(effects.rejections, session: session)
            return try outbox.insert(effects.messages, session: session)
        }
    }

    static func isReadOnly(_ p: Prepared, _ handler: any CommandHandler) -> Bool {
        if case .command(let c) = p.kind { return handler.isReadOnly(c.name) }
        return false
    }

    /// A message id seen before: the same command again gets the same reply (R-TKT-4);
    /// another command reusing the id is refused.
    static func duplicate(_ p: Prepared, command: String, hash: Int64, stored: Reply?, events: EventFactory) -> [OutboxMessage] {
        if command == p.name, hash == p.bodyHash {
            guard let stored else { return [] }
            return replyMessages(p, stored)
        }
        let error = CommandError(code: "duplicate_message_id", field: nil,
                                 message: "message_id \(p.messageID ?? "") was already used for another \(command == p.name ? "body" : "command (\(command))"); use a new message_id for a new command")
        return rejectionMessages(p, [error], deadLetter: false, events: events)
    }

    /// One command in a savepoint of its own: a refusal or a statement that fails every
    /// time rolls back only this command's writes.
    static func handleInSavepoint(_ command: IncomingCommand, _ p: Prepared, handler: any CommandHandler, context: CommandContext,
                                  logger: Logger) throws -> CommandResult {
        let session = context.session
        try session.execute("SAVEPOINT command")
        do {
            let outcome = try handler.handle(command, context: context)
            try session.execute("RELEASE SAVEPOINT command")
            return .success(outcome)
        } catch let rejection as CommandRejection {
            try session.execute("ROLLBACK TO SAVEPOINT command")
            return .failure(rejection)
        } catch let error as PostgresError where !error.isConnectionError && !isRetryable(error) {
            // A statement this message makes fail every time: answer and park it instead of looping.
            try session.execute("ROLLBACK TO SAVEPOINT command")
            logger.error("command failed with a database error; dead-lettered", metadata: [
                "command.name": "\(p.name)", "command.message_id": "\(command.messageID)", "error.message": "\(error)"])
            return .failure(CommandRejection(code: ErrorCode.internalError,
                                             message: "the command could not be processed and was set aside for an operator (\(error.code))"))
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

    /// Records a refusal: audit row, reply (kept in the inbox when the id was claimed),
    /// `command.rejected` event and, for unreadable messages, the dead letter.
    static func refuse(_ p: Prepared, _ errors: [CommandError], deadLetter: Bool, recordReply: Bool, events: EventFactory, into effects: inout Effects) {
        effects.rejections.append(RejectionRecord(messageID: p.messageID, command: p.name, errors: errors, body: p.delivery.body, receivedAt: p.receivedAt))
        if recordReply, let id = p.messageID {
            effects.replies.append((id, .rejected(errors)))
            effects.replyByID[id] = .rejected(errors)
        }
        effects.messages += rejectionMessages(p, errors, deadLetter: deadLetter, events: events)
    }

    /// The tracking number or customer id a refused command was about, when it says.
    static func subject(of p: Prepared) -> String? {
        guard case .command(let c) = p.kind else { return nil }
        return c.body["trackingNumber"]?.stringValue ?? c.body["customerId"]?.stringValue
    }
}
