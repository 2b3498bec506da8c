import CLibRabbitMQ
import Foundation

/// One librabbitmq connection with one channel, used only by the thread that owns it.
///
/// Every C pointer stays inside this type; what leaves it is copied into Swift values.
final class AMQPLink {
    private(set) var state: amqp_connection_state_t?
    let channel: amqp_channel_t = 1

    init() {}

    deinit {
        close()
    }

    var socketDescriptor: Int32 {
        guard let state else { return -1 }
        return amqp_get_sockfd(state)
    }

    /// Connects, logs in and opens channel 1.
    func open(_ configuration: AMQPConfiguration, name: String) throws(AMQPError) {
        close()
        guard let conn = amqp_new_connection() else {
            throw AMQPError(code: "connection_failed", message: "could not allocate a connection")
        }
        state = conn
        guard let socket = amqp_tcp_socket_new(conn) else {
            close()
            throw AMQPError(code: "connection_failed", message: "could not create a socket")
        }
        var timeout = timeval(tv_sec: configuration.connectTimeoutSeconds, tv_usec: 0)
        let status = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &timeout)
        if status != AMQP_STATUS_OK.rawValue {
            close()
            throw AMQPError(code: "connection_failed", message: "cannot connect to \(configuration.host):\(configuration.port): \(Self.describe(status))")
        }
        amqp_set_handshake_timeout(conn, &timeout)
        var rpcTimeout = timeval(tv_sec: 30, tv_usec: 0)
        amqp_set_rpc_timeout(conn, &rpcTimeout)
        let login = css_amqp_login_named(conn, configuration.vhost, 131_072, Int32(configuration.heartbeatSeconds),
                                         configuration.user, configuration.password, name)
        if let error = Self.error(from: login, context: "login to vhost \(configuration.vhost)") {
            close()
            throw AMQPError(code: "login_failed", message: error)
        }
        amqp_channel_open(conn, channel)
        try check("opening the channel")
    }

    func close() {
        guard let conn = state else { return }
        state = nil
        // Best effort: the broker may be gone already.
        _ = amqp_channel_close(conn, channel, AMQP_REPLY_SUCCESS)
        _ = amqp_connection_close(conn, AMQP_REPLY_SUCCESS)
        amqp_destroy_connection(conn)
    }

    /// Drops the connection without the closing handshake (after a socket error).
    func abandon() {
        guard let conn = state else { return }
        state = nil
        amqp_destroy_connection(conn)
    }

    private func conn() throws(AMQPError) -> amqp_connection_state_t {
        guard let state else { throw AMQPError(code: "connection_lost", message: "not connected") }
        return state
    }

    /// Turns the last RPC reply into an error, if it was one.
    func check(_ context: String) throws(AMQPError) {
        let reply = amqp_get_rpc_reply(try conn())
        if let message = Self.error(from: reply, context: context) {
            throw AMQPError(code: reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION ? "channel_closed" : "connection_lost", message: message)
        }
    }

    func declare(_ topology: Topology) throws(AMQPError) {
        let c = try conn()
        // amqp_cstring_bytes keeps the pointer it is given: the pool keeps the C strings alive.
        let pool = CStringPool()
        defer { withExtendedLifetime(pool) {} }
        for exchange in topology.exchanges {
            amqp_exchange_declare(c, channel, pool.bytes(exchange.name), pool.bytes(exchange.type), 0, 1, 0, 0, amqp_empty_table)
            try check("declaring exchange \(exchange.name)")
        }
        for queue in topology.queues {
            amqp_queue_declare(c, channel, pool.bytes(queue.name), 0, queue.durable ? 1 : 0, queue.exclusive ? 1 : 0, queue.autoDelete ? 1 : 0, amqp_empty_table)
            try check("declaring queue \(queue.name)")
        }
        for binding in topology.bindings {
            amqp_queue_bind(c, channel, pool.bytes(binding.queue), pool.bytes(binding.exchange), pool.bytes(binding.routingKey), amqp_empty_table)
            try check("binding \(binding.queue) to \(binding.exchange) with \(binding.routingKey)")
        }
    }

    func confirmSelect() throws(AMQPError) {
        amqp_confirm_select(try conn(), channel)
        try check("enabling publisher confirms")
    }

    /// Starts consuming; returns the consumer tag.
    func consume(queue: String, prefetch: Int) throws(AMQPError) -> String {
        let c = try conn()
        let pool = CStringPool()
        defer { withExtendedLifetime(pool) {} }
        amqp_basic_qos(c, channel, 0, UInt16(clamping: prefetch), 0)
        try check("setting prefetch")
        let ok = amqp_basic_consume(c, channel, pool.bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table)
        try check("consuming from \(queue)")
        guard let ok else { throw AMQPError(code: "channel_closed", message: "no consume-ok for \(queue)") }
        return Self.string(ok.pointee.consumer_tag) ?? ""
    }

    func cancel(consumerTag: String) throws(AMQPError) {
        let pool = CStringPool()
        defer { withExtendedLifetime(pool) {} }
        amqp_basic_cancel(try conn(), channel, pool.bytes(consumerTag))
        try check("cancelling consumer")
    }

    func ack(_ tag: UInt64, multiple: Bool) throws(AMQPError) {
        let status = amqp_basic_ack(try conn(), channel, tag, multiple ? 1 : 0)
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError(code: "connection_lost", message: "ack failed: \(Self.describe(status))")
        }
    }

    func nack(_ tag: UInt64, requeue: Bool) throws(AMQPError) {
        let status = amqp_basic_nack(try conn(), channel, tag, 0, requeue ? 1 : 0)
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError(code: "connection_lost", message: "nack failed: \(Self.describe(status))")
        }
    }

    /// Sends one message; the confirm (if enabled) arrives later as a frame.
    func publish(_ message: OutgoingMessage) throws(AMQPError) {
        let c = try conn()
        let p = message.properties
        // Every C string below must outlive amqp_basic_publish: the pool frees them after.
        let pool = CStringPool()
        defer { withExtendedLifetime(pool) {} }
        func bytes(_ s: String) -> amqp_bytes_t { pool.bytes(s) }
        var props = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let v = p.contentType { props.content_type = bytes(v); flags |= UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG) }
        if let v = p.messageID { props.message_id = bytes(v); flags |= UInt32(AMQP_BASIC_MESSAGE_ID_FLAG) }
        if let v = p.correlationID { props.correlation_id = bytes(v); flags |= UInt32(AMQP_BASIC_CORRELATION_ID_FLAG) }
        if let v = p.replyTo { props.reply_to = bytes(v); flags |= UInt32(AMQP_BASIC_REPLY_TO_FLAG) }
        if let v = p.type { props.type = bytes(v); flags |= UInt32(AMQP_BASIC_TYPE_FLAG) }
        if let v = p.timestamp { props.timestamp = v; flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG) }
        props.delivery_mode = p.persistent ? 2 : 1
        flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        var entries: [amqp_table_entry_t] = []
        for (key, value) in p.headers.sorted(by: { $0.key < $1.key }) {
            let k = bytes(key), v = bytes(value)
            entries.append(css_amqp_utf8_entry(k.bytes.assumingMemoryBound(to: CChar.self), k.len, v.bytes.assumingMemoryBound(to: CChar.self), v.len))
        }
        let exchange = bytes(message.exchange)
        let routingKey = bytes(message.routingKey)
        let status: Int32 = entries.withUnsafeMutableBufferPointer { entryBuffer in
            if !entryBuffer.isEmpty {
                props.headers = amqp_table_t(num_entries: Int32(entryBuffer.count), entries: entryBuffer.baseAddress)
                flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
            }
            props._flags = flags
            return message.body.withUnsafeBufferPointer { body in
                amqp_basic_publish(c, channel, exchange, routingKey, 0, 0, &props, css_amqp_bytes(body.baseAddress, body.count))
            }
        }
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError(code: "connection_lost", message: "publish failed: \(Self.describe(status))")
        }
    }

    /// What the broker sent that the owner must act on.
    enum Incoming {
        case delivery(exchange: String, routingKey: String, tag: UInt64, redelivered: Bool, properties: MessageProperties, body: [UInt8])
        case ack(tag: UInt64, multiple: Bool)
        case nack(tag: UInt64, multiple: Bool)
        case consumerCancelled
        case other
    }

    /// True when a frame can be read without waiting on the socket.
    var hasBufferedData: Bool {
        guard let state else { return false }
        return amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
    }

    /// Reads one frame without blocking (this is also when librabbitmq sends and
    /// checks heartbeats); nil when none is ready.
    func poll() throws(AMQPError) -> Incoming? {
        let c = try conn()
        var frame = amqp_frame_t()
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        let status = amqp_simple_wait_frame_noblock(c, &frame, &zero)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError(code: "connection_lost", message: Self.describe(status))
        }
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return .other }
        let method = frame.payload.method
        switch method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let exchange = Self.string(deliver.exchange) ?? ""
            let routingKey = Self.string(deliver.routing_key) ?? ""
            var message = amqp_message_t()
            let reply = amqp_read_message(c, frame.channel, &message, 0)
            defer { amqp_destroy_message(&message) }
            if let error = Self.error(from: reply, context: "reading a delivery") {
                throw AMQPError(code: "connection_lost", message: error)
            }
            let body: [UInt8] = message.body.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: message.body.bytes, count: message.body.len))
            return .delivery(exchange: exchange, routingKey: routingKey, tag: deliver.delivery_tag, redelivered: deliver.redelivered != 0,
                             properties: Self.properties(message.properties), body: body)
        case AMQP_BASIC_ACK_METHOD:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .ack(tag: ack.delivery_tag, multiple: ack.multiple != 0)
        case AMQP_BASIC_NACK_METHOD:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .nack(tag: nack.delivery_tag, multiple: nack.multiple != 0)
        case AMQP_BASIC_CANCEL_METHOD:
            return .consumerCancelled
        case AMQP_CHANNEL_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            throw AMQPError(code: "channel_closed", message: "broker closed the channel: \(close.reply_code) \(Self.string(close.reply_text) ?? "")")
        case AMQP_CONNECTION_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            throw AMQPError(code: "connection_lost", message: "broker closed the connection: \(close.reply_code) \(Self.string(close.reply_text) ?? "")")
        default:
            return .other
        }
    }

    func releaseBuffers() {
        if let state { amqp_maybe_release_buffers(state) }
    }

    // MARK: - Copying out of C

    static func string(_ bytes: amqp_bytes_t) -> String? {
        guard bytes.len > 0, let p = bytes.bytes else { return bytes.len == 0 ? "" : nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: bytes.len), as: UTF8.self)
    }

    static func properties(_ p: amqp_basic_properties_t) -> MessageProperties {
        func has(_ flag: Int32) -> Bool { p._flags & UInt32(flag) != 0 }
        var headers: [String: String] = [:]
        if has(AMQP_BASIC_HEADERS_FLAG), p.headers.num_entries > 0, let entries = p.headers.entries {
            for i in 0..<Int(p.headers.num_entries) {
                var value = amqp_bytes_t()
                if css_amqp_entry_bytes(entries + i, &value) != 0, let key = string(entries[i].key) {
                    headers[key] = string(value) ?? ""
                }
            }
        }
        return MessageProperties(
            contentType: has(AMQP_BASIC_CONTENT_TYPE_FLAG) ? string(p.content_type) : nil,
            messageID: has(AMQP_BASIC_MESSAGE_ID_FLAG) ? string(p.message_id) : nil,
            correlationID: has(AMQP_BASIC_CORRELATION_ID_FLAG) ? string(p.correlation_id) : nil,
            replyTo: has(AMQP_BASIC_REPLY_TO_FLAG) ? string(p.reply_to) : nil,
            type: has(AMQP_BASIC_TYPE_FLAG) ? string(p.type) : nil,
            timestamp: has(AMQP_BASIC_TIMESTAMP_FLAG) ? p.timestamp : nil,
            headers: headers,
            persistent: has(AMQP_BASIC_DELIVERY_MODE_FLAG) && p.delivery_mode == 2)
    }

    static func describe(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }

    static func error(from reply: amqp_rpc_reply_t, context: String) -> String? {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return nil
        case AMQP_RESPONSE_NONE:
            return "\(context): missing RPC reply"
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return "\(context): \(describe(reply.library_error))"
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case AMQP_CONNECTION_CLOSE_METHOD:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                return "\(context): broker closed the connection: \(close.reply_code) \(string(close.reply_text) ?? "")"
            case AMQP_CHANNEL_CLOSE_METHOD:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                return "\(context): broker closed the channel: \(close.reply_code) \(string(close.reply_text) ?? "")"
            default:
                return "\(context): unexpected server reply \(reply.reply.id)"
            }
        default:
            return "\(context): unknown reply type"
        }
    }
}

/// C copies of strings that must stay alive across one librabbitmq call.
final class CStringPool {
    private var pointers: [UnsafeMutablePointer<CChar>] = []

    func bytes(_ s: String) -> amqp_bytes_t {
        let p = strdup(s)!
        pointers.append(p)
        return css_amqp_bytes(p, strlen(p))
    }

    deinit {
        for p in pointers { free(p) }
    }
}
