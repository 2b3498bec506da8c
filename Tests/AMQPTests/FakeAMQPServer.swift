import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Just enough of an AMQP 0-9-1 broker, on 127.0.0.1 and an ephemeral port, to get
/// `AMQPConsumer` and `AMQPPublisher` connected and then misbehave on purpose.
///
/// Each connection runs on its own thread: the handshake (start/start-ok, tune/tune-ok,
/// open/open-ok), channel.open, basic.qos, basic.consume, confirm.select and the
/// closing handshakes. What happens after basic.consume-ok is ``Script``'s business.
final class FakeAMQPServer: @unchecked Sendable {
    /// How a connection that is to be dropped ends, after basic.deliver.
    enum Drop: Sendable, CustomStringConvertible {
        /// The content header (announcing 1 MiB) and then nothing.
        case afterHeader
        /// The content header, then the first ~1000 bytes of a body frame.
        case midBodyFrame
        /// The content header and `n` full body frames.
        case afterBodyFrames(Int)

        var description: String {
            switch self {
            case .afterHeader: "afterHeader"
            case .midBodyFrame: "midBodyFrame"
            case .afterBodyFrames(let n): "afterBodyFrames(\(n))"
            }
        }
    }

    enum Script: Sendable {
        /// The first `drops` connections start a 1 MiB delivery and drop; later ones deliver
        /// `finalBody` whole with message id "final", in two body frames with
        /// connection.blocked and connection.unblocked between its frames.
        case consumer(drops: Int, drop: Drop, finalBody: [UInt8])
        /// Accepts confirm.select and publishes, never confirms them.
        case neverConfirm
    }

    static let frameMax = 131_072
    let port: UInt16
    private let script: Script
    private let listener: Int32
    private let lock = NSLock()
    private var accepted = 0
    private var sockets: Set<Int32> = []
    private var stopped = false

    /// How many connections were accepted so far.
    var connections: Int { lock.withLock { accepted } }

    init(_ script: Script) throws {
        self.script = script
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listener = fd
        port = UInt16(bigEndian: addr.sin_port)
        let t = Thread { [self] in acceptLoop() }
        t.name = "fake-amqp-accept"
        t.start()
    }

    var url: String { "amqp://guest:guest@127.0.0.1:\(port)/%2F" }

