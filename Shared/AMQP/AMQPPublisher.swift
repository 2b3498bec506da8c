import Logging

/// Publishes persistent, mandatory messages with publisher confirms, on a connection of its own.
///
/// `publish` sends a whole batch before waiting, so a batch of N costs one round
/// trip, not N: the broker's `basic.ack` frames (often `multiple`) settle it. A
/// `basic.nack`, losing the connection before every confirm arrived, or the confirms
/// not all arriving in time, fails the batch: the caller (the outbox relay) publishes
/// it again, which is why every consumer in the system tolerates duplicates.
///
/// A mandatory message no queue takes comes back (`basic.return`, sent by RabbitMQ
/// before that message's `basic.ack`) and its outcome is
/// ``PublishOutcome/returned(replyCode:replyText:)``. A return names no sequence
/// number, so it is matched by `message_id` to the lowest unsettled message with that
/// id: give mandatory messages an id.
public final class AMQPPublisher: @unchecked Sendable {
    private let thread: LinkThread
    private let logger: Logger

    // Touched only on the link thread.
    private var nextSeq: UInt64 = 1
    private var lowestUnsettled: UInt64 = 1
    private var outstanding: [UInt64: Pending] = [:]
    /// Unsettled sequence numbers by message id, lowest first, to match returns.
    private var byMessageID: [String: [UInt64]] = [:]
    /// Batches waiting for confirms, for their deadlines.
    private var waiting: [Batch] = []

    /// Starts connecting at once, in the background, retrying with backoff.
    ///
    /// - Parameters:
    ///   - topology: declared at every (re)connect, so publishing to a fresh broker works.
    ///   - name: shown as the connection name in the broker's management tools.
    public init(configuration: AMQPConfiguration, topology: Topology = Topology(), name: String, logger: Logger) {
        self.logger = logger
        thread = LinkThread(configuration: configuration, name: name, logger: logger)
        // A returned message's body is of no use here: read past it.
        thread.link.maxBodyBytes = 0
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
            case .returned(let replyCode, let replyText, let properties):
                self.returned(replyCode: replyCode, replyText: replyText, messageID: properties.messageID)
            default: break
            }
        }
        thread.onDisconnect = { [unowned self] _, error in
            for batch in self.waiting { batch.fail(error) }
            self.waiting.removeAll()
            self.outstanding.removeAll()
            self.byMessageID.removeAll()
        }
        thread.nextDeadline = { [unowned self] in self.waiting.lazy.map(\.deadline).min() }
        thread.onTick = { [unowned self] _ in self.expire(now: .now) }
        thread.start()
    }

    /// Publishes `messages` in order and returns once the broker confirmed all of them.
    ///
    /// - Parameter timeout: how long the confirms may take; confirms that arrive later are ignored.
    /// - Returns: one outcome per message, in order.
    /// - Throws: ``AMQPError`` `nacked`, `confirm_timeout`, `connection_lost` (some may
    ///   have been delivered: publish again), or `closed`.
    @discardableResult
    public func publish(_ messages: [OutgoingMessage], timeout: Duration = .seconds(10)) async throws(AMQPError) -> [PublishOutcome] {
        guard !messages.isEmpty else { return [] }
        let deadline = ContinuousClock.now + timeout
        let result: Result<[PublishOutcome], AMQPError> = await withCheckedContinuation { continuation in
            let batch = Batch(count: messages.count, deadline: deadline, continuation: continuation)
            let queued = thread.submit { [unowned self] t in
                guard t.connected else {
                    batch.fail(AMQPError(code: "connection_lost", message: "not connected to the broker; retrying in the background"))
                    return
                }
                self.waiting.append(batch)
                for (index, message) in messages.enumerated() {
                    let seq = self.nextSeq
                    self.nextSeq += 1
                    let id = message.properties.messageID
                    self.outstanding[seq] = Pending(batch: batch, index: index, messageID: id)
                    if let id { self.byMessageID[id, default: []].append(seq) }
                    batch.seqs.append(seq)
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
        return try result.get()
    }

    /// Publishes one message and returns its outcome (see the batch `publish`).
    @discardableResult
    public func publish(_ message: OutgoingMessage, timeout: Duration = .seconds(10)) async throws(AMQPError) -> PublishOutcome {
        try await publish([message], timeout: timeout)[0]
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
                settle(seq: s, error: error)
                s += 1
            }
        } else {
            settle(seq: tag, error: error)
        }
        advanceLowestUnsettled()
        waiting.removeAll { $0.isFinished }
    }

    private func settle(seq: UInt64, error: AMQPError?) {
        guard let pending = forget(seq) else { return }
        pending.batch.settle(index: pending.index, error: error)
    }

    /// Drops `seq` from the books (settled, or its batch gave up); late confirms then find nothing.
    private func forget(_ seq: UInt64) -> Pending? {
        guard let pending = outstanding.removeValue(forKey: seq) else { return nil }
        if let id = pending.messageID, var seqs = byMessageID[id] {
            seqs.removeAll { $0 == seq }
            byMessageID[id] = seqs.isEmpty ? nil : seqs
        }
        return pending
    }

    private func advanceLowestUnsettled() {
        while lowestUnsettled < nextSeq && outstanding[lowestUnsettled] == nil {
            lowestUnsettled += 1
        }
    }

    private func returned(replyCode: Int, replyText: String, messageID: String?) {
        guard let messageID, let seq = byMessageID[messageID]?.first(where: { outstanding[$0]?.returned == false }),
              let pending = outstanding[seq] else {
            logger.warning("basic.return matches no unconfirmed message", metadata: [
                "amqp.message_id": "\(messageID ?? "")", "amqp.reply_code": "\(replyCode)", "amqp.reply_text": "\(replyText)"])
            return
        }
        outstanding[seq]?.returned = true
        pending.batch.outcomes[pending.index] = .returned(replyCode: replyCode, replyText: replyText)
    }

    private func expire(now: ContinuousClock.Instant) {
        guard waiting.contains(where: { $0.deadline <= now }) else { return }
        for batch in waiting where batch.deadline <= now {
            for seq in batch.seqs { _ = forget(seq) }
            batch.fail(AMQPError(code: "confirm_timeout", message: "the broker did not confirm \(batch.count) message(s) in time"))
        }
        waiting.removeAll { $0.isFinished }
        advanceLowestUnsettled()
    }

    private struct Pending {
        let batch: Batch
        let index: Int
        let messageID: String?
        var returned = false
    }

    /// One `publish` call's messages waiting for their confirms; used on the link thread only.
    private final class Batch {
        let count: Int
        let deadline: ContinuousClock.Instant
        var seqs: [UInt64] = []
        var outcomes: [PublishOutcome]
        private var remaining: Int
        private var error: AMQPError?
        private var continuation: CheckedContinuation<Result<[PublishOutcome], AMQPError>, Never>?

        init(count: Int, deadline: ContinuousClock.Instant, continuation: CheckedContinuation<Result<[PublishOutcome], AMQPError>, Never>) {
            self.count = count
            self.deadline = deadline
            self.remaining = count
            self.outcomes = Array(repeating: .delivered, count: count)
            self.continuation = continuation
        }

        var isFinished: Bool { continuation == nil }

        func settle(index: Int, error: AMQPError?) {
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
            c.resume(returning: error.map { .failure($0) } ?? .success(outcomes))
        }
    }
}
