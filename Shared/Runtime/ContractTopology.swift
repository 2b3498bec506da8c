import CSSAMQP
import CSSModel

/// The broker objects of the wire contract, declared by every service at start.
public enum ContractTopology {
    /// The four contract exchanges and the queue that keeps dead letters.
    public static let base = Topology(
        exchanges: [
            .init(ExchangeName.commands, type: "topic"),
            .init(ExchangeName.events, type: "topic"),
            .init(ExchangeName.escalations, type: "topic"),
            .init(ExchangeName.dead, type: "fanout"),
        ],
        queues: [.init(deadLetterQueue)],
        bindings: [.init(queue: deadLetterQueue, exchange: ExchangeName.dead, routingKey: "")])

    /// Where messages sent to `css.dead` are kept for operators (a fanout exchange with
    /// no queue would drop them).
    public static let deadLetterQueue = "css.dead.messages"

    /// A service's command queue, bound to each command it handles.
    public static func commandQueue(service: String, commands: [String]) -> Topology {
        let queue = "css.\(service).commands"
        return base.merging(Topology(
            queues: [.init(queue)],
            bindings: commands.map { .init(queue: queue, exchange: ExchangeName.commands, routingKey: $0) }))
    }

    public static func commandQueueName(service: String) -> String { "css.\(service).commands" }

    /// A service's event queue, bound to each event type it consumes.
    public static func eventQueue(service: String, types: [String]) -> Topology {
        let queue = eventQueueName(service: service)
        return base.merging(Topology(
            queues: [.init(queue)],
            bindings: types.map { .init(queue: queue, exchange: ExchangeName.events, routingKey: $0) }))
    }

    public static func eventQueueName(service: String) -> String { "css.\(service).events" }
}
