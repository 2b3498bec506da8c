import CSSAMQP
import CSSModel

/// The broker objects of the wire contract, from one description that every service
/// declares whole at start.
///
/// Declaring every service's durable queue and bindings, not only its own, means a
/// message published before its consumer ever started waits in that consumer's queue
/// instead of being unroutable: `ticket.received` published by intake waits for the
/// classification service. A service added to the system adds its entry to
/// ``services``; its handlers must consume exactly what its entry says.
public enum ContractTopology {
    /// What one service consumes: commands on `css.commands`, events on `css.events`.
    public struct ServiceQueues: Sendable, Equatable {
        public var service: String
        public var commands: [String]
        public var events: [String]
        /// Event types an earlier release bound the service's event queue to and this one does
        /// not: the binding is removed at start, and the service still applies any such event
        /// already waiting in its queue (its handler lists them beside ``events``).
        public var retiredEvents: [String]

        public init(service: String, commands: [String], events: [String], retiredEvents: [String] = []) {
            self.service = service
            self.commands = commands
            self.events = events
            self.retiredEvents = retiredEvents
        }
    }

    /// Every service of the system and what it consumes (docs/asyncapi.yaml, "operations").
    public static let services: [ServiceQueues] = [
        ServiceQueues(
            service: "intake",
            commands: [CommandName.customerOnboard, CommandName.contactAvailability, CommandName.ticketSubmit,
                       CommandName.ticketTransition, CommandName.ticketGet],
            events: [EventType.ticketClassified, EventType.ticketReclassified, EventType.slaStarted, EventType.slaRescheduled,
                     EventType.slaWarning, EventType.slaBreached, EventType.slaStopped, EventType.slaPaused, EventType.slaResumed]),
        ServiceQueues(
            service: "classification",
            commands: [CommandName.reclassifyRequest, CommandName.reclassifyDecide, CommandName.ticketDispatch, CommandName.quotaGet,
                       CommandName.problemOpen, CommandName.problemUpdate, CommandName.problemLink, CommandName.problemGet],
            events: [EventType.ticketReceived, EventType.customerOnboarded, EventType.ticketTransitioned]),
        ServiceQueues(
            service: "sla",
            commands: [CommandName.slaExclusionAdd],
            events: [EventType.customerOnboarded, EventType.ticketClassified, EventType.ticketReclassified, EventType.ticketTransitioned,
                     EventType.slaExclusionAdded]),
        ServiceQueues(
            service: "escalation",
            commands: [CommandName.oncallScheduleSet, CommandName.oncallGet, CommandName.escalationAck, CommandName.escalationList],
            events: [EventType.customerOnboarded, EventType.contactAvailabilityChanged, EventType.ticketClassified,
                     EventType.ticketReclassified, EventType.ticketTransitioned, EventType.slaWarning, EventType.slaBreached],
            // ticket.classified carries what escalation and change management used to read from
            // ticket.received: one persistent copy of every ticket's first event per service less.
            retiredEvents: [EventType.ticketReceived]),
        ServiceQueues(
            service: "change",
            commands: [CommandName.changeTemplateSet, CommandName.changeBoardSet, CommandName.maintenanceWindowsSet, CommandName.changeRequest,
                       CommandName.changeAgree, CommandName.changeAssess, CommandName.changeVote, CommandName.changeSchedule,
                       CommandName.changeDeploy, CommandName.changeVerify, CommandName.changeImplement, CommandName.changeComplete,
                       CommandName.changeClose, CommandName.changeCancel, CommandName.changeGet, CommandName.changeDirectoryGet],
            events: [EventType.customerOnboarded, EventType.ticketClassified, EventType.ticketReclassified, EventType.ticketTransitioned],
            retiredEvents: [EventType.ticketReceived]),
    ]

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

    /// The whole contract: exchanges, every service's queues and their bindings.
    public static var all: Topology {
        services.reduce(base) { topology, s in
            var t = topology
            if !s.commands.isEmpty { t = t.merging(commandQueue(service: s.service, commands: s.commands)) }
            if !s.events.isEmpty { t = t.merging(eventQueue(service: s.service, types: s.events, retired: s.retiredEvents)) }
            return t
        }
    }

    /// The entry of `service`, nil when the description does not know it.
    public static func queues(of service: String) -> ServiceQueues? {
        services.first { $0.service == service }
    }

    /// A service's command queue, bound to each command it handles.
    public static func commandQueue(service: String, commands: [String]) -> Topology {
        let queue = commandQueueName(service: service)
        return base.merging(Topology(
            queues: [.init(queue)],
            bindings: commands.map { .init(queue: queue, exchange: ExchangeName.commands, routingKey: $0) }))
    }

    public static func commandQueueName(service: String) -> String { "css.\(service).commands" }

    /// A service's event queue, bound to each event type it consumes and unbound from the retired ones.
    public static func eventQueue(service: String, types: [String], retired: [String] = []) -> Topology {
        let queue = eventQueueName(service: service)
        return base.merging(Topology(
            queues: [.init(queue)],
            bindings: types.map { .init(queue: queue, exchange: ExchangeName.events, routingKey: $0) },
            retiredBindings: retired.map { .init(queue: queue, exchange: ExchangeName.events, routingKey: $0) }))
    }

    public static func eventQueueName(service: String) -> String { "css.\(service).events" }
}
