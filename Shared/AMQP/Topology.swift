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
    /// Bindings an earlier release declared and this one does not: removed (`queue.unbind`,
    /// harmless when already gone) at every declare, so a broker upgraded in place stops
    /// routing copies nobody consumes any more. A binding both here and in ``bindings`` is kept.
    public var retiredBindings: [Binding]

    public init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = [], retiredBindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
        self.retiredBindings = retiredBindings
    }

    public func merging(_ other: Topology) -> Topology {
        func union<T: Hashable>(_ a: [T], _ b: [T]) -> [T] {
            var seen = Set(a)
            return a + b.filter { seen.insert($0).inserted }
        }
        return Topology(exchanges: union(exchanges, other.exchanges), queues: union(queues, other.queues), bindings: union(bindings, other.bindings),
                        retiredBindings: union(retiredBindings, other.retiredBindings))
    }

    /// The retired bindings to remove: those no current binding declares again.
    public var bindingsToRemove: [Binding] {
        let current = Set(bindings)
        return retiredBindings.filter { !current.contains($0) }
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
    /// String-valued headers (other kinds are not read).
    public var headers: [String: String]
    public var persistent: Bool
    /// On a delivery: the properties whose bytes were not valid UTF-8 and were decoded
    /// lossily (U+FFFD), by name: `content_type`, `message_id`, `correlation_id`,
    /// `reply_to`, `type`, `headers.<key>` (a bad value or a bad key, the key decoded
    /// lossily), and `routing_key` for the delivery's routing key. Ignored by publish.
    public var invalidUTF8: Set<String>
    /// For tests and hostile-input tools only: exact bytes to publish instead of the
    /// string value, keyed like ``invalidUTF8`` (`message_id`, `headers.x-foo`, ...), so
    /// that invalid UTF-8 can be sent. A key here sets the property even if its string is nil.
    public var rawOverrides: [String: [UInt8]]
    /// For tests and hostile-input tools only: extra headers whose key and value are
    /// published as exact bytes (a header key that is not valid UTF-8).
    public var rawHeaders: [[UInt8]: [UInt8]]

    public init(contentType: String? = nil, messageID: String? = nil, correlationID: String? = nil, replyTo: String? = nil,
                type: String? = nil, timestamp: UInt64? = nil, headers: [String: String] = [:], persistent: Bool = true,
                invalidUTF8: Set<String> = [], rawOverrides: [String: [UInt8]] = [:], rawHeaders: [[UInt8]: [UInt8]] = [:]) {
        self.contentType = contentType
        self.messageID = messageID
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.type = type
        self.timestamp = timestamp
        self.headers = headers
        self.persistent = persistent
        self.invalidUTF8 = invalidUTF8
        self.rawOverrides = rawOverrides
        self.rawHeaders = rawHeaders
    }
}

/// A message to publish.
public struct OutgoingMessage: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var properties: MessageProperties
    /// Published `mandatory`: a message no queue takes comes back as
    /// ``PublishOutcome/returned(replyCode:replyText:)`` instead of vanishing.
    public var mandatory: Bool

    public init(exchange: String, routingKey: String, body: [UInt8], properties: MessageProperties, mandatory: Bool = true) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
        self.mandatory = mandatory
    }
}

/// What became of one published message once the broker confirmed it.
public enum PublishOutcome: Sendable, Equatable {
    /// Routed to at least one queue (or not mandatory).
    case delivered
    /// Mandatory and unroutable: the broker sent it back (`basic.return`), typically 312 NO_ROUTE.
    case returned(replyCode: Int, replyText: String)
}

/// A message received from a queue; acknowledge it through the consumer that delivered it.
public struct Delivery: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    /// The body, or its first `maxBodyBytes` bytes when ``isTruncated``.
    public var body: [UInt8]
    public var properties: MessageProperties
    public var deliveryTag: UInt64
    public var redelivered: Bool
    /// Which connection of the consumer delivered it: tags of an earlier connection are void.
    public var generation: Int
    /// The body size the broker announced (the content header), whatever was kept of it.
    public var bodySize: Int

    /// True when the body was longer than the consumer's `maxBodyBytes` and only its prefix was kept.
    public var isTruncated: Bool { bodySize > body.count }
}
