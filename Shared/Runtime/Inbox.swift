import CSSModel
import CSSPostgres
import Foundation

/// What the inbox knew of a message id when a command arrived.
public enum InboxClaim: Sendable, Equatable {
    /// First time: process it.
    case new
    /// Seen before: answer with what it got then, without a second effect.
    case duplicate(command: String, bodyHash: Int64, reply: JSONValue?)
}

/// Reads and writes one service schema's `inbox` table.
public struct InboxStore: Sendable {
    public let schema: String

    public init(schema: String) {
        self.schema = schema
    }
}

/// What a refused command leaves for audit.
public struct RejectionRecord: Sendable {
    public var messageID: String?
    public var command: String
    public var errors: [CommandError]
    /// What was kept of the body (at most 256 KiB are stored).
    public var body: [UInt8]
    /// The body's size as it arrived.
    public var bodySize: Int
    public var receivedAt: Date

    public init(messageID: String?, command: String, errors: [CommandError], body: [UInt8], bodySize: Int, receivedAt: Date) {
        self.messageID = messageID
        self.command = command
        self.errors = errors
        self.body = body
        self.bodySize = bodySize
        self.receivedAt = receivedAt
    }
}

/// One inbox entry to claim.
public struct InboxEntry: Sendable {
    public var messageID: String
    public var command: String
    public var bodyHash: Int64
    public var receivedAt: Date
}

extension InboxStore {
    /// Claims many message ids with one statement; returns the ids that were new.
    ///
    /// Ids must be distinct. A concurrent transaction holding one of them makes this
    /// wait for it, so two deliveries never both see an id as new.
    public func claim(_ entries: [InboxEntry], session: PostgresSession) throws -> Set<String> {
        guard !entries.isEmpty else { return [] }
        let rows = try session.query("""
            INSERT INTO \(schema).inbox (message_id, command, body_hash, received_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::timestamptz[])
            ON CONFLICT (message_id) DO NOTHING RETURNING message_id
            """, [PostgresArray.text(entries.map(\.messageID)), PostgresArray.text(entries.map(\.command)),
                  PostgresArray.int64(entries.map(\.bodyHash)), PostgresArray.text(entries.map { RFC3339.format($0.receivedAt) })])
        return Set(try rows.map { try $0.string(0) })
    }

    /// What the inbox holds for `ids` (seen before): command, body hash, reply.
    public func stored(_ ids: [String], session: PostgresSession) throws -> [String: InboxClaim] {
        guard !ids.isEmpty else { return [:] }
        let rows = try session.query("SELECT message_id, command, body_hash, reply::text FROM \(schema).inbox WHERE message_id = ANY($1::text[])",
                                     [PostgresArray.text(ids)])
        var out: [String: InboxClaim] = [:]
        for row in rows {
            let reply = try row.optionalString(3).flatMap { try? JSONValue.parse($0) }
            out[try row.string(0)] = .duplicate(command: try row.string(1), bodyHash: try row.int64(2), reply: reply)
        }
        return out
    }

    /// Stores the replies of many commands with one statement.
    public func recordReplies(_ replies: [(messageID: String, reply: Reply)], session: PostgresSession) throws {
        guard !replies.isEmpty else { return }
        try session.execute("""
            UPDATE \(schema).inbox AS i SET reply = v.reply
            FROM unnest($1::text[], $2::jsonb[]) AS v(message_id, reply) WHERE i.message_id = v.message_id
            """, [PostgresArray.text(replies.map(\.messageID)), PostgresArray.text(replies.map { $0.reply.json.jsonText })])
    }

    /// Stores refused commands for audit (R-CUS-3), one statement per few MiB of bodies.
    public func recordRejections(_ records: [RejectionRecord], session: PostgresSession) throws {
        let limit = ContractLimits.maxBodyBytes
        for part in sizeChunks(records, maxBytes: 8 * 1024 * 1024, size: { min($0.body.count, limit) }) {
            try session.execute("""
                INSERT INTO \(schema).rejections (message_id, command, errors, body, body_truncated, received_at)
                SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::bytea[], $5::bool[], $6::timestamptz[])
                """, [PostgresArray.text(part.map(\.messageID)), PostgresArray.text(part.map(\.command)),
                      PostgresArray.text(part.map { JSONValue.array($0.errors.map(\.json)).jsonText }),
                      PostgresArray.bytes(part.map { Array($0.body.prefix(limit)) }), PostgresArray.bool(part.map { $0.bodySize > limit }),
                      PostgresArray.text(part.map { RFC3339.format($0.receivedAt) })])
        }
    }
}

/// Splits `items` into runs of at most `maxBytes` (by `size`) and `maxCount` items, so
/// no statement the runtime builds comes near PostgreSQL's 1 GB message limit; an item
/// larger than `maxBytes` goes alone.
func sizeChunks<T>(_ items: [T], maxBytes: Int, maxCount: Int = 1000, size: (T) -> Int) -> [ArraySlice<T>] {
    var out: [ArraySlice<T>] = []
    var start = 0
    var bytes = 0
    for (i, item) in items.enumerated() {
        let n = size(item)
        if i > start && (bytes + n > maxBytes || i - start >= maxCount) {
            out.append(items[start..<i])
            start = i
            bytes = 0
        }
        bytes += n
    }
    if start < items.count { out.append(items[start..<items.count]) }
    return out
}

/// FNV-1a, 64 bits: enough to tell a re-sent command from a different one that reuses its message id.
public func fnv1a64(_ bytes: [UInt8]) -> Int64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        hash ^= UInt64(b)
        hash = hash &* 0x100_0000_01b3
    }
    return Int64(bitPattern: hash)
}
