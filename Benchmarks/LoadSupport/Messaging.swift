import CSSAMQP
import Foundation
import Logging

extension AMQPPublisher {
    /// Publishes with confirms, retrying for up to a minute while the publisher (re)connects;
    /// returns how many came back unroutable.
    public func publishConfirmed(_ messages: [OutgoingMessage]) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            // A plain catch into a value: `catch where` on a typed error crashes Swift 6.3's SILGen.
            let failure: AMQPError?
            var returned = 0
            do {
                returned = try await publish(messages).filter { $0 != .delivered }.count
                failure = nil
            } catch {
                failure = error
            }
            guard let failure else { return returned }
            guard failure.code == "connection_lost", ContinuousClock.now < deadline else { throw failure }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// A queue the tool consumes for the whole run: a task takes its deliveries in batches,
/// hands each batch to `record` with the monotonic time it arrived, and acks it.
public final class DeliveryTap: @unchecked Sendable {
    public let consumer: AMQPConsumer
    /// Deliveries taken so far.
    public let received = Counter()
    private var task: Task<Void, Never>?

    public init(amqp: AMQPConfiguration, topology: Topology, queue: String, prefetch: Int = 2000, name: String, logger: Logger,
                record: @escaping @Sendable (_ batch: [Delivery], _ at: UInt64) -> Void = { _, _ in }) {
        let consumer = AMQPConsumer(configuration: amqp, topology: topology, queue: queue, prefetch: prefetch, name: name, logger: logger)
        self.consumer = consumer
        let received = self.received
        task = Task {
            while let batch = await consumer.nextBatch(max: 1000) {
                record(batch, monotonicNanos())
                received.add(batch.count)
                consumer.ack(batch)
            }
        }
    }

    public var isConnected: Bool { consumer.isConnected }

    /// Stops consuming, lets the task finish the batch in hand, closes the connection.
    public func close() async {
        await consumer.stopConsuming()
        await task?.value
        await consumer.close()
    }
}

/// Open loop at a fixed rate: message `i` is due `i / rate` seconds after `start`, and what is
/// due goes out at once whatever the replies do, so a slow service shows as latency (measured
/// from the due time) instead of as a slower sender.
public struct OpenLoop: Sendable {
    public let rate: Int
    public let count: Int
    /// Monotonic ns of message 0.
    public let start: UInt64

    public init(rate: Int, count: Int, startingIn delay: Duration = .milliseconds(5)) {
        self.rate = rate
        self.count = count
        start = monotonicNanos() + UInt64(delay.components.seconds) * 1_000_000_000 + UInt64(delay.components.attoseconds / 1_000_000_000)
    }

    public func due(_ i: Int) -> UInt64 { start + UInt64(i) * 1_000_000_000 / UInt64(rate) }

    /// Calls `send` with each run of messages that fell due (every 0.5 ms at most), with up to
    /// `inFlight` calls running at once. Returns the largest lag of a call behind the due time of
    /// its first message (the sender's own delay, part of every latency measured from due times).
    public func run(inFlight: Int = 64, _ send: @escaping @Sendable (Range<Int>) async throws -> Void) async throws -> UInt64 {
        var worstLag: UInt64 = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0, running = 0
            while next < count {
                try Abort.check()
                let now = monotonicNanos()
                let upTo = now < start ? 0 : min(count, Int((now - start) * UInt64(rate) / 1_000_000_000) + 1)
                if upTo > next {
                    if running >= inFlight {
                        try await group.next()
                        running -= 1
                    }
                    let range = next..<upTo
                    worstLag = max(worstLag, monotonicNanos() &- due(range.lowerBound))
                    group.addTask { try await send(range) }
                    running += 1
                    next = upTo
                }
                try await Task.sleep(for: .microseconds(500))
            }
            try await group.waitForAll()
        }
        return worstLag
    }
}

/// The `[PASS]`/`[MISS]` list a report ends with.
public struct TargetChecks: Sendable {
    public private(set) var checks: [(name: String, ok: Bool)] = []

    public init() {}

    public mutating func check(_ name: String, _ ok: Bool) { checks.append((name, ok)) }

    public var lines: [String] { checks.map { "   [\($0.ok ? "PASS" : "MISS")] \($0.name)" } }
    public var allPassed: Bool { checks.allSatisfy(\.ok) }
}

extension RawResult {
    /// What a report prints for the raw ceiling phase.
    public var lines: [String] {
        ["== raw ceiling: AMQPPublisher (confirms) -> durable queue -> AMQPConsumer (manual ack), no database",
         "   \(messages) messages in \(fmt(seconds, 2)) s: \(fmt(rate, 0)) msg/s end to end (publish+confirm alone \(fmt(publishRate, 0)) msg/s)"]
            + cpu.lines(per: messages, unit: "msg").map { "   " + $0 }
    }

    public var json: [String: Double] {
        ["messages": Double(messages), "seconds": rounded(seconds, 2), "msgPerSecond": rounded(rate, 0), "publishConfirmPerSecond": rounded(publishRate, 0)]
    }
}

extension LatencySummary {
    /// Milliseconds, rounded for the JSON line, and the count.
    public var json: [String: Double] {
        ["p50": rounded(p50, 2), "p90": rounded(p90, 2), "p99": rounded(p99, 2), "p999": rounded(p999, 2), "max": rounded(max, 2),
         "mean": rounded(mean, 2), "n": Double(count)]
    }
}
