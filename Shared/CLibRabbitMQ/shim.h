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
 * services' connections apart in `rabbitmqctl list_connections`. */
static inline amqp_rpc_reply_t css_amqp_login_named(amqp_connection_state_t state,
                                                    const char *vhost,
                                                    int frame_max,
                                                    int heartbeat,
                                                    const char *user,
                                                    const char *password,
                                                    const char *connection_name) {
    amqp_table_entry_t entry;
    entry.key = amqp_cstring_bytes("connection_name");
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = amqp_cstring_bytes(connection_name);
    amqp_table_t props;
    props.num_entries = 1;
    props.entries = &entry;
    return amqp_login_with_properties(state, vhost, 0, frame_max, heartbeat, &props,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
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
