#!/usr/bin/env python3
"""Writes pgbench scripts that replay intake's database work for one command batch.

per_ticket.sql: what CommandProcessor + IntakeStore send today for a batch of B
  ticket.submit commands: BEGIN, then per ticket inbox claim, SAVEPOINT, customer
  and contact look-ups, ticket insert, audit insert, RELEASE, inbox reply update
  (8 round trips), one multi-row outbox insert (reply + event per ticket), COMMIT,
  and the relay's outbox DELETE in a transaction of its own.
set_based.sql: the same rows written set-wise: one statement per table for the
  whole batch, no savepoints, the reply stored with the inbox row, outbox rows
  deleted in the same transaction's successor as today.
Usage: gen.py OUTDIR [BATCH]
"""
import os
import sys

out = sys.argv[1]
B = int(sys.argv[2]) if len(sys.argv) > 2 else 64
os.makedirs(out, exist_ok=True)

schema = """
CREATE SCHEMA intake;
CREATE TABLE intake.inbox (message_id text PRIMARY KEY, command text NOT NULL, body_hash bigint NOT NULL, reply jsonb, received_at timestamptz NOT NULL);
CREATE TABLE intake.outbox (id bigserial PRIMARY KEY, exchange text NOT NULL, routing_key text NOT NULL, message_id text NOT NULL, correlation_id text,
  content_type text NOT NULL, headers jsonb NOT NULL DEFAULT '{}', body bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz NOT NULL DEFAULT now() + interval '10 seconds');
CREATE INDEX outbox_lease ON intake.outbox (lease_until);
CREATE TABLE intake.customers (customer_id text PRIMARY KEY, name text NOT NULL, team text NOT NULL, time_zone text NOT NULL, support_region text NOT NULL,
  settings jsonb NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE intake.contacts (customer_id text NOT NULL REFERENCES intake.customers, email text NOT NULL, name text NOT NULL, phone text,
  is_primary boolean NOT NULL, active boolean NOT NULL, available boolean NOT NULL DEFAULT true, PRIMARY KEY (customer_id, email));
CREATE SEQUENCE intake.ticket_number;
CREATE TABLE intake.tickets (tracking_number text PRIMARY KEY, message_id text NOT NULL UNIQUE, customer_id text NOT NULL REFERENCES intake.customers,
  contact_email text NOT NULL, kind text NOT NULL, environment text NOT NULL, channel text NOT NULL, summary text NOT NULL, description text, impact text,
  urgency text, catalog_item text, component text, product text, requested_priority text, phone_required boolean NOT NULL, status text NOT NULL,
  received_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, priority text, request_class text, dispatch text, sla_targets jsonb NOT NULL DEFAULT '[]');
CREATE INDEX tickets_customer ON intake.tickets (customer_id, received_at);
CREATE TABLE intake.ticket_audit (id bigserial PRIMARY KEY, tracking_number text NOT NULL REFERENCES intake.tickets, event text NOT NULL, action text,
  from_status text, to_status text, actor text NOT NULL, note text, at timestamptz NOT NULL, data jsonb);
CREATE INDEX ticket_audit_ticket ON intake.ticket_audit (tracking_number, id);
INSERT INTO intake.customers VALUES ('bench', 'Bench', 'cloud-ops', 'America/Toronto', 'CA-ON', '{}', now(), now());
INSERT INTO intake.contacts (customer_id, email, name, is_primary, active) VALUES ('bench', 'ana@bench.example', 'Ana', true, true);
"""
open(os.path.join(out, "schema.sql"), "w").write(schema)

DESC = "Synthetic ticket of intake-load: p95 latency of the checkout API exceeded 2 s for 5 min."
body = "\\x" + "7b" * 300  # a 300-byte bytea

