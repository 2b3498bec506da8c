import CSSModel
import CSSPostgres
import Foundation

/// A command taken off `css.commands`, parsed and ready for its handler.
public struct IncomingCommand: Sendable {
    /// The routing key, which names the command.
    public let name: String
    public let messageID: String
    public let body: JSONValue
    /// When this service received it: the start of every SLA clock (R-TKT-1).
    public let receivedAt: Date

    public init(name: String, messageID: String, body: JSONValue, receivedAt: Date) {
        self.name = name
        self.messageID = messageID
        self.body = body
        self.receivedAt = receivedAt
    }
}

/// What a handled command produced: the reply's `result` and the facts to publish.
public struct CommandOutcome: Sendable {
    public var result: JSONValue
    public var events: [CloudEvent]

    public init(result: JSONValue, events: [CloudEvent] = []) {
        self.result = result
        self.events = events
    }
}

/// Makes the CloudEvents one service emits: its source, fresh ids, the injected clock.
public struct EventFactory: Sendable {
    public let source: String
    public let clock: any CSSModel.Clock

    public init(service: String, clock: any CSSModel.Clock) {
        self.source = "/css/\(service)"
        self.clock = clock
    }

    /// An event of this service; `id` defaults to a fresh UUID. Pass an id derived from the
    /// fact when a replay of the same fact must repeat it (timers, rebuilt state).
    public func make(_ type: String, subject: String?, data: JSONValue, time: Date? = nil, id: String? = nil) -> CloudEvent {
        CloudEvent(id: id ?? UUID().uuidString.lowercased(), type: type, source: source, time: time ?? clock.now(), subject: subject, data: data)
    }
}

/// What a handler gets besides the command: the transaction and the event factory.
public struct CommandContext {
    public let session: PostgresSession
    public let events: EventFactory

    public init(session: PostgresSession, events: EventFactory) {
        self.session = session
        self.events = events
    }
}

/// One command's outcome inside a batch: done, or refused with reasons.
public typealias CommandResult = Result<CommandOutcome, CommandRejection>

/// A service's command logic.
///
/// `handle` runs inside the batch's database transaction, inside a savepoint of its
/// own: throwing ``CommandRejection`` refuses the command and rolls back whatever the
/// handler wrote, so nothing half-done is stored. The runtime takes care of the inbox,
/// the reply, the `command.rejected` event and the outbox.
///
/// A handler may also take all new commands of one name in a batch at once
/// (``handleBatch(_:context:)``) with set-based statements: one round trip per table
/// instead of several per command. It must then refuse a command before writing
/// anything for it, because there is no savepoint per command on that path.
public protocol CommandHandler: Sendable {
    /// The routing keys this service consumes from `css.commands`.
    var commandNames: [String] { get }

    /// Commands that only read: no inbox entry (their reply is today's state) and no savepoint.
    func isReadOnly(_ command: String) -> Bool

    func handle(_ command: IncomingCommand, context: CommandContext) throws -> CommandOutcome

    /// Whether ``handleBatch(_:context:)`` handles `command` set-wise.
    func handlesInBatches(_ command: String) -> Bool

    /// Handles new commands of one name together; one result per command, in order.
    func handleBatch(_ commands: [IncomingCommand], context: CommandContext) throws -> [CommandResult]

    /// What `command` is about (its ticket, its customer), for ordering: commands with
    /// conflicting keys never run in two workers at once and run in delivery order.
    ///
    /// The default serialises every command of the service (one key, exclusive): always
    /// correct, but only one batch at a time. A command whose body is not what it should
    /// be may return any keys (it will be refused); none makes it run at once.
    func orderingKeys(_ command: IncomingCommand) -> [OrderingKey]
}

extension CommandHandler {
    public func orderingKeys(_ command: IncomingCommand) -> [OrderingKey] {
        [.exclusive("service")]
    }

    public func handlesInBatches(_ command: String) -> Bool { false }

    public func handleBatch(_ commands: [IncomingCommand], context: CommandContext) throws -> [CommandResult] {
        throw CommandRejection(code: ErrorCode.internalError, message: "this service handles commands one at a time")
    }
}
