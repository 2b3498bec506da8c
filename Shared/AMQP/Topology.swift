/// Exchanges, queues and bindings a service declares, idempotently, at every (re)connect.
public struct Topology: Sendable, Equatable {
    public struct Exchange: Sendable, Equatable, Hashable {
        public var name: String
        public var type: String

        public init(_ name: String, type: String) {
            self.name = name
            self.type = type
        }
    }

    public struct Queue: Sendable, Equatable, Hashable {
        public var name: String
        public var durable: Bool
        public var exclusive: Bool
        public var autoDelete: Bool

        public init(_ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false) {
            self.name = name
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
        }
    }

    public struct Binding: Sendable, Equatable, Hashable {
        public var queue: String
        public var exchange: String
        public var routingKey: String

        public init(queue: String, exchange: String, routingKey: String) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
        }
    }

    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]

    public init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    public func merging(_ other: Topology) -> Topology {
        func union<T: Hashable>(_ a: [T], _ b: [T]) -> [T] {
            var seen = Set(a)
            return a + b.filter { seen.insert($0).inserted }
        }
        return Topology(exchanges: union(exchanges, other.exchanges), queues: union(queues, other.queues), bindings: union(bindings, other.bindings))
    }
}

/// Properties of a message, copied out of librabbitmq's memory.
public struct MessageProperties: Sendable, Equatable {
    public var contentType: String?
    public var messageID: String?
    public var correlationID: String?
    public var replyTo: String?
    public var type: String?
    public var timestamp: UInt64?
    public var headers: [String: String]
    public var persistent: Bool

    public init(contentType: String? = nil, messageID: String? = nil, correlationID: String? = nil, replyTo: String? = nil,
                type: String? = nil, timestamp: UInt64? = nil, headers: [String: String] = [:], persistent: Bool = true) {
        self.contentType = contentType
        self.messageID = messageID
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.type = type
        self.timestamp = timestamp
        self.headers = headers
        self.persistent = persistent
    }
}

/// A message to publish.
public struct OutgoingMessage: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var properties: MessageProperties

    public init(exchange: String, routingKey: String, body: [UInt8], properties: MessageProperties) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
    }
}

/// A message received from a queue; acknowledge it through the consumer that delivered it.
public struct Delivery: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var properties: MessageProperties
    public var deliveryTag: UInt64
    public var redelivered: Bool
    /// Which connection of the consumer delivered it: tags of an earlier connection are void.
    public var generation: Int
}
