import Foundation
import Logging

/// Consumes one queue with manual acknowledgement and a prefetch window.
///
/// Workers take deliveries in batches with ``nextBatch(max:maxBytes:)``. After a lost connection it reconnects with
/// backoff, declares its topology again and resumes; deliveries of the lost
/// connection can no longer be acknowledged (the broker redelivers them), so their
/// acks are dropped here and handlers must be idempotent.
///
/// Memory is bounded twice: a body keeps at most `maxBodyBytes` (the rest is read and
/// discarded, ``Delivery/isTruncated``), and while the bytes of deliveries received
/// but not yet acked or nacked exceed `maxBufferedBytes`, the link stops reading the
/// socket (the broker sees TCP back-pressure) but keeps the connection alive.
public final class AMQPConsumer: @unchecked Sendable {
    public let queue: String
    public let maxBodyBytes: Int
    public let maxBufferedBytes: Int
    private let buffer = DeliveryBuffer()
    private let thread: LinkThread
    private let counters = Counters()

    // Touched only on the link thread.
    private var consumerTag: String?
    private var consuming = true
    private var ledger = UnackedLedger()

    /// Starts connecting at once, in the background, retrying with backoff.
    ///
    /// - Parameters:
    ///   - maxBodyBytes: the most of one body kept in memory (default 256 KiB); a longer
    ///     body arrives truncated, with ``Delivery/bodySize`` telling its real size.
    ///   - maxBufferedBytes: the body bytes received but not yet acked or nacked above
    ///     which reading pauses (default 32 MiB); may be exceeded by one delivery.
    public init(configuration: AMQPConfiguration, topology: Topology, queue: String, prefetch: Int,
                maxBodyBytes: Int = 256 * 1024, maxBufferedBytes: Int = 32 * 1024 * 1024, name: String, logger: Logger) {
        self.queue = queue
        self.maxBodyBytes = max(0, maxBodyBytes)
        self.maxBufferedBytes = max(1, maxBufferedBytes)
        thread = LinkThread(configuration: configuration, name: name, logger: logger)
        thread.link.maxBodyBytes = self.maxBodyBytes
        thread.onConnect = { [unowned self] t throws(AMQPError) in
            try t.link.declare(topology)
            self.ledger.reset()
            self.counters.set(unackedBytes: 0)
            self.consumerTag = nil
            if self.consuming {
                self.consumerTag = try t.link.consume(queue: queue, prefetch: prefetch)
                logger.info("consuming", metadata: ["amqp.queue": "\(queue)", "amqp.prefetch": "\(prefetch)"])
            }
        }
        thread.shouldPauseReading = { [unowned self] in self.ledger.bytes >= self.maxBufferedBytes }
        thread.onIncoming = { [unowned self] t, incoming in
            switch incoming {
            case .delivery(let exchange, let routingKey, let tag, let redelivered, let properties, let body, let bodySize):
                self.ledger.received(tag: tag, bytes: body.count)
                self.counters.set(unackedBytes: self.ledger.bytes)
                self.buffer.push(Delivery(
                    exchange: exchange, routingKey: routingKey, body: body, properties: properties,
                    deliveryTag: tag, redelivered: redelivered, generation: t.generation, bodySize: bodySize))
            case .consumerCancelled:
                guard self.consuming else { break }
                // The broker cancels a consumer when its queue is deleted. Consuming again on
                // the same connection keeps the unacked tags valid; reconnecting would void them.
                self.counters.cancelled()
                logger.warning("consumer cancelled by the broker; redeclaring", metadata: ["amqp.queue": "\(queue)"])
                do throws(AMQPError) {
                    try t.link.declare(topology)
                    self.consumerTag = try t.link.consume(queue: queue, prefetch: prefetch)
                } catch {
                    t.fail(error)
                }
            default:
                break
            }
        }
        thread.start()
    }

    /// Waits for deliveries and returns up to `max` of them, and no more than `maxBytes`
    /// of bodies unless the first alone is larger; nil once consuming has stopped and
    /// every delivery was handed out.
    public func nextBatch(max: Int, maxBytes: Int = .max) async -> [Delivery]? {
        await buffer.next(max: max, maxBytes: maxBytes)
    }

    /// Acknowledges deliveries (after their effect is committed).
    ///
    /// Deliveries that complete the run of the lowest unacked tags go out as one
    /// `basic.ack multiple`, the others one by one; deliveries of an earlier
    /// connection are dropped (the broker has requeued them).
    public func ack(_ deliveries: [Delivery]) {
        guard !deliveries.isEmpty else { return }
        thread.submit { [unowned self] t in
            guard t.connected else { return }
            let acks = self.ledger.ack(deliveries.filter { $0.generation == t.generation }.map(\.deliveryTag))
            self.counters.set(unackedBytes: self.ledger.bytes)
            self.counters.sentAcks(acks.count)
            for a in acks {
                do throws(AMQPError) { try t.link.ack(a.tag, multiple: a.multiple) } catch { t.fail(error); return }
            }
        }
    }