    /// Stops accepting and drops every connection.
    func stop() {
        let open: Set<Int32> = lock.withLock {
            stopped = true
            return sockets
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if lock.withLock({ stopped }) { return }
                if errno == EINTR { continue }
                return
            }
            let index: Int? = lock.withLock {
                if stopped { return nil }
                accepted += 1
                sockets.insert(fd)
                return accepted
            }
            guard let index else {
                close(fd)
                return
            }
            let t = Thread { [self] in
                let connection = Connection(fd: fd)
                serve(connection, index: index)
                lock.withLock { _ = sockets.remove(fd) }
                shutdown(fd, Int32(SHUT_RDWR))
                close(fd)
            }
            t.name = "fake-amqp-\(index)"
            t.start()
        }
    }

    private func serve(_ c: Connection, index: Int) {
        guard c.readExactly(8) == Array("AMQP".utf8) + [0, 0, 9, 1] else { return }
        var start = Wire()
        start.octet(0); start.octet(9); start.emptyTable(); start.longstr("PLAIN"); start.longstr("en_US")
        c.sendMethod(channel: 0, 10, 10, start)
        while let frame = c.readFrame() {
            guard frame.type == 1, frame.payload.count >= 4 else { continue } // ignore heartbeats and content
            let classID = Int(frame.payload[0]) << 8 | Int(frame.payload[1])
            let methodID = Int(frame.payload[2]) << 8 | Int(frame.payload[3])
            switch (classID, methodID) {
            case (10, 11): // start-ok
                var tune = Wire()
                tune.short(0); tune.long(UInt32(Self.frameMax)); tune.short(0)
                c.sendMethod(channel: 0, 10, 30, tune)
            case (10, 31): break // tune-ok
            case (10, 40): // connection.open
                var ok = Wire()
                ok.shortstr("")
                c.sendMethod(channel: 0, 10, 41, ok)
            case (20, 10): // channel.open
                var ok = Wire()
                ok.longstr("")
                c.sendMethod(channel: frame.channel, 20, 11, ok)
            case (60, 10): // basic.qos
                c.sendMethod(channel: frame.channel, 60, 11, Wire())
            case (85, 10): // confirm.select
                c.sendMethod(channel: frame.channel, 85, 11, Wire())
            case (60, 20): // basic.consume
                var ok = Wire()
                ok.shortstr("fake-ctag")
                c.sendMethod(channel: frame.channel, 60, 21, ok)
                guard case .consumer(let drops, let drop, let finalBody) = script else { continue }
                if index <= drops {
                    misbehave(c, channel: frame.channel, drop: drop)
                    return
                }
                // Channel-0 notices may come between a message's frames: they are not content.
                c.sendDelivery(channel: frame.channel, tag: 1, messageID: "final", bodySize: UInt64(finalBody.count))
                var blocked = Wire()
                blocked.shortstr("low on memory (fake)")
                c.sendMethod(channel: 0, 10, 60, blocked)
                c.sendFrame(type: 3, channel: frame.channel, Array(finalBody.prefix(3)))
                c.sendMethod(channel: 0, 10, 61, Wire())
                c.sendFrame(type: 3, channel: frame.channel, Array(finalBody.dropFirst(3)))
            case (60, 80): break // basic.ack
            case (20, 40): // channel.close
                c.sendMethod(channel: frame.channel, 20, 41, Wire())
            case (10, 50): // connection.close
                c.sendMethod(channel: 0, 10, 51, Wire())
                return
            default:
                break
            }
        }
    }

    private func misbehave(_ c: Connection, channel: UInt16, drop: Drop) {
        let size = 1 << 20
        c.sendDelivery(channel: channel, tag: 1, messageID: "dropped", bodySize: UInt64(size))
        let fragment = [UInt8](repeating: 0xAB, count: Self.frameMax - 8)
        switch drop {
        case .afterHeader:
            break
        case .midBodyFrame:
            // A frame header announcing a full fragment, then a part of it.
            var header = Wire()
            header.octet(3); header.short(channel); header.long(UInt32(fragment.count))
            c.send(header.bytes + fragment.prefix(1000))
        case .afterBodyFrames(let n):
            for _ in 0..<n { c.sendFrame(type: 3, channel: channel, fragment) }
        }
    }

    /// One accepted socket.
    final class Connection {
        let fd: Int32

        init(fd: Int32) {
            self.fd = fd
        }

        func send(_ bytes: [UInt8]) {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                offset += n
            }
        }

        func sendFrame(type: UInt8, channel: UInt16, _ payload: [UInt8]) {
            var w = Wire()
            w.octet(type); w.short(channel); w.long(UInt32(payload.count))
            send(w.bytes + payload + [0xCE])
        }

        func sendMethod(channel: UInt16, _ classID: UInt16, _ methodID: UInt16, _ args: Wire) {
            var w = Wire()
            w.short(classID); w.short(methodID)
            sendFrame(type: 1, channel: channel, w.bytes + args.bytes)
        }

        /// basic.deliver and a content header with just a message id.
        func sendDelivery(channel: UInt16, tag: UInt64, messageID: String, bodySize: UInt64) {
            var deliver = Wire()
            deliver.shortstr("fake-ctag"); deliver.longlong(tag); deliver.octet(0); deliver.shortstr(""); deliver.shortstr("q")
            sendMethod(channel: channel, 60, 60, deliver)
            var header = Wire()
            header.short(60); header.short(0); header.longlong(bodySize); header.short(0x0080); header.shortstr(messageID)
            sendFrame(type: 2, channel: channel, header.bytes)
        }

        func readExactly(_ n: Int) -> [UInt8]? {
            var out = [UInt8](repeating: 0, count: n)
            var got = 0
            while got < n {
                let r = out[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if r <= 0 { return nil }
                got += r
            }
            return out
        }

        func readFrame() -> (type: UInt8, channel: UInt16, payload: [UInt8])? {
            guard let h = readExactly(7) else { return nil }
            let size = Int(h[3]) << 24 | Int(h[4]) << 16 | Int(h[5]) << 8 | Int(h[6])
            guard let rest = readExactly(size + 1) else { return nil }
            return (h[0], UInt16(h[1]) << 8 | UInt16(h[2]), Array(rest.prefix(size)))
        }
    }

    /// AMQP's big-endian encodings.
    struct Wire {
        var bytes: [UInt8] = []
        mutating func octet(_ v: UInt8) { bytes.append(v) }
        mutating func short(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        mutating func long(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((v >> UInt32(s)) & 0xFF)) } }
        mutating func longlong(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((v >> UInt64(s)) & 0xFF)) } }
        mutating func shortstr(_ s: String) { octet(UInt8(s.utf8.count)); bytes += s.utf8 }
        mutating func longstr(_ s: String) { long(UInt32(s.utf8.count)); bytes += s.utf8 }
        mutating func emptyTable() { long(0) }
    }
}
