import CSSAMQP
import CSSModel
import CSSPostgres
import CSSSupport
import Foundation
import Logging

/// Limits the runtime applies to what it reads and holds.
public struct RuntimeLimits: Sendable {
    /// Bytes of one command body that are read at most; a larger body is answered
    /// `too_large` and its frames are discarded as they arrive.
    public var maxBodyBytes = ContractLimits.maxBodyBytes
    /// Bytes one batch (one transaction) holds at most, besides its first delivery.
    public var maxBatchBytes = 16 * 1024 * 1024
    /// How long a worker waits for company when few commands are ready (see ``KeyedScheduler``).
    /// Measured on 2 cores (Benchmarks/README.md): at 1,000 commands/s, 10 ms makes batches
    /// of about 10 instead of 2 and cuts p99 reply latency by more than it adds to p50.
    public var linger: Duration = .milliseconds(10)

    public init() {}
}

/// Turns deliveries from a service's command queue into committed effects, replies and
/// events: validation, ordering, inbox, handler, outbox, commit, then ack.
///
/// **Order.** One feeder takes deliveries in the order the broker delivered them and a
/// ``KeyedScheduler`` hands them to the workers: two commands about the same ticket or
/// customer (the handler's ``CommandHandler/orderingKeys(_:)``) never run in two workers
/// at once, and run in delivery order. Inside a batch commands run in delivery order.
///
/// **Isolation.** A batch is one transaction; each command runs in a savepoint. A
/// transient failure (``Failure``) retries the batch with backoff and stores nothing. A
/// permanent failure outside a savepoint (the inbox, a read-only command, a set-based
/// statement, the outbox) re-runs the batch one command per transaction, so only the
/// command that causes it is answered `internal_error` and dead-lettered; the rest of
/// its batch is processed normally. A delivery is acknowledged only after its
/// transaction committed.
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
    let limits: RuntimeLimits
    let retry: RetryLoop
    let scheduler: KeyedScheduler<Prepared>

    public init(service: String, schema: String, handler: any CommandHandler, client: PostgresClient, consumer: AMQPConsumer,
                relay: OutboxRelay, clock: any CSSModel.Clock, logger: Logger, shutdown: ShutdownSignal = ShutdownSignal(),
                limits: RuntimeLimits = RuntimeLimits(), batchSize: Int = 256) {
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
        self.limits = limits
        self.retry = RetryLoop(shutdown: shutdown, logger: logger)
        self.scheduler = KeyedScheduler(linger: limits.linger, lingerBelow: max(1, batchSize / 8))
    }

    /// Feeds the scheduler from the consumer and runs `workers` workers until the
    /// consumer stops and everything taken was processed.
    public func run(workers: Int, batchSize: Int) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.feed() }
            for _ in 0..<max(1, workers) {
                group.addTask {
                    while let batch = await self.scheduler.next(max: batchSize, maxBytes: self.limits.maxBatchBytes) {
                        let rows = await self.process(batch.items)
                        // The worker goes on while the broker confirms; the batch's keys are
                        // held until then, so one ticket's events leave in order.
                        let scheduler = self.scheduler
                        await self.relay.deliverInBackground(rows) { scheduler.finished(batch) }
                    }
                }
            }
        }
        await relay.drain()
    }

    private func feed() async {
        while let deliveries = await consumer.nextBatch(max: 1024) {
            let now = ContinuousClock.now
            scheduler.add(deliveries.map { d in
                let p = prepare(d)
                return .init(item: p, keys: keys(of: p), bytes: d.body.count, arrived: now)
            })
        }
        scheduler.finish()
    }

    func keys(of p: Prepared) -> [OrderingKey] {
        guard case .command(let c) = p.kind else { return [] }
        return handler.orderingKeys(c)
    }

    /// Processes one batch to the end: committed and acknowledged, or (only at
    /// shutdown, while the database is away) left unacknowledged for redelivery.
    public func process(_ deliveries: [Delivery]) async {
        await relay.deliver(await process(deliveries.map(prepare)))
    }

    /// Commits and acknowledges a batch; returns the outbox rows to publish.
    func process(_ batch: [Prepared]) async -> [OutboxRow] {
        let all = await retry.run("command batch", metadata: ["batch.size": "\(batch.count)"]) {
            try await self.commit(batch, setBased: true)
        }
        switch all {
        case .done(let rows):
            consumer.ack(batch.map(\.delivery))
            return rows
        case .abandoned:
            return []
        case .permanent(let error):
            logger.warning("command batch failed permanently; processing its commands one at a time", metadata: [
                "batch.size": "\(batch.count)", "error.message": "\(error)"])
            return await isolate(batch)
        }
    }

    /// One command per transaction, in order: the command that fails permanently is
    /// answered and dead-lettered, the others commit normally.
    func isolate(_ batch: [Prepared]) async -> [OutboxRow] {
        await oneByOne(batch, delivery: \.delivery, consumer: consumer, retry: retry,
                       commit: { p in try await self.commit([p], setBased: false) },
                       poison: { p, error in await self.poison(p, error) })
    }

    /// Answers a command that fails permanently `internal_error` and dead-letters it,
    /// keeping the reply in the inbox so a re-send gets the same answer. Falls back to
    /// the dead letter alone when even that cannot be stored. Nil when abandoned at shutdown.
    func poison(_ p: Prepared, _ error: any Error) async -> [OutboxRow]? {
        logger.error("command failed permanently; answered internal_error and dead-lettered", metadata: [
            "command.name": "\(p.name)", "command.message_id": "\(StorableText.escaped(p.messageID ?? ""))", "error.message": "\(error)"])
        let errors = [CommandError(code: ErrorCode.internalError,
                                   message: "the command could not be processed and was set aside for an operator (\(Self.code(of: error)))")]
        let inbox = self.inbox, outbox = self.outbox, events = self.events
        let recorded = await retry.run("poison record") {
            try await self.client.withTransaction { session -> [OutboxRow] in
                var effects = Effects()
                if let id = p.messageID {
                    _ = try inbox.claim([InboxEntry(messageID: id, command: p.name, bodyHash: p.bodyHash, receivedAt: p.receivedAt)], session: session)
                }
                Self.refuse(p, errors, deadLetter: true, recordReply: true, events: events, into: &effects)
                try inbox.recordReplies(effects.replies, session: session)
                try inbox.recordRejections(effects.rejections, session: session)
                return try outbox.insert(effects.messages, session: session)
            }
        }
        switch recorded {
        case .done(let rows): return rows
        case .abandoned: return nil
        case .permanent(let again):
            logger.error("the refusal of a poison command could not be stored; dead-lettering it alone", metadata: ["error.message": "\(again)"])
        }
        let deadLetter = Self.deadLetter(p, errors[0])
        let alone = await retry.run("poison dead letter") {
            try await self.client.withTransaction { session in try outbox.insert([deadLetter], session: session) }
        }
        switch alone {
        case .done(let rows): return rows
        case .abandoned: return nil
        case .permanent(let last):
            logger.critical("a poison command could not even be dead-lettered; dropped", metadata: [
                "command.name": "\(p.name)", "error.message": "\(last)", "body.size": "\(p.delivery.bodySize)"])
            return []
        }
    }

    static func code(of error: any Error) -> String {
        (error as? PostgresError)?.code ?? "\(type(of: error))"
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
        /// Only when usable as an idempotency key (present, UTF-8, no NUL).
        var messageID: String?
        /// Only when a reply can be sent there.
        var replyTo: String?
        var correlationID: String?
        var bodyHash: Int64
        var delivery: Delivery
        var receivedAt: Date
    }

    /// A property that cannot be used as it came: why, in the contract's words.
    static func propertyProblem(_ name: String, _ value: String?, _ properties: MessageProperties) -> CommandError? {
        guard let value else { return nil }
        if properties.invalidUTF8.contains(name) {
            return CommandError(code: ErrorCode.invalidUTF8, field: name, message: "the \(name) property is not valid UTF-8")
        }
        if !StorableText.isStorable(value) { return StorableText.nulError(name) }
        return nil
    }

    func prepare(_ d: Delivery) -> Prepared {
        let now = clock.now()
        let props = d.properties
        var problems: [CommandError] = []
        func usable(_ name: String, _ value: String?) -> String? {
            guard let value, !value.isEmpty else { return nil }
            if let problem = Self.propertyProblem(name, value, props) {
                problems.append(problem)
                return nil
            }
            return value
        }
        let messageID = usable("message_id", props.messageID)
        let replyTo = usable("reply_to", props.replyTo)
        let correlationID = usable("correlation_id", props.correlationID)
        let contentType = usable("content_type", props.contentType)
        let routingOK = StorableText.isStorable(d.routingKey) && !props.invalidUTF8.contains("routing_key")
        let name = routingOK ? d.routingKey : StorableText.escaped(d.routingKey)
        var p = Prepared(kind: .refused([], deadLetter: false), name: name, messageID: messageID, replyTo: replyTo,
                         correlationID: correlationID, bodyHash: fnv1a64(d.body), delivery: d, receivedAt: now)
        func refuse(_ errors: [CommandError], deadLetter: Bool) -> Prepared {
            p.kind = .refused(errors, deadLetter: deadLetter)
            return p
        }
        func refuse(_ code: String, _ message: String, deadLetter: Bool) -> Prepared {
            refuse([CommandError(code: code, message: message)], deadLetter: deadLetter)
        }
        // A message id that cannot be stored cannot make the command idempotent: refused whole.
        if !problems.isEmpty {
            return refuse(problems, deadLetter: true)
        }
        if d.isTruncated || d.bodySize > limits.maxBodyBytes {
            return refuse(ErrorCode.tooLarge, "the body is \(d.bodySize) bytes; the limit is \(limits.maxBodyBytes)", deadLetter: true)
        }
        guard commandNames.contains(d.routingKey) else {
            return refuse(ErrorCode.unknownCommand, "\"\(name)\" is not a command this service handles (\(commandNames.sorted().joined(separator: ", ")))", deadLetter: true)
        }
        if let type = contentType,
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
        // Readable, but holding text PostgreSQL cannot store: an ordinary refusal.
        if let field = StorableText.firstNUL(in: body) {
            return refuse([StorableText.nulError(field)], deadLetter: false)
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

            // 2. In delivery order; consecutive new commands of one batchable name go set-wise.
            var run: [(index: Int, command: IncomingCommand)] = []
            func record(_ items: [(index: Int, command: IncomingCommand)], _ results: [CommandResult]) {
                for (item, result) in zip(items, results) {
                    let p = batch[item.index]
                    switch result {
                    case .success(let outcome):
                        let reply = Reply.ok(outcome.result)
                        effects.replies.append((item.command.messageID, reply))
                        effects.replyByID[item.command.messageID] = reply
                        effects.messages += Self.replyMessages(p, reply) + outcome.events.flatMap(OutboxMessage.messages)
                    case .failure(let rejection):
                        let deadLetter = rejection.codes.contains(ErrorCode.internalError)
                        Self.refuse(p, rejection.errors, deadLetter: deadLetter, recordReply: true, events: events, into: &effects)
                    }
                }
            }
            func flush() throws {
                guard !run.isEmpty else { return }
                let items = run
                run = []
                let results = try handler.handleBatch(items.map(\.command), context: context)
                precondition(results.count == items.count, "handleBatch must return one result per command")
                record(items, results)
            }
            var followers: [Int] = []
            for (i, p) in batch.enumerated() {
                if Self.isReadOnly(p, handler), case .command(let c) = p.kind {
                    try flush()
                    do {
                        let outcome = try handler.handle(c, context: context)
                        effects.messages += Self.replyMessages(p, .ok(outcome.result)) + outcome.events.flatMap(OutboxMessage.messages)
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
                    if setBased && handler.handlesInBatches(c.name) {
                        if let last = run.last, last.command.name != c.name { try flush() }
                        run.append((i, c))
                    } else {
                        try flush()
                        record([(i, c)], [try Self.handleInSavepoint(c, p, handler: handler, context: context, logger: logger)])
                    }
                }
            }
            try flush()

            // 3. Copies of a message id within this batch get what the first got.
            for i in followers {
                let p = batch[i]
                let firstP = batch[first[p.messageID!]!]
                var reply = effects.replyByID[p.messageID!]
                if reply == nil, case .duplicate(_, _, let r)? = stored[p.messageID!] { reply = r.flatMap(Reply.init(json:)) }
                effects.messages += Self.duplicate(p, command: firstP.name, hash: firstP.bodyHash, stored: reply, events: events)
            }

            // 4. Write everything with one statement per table (chunked by size).
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
    /// time rolls back only this command's writes. A transient failure is rethrown: the
    /// whole batch is retried and nothing of it is stored.
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
        } catch let error as PostgresError where !Failure.isTransient(error) {
            // A statement this message makes fail every time: answer and park it instead of looping.
            try session.execute("ROLLBACK TO SAVEPOINT command")
            logger.error("command failed with a database error; dead-lettered", metadata: [
                "command.name": "\(p.name)", "command.message_id": "\(command.messageID)", "error.message": "\(error)"])
            return .failure(CommandRejection(code: ErrorCode.internalError,
                                             message: "the command could not be processed and was set aside for an operator (\(error.code))"))
        }
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
        data["messageId"] = .optional(p.messageID ?? p.delivery.properties.messageID.map(StorableText.escaped))
        data["errors"] = .array(errors.map(\.json))
        out.append(.event(events.make(EventType.commandRejected, subject: subject(of: p), data: .object(data))))
        if deadLetter {
            out.append(Self.deadLetter(p, errors[0]))
        }
        return out
    }

    /// The delivery as it came, for an operator: its properties and headers (text that
    /// cannot be stored escaped), the reason, and at most the first 256 KiB of its body.
    static func deadLetter(_ p: Prepared, _ reason: CommandError) -> OutboxMessage {
        var headers = DeadLetter.headers(of: p.delivery)
        headers["x-css-error"] = StorableText.escaped("\(reason.code): \(reason.message)")
        headers["x-css-command"] = p.name
        return DeadLetter.message(p.delivery, headers: headers)
    }

    /// Records a refusal: audit row, reply (kept in the inbox when the id was claimed),
    /// `command.rejected` event and, for unreadable messages, the dead letter.
    static func refuse(_ p: Prepared, _ errors: [CommandError], deadLetter: Bool, recordReply: Bool, events: EventFactory, into effects: inout Effects) {
        effects.rejections.append(RejectionRecord(messageID: p.messageID, command: p.name, errors: errors, body: p.delivery.body,
                                                  bodySize: p.delivery.bodySize, receivedAt: p.receivedAt))
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

/// Dead letters on `css.dead`: what operators find in `css.dead.messages`.
public enum DeadLetter {
    /// Headers that describe `d`: the original exchange, message id, properties and
    /// headers, the body's size and whether it was cut. Unstorable text is escaped.
    public static func headers(of d: Delivery) -> [String: String] {
        let props = d.properties
        var headers: [String: String] = [:]
        for (k, v) in props.headers where !k.hasPrefix("x-css-") {
            headers[StorableText.escaped(k)] = StorableText.escaped(v)
        }
        headers["x-css-original-exchange"] = StorableText.escaped(d.exchange)
        headers["x-css-original-routing-key"] = StorableText.escaped(d.routingKey)
        if let v = props.messageID { headers["x-css-message-id"] = StorableText.escaped(v) }
        if let v = props.correlationID { headers["x-css-original-correlation-id"] = StorableText.escaped(v) }
        if let v = props.replyTo { headers["x-css-original-reply-to"] = StorableText.escaped(v) }
        if let v = props.contentType { headers["x-css-original-content-type"] = StorableText.escaped(v) }
        if let v = props.type { headers["x-css-original-type"] = StorableText.escaped(v) }
        if !props.invalidUTF8.isEmpty { headers["x-css-invalid-utf8"] = props.invalidUTF8.sorted().joined(separator: ",") }
        headers["x-css-body-size"] = String(d.bodySize)
        headers["x-css-body-truncated"] = d.isTruncated ? "true" : "false"
        return headers
    }

    /// The dead letter of `d` with `headers`; the body is what was kept of it (≤ 256 KiB).
    public static func message(_ d: Delivery, headers: [String: String]) -> OutboxMessage {
        let props = d.properties
        func clean(_ name: String, _ v: String?) -> String? {
            guard let v, !v.isEmpty, StorableText.isStorable(v), !props.invalidUTF8.contains(name) else { return nil }
            return v
        }
        return OutboxMessage(exchange: ExchangeName.dead, routingKey: StorableText.escaped(d.routingKey),
                             messageID: clean("message_id", props.messageID) ?? UUID().uuidString.lowercased(),
                             correlationID: clean("correlation_id", props.correlationID),
                             contentType: clean("content_type", props.contentType) ?? "application/octet-stream",
                             headers: headers, body: Array(d.body.prefix(ContractLimits.maxBodyBytes)))
    }
}
