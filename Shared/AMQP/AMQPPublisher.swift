import Logging

/// Publishes persistent messages with publisher confirms, on a connection of its own.
///
/// `publish` sends a whole batch before waiting, so a batch of N costs one round
/// trip, not N: the broker's `basic.ack` frames (often `multiple`) settle it. A
/// `basic.nack`, or losing the connection before every confirm arrived, fails the
/// batch: the caller (the outbox relay) publishes it again, which is why every
/// consumer in the system tolerates duplicates.
public final class AMQPPublisher: @unchecked Sendable {
    private let thread: LinkThread

    // Touched only on the link thread.
    private var nextSeq: UInt64 = 1
    private var lowestUnsettled: UInt64 = 1
    private var outstanding: [UInt64: Batch] = [:]

    /// Starts connecting at once, in the background, retrying with backoff.
    ///
    /// - Parameters:
    ///   - topology: declared at every (re)connect, so publishing to a fresh broker works.
    ///   - name: shown as the connection name in the broker's management tools.
    public init(configuration: AMQPConfiguration, topology: Topology = Topology(), name: String, logger: Logger) {
        thread = LinkThread(configuration: configuration, name: name, logger: logger)
        thread.onConnect = { [unowned self] t throws(AMQPError) in
            try t.link.declare(topology)
            try t.link.confirmSelect()
            self.nextSeq = 1
            self.lowestUnsettled = 1
        }
        thread.onIncoming = { [unowned self] _, incoming in
            switch incoming {
            case .ack(let tag, let multiple): self.settle(tag: tag, multiple: multiple, error: nil)
            case .nack(let tag, let multiple):
                self.settle(tag: tag, multiple: multiple, error: AMQPError(code: "nacked", message: "the broker refused the message (basic.nack)"))
            default: break
            }
        }
        thread.onDisconnect = { [unowned self] _, error in
            for batch in self.outstanding.values { batch.fail(error) }
            self.outstanding.removeAll()
        }
        thread.start()
    }

    /// Publishes `messages` in order and returns once the broker confirmed all of them.
    ///
    /// - Throws: ``AMQPError`` `nacked`, `connection_lost` (some may have been
    ///   delivered: publish again), or `closed`.
    public func publish(_ messages: [OutgoingMessage]) async throws(AMQPError) {
        guard !messages.isEmpty else { return }
        let result: Result<Void, AMQPError> = await withCheckedContinuation { continuation in
            let batch = Batch(count: messages.count, continuation: continuation)
            let queued = thread.submit { [unowned self] t in
                guard t.connected else {
                    batch.fail(AMQPError(code: "connection_lost", message: "not connected to the broker; retrying in the background"))
                    return
                }
                for message in messages {
                    let seq = self.nextSeq
                    self.nextSeq += 1
                    self.outstanding[seq] = batch
                    do throws(AMQPError) {
                        try t.link.publish(message)
                    } catch {
                        t.fail(error)
                        return
                    }
                }
            }
            if !queued { batch.fail(.closed()) }
        }
        try result.get()
    }

    public func publish(_ message: OutgoingMessage) async throws(AMQPError) {
        try await publish([message])
    }

    /// Whether the link is up right now (for readiness reporting).
    public var isConnected: Bool { thread.connected }

    /// Closes the connection; batches still waiting for confirms fail with `closed`.
    public func close() async {
        await thread.stop()
    }

    private func settle(tag: UInt64, multiple: Bool, error: AMQPError?) {
        if multiple {
            var s = lowestUnsettled
            while s <= tag {
                if let batch = outstanding.removeValue(forKey: s) { batch.settle(error) }
                s += 1
            }
        } else if let batch = outstanding.removeValue(forKey: tag) {
            batch.settle(error)
        }
        while lowestUnsettled < nextSeq && outstanding[lowestUnsettled] == nil {
            lowestUnsettled += 1
        }
    }

    /// One `publish` call's messages waiting for their confirms; used on the link thread only.
    private final class Batch {
        private var remaining: Int
        private var error: AMQPError?
        private var continuation: CheckedContinuation<Result<Void, AMQPError>, Never>?

        init(count: Int, continuation: CheckedContinuation<Result<Void, AMQPError>, Never>) {
            self.remaining = count
            self.continuation = continuation
        }

        func settle(_ error: AMQPError?) {
            if let error, self.error == nil { self.error = error }
            remaining -= 1
            if remaining == 0 { finish() }
        }

        func fail(_ error: AMQPError) {
            if self.error == nil { self.error = error }
            finish()
        }

        private func finish() {
            guard let c = continuation else { return }
            continuation = nil
            c.resume(returning: error.map { .failure($0) } ?? .success(()))
        }
    }
}