lines = ["\\set r random(1, 999999999999)", "BEGIN;"]
for k in range(B):
    m = f"'m-' || :client_id || '-' || :r || '-{k}'"
    lines += [
        f"INSERT INTO intake.inbox (message_id, command, body_hash, received_at) VALUES ({m}, 'ticket.submit', 42, now()) ON CONFLICT (message_id) DO NOTHING;",
        "SAVEPOINT command;",
        "SELECT 1 FROM intake.customers WHERE customer_id = 'bench';",
        "SELECT email, is_primary, active, available FROM intake.contacts WHERE customer_id = 'bench' AND email = 'ana@bench.example';",
        "WITH n AS (SELECT nextval('intake.ticket_number') AS seq) INSERT INTO intake.tickets (tracking_number, message_id, customer_id, contact_email, kind, "
        "environment, channel, summary, description, impact, urgency, catalog_item, component, product, requested_priority, phone_required, status, received_at, updated_at) "
        f"SELECT 'INC-' || lpad(n.seq::text, 6, '0'), {m}, 'bench', 'ana@bench.example', 'incident', 'production', 'api', 'Checkout latency', '{DESC}', "
        "'degraded', 'medium', NULL, 'checkout-api', NULL, NULL, false, 'new', now(), now() FROM n RETURNING tracking_number;",
        "INSERT INTO intake.ticket_audit (tracking_number, event, action, from_status, to_status, actor, note, at, data) "
        "VALUES ('INC-' || lpad(currval('intake.ticket_number')::text, 6, '0'), 'received', NULL, NULL, 'new', 'ana@bench.example', NULL, now(), '{\"channel\":\"api\",\"phoneRequired\": false}');",
        "RELEASE SAVEPOINT command;",
        f"UPDATE intake.inbox SET reply = '{{\"ok\": true,\"result\": {{\"trackingNumber\":\"INC-000001\"}}}}' WHERE message_id = {m};",
    ]
values = ",".join(f"('', 'q', 'x-{k}', 'c', 'application/json', '{{}}', '{body}')" for k in range(2 * B))
lines += [f"INSERT INTO intake.outbox (exchange, routing_key, message_id, correlation_id, content_type, headers, body) VALUES {values} RETURNING id;",
          "COMMIT;",
          f"DELETE FROM intake.outbox WHERE id = ANY(ARRAY(SELECT id FROM intake.outbox ORDER BY id LIMIT {2 * B}));"]
open(os.path.join(out, "per_ticket.sql"), "w").write("\n".join(lines) + "\n")

m = "'m-' || :client_id || '-' || :r || '-' || g"
set_based = [
    "\\set r random(1, 999999999999)",
    "BEGIN;",
    # Which commands are new: one statement for the batch.
    f"INSERT INTO intake.inbox (message_id, command, body_hash, reply, received_at) SELECT {m}, 'ticket.submit', 42, "
    f"'{{\"ok\": true,\"result\": {{\"trackingNumber\":\"INC-000001\"}}}}', now() FROM generate_series(1, {B}) g ON CONFLICT (message_id) DO NOTHING RETURNING message_id;",
    # Customers and contacts of the batch in one look-up.
    "SELECT c.customer_id, k.email, k.active FROM intake.customers c JOIN intake.contacts k USING (customer_id) WHERE c.customer_id = ANY('{bench}') AND k.email = ANY('{ana@bench.example}');",
    # Tickets and their audit rows in one statement.
    "WITH t AS (INSERT INTO intake.tickets (tracking_number, message_id, customer_id, contact_email, kind, environment, channel, summary, description, impact, urgency, "
    "catalog_item, component, product, requested_priority, phone_required, status, received_at, updated_at) "
    f"SELECT 'INC-' || lpad(nextval('intake.ticket_number')::text, 6, '0'), {m}, 'bench', 'ana@bench.example', 'incident', 'production', 'api', 'Checkout latency', "
    f"'{DESC}', 'degraded', 'medium', NULL, 'checkout-api', NULL, NULL, false, 'new', now(), now() FROM generate_series(1, {B}) g RETURNING tracking_number) "
    "INSERT INTO intake.ticket_audit (tracking_number, event, to_status, actor, at, data) SELECT tracking_number, 'received', 'new', 'ana@bench.example', now(), "
    "'{\"channel\":\"api\",\"phoneRequired\": false}' FROM t;",
    f"INSERT INTO intake.outbox (exchange, routing_key, message_id, correlation_id, content_type, headers, body) VALUES {values} RETURNING id;",
    "COMMIT;",
    f"DELETE FROM intake.outbox WHERE id = ANY(ARRAY(SELECT id FROM intake.outbox ORDER BY id LIMIT {2 * B}));",
]
open(os.path.join(out, "set_based.sql"), "w").write("\n".join(set_based) + "\n")