    public func ack(_ delivery: Delivery) {
        ack([delivery])
    }

    /// Negatively acknowledges a delivery, requeueing it or not.
    public func nack(_ delivery: Delivery, requeue: Bool) {
        thread.submit { [unowned self] t in
            guard delivery.generation == t.generation, t.connected, self.ledger.settle(delivery.deliveryTag) else { return }
            self.counters.set(unackedBytes: self.ledger.bytes)
            do throws(AMQPError) { try t.link.nack(delivery.deliveryTag, requeue: requeue) } catch { t.fail(error) }
        }
    }

    /// Stops new deliveries (basic.cancel); what was delivered can still be
    /// acknowledged, and ``nextBatch(max:maxBytes:)`` returns nil once it has all been taken.
    public func stopConsuming() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let queued = thread.submit { [unowned self] t in
                self.consuming = false
                if let tag = self.consumerTag, t.connected {
                    do throws(AMQPError) {
                        try t.link.cancel(consumerTag: tag)
                        // Deliveries that raced the cancel were queued by librabbitmq during
                        // the RPC: hand them out before declaring the stream finished.
                        while let incoming = try t.link.poll() { t.onIncoming?(t, incoming) }
                    } catch {
                        t.fail(error)
                    }
                }
                self.consumerTag = nil
                self.buffer.finish()
                c.resume()
            }
            if !queued {
                self.buffer.finish()
                c.resume()
            }
        }
    }

    public var isConnected: Bool { thread.connected }

    /// How many times the broker cancelled this consumer (its queue was deleted) and it consumed again.
    public var consumerCancellations: Int { counters.snapshot.cancellations }

    /// Body bytes received on the current connection and not yet acked or nacked.
    public var unackedBytes: Int { counters.snapshot.unackedBytes }

    /// `basic.ack` frames sent so far (tests check that `multiple` saves frames).
    var ackFramesSent: Int { counters.snapshot.ackFrames }

    /// Sends pending acks, closes the connection and ends ``nextBatch(max:maxBytes:)``.
    public func close() async {
        await thread.stop()
        buffer.finish()
    }

    /// Numbers the link thread writes and any thread reads.
    private final class Counters: @unchecked Sendable {
        struct Snapshot {
            var cancellations = 0
            var unackedBytes = 0
            var ackFrames = 0
        }

        private let lock = NSLock()
        private var value = Snapshot()

        var snapshot: Snapshot { lock.withLock { value } }
        func cancelled() { lock.withLock { value.cancellations += 1 } }
        func set(unackedBytes: Int) { lock.withLock { value.unackedBytes = unackedBytes } }
        func sentAcks(_ n: Int) { lock.withLock { value.ackFrames += n } }
    }
}

/// Deliveries read by the link thread, waiting for workers.
final class DeliveryBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Delivery] = []
    private var head = 0
    private var waiters: [(max: Int, maxBytes: Int, continuation: CheckedContinuation<[Delivery]?, Never>)] = []
    private var finished = false

    func push(_ delivery: Delivery) {
        let resume: (CheckedContinuation<[Delivery]?, Never>, [Delivery])? = lock.withLock {
            items.append(delivery)
            guard !waiters.isEmpty else { return nil }
            let w = waiters.removeFirst()
            return (w.continuation, take(w.max, maxBytes: w.maxBytes))
        }
        if let (c, batch) = resume { c.resume(returning: batch) }
    }

    func finish() {
        let toResume: [CheckedContinuation<[Delivery]?, Never>] = lock.withLock {
            finished = true
            // Waiters only exist while the buffer is empty, so they all get nil.
            let w = waiters.map(\.continuation)
            waiters.removeAll()
            return w
        }
        for c in toResume { c.resume(returning: nil) }
    }

    func next(max: Int, maxBytes: Int = .max) async -> [Delivery]? {
        await withCheckedContinuation { (c: CheckedContinuation<[Delivery]?, Never>) in
            let immediate: [Delivery]?? = lock.withLock {
                if head < items.count { return .some(take(max, maxBytes: maxBytes)) }
                if finished { return .some(nil) }
                waiters.append((max, maxBytes, c))
                return .none
            }
            if let immediate { c.resume(returning: immediate) }
        }
    }

    /// Call with the lock held.
    private func take(_ max: Int, maxBytes: Int) -> [Delivery] {
        var end = head + 1
        var bytes = items[head].body.count
        while end < items.count && end - head < max && items[end].body.count <= maxBytes - bytes {
            bytes += items[end].body.count
            end += 1
        }
        let batch = Array(items[head..<end])
        head = end
        // Under steady load the buffer is never empty: drop what was handed out, or
        // every delivery's body would stay referenced for as long as the load lasts.
        items.dropConsumed(head: &head)
        return batch
    }
}
