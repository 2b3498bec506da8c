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

    /// Records `messageID` unless it is there; a concurrent transaction holding the
    /// same id makes this wait for it, so two deliveries never both see `.new`.
    public func claim(messageID: String, command: String, bodyHash: Int64, receivedAt: Date, session: PostgresSession) throws -> InboxClaim {
        let inserted = try session.execute(
            "INSERT INTO \(schema).inbox (message_id, command, body_hash, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT (message_id) DO NOTHING",
            [.string(messageID), .string(command), .int64(bodyHash), .date(receivedAt)])
        if inserted == 1 { return .new }
        let rows = try session.query("SELECT command, body_hash, reply::text FROM \(schema).inbox WHERE message_id = $1", [.string(messageID)])
        guard let row = rows.first else {
            throw PostgresError(code: "inbox_inconsistent", message: "message \(messageID) conflicted but cannot be read")
        }
        let reply = try row.optionalString(2).flatMap { try? JSONValue.parse($0) }
        return .duplicate(command: try row.string(0), bodyHash: try row.int64(1), reply: reply)
    }

    public func recordReply(messageID: String, reply: Reply, session: PostgresSession) throws {
        try session.execute("UPDATE \(schema).inbox SET reply = $2 WHERE message_id = $1", [.string(messageID), .json(reply.json.jsonText)])
    }

    /// Stores a refused command for audit (R-CUS-3): never as a ticket, always traceable.
    public func recordRejection(messageID: String?, command: String, errors: [CommandError], body: [UInt8], receivedAt: Date, session: PostgresSession) throws {
        let limit = ContractLimits.maxBodyBytes
        let truncated = body.count > limit
        try session.execute(
            "INSERT INTO \(schema).rejections (message_id, command, errors, body, body_truncated, received_at) VALUES ($1, $2, $3, $4, $5, $6)",
            [.optional(messageID), .string(command), .json(JSONValue.array(errors.map(\.json)).jsonText),
             .bytes(truncated ? Array(body.prefix(limit)) : body), .bool(truncated), .date(receivedAt)])
    }
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
