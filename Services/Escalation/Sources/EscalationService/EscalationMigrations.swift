import CSSPostgres
import CSSRuntime

/// The `escalation` schema: what the service learned of customers, tickets and contacts
/// (from other services' events), the teams' schedules, every escalation with its chain,
/// and the durable timers that move the chains.
public enum EscalationSchema {
    public static let name = "escalation"

    public static let migrations: [Migration] = MessagingSchema.withTimers(schema: name) + [
        Migration(version: 4, name: "customers, tickets, contacts, schedules, escalations", sql: """
            CREATE TABLE escalation.customers (
                customer_id text PRIMARY KEY,
                -- The data of the newest customer.onboarded (by event time).
                profile jsonb NOT NULL,
                version timestamptz NOT NULL
            );
            CREATE TABLE escalation.tickets (
                tracking_number text PRIMARY KEY,
                customer_id text,
                kind text,
                priority text,
                phone_required boolean NOT NULL DEFAULT false,
                contact_email text,
                -- The newest status by transition time (events may arrive out of order).
                status text,
                status_at timestamptz,
                priority_at timestamptz,
                -- How many customer escalations (contact unavailable) the ticket had.
                contact_episodes integer NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL
            );
            CREATE INDEX tickets_contact ON escalation.tickets (customer_id, contact_email);
            CREATE TABLE escalation.contacts (
                customer_id text NOT NULL,
                email text NOT NULL,
                available boolean NOT NULL,
                changed_at timestamptz NOT NULL,
                PRIMARY KEY (customer_id, email)
            );
            CREATE TABLE escalation.schedules (
                team text PRIMARY KEY,
                schedule jsonb NOT NULL,
                revision integer NOT NULL,
                updated_by text,
                updated_at timestamptz NOT NULL
            );
            CREATE TABLE escalation.escalations (
                escalation_id text PRIMARY KEY,
                tracking_number text NOT NULL,
                customer_id text NOT NULL,
                team text,
                state text NOT NULL,
                -- The whole escalation (EscalationService.Escalation) as the chain left it.
                body jsonb NOT NULL,
                opened_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
            );
            CREATE INDEX escalations_live ON escalation.escalations (tracking_number) WHERE state IN ('open', 'unrouted');
            CREATE INDEX escalations_team ON escalation.escalations (team, opened_at DESC);
            CREATE INDEX escalations_unrouted ON escalation.escalations (customer_id) WHERE state = 'unrouted';
            """),
    ]
}
