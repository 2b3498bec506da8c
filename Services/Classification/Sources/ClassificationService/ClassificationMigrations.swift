import CSSPostgres
import CSSRuntime

/// The `classification` schema: what it learned of customers and tickets from intake's
/// events, its decisions (classification, reclassification requests, dispatch, quota
/// consumption, problems) and an append-only audit trail. One fact, one row: every
/// "exactly once" of the issue is a unique key here, not a check in memory.
public enum ClassificationSchema {
    public static let name = "classification"

    public static let migrations: [Migration] = [
        MessagingSchema.migration(schema: name),
        MessagingSchema.retentionIndexes(schema: name, version: 2),
        Migration(version: 3, name: "customers, tickets, reclassification, quotas", sql: """
            CREATE TABLE classification.customers (
                customer_id text PRIMARY KEY,
                -- The data of the newest customer.onboarded (by event time).
                profile jsonb NOT NULL,
                version timestamptz NOT NULL
            );
            CREATE TABLE classification.tickets (
                tracking_number text PRIMARY KEY,
                customer_id text NOT NULL,
                kind text NOT NULL,
                environment text NOT NULL,
                impact text,
                urgency text,
                catalog_item text,
                component text,
                product text,
                summary text NOT NULL,
                requested_priority text,
                received_at timestamptz NOT NULL,
                -- Null until classified: a ticket of a customer not seen yet waits here.
                priority text,
                priority_source text,
                request_class text,
                dispatch text,
                third_party text,
                classified_at timestamptz,
                ever_critical boolean NOT NULL DEFAULT false,
                -- The last status intake announced (ticket.transitioned).
                status text NOT NULL DEFAULT 'new',
                status_at timestamptz
            );
            CREATE INDEX tickets_waiting ON classification.tickets (customer_id) WHERE classified_at IS NULL;
            -- Transitions announced before the ticket itself (events out of order).
            CREATE TABLE classification.early_transitions (
                event_id text PRIMARY KEY,
                tracking_number text NOT NULL,
                action text NOT NULL,
                status text NOT NULL,
                actor text NOT NULL,
                at timestamptz NOT NULL
            );
            CREATE INDEX early_transitions_ticket ON classification.early_transitions (tracking_number);
            CREATE TABLE classification.ticket_audit (
                id bigserial PRIMARY KEY,
                tracking_number text NOT NULL,
                event text NOT NULL,
                actor text NOT NULL,
                at timestamptz NOT NULL,
                data jsonb NOT NULL
            );
            CREATE INDEX ticket_audit_ticket ON classification.ticket_audit (tracking_number, id);
            CREATE FUNCTION classification.refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ticket_audit is append-only';
            END $$;
            CREATE TRIGGER ticket_audit_append_only BEFORE UPDATE OR DELETE ON classification.ticket_audit
                FOR EACH ROW EXECUTE FUNCTION classification.refuse_audit_change();
            CREATE SEQUENCE classification.request_number;
            CREATE TABLE classification.reclassification_requests (
                request_id text PRIMARY KEY,
                tracking_number text NOT NULL REFERENCES classification.tickets,
                from_priority text NOT NULL,
                to_priority text NOT NULL,
                reason text NOT NULL,
                requested_by text NOT NULL,
                requested_at timestamptz NOT NULL,
                state text NOT NULL CHECK (state IN ('pending', 'accepted', 'declined')),
                decided_by text,
                decision_reason text,
                decided_at timestamptz
            );
            -- At most one undecided request per ticket.
            CREATE UNIQUE INDEX reclassification_one_pending ON classification.reclassification_requests (tracking_number)
                WHERE state = 'pending';
            CREATE INDEX reclassification_ticket ON classification.reclassification_requests (tracking_number, requested_at);
            -- R-QTA-1: one consumption per service request, ever.
            CREATE TABLE classification.quota_consumption (
                tracking_number text PRIMARY KEY,
                customer_id text NOT NULL,
                quota text NOT NULL,
                year_start date NOT NULL,
                consumed_at timestamptz NOT NULL
            );
            CREATE TABLE classification.quota_usage (
                customer_id text NOT NULL,
                quota text NOT NULL,
                year_start date NOT NULL,
                used integer NOT NULL,
                -- The projection the last quota.warning of this year announced.
                warned_projection timestamptz,
                exceeded_at timestamptz,
                PRIMARY KEY (customer_id, quota, year_start)
            );
            """),
        Migration(version: 4, name: "problems", sql: """
            CREATE SEQUENCE classification.problem_number;
            CREATE TABLE classification.problems (
                problem_id text PRIMARY KEY,
                customer_id text NOT NULL,
                source text NOT NULL CHECK (source IN ('critical_incident', 'trend', 'customer')),
                status text NOT NULL CHECK (status IN ('open', 'resolved')),
                component text,
                summary text NOT NULL,
                description text,
                cause text,
                workaround text,
                resolution text,
                opened_by text NOT NULL,
                opened_at timestamptz NOT NULL,
                resolved_at timestamptz,
                -- The Critical incident a critical_incident problem was opened for.
                origin_ticket text
            );
            -- R-PRB-1: one problem per Critical incident; R-PRB-2: one open trend problem per customer and component.
            CREATE UNIQUE INDEX problems_one_per_critical_incident ON classification.problems (origin_ticket)
                WHERE source = 'critical_incident';
            CREATE UNIQUE INDEX problems_one_open_trend ON classification.problems (customer_id, component)
                WHERE source = 'trend' AND status = 'open';
            CREATE TABLE classification.problem_incidents (
                problem_id text NOT NULL REFERENCES classification.problems,
                tracking_number text NOT NULL,
                linked_by text NOT NULL,
                linked_at timestamptz NOT NULL,
                PRIMARY KEY (problem_id, tracking_number)
            );
            CREATE INDEX problem_incidents_ticket ON classification.problem_incidents (tracking_number);
            CREATE INDEX tickets_component ON classification.tickets (customer_id, component, received_at)
                WHERE kind = 'incident' AND component IS NOT NULL;
            """),
        // ticket.classified repeats them, so that escalation needs no ticket.received. A ticket
        // stored before this version has neither: its ticket.classified says null for both, and
        // escalation keeps what it learnt from that ticket's own ticket.received.
        Migration(version: 5, name: "tickets keep phone_required and contact_email", sql: """
            ALTER TABLE classification.tickets ADD COLUMN phone_required boolean;
            ALTER TABLE classification.tickets ADD COLUMN contact_email text;
            """),
    ]
}
