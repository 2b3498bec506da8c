import CSSPostgres

/// The tables every service schema has for reliable messaging: the inbox (what was
/// consumed, by message id, with the reply it got), the outbox (what is still to be
/// published) and the audit of refused commands.
public enum MessagingSchema {
    /// Migration 1 of every service schema.
    public static func migration(schema: String) -> Migration {
        Migration(version: 1, name: "messaging", sql: """
            CREATE TABLE \(schema).inbox (
                message_id text PRIMARY KEY,
                command text NOT NULL,
                body_hash bigint NOT NULL,
                reply jsonb,
                received_at timestamptz NOT NULL
            );
            CREATE TABLE \(schema).outbox (
                id bigserial PRIMARY KEY,
                exchange text NOT NULL,
                routing_key text NOT NULL,
                message_id text NOT NULL,
                correlation_id text,
                content_type text NOT NULL,
                headers jsonb NOT NULL DEFAULT '{}',
                body bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                -- The writer's fast path owns a fresh row for this long; then any sweeper may take it.
                lease_until timestamptz NOT NULL DEFAULT now() + interval '10 seconds'
            );
            CREATE INDEX outbox_lease ON \(schema).outbox (lease_until);
            CREATE TABLE \(schema).rejections (
                id bigserial PRIMARY KEY,
                message_id text,
                command text NOT NULL,
                errors jsonb NOT NULL,
                body bytea NOT NULL,
                body_truncated boolean NOT NULL,
                received_at timestamptz NOT NULL
            );
            CREATE INDEX rejections_message ON \(schema).rejections (message_id);
            """)
    }

    /// Migrations 1 to 3 of a service with durable timers: messaging, its retention indexes, the timer table.
    public static func withTimers(schema: String) -> [Migration] {
        [migration(schema: schema), retentionIndexes(schema: schema, version: 2), TimerStore.migration(schema: schema, version: 3)]
    }

    /// The indexes pruning uses (``Pruner``); additive, so an older binary runs against it.
    public static func retentionIndexes(schema: String, version: Int) -> Migration {
        Migration(version: version, name: "messaging retention indexes", sql: """
            CREATE INDEX IF NOT EXISTS inbox_received ON \(schema).inbox (received_at);
            CREATE INDEX IF NOT EXISTS rejections_received ON \(schema).rejections (received_at);
            """)
    }
}
