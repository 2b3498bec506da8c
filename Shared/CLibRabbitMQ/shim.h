#ifndef CSS_CLIBRABBITMQ_SHIM_H
#define CSS_CLIBRABBITMQ_SHIM_H

/* rabbitmq-c 0.12 moved its headers under rabbitmq-c/; Debian 12 ships 0.11. */
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/framing.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_framing.h>
#endif

#include <string.h>
#include <sys/time.h>

/* amqp_login is variadic, which Swift cannot call: fix its arity. */
static inline amqp_rpc_reply_t css_amqp_login_plain(amqp_connection_state_t state,
                                                    const char *vhost,
                                                    int channel_max,
                                                    int frame_max,
                                                    int heartbeat,
                                                    const char *user,
                                                    const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat,
                      AMQP_SASL_METHOD_PLAIN, user, password);
}

/* Login with a connection_name client property, so operators can tell the
 * services' connections apart in `rabbitmqctl list_connections`, and with the
 * capabilities that make RabbitMQ send basic.cancel (queue deleted),
 * connection.blocked/unblocked and basic.nack. amqp_login_with_properties merges
 * this table into its defaults (amqp_merge_capabilities: tables with the same key
 * merge recursively, ours win) and deep-copies the result into the connection's
 * pool, so these stack entries need only outlive the call. */
static inline amqp_table_entry_t css_amqp_bool_entry(const char *key, int value) {
    amqp_table_entry_t entry;
    entry.key = amqp_cstring_bytes(key);
    entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    entry.value.value.boolean = value ? 1 : 0;
    return entry;
}

static inline amqp_rpc_reply_t css_amqp_login_named(amqp_connection_state_t state,
                                                    const char *vhost,
                                                    int frame_max,
                                                    int heartbeat,
                                                    const char *user,
                                                    const char *password,
                                                    const char *connection_name) {
    amqp_table_entry_t capabilities[5];
    capabilities[0] = css_amqp_bool_entry("consumer_cancel_notify", 1);
    capabilities[1] = css_amqp_bool_entry("connection.blocked", 1);
    capabilities[2] = css_amqp_bool_entry("basic.nack", 1);
    capabilities[3] = css_amqp_bool_entry("publisher_confirms", 1);
    capabilities[4] = css_amqp_bool_entry("authentication_failure_close", 1);
    amqp_table_t capabilities_table;
    capabilities_table.num_entries = 5;
    capabilities_table.entries = capabilities;

    amqp_table_entry_t entries[2];
    entries[0].key = amqp_cstring_bytes("connection_name");
    entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[0].value.value.bytes = amqp_cstring_bytes(connection_name);
    entries[1].key = amqp_cstring_bytes("capabilities");
    entries[1].value.kind = AMQP_FIELD_KIND_TABLE;
    entries[1].value.value.table = capabilities_table;
    amqp_table_t props;
    props.num_entries = 2;
    props.entries = entries;
    return amqp_login_with_properties(state, vhost, 0, frame_max, heartbeat, &props,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

/* A heartbeat frame, sent by hand while the consumer has stopped reading
 * (librabbitmq only sends heartbeats from inside its read calls). */
static inline int css_amqp_send_heartbeat(amqp_connection_state_t state) {
    amqp_frame_t frame;
    memset(&frame, 0, sizeof(frame));
    frame.frame_type = AMQP_FRAME_HEARTBEAT;
    frame.channel = 0;
    return amqp_send_frame(state, &frame);
}

static inline amqp_table_entry_t css_amqp_utf8_entry(const char *key, size_t key_len,
                                                     const char *value, size_t value_len) {
    amqp_table_entry_t entry;
    entry.key.bytes = (void *)key;
    entry.key.len = key_len;
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes.bytes = (void *)value;
    entry.value.value.bytes.len = value_len;
    return entry;
}

/* 1 and the bytes when a header value is a string, 0 otherwise. */
static inline int css_amqp_entry_bytes(const amqp_table_entry_t *entry, amqp_bytes_t *out) {
    if (entry->value.kind == AMQP_FIELD_KIND_UTF8 || entry->value.kind == AMQP_FIELD_KIND_BYTES) {
        *out = entry->value.value.bytes;
        return 1;
    }
    return 0;
}

/* Helpers that read fields Swift sees as opaque or awkward unions. */
static inline amqp_bytes_t css_amqp_bytes(const void *bytes, size_t len) {
    amqp_bytes_t b;
    b.len = len;
    b.bytes = (void *)bytes;
    return b;
}

#endif
