import CSSPostgres
import CSSRuntime

/// The `intake` schema: customers and their contacts, tickets, their audit trail,
/// and what intake learns of tickets from other services' events (its read model).
public enum IntakeSchema {
    public static let name = "intake"

    public static let migrations: [Migration] = [
        MessagingSchema.migration(schema: name),
        Migration(version: 2, name: "customers and tickets", sql: """
            CREATE TABLE intake.customers (
                customer_id text PRIMARY KEY,
                name text NOT NULL,
                team text NOT NULL,
                time_zone text NOT NULL,
                support_region text NOT NULL,
                settings jsonb NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
            );
            CREATE TABLE intake.contacts (
                customer_id text NOT NULL REFERENCES intake.customers,
                email text NOT NULL,
                name text NOT NULL,
                phone text,
                is_primary boolean NOT NULL,
                -- false once a re-onboarding no longer lists the contact: kept for the tickets it owns.
                active boolean NOT NULL,
                available boolean NOT NULL DEFAULT true,
                PRIMARY KEY (customer_id, email)
            );
            CREATE SEQUENCE intake.ticket_number;
            CREATE TABLE intake.tickets (
                tracking_number text PRIMARY KEY,
                message_id text NOT NULL UNIQUE,
                customer_id text NOT NULL REFERENCES intake.customers,
                contact_email text NOT NULL,
                kind text NOT NULL,
                environment text NOT NULL,
                channel text NOT NULL,
                summary text NOT NULL,
                description text,
                impact text,
                urgency text,
                catalog_item text,
                component text,
                product text,
                requested_priority text,
                phone_required boolean NOT NULL,
                status text NOT NULL,
                received_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                -- Read model, from other services' events:
                priority text,
                request_class text,
                dispatch text,
                sla_targets jsonb NOT NULL DEFAULT '[]'
            );
            CREATE INDEX tickets_customer ON intake.tickets (customer_id, received_at);
            CREATE TABLE intake.ticket_audit (
                id bigserial PRIMARY KEY,
                tracking_number text NOT NULL REFERENCES intake.tickets,
                event text NOT NULL,
                action text,
                from_status text,
                to_status text,
                actor text NOT NULL,
                note text,
                at timestamptz NOT NULL,
                data jsonb
            );
            CREATE INDEX ticket_audit_ticket ON intake.ticket_audit (tracking_number, id);
            -- R-TKT-3: the audit trail is append-only.
            CREATE FUNCTION intake.refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ticket_audit is append-only';
            END $$;
            CREATE TRIGGER ticket_audit_append_only BEFORE UPDATE OR DELETE ON intake.ticket_audit
                FOR EACH ROW EXECUTE FUNCTION intake.refuse_audit_change();
            """),
        MessagingSchema.retentionIndexes(schema: name, version: 3),
    ]
}
