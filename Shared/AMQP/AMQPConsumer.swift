import Foundation
import Logging

/// Consumes one queue with manual acknowledgement and a prefetch window.
///
/// Workers take deliveries in batches with ``nextBatch(max:)``. After a lost connection it reconnects with
/// backoff, declares its topology again and resumes; deliveries of the lost
/// connection can no longer be acknowledged (the broker redelivers them), so their
/// acks are dropped here and handlers must be idempotent.
public final class AMQPConsumer: @unchecked Sendable {
    public let queue: String
    private let buffer = DeliveryBuffer()
    private let thread: LinkThread

    // Touched only on the link thread.
    private var consumerTag: String?
    private var consuming = true

    public init(configuration: AMQPConfiguration, topology: Topology, queue: String, prefetch: Int, name: String, logger: Logger) {
        self.queue = queue
        thread = LinkThread(configuration: configuration, name: name, logger: logger)
        thread.onConnect = { [unowned self] t throws(AMQPError) in
            try t.link.declare(topology)
            self.consumerTag = nil
            if self.consuming {
                self.consumerTag = try t.link.consume(queue: queue, prefetch: prefetch)
                logger.info("consuming", metadata: ["amqp.queue": "\(queue)", "amqp.prefetch": "\(prefetch)"])
            }
        }
        thread.onIncoming = { [unowned self] t, incoming in
            switch incoming {
            case .delivery(let exchange, let routingKey, let tag, let redelivered, let properties, let body):
                self.buffer.push(Delivery(
                    exchange: exchange, routingKey: routingKey, body: body, properties: properties,
                    deliveryTag: tag, redelivered: redelivered, generation: t.generation))
            case .consumerCancelled:
                // The broker cancels a consumer when its queue is deleted: redeclare by reconnecting.
                t.fail(AMQPError(code: "consumer_cancelled", message: "the broker cancelled the consumer of \(queue)"))
            default:
                break
            }
        }
        thread.start()
    }

    /// Waits for deliveries and returns up to `max` of them; nil once consuming
    /// has stopped and every delivery was handed out.
    public func nextBatch(max: Int) async -> [Delivery]? {
        await buffer.next(max: max)
    }

    /// Acknowledges deliveries (after their effect is committed).
    public func ack(_ deliveries: [Delivery]) {
        guard !deliveries.isEmpty else { return }
        thread.submit { t in
            for d in deliveries where d.generation == t.generation && t.connected {
                do throws(AMQPError) { try t.link.ack(d.deliveryTag, multiple: false) } catch { t.fail(error); return }
            }
        }
    }

    public func ack(_ delivery: Delivery) {
        ack([delivery])
    }

    /// Negatively acknowledges a delivery, requeueing it or not.
    public func nack(_ delivery: Delivery, requeue: Bool) {
        thread.submit { t in
            guard delivery.generation == t.generation, t.connected else { return }
            do throws(AMQPError) { try t.link.nack(delivery.deliveryTag, requeue: requeue) } catch { t.fail(error) }
        }
    }

    /// Stops new deliveries (basic.cancel); what was delivered can still be
    /// acknowledged, and ``nextBatch(max:)`` returns nil once it has all been taken.
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

    /// Sends pending acks, closes the connection and ends ``nextBatch(max:)``.
    public func close() async {
        await thread.stop()
        buffer.finish()
    }
}

/// Deliveries read by the link thread, waiting for workers.
final class DeliveryBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Delivery] = []
    private var head = 0
    private var waiters: [(max: Int, continuation: CheckedContinuation<[Delivery]?, Never>)] = []
    private var finished = false

    func push(_ delivery: Delivery) {
        let resume: (CheckedContinuation<[Delivery]?, Never>, [Delivery])? = lock.withLock {
            items.append(delivery)
            guard !waiters.isEmpty else { return nil }
            let w = waiters.removeFirst()
            return (w.continuation, take(w.max))
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

    func next(max: Int) async -> [Delivery]? {
        await withCheckedContinuation { (c: CheckedContinuation<[Delivery]?, Never>) in
            let immediate: [Delivery]?? = lock.withLock {
                if head < items.count { return .some(take(max)) }
                if finished { return .some(nil) }
                waiters.append((max, c))
                return .none
            }
            if let immediate { c.resume(returning: immediate) }
        }
    }

    /// Call with the lock held.
    private func take(_ max: Int) -> [Delivery] {
        let end = min(items.count, head + max)
        let batch = Array(items[head..<end])
        head = end
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            // Under steady load the buffer is never empty: drop what was handed out, or
            // every delivery's body would stay referenced for as long as the load lasts.
            items.removeFirst(head)
            head = 0
        }
        return batch
    }
}
