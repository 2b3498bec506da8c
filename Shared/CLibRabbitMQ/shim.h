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

/* Helpers that read fields Swift sees as opaque or awkward unions. */
static inline amqp_bytes_t css_amqp_bytes(const void *bytes, size_t len) {
    amqp_bytes_t b;
    b.len = len;
    b.bytes = (void *)bytes;
    return b;
}

#endif
