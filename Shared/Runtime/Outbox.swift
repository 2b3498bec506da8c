import CSSAMQP
import CSSModel
import CSSPostgres
import Foundation

/// A message written in the same transaction as the effect that caused it, and
/// published by the ``OutboxRelay`` after commit.
public struct OutboxMessage: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    public var messageID: String
    public var correlationID: String?
    public var contentType: String
    public var headers: [String: String]
    public var body: [UInt8]

    public init(exchange: String, routingKey: String, messageID: String = UUID().uuidString.lowercased(),
                correlationID: String? = nil, contentType: String, headers: [String: String] = [:], body: [UInt8]) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.messageID = messageID
        self.correlationID = correlationID
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    /// An event for `css.events`, routed by its type.
    public static func event(_ event: CloudEvent) -> OutboxMessage {
        OutboxMessage(exchange: ExchangeName.events, routingKey: event.type, messageID: event.id,
                      contentType: CloudEvent.contentType, body: event.json.encoded())
    }

    /// The messages an event is published as: the event, then its companion if it has one
    /// (both in one outbox write, so both or neither).
    public static func messages(of event: CloudEvent) -> [OutboxMessage] {
        guard let c = event.companion else { return [.event(event)] }
        return [.event(event), OutboxMessage(exchange: c.exchange, routingKey: c.routingKey, messageID: c.messageID,
                                             contentType: "application/json", body: c.body.encoded())]
    }

    /// A reply on the default exchange to the command's `reply_to` queue.
    public static func reply(_ reply: Reply, to queue: String, correlationID: String?) -> OutboxMessage {
        OutboxMessage(exchange: "", routingKey: queue, correlationID: correlationID, contentType: "application/json", body: reply.json.encoded())
    }

    public var amqpMessage: OutgoingMessage {
        OutgoingMessage(exchange: exchange, routingKey: routingKey, body: body, properties: MessageProperties(
            contentType: contentType, messageID: messageID, correlationID: correlationID, headers: headers, persistent: true))
    }
}

/// A stored outbox row: the message and its row id.
public struct OutboxRow: Sendable, Equatable {
    public var id: Int64
    public var message: OutboxMessage
}

/// Reads and writes one service schema's `outbox` table.
public struct OutboxStore: Sendable {
    public let schema: String

    public init(schema: String) {
        self.schema = schema
    }

    /// How long the writer's fast path owns a fresh row before any sweeper may take it,
    /// counted from the insert (`clock_timestamp()`, at the end of the transaction, not
    /// its start), and longer than the longest confirm wait (``OutboxRelay``).
    public var leaseSeconds: Double = 30

    /// Inserts `messages` and returns their rows: several rows per statement to keep
    /// round trips down, at most 500 rows and about 32 MiB of bodies per statement.
    public func insert(_ messages: [OutboxMessage], session: PostgresSession) throws -> [OutboxRow] {
        guard !messages.isEmpty else { return [] }
        var rows: [OutboxRow] = []
        rows.reserveCapacity(messages.count)
        for part in sizeChunks(messages, maxBytes: 32 * 1024 * 1024, maxCount: 500, size: { $0.body.count }) {
            var placeholders: [String] = []
            var parameters: [PostgresValue] = [.double(leaseSeconds)]
            parameters.reserveCapacity(part.count * 7 + 1)
            for (i, m) in part.enumerated() {
                let b = i * 7 + 1
                placeholders.append("($\(b + 1),$\(b + 2),$\(b + 3),$\(b + 4),$\(b + 5),$\(b + 6),$\(b + 7),clock_timestamp() + make_interval(secs => $1))")
                let headers: JSONValue = .object(JSONObject(m.headers.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }))
                parameters += [.string(m.exchange), .string(m.routingKey), .string(m.messageID), .optional(m.correlationID),
                               .string(m.contentType), .json(headers.jsonText), .bytes(m.body)]
            }
            let result = try session.query(
                "INSERT INTO \(schema).outbox (exchange, routing_key, message_id, correlation_id, content_type, headers, body, lease_until) VALUES \(placeholders.joined(separator: ",")) RETURNING id",
                parameters)
            for (row, m) in zip(result, part) {
                rows.append(OutboxRow(id: try row.int64(0), message: m))
            }
        }
        return rows
    }

    public func delete(ids: [Int64], session: PostgresSession) throws {
        guard !ids.isEmpty else { return }
        let list = ids.map(String.init).joined(separator: ",")
        try session.execute("DELETE FROM \(schema).outbox WHERE id = ANY($1::bigint[])", [.string("{\(list)}")])
    }

    /// Leases up to `limit` rows whose lease has run out (the fast path of the process
    /// that wrote them did not finish), oldest first, for `lease` seconds.
    ///
    /// `FOR UPDATE SKIP LOCKED` keeps concurrent sweepers off each other's rows while
    /// they take the lease; the lease keeps them off while the leaseholder publishes.
    public func lease(limit: Int, lease: Double, session: PostgresSession) throws -> [OutboxRow] {
        let rows = try session.query("""
            UPDATE \(schema).outbox SET lease_until = clock_timestamp() + make_interval(secs => $1)
            WHERE id IN (
                SELECT id FROM \(schema).outbox WHERE lease_until < clock_timestamp()
                ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING id, exchange, routing_key, message_id, correlation_id, content_type, headers::text, body
            """, [.double(lease), .int(limit)])
        return try rows.sorted { try $0.int64(0) < $1.int64(0) }.map { row in
            var headers: [String: String] = [:]
            if let text = try row.optionalString(6), let object = try? JSONValue.parse(text).objectValue {
                for (k, v) in object { headers[k] = v.stringValue ?? "" }
            }
            return OutboxRow(id: try row.int64(0), message: OutboxMessage(
                exchange: try row.string(1), routingKey: try row.string(2), messageID: try row.string(3),
                correlationID: try row.optionalString(4), contentType: try row.string(5), headers: headers, body: try row.bytes(7)))
        }
    }
}

extension JSONObject {
    init(_ pairs: [(String, JSONValue)]) {
        self.init()
        for (k, v) in pairs { self[k] = v }
    }
}
