import CSSModel
import CSSPostgres
import Foundation
import Logging

/// How long a service keeps what its reliable messaging stores.
///
/// The inbox's retention is the idempotency window: a command re-sent with the same
/// `message_id` within it gets the stored reply and has no second effect; after it, the
/// id is forgotten and the command is processed as new. Stored rejections (the audit of
/// refused commands, with up to 256 KiB of body each) are kept longer for audit. The
/// outbox keeps no history: a row is deleted as soon as the broker confirmed it.
public struct Retention: Sendable, Equatable {
    /// `CSS_INBOX_RETENTION`, default `P7D`.
    public var inboxSeconds: Double = 7 * 86400
    /// `CSS_REJECTION_RETENTION`, default `P30D`.
    public var rejectionSeconds: Double = 30 * 86400
    /// `CSS_PRUNE_INTERVAL`, default `PT1M`: how often the service prunes.
    public var intervalSeconds: Double = 60
    /// Rows per DELETE: small, so pruning never holds many locks or a long transaction.
    public var batchRows = 500

    public init() {}
}

/// Deletes inbox entries and stored rejections older than their retention, in small
/// batches, skipping rows another transaction holds (`SKIP LOCKED`), so it never waits
/// on, or makes wait, the hot path. Several processes may prune one schema at once.
public struct Pruner: Sendable {
    public let schema: String
    public let retention: Retention
    let clock: any CSSModel.Clock

    public init(schema: String, retention: Retention, clock: any CSSModel.Clock) {
        self.schema = schema
        self.retention = retention
        self.clock = clock
    }

    /// Prunes everything that is due now; returns how many inbox and rejection rows went.
    @discardableResult
    public func pruneOnce(client: PostgresClient) async throws -> (inbox: Int, rejections: Int) {
        let now = clock.now()
        let inboxCutoff = now.addingTimeInterval(-retention.inboxSeconds)
        let rejectionCutoff = now.addingTimeInterval(-retention.rejectionSeconds)
        let inbox = try await deleteOlder(client: client, table: "inbox", key: "message_id", cutoff: inboxCutoff)
        let rejections = try await deleteOlder(client: client, table: "rejections", key: "id", cutoff: rejectionCutoff)
        return (inbox, rejections)
    }

    private func deleteOlder(client: PostgresClient, table: String, key: String, cutoff: Date) async throws -> Int {
        let sql = """
            DELETE FROM \(schema).\(table) WHERE \(key) IN (
                SELECT \(key) FROM \(schema).\(table) WHERE received_at < $1
                ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            """
        var total = 0
        while !Task.isCancelled {
            let n = try await client.execute(sql, [.date(cutoff), .int(retention.batchRows)])
            total += n
            if n < retention.batchRows { break }
        }
        return total
    }

    /// Prunes every ``Retention/intervalSeconds`` until cancelled; failures are logged and retried next time.
    public func run(client: PostgresClient, logger: Logger) async {
        while !Task.isCancelled {
            do {
                let (inbox, rejections) = try await pruneOnce(client: client)
                if inbox + rejections > 0 {
                    logger.info("pruned expired messaging rows", metadata: [
                        "db.schema": "\(schema)", "prune.inbox": "\(inbox)", "prune.rejections": "\(rejections)"])
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("pruning failed; retrying at the next interval", metadata: ["error.message": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(Int64(retention.intervalSeconds * 1000)))
        }
    }
}
