import CSSPostgres
import CSSRuntime

/// The `sla` schema: what the SLA service learned of customers (from `customer.onboarded`)
/// and tickets (the facts that move their clocks), each ticket's clocks, the customers'
/// excluded intervals, and the durable timers that fire thresholds.
public enum SLASchema {
    public static let name = "sla"

    public static let migrations: [Migration] = MessagingSchema.withTimers(schema: name) + [
        Migration(version: 4, name: "customers, tickets, exclusions", sql: """
            CREATE TABLE sla.customers (
                customer_id text PRIMARY KEY,
                -- The data of the newest customer.onboarded (by event time).
                profile jsonb NOT NULL,
                version timestamptz NOT NULL
            );
            CREATE TABLE sla.tickets (
                tracking_number text PRIMARY KEY,
                -- Null while only transitions are known (events out of order).
                customer_id text,
                received_at timestamptz,
                -- Every fact that moves the clocks (SLAInput), in arrival order; the clocks fold them by time.
                log jsonb NOT NULL DEFAULT '[]',
                -- The terms the clocks started with: a later onboarding does not change a running ticket.
                policy jsonb,
                -- Null until the clocks start (classified, and the customer known).
                clock jsonb,
                -- Whether a target still runs or is paused: an exclusion added later moves it.
                open boolean NOT NULL DEFAULT false,
                updated_at timestamptz NOT NULL
            );
            CREATE INDEX tickets_waiting ON sla.tickets (customer_id) WHERE clock IS NULL;
            CREATE INDEX tickets_open ON sla.tickets (customer_id) WHERE open;
            CREATE TABLE sla.exclusions (
                customer_id text NOT NULL,
                exclusion_id text NOT NULL,
                starts_at timestamptz NOT NULL,
                ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
                reason text NOT NULL,
                change_id text,
                added_at timestamptz NOT NULL,
                PRIMARY KEY (customer_id, exclusion_id)
            );
            """),
    ]
}
