import CSSPostgres
import CSSRuntime

/// The `change` schema: what the service learned of customers and incidents (from other
/// services' events), the standard-change catalogue, the boards, each customer's maintenance
/// windows and freezes, the changes, the directory of installed components, and the durable
/// timers of R-CHG-7.
public enum ChangeSchema {
    public static let name = "change"

    public static let migrations: [Migration] = MessagingSchema.withTimers(schema: name) + [
        Migration(version: 4, name: "customers, incidents, catalogue, boards, windows, changes, directory", sql: """
            CREATE TABLE change.customers (
                customer_id text PRIMARY KEY,
                -- The data of the newest customer.onboarded (by event time).
                profile jsonb NOT NULL,
                version timestamptz NOT NULL,
                -- When its first customer.onboarded reached the service (R-CHG-7 without any update).
                first_seen timestamptz NOT NULL,
                -- When its last Service Update (a change that installed a patch) was implemented.
                last_update_at timestamptz
            );
            CREATE TABLE change.incidents (
                tracking_number text PRIMARY KEY,
                customer_id text,
                kind text,
                environment text,
                priority text,
                priority_at timestamptz,
                status text,
                status_at timestamptz
            );
            CREATE TABLE change.templates (
                template_id text PRIMARY KEY,
                template jsonb NOT NULL,
                revision integer NOT NULL,
                updated_by text NOT NULL,
                updated_at timestamptz NOT NULL
            );
            CREATE TABLE change.boards (
                board text PRIMARY KEY,
                members text[] NOT NULL,
                quorum integer NOT NULL,
                revision integer NOT NULL,
                updated_by text NOT NULL,
                updated_at timestamptz NOT NULL
            );
            CREATE TABLE change.plans (
                customer_id text PRIMARY KEY,
                -- ChangeManagementService.MaintenancePlan: windows and freezes.
                plan jsonb NOT NULL,
                revision integer NOT NULL,
                updated_by text NOT NULL,
                updated_at timestamptz NOT NULL
            );
            CREATE SEQUENCE change.change_numbers;
            CREATE TABLE change.changes (
                change_id text PRIMARY KEY,
                customer_id text NOT NULL,
                state text NOT NULL,
                type text NOT NULL,
                components text[] NOT NULL,
                -- The whole change (ChangeManagementService.Change) as the lifecycle left it.
                body jsonb NOT NULL,
                -- The schedule that conflict detection compares (R-CHG-5): Test while scheduled or
                -- deployed there, Production while scheduled or being implemented.
                window_environment text,
                window_start timestamptz,
                window_end timestamptz,
                updated_at timestamptz NOT NULL
            );
            CREATE INDEX changes_customer ON change.changes (customer_id, change_id);
            CREATE INDEX changes_windows ON change.changes (customer_id, window_environment, window_start) WHERE window_environment IS NOT NULL;
            CREATE TABLE change.directory (
                customer_id text NOT NULL,
                component text NOT NULL,
                kind text NOT NULL,
                version text NOT NULL,
                change_id text NOT NULL,
                installed_at timestamptz NOT NULL,
                PRIMARY KEY (customer_id, component, kind)
            );
            """),
    ]
}
