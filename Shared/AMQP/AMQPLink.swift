import CLibRabbitMQ
import Foundation

/// One librabbitmq connection with one channel, used only by the thread that owns it.
///
/// Every C pointer stays inside this type; what leaves it is copied into Swift values.
final class AMQPLink {
    private(set) var state: amqp_connection_state_t?
    let channel: amqp_channel_t = 1
    /// Bytes of a delivery's body kept in Swift memory; the rest is read and discarded.
    var maxBodyBytes = Int.max
    /// Connection-level notices (connection.blocked/unblocked) read while in the middle
    /// of a message's content; ``poll()`` hands them out next.
    private var notices: [Incoming] = []
    /// How long a message's content may take to arrive, frame to frame, before the
    /// connection counts as lost (set at open from the negotiated heartbeat).
    private var contentTimeoutSeconds = 30

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
        notices.removeAll()
        contentTimeoutSeconds = max(6, 3 * Int(amqp_get_heartbeat(conn)))
    }

    /// The heartbeat interval the broker accepted, in seconds (0: none).
    var heartbeatSeconds: Int {
        guard let state else { return 0 }
        return Int(amqp_get_heartbeat(state))
    }

    /// Restarts librabbitmq's heartbeat deadlines, as at connect, when resuming reading
    /// after a pause; false when it cannot (a frame is half parsed).
    ///
    /// librabbitmq moves its receive deadline only when a recv returns data, so after a
    /// pause longer than two heartbeats the next read that finds the socket empty would
    /// report a heartbeat timeout although the broker was sending all along.
    /// `amqp_tune_connection` resets both deadlines (and reallocates the outbound buffer
    /// at the same size); it aborts unless the parser is idle, hence the check.
    func restartHeartbeatClock() -> Bool {
        guard let state, amqp_release_buffers_ok(state) != 0 else { return false }
        return amqp_tune_connection(state, amqp_get_channel_max(state), amqp_get_frame_max(state), amqp_get_heartbeat(state)) == AMQP_STATUS_OK.rawValue
    }

    /// Sends a heartbeat frame; used while not reading, when librabbitmq sends none.
    func sendHeartbeat() throws(AMQPError) {
        let status = css_amqp_send_heartbeat(try conn())
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError(code: "connection_lost", message: "heartbeat failed: \(Self.describe(status))")
        }
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
        // RabbitMQ answers unbind-ok for a binding that does not exist (any more).
        for binding in topology.bindingsToRemove {
            amqp_queue_unbind(c, channel, pool.bytes(binding.queue), pool.bytes(binding.exchange), pool.bytes(binding.routingKey), amqp_empty_table)
            try check("removing the retired binding of \(binding.queue) to \(binding.exchange) with \(binding.routingKey)")
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

    /// Deletes a queue (tests and tools; services never delete their queues).
    func deleteQueue(_ queue: String) throws(AMQPError) {
        let pool = CStringPool()
        defer { withExtendedLifetime(pool) {} }
        amqp_queue_delete(try conn(), channel, pool.bytes(queue), 0, 0)
        try check("deleting queue \(queue)")
    }

    func deleteExchange(_ exchange: String) throws(AMQPError) {
        let pool = CStringPool()
        defer { withExtendedLifetime(pool) {} }
        amqp_exchange_delete(try conn(), channel, pool.bytes(exchange), 0)
        try check("deleting exchange \(exchange)")
    }

    /// The number of ready messages in `queue` (a passive declare: fails if it does not exist).
    func messageCount(queue: String) throws(AMQPError) -> Int {
        let pool = CStringPool()
        defer { withExtendedLifetime(pool) {} }
        let ok = amqp_queue_declare(try conn(), channel, pool.bytes(queue), 1, 0, 0, 0, amqp_empty_table)
        try check("passively declaring \(queue)")
        guard let ok else { throw AMQPError(code: "channel_closed", message: "no declare-ok for \(queue)") }
        return Int(ok.pointee.message_count)
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
        // Every buffer below must outlive amqp_basic_publish: the pool frees them after.
        let pool = CStringPool()
        defer { withExtendedLifetime(pool) {} }
        func field(_ name: String, _ value: String?) -> amqp_bytes_t? {
            if let raw = p.rawOverrides[name] { return pool.bytes(raw) }
            return value.map { pool.bytes($0) }
        }
        var props = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let v = field("content_type", p.contentType) { props.content_type = v; flags |= UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG) }
        if let v = field("message_id", p.messageID) { props.message_id = v; flags |= UInt32(AMQP_BASIC_MESSAGE_ID_FLAG) }
        if let v = field("correlation_id", p.correlationID) { props.correlation_id = v; flags |= UInt32(AMQP_BASIC_CORRELATION_ID_FLAG) }
        if let v = field("reply_to", p.replyTo) { props.reply_to = v; flags |= UInt32(AMQP_BASIC_REPLY_TO_FLAG) }
        if let v = field("type", p.type) { props.type = v; flags |= UInt32(AMQP_BASIC_TYPE_FLAG) }
        if let v = p.timestamp { props.timestamp = v; flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG) }
        props.delivery_mode = p.persistent ? 2 : 1
        flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        var entries: [amqp_table_entry_t] = []
        func entry(_ k: amqp_bytes_t, _ v: amqp_bytes_t) {
            entries.append(css_amqp_utf8_entry(k.bytes.assumingMemoryBound(to: CChar.self), k.len, v.bytes.assumingMemoryBound(to: CChar.self), v.len))
        }
        for (key, value) in p.headers.sorted(by: { $0.key < $1.key }) {
            entry(pool.bytes(key), field("headers.\(key)", value)!)
        }
        for (name, raw) in p.rawOverrides.sorted(by: { $0.key < $1.key }) where name.hasPrefix("headers.") {
            let key = String(name.dropFirst("headers.".count))
            if p.headers[key] == nil { entry(pool.bytes(key), pool.bytes(raw)) }
        }
        for (key, value) in p.rawHeaders.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            entry(pool.bytes(key), pool.bytes(value))
        }
        let exchange = pool.bytes(message.exchange)
        let routingKey = pool.bytes(message.routingKey)
        let mandatory: amqp_boolean_t = message.mandatory ? 1 : 0
        let status: Int32 = entries.withUnsafeMutableBufferPointer { entryBuffer in
            if !entryBuffer.isEmpty {
                props.headers = amqp_table_t(num_entries: Int32(entryBuffer.count), entries: entryBuffer.baseAddress)
                flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
            }
            props._flags = flags
            return message.body.withUnsafeBufferPointer { body in
                amqp_basic_publish(c, channel, exchange, routingKey, mandatory, 0, &props, css_amqp_bytes(body.baseAddress, body.count))
            }
        }
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError(code: "connection_lost", message: "publish failed: \(Self.describe(status))")
        }
    }

    /// What the broker sent that the owner must act on.
    enum Incoming {
        case delivery(exchange: String, routingKey: String, tag: UInt64, redelivered: Bool, properties: MessageProperties, body: [UInt8], bodySize: Int)
        /// A mandatory message that could not be routed (its body was discarded).
        case returned(replyCode: Int, replyText: String, properties: MessageProperties)
        case ack(tag: UInt64, multiple: Bool)
        case nack(tag: UInt64, multiple: Bool)
        case consumerCancelled
        case blocked(reason: String)
        case unblocked
        case other
    }

    /// True when a frame can be read without waiting on the socket.
    var hasBufferedData: Bool {
        guard let state else { return false }
        return !notices.isEmpty || amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
    }

    /// Reads one frame without blocking (this is also when librabbitmq sends and
    /// checks heartbeats); nil when none is ready.
    ///
    /// A `basic.deliver` or `basic.return` is followed by its content, which is read
    /// here to the end (see ``readContent(limit:)``), so a delivery comes out whole.
    func poll() throws(AMQPError) -> Incoming? {
        if !notices.isEmpty { return notices.removeFirst() }
        let c = try conn()
        var frame = amqp_frame_t()
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        let status = amqp_simple_wait_frame_noblock(c, &frame, &zero)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError(code: "connection_lost", message: Self.describe(status))
        }
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else {
            if frame.frame_type == UInt8(AMQP_FRAME_HEADER) || frame.frame_type == UInt8(AMQP_FRAME_BODY) {
                throw AMQPError(code: "protocol_error", message: "content frame outside a message on channel \(frame.channel)")
            }
            return .other
        }
        if frame.channel == 0 {
            return try connectionMethod(frame.payload.method)
        }
        let method = frame.payload.method
        switch method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let exchange = Self.string(deliver.exchange) ?? ""
            let routingKey = Self.decode(deliver.routing_key)
            var content = try readContent(limit: maxBodyBytes)
            if !routingKey.valid { content.properties.invalidUTF8.insert("routing_key") }
            return .delivery(exchange: exchange, routingKey: routingKey.string, tag: deliver.delivery_tag, redelivered: deliver.redelivered != 0,
                             properties: content.properties, body: content.body, bodySize: content.bodySize)
        case AMQP_BASIC_RETURN_METHOD:
            let ret = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let replyCode = Int(ret.reply_code)
            let replyText = Self.string(ret.reply_text) ?? ""
            let content = try readContent(limit: 0)
            return .returned(replyCode: replyCode, replyText: replyText, properties: content.properties)
        case AMQP_BASIC_ACK_METHOD:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .ack(tag: ack.delivery_tag, multiple: ack.multiple != 0)
        case AMQP_BASIC_NACK_METHOD:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .nack(tag: nack.delivery_tag, multiple: nack.multiple != 0)
        case AMQP_BASIC_CANCEL_METHOD:
            return .consumerCancelled
        case AMQP_CHANNEL_CLOSE_METHOD:
            throw Self.channelClosed(method)
        default:
            return .other
        }
    }

    /// A method on channel 0, wherever it arrives (also between a message's frames).
    private func connectionMethod(_ method: amqp_method_t) throws(AMQPError) -> Incoming {
        defer { if let state { amqp_maybe_release_buffers_on_channel(state, 0) } }
        switch method.id {
        case AMQP_CONNECTION_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let error = AMQPError(code: "connection_lost", message: "broker closed the connection: \(close.reply_code) \(Self.string(close.reply_text) ?? "")")
            // Best effort: the broker closes the socket either way.
            if let state {
                var ok = amqp_connection_close_ok_t(dummy: 0)
                _ = amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
            }
            throw error
        case AMQP_CONNECTION_BLOCKED_METHOD:
            let blocked = method.decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            return .blocked(reason: Self.string(blocked.reason) ?? "")
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            return .unblocked
        default:
            return .other
        }
    }

    private static func channelClosed(_ method: amqp_method_t) -> AMQPError {
        let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
        return AMQPError(code: "channel_closed", message: "broker closed the channel: \(close.reply_code) \(string(close.reply_text) ?? "")")
    }

    /// Reads the content header and body frames that follow a `basic.deliver` or
    /// `basic.return`, keeping at most `limit` body bytes.
    ///
    /// Unlike `amqp_read_message` (which mallocs the announced size up front and, in
    /// 0.11, frees the body on its error path so a later `amqp_destroy_message` frees it
    /// twice), this copies each fragment's kept part into Swift and recycles channel 1's
    /// pool after every frame. That pool then holds only what was already copied: the
    /// deliver/return method, the header's decoded properties and the current frame;
    /// `amqp_maybe_release_buffers_on_channel` keeps it when frames for the channel are
    /// queued, or when a frame is half read. Any failure to read is a lost connection.
    private func readContent(limit: Int) throws(AMQPError) -> (properties: MessageProperties, bodySize: Int, body: [UInt8]) {
        let c = try conn()
        amqp_maybe_release_buffers_on_channel(c, channel)
        var properties: MessageProperties?
        var bodySize = 0
        var received = 0
        var body: [UInt8] = []
        while properties == nil || received < bodySize {
            var frame = amqp_frame_t()
            var timeout = timeval(tv_sec: contentTimeoutSeconds, tv_usec: 0)
            let status = amqp_simple_wait_frame_noblock(c, &frame, &timeout)
            if status == AMQP_STATUS_TIMEOUT.rawValue {
                throw AMQPError(code: "connection_lost", message: "a message's content stalled for \(contentTimeoutSeconds) s")
            }
            if status != AMQP_STATUS_OK.rawValue {
                throw AMQPError(code: "connection_lost", message: "reading a message's content: \(Self.describe(status))")
            }
            if frame.channel == 0 {
                guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else {
                    throw AMQPError(code: "protocol_error", message: "frame of type \(frame.frame_type) on channel 0 inside a message")
                }
                let notice = try connectionMethod(frame.payload.method)
                if case .other = notice {} else { notices.append(notice) }
                continue
            }
            guard frame.channel == channel else {
                throw AMQPError(code: "protocol_error", message: "frame for channel \(frame.channel) inside a message on channel \(channel)")
            }
            let expected = UInt8(properties == nil ? AMQP_FRAME_HEADER : AMQP_FRAME_BODY)
            guard frame.frame_type == expected else {
                if frame.frame_type == UInt8(AMQP_FRAME_METHOD) && frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD {
                    throw Self.channelClosed(frame.payload.method)
                }
                throw AMQPError(code: "protocol_error", message: "frame of type \(frame.frame_type) inside a message (expected \(expected))")
            }
            if properties == nil {
                let header = frame.payload.properties
                guard header.body_size <= UInt64(Int.max), let decoded = header.decoded else {
                    throw AMQPError(code: "protocol_error", message: "unreadable content header")
                }
                bodySize = Int(header.body_size)
                properties = Self.properties(decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
                body.reserveCapacity(min(bodySize, limit))
            } else {
                let fragment = frame.payload.body_fragment
                guard fragment.len <= bodySize - received else {
                    throw AMQPError(code: "protocol_error", message: "body longer than the \(bodySize) bytes announced")
                }
                let keep = min(fragment.len, max(0, limit - body.count))
                if keep > 0, let bytes = fragment.bytes {
                    body.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: keep))
                }
                received += fragment.len
            }
            amqp_maybe_release_buffers_on_channel(c, channel)
        }
        return (properties!, bodySize, body)
    }

    func releaseBuffers() {
        if let state { amqp_maybe_release_buffers(state) }
    }

    // MARK: - Copying out of C

    static func string(_ bytes: amqp_bytes_t) -> String? {
        decode(bytes).string
    }

    /// Decodes lossily, and says whether the bytes were valid UTF-8.
    static func decode(_ bytes: amqp_bytes_t) -> (string: String, valid: Bool) {
        guard bytes.len > 0, let p = bytes.bytes else { return ("", true) }
        let buffer = UnsafeRawBufferPointer(start: p, count: bytes.len)
        if let s = String(validating: buffer, as: UTF8.self) { return (s, true) }
        return (String(decoding: buffer, as: UTF8.self), false)
    }

    static func properties(_ p: amqp_basic_properties_t) -> MessageProperties {
        func has(_ flag: Int32) -> Bool { p._flags & UInt32(flag) != 0 }
        var invalid: Set<String> = []
        func text(_ flag: Int32, _ bytes: amqp_bytes_t, _ name: String) -> String? {
            guard has(flag) else { return nil }
            let (s, valid) = decode(bytes)
            if !valid { invalid.insert(name) }
            return s
        }
        var headers: [String: String] = [:]
        if has(AMQP_BASIC_HEADERS_FLAG), p.headers.num_entries > 0, let entries = p.headers.entries {
            for i in 0..<Int(p.headers.num_entries) {
                var value = amqp_bytes_t()
                if css_amqp_entry_bytes(entries + i, &value) != 0 {
                    let key = decode(entries[i].key), v = decode(value)
                    headers[key.string] = v.string
                    if !key.valid || !v.valid { invalid.insert("headers.\(key.string)") }
                }
            }
        }
        return MessageProperties(
            contentType: text(AMQP_BASIC_CONTENT_TYPE_FLAG, p.content_type, "content_type"),
            messageID: text(AMQP_BASIC_MESSAGE_ID_FLAG, p.message_id, "message_id"),
            correlationID: text(AMQP_BASIC_CORRELATION_ID_FLAG, p.correlation_id, "correlation_id"),
            replyTo: text(AMQP_BASIC_REPLY_TO_FLAG, p.reply_to, "reply_to"),
            type: text(AMQP_BASIC_TYPE_FLAG, p.type, "type"),
            timestamp: has(AMQP_BASIC_TIMESTAMP_FLAG) ? p.timestamp : nil,
            headers: headers,
            persistent: has(AMQP_BASIC_DELIVERY_MODE_FLAG) && p.delivery_mode == 2,
            invalidUTF8: invalid)
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

/// C copies of strings and bytes that must stay alive across one librabbitmq call.
///
/// Copies the exact bytes with their length (not `strdup`/`strlen`), so a value with
/// a NUL byte goes out whole.
final class CStringPool {
    private var pointers: [UnsafeMutableRawPointer] = []

    func bytes(_ s: String) -> amqp_bytes_t {
        bytes(Array(s.utf8))
    }

    func bytes(_ b: [UInt8]) -> amqp_bytes_t {
        // One spare byte so an empty value still has a valid pointer, NUL-terminated for good measure.
        let p = malloc(b.count + 1)!
        b.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: b.count) } }
        p.storeBytes(of: 0, toByteOffset: b.count, as: UInt8.self)
        pointers.append(p)
        return css_amqp_bytes(p, b.count)
    }

    deinit {
        for p in pointers { free(p) }
    }
}
