import CSSAMQP
import Foundation
import Logging

/// What the broker sustains through the project's own AMQP layer, with no database:
/// the ceiling the services' figures are compared with.
public struct RawResult: Sendable {
    public var messages: Int
    /// Publish start to the last delivery consumed and acknowledged.
    public var seconds: Double
    public var rate: Double
    /// Publish start to the last confirm.
    public var publishRate: Double
    public var cpu: CPUUsage
}

public enum RawCeiling {
    /// Publishes `messages` persistent messages of `bodyBytes` to a durable queue with
    /// confirms, `batch` per ``AMQPPublisher/publish(_:)`` call and `pipeline` calls in
    /// flight, while an ``AMQPConsumer`` on another connection takes and acks them.
    ///
    /// - Parameter groups: the rows of the phase's CPU profile (the services are not running yet).
    public static func run(amqp: AMQPConfiguration, runID: String, messages: Int, batch: Int, pipeline: Int, prefetch: Int, bodyBytes: Int,
                           databaseName: String, groups: CPUGroups, logger: Logger) async throws -> RawResult {
        let queue = "bench.raw.\(runID)"
        let topology = Topology(queues: [.init(queue)])
        let consumer = AMQPConsumer(configuration: amqp, topology: topology, queue: queue, prefetch: prefetch, name: "\(groups.tool)-raw-consumer", logger: logger)
        let publisher = AMQPPublisher(configuration: amqp, topology: topology, name: "\(groups.tool)-raw-publisher", logger: logger)
        try await waitConnected { consumer.isConnected && publisher.isConnected }

        let filler = String(repeating: "x", count: max(0, bodyBytes - 60))
        func message(_ i: Int) -> OutgoingMessage {
            var body = Array("{\"seq\":\(i),\"kind\":\"raw-ceiling\",\"pad\":\"\(filler)\"}".utf8)
            if body.count < bodyBytes { body += [UInt8](repeating: 0x20, count: bodyBytes - body.count) }
            return OutgoingMessage(exchange: "", routingKey: queue, body: body, properties: MessageProperties(
                contentType: "application/json", messageID: "raw-\(runID)-\(i)", persistent: true))
        }
        // Bodies are built before the clock starts: the ceiling is the messaging layer, not JSON.
        let all = (0..<messages).map(message)

        let consumed = Counter()
        let cpuBefore = CPUSnapshot.take(groups, database: databaseName)
        let start = monotonicNanos()
        let consuming = Task { () -> UInt64 in
            var last: UInt64 = 0
            while let deliveries = await consumer.nextBatch(max: 500) {
                consumer.ack(deliveries)
                if consumed.add(deliveries.count) >= messages {
                    last = monotonicNanos()
                    break
                }
            }
            return last
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<pipeline {
                group.addTask {
                    var b = lane
                    while b * batch < messages {
                        try Abort.check()
                        let slice = Array(all[(b * batch)..<min(messages, (b + 1) * batch)])
                        try await publisher.publish(slice)
                        b += pipeline
                    }
                }
            }
            try await group.waitForAll()
        }
        let published = monotonicNanos()
        // The consumer finishes on its own; give it a deadline in case messages went missing.
        let deadline = ContinuousClock.now + .seconds(120)
        while consumed.value < messages {
            try Abort.check()
            if ContinuousClock.now > deadline {
                consuming.cancel()
                throw BenchError("raw ceiling: only \(consumed.value) of \(messages) messages consumed after 120 s")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        let end = await consuming.value
        let cpuAfter = CPUSnapshot.take(groups, database: databaseName)
        await consumer.stopConsuming()
        await consumer.close()
        await publisher.close()
        let seconds = Double(end - start) / 1e9
        return RawResult(messages: messages, seconds: seconds, rate: Double(messages) / seconds,
                         publishRate: Double(messages) / (Double(published - start) / 1e9), cpu: cpuBefore.usage(until: cpuAfter))
    }

    public static func waitConnected(_ up: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if up() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw BenchError("the broker connections did not come up within 30 s")
    }
}

/// A thread-safe count.
public final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0

    public init() {}

    /// Adds `k` and returns the new value.
    @discardableResult
    public func add(_ k: Int) -> Int { lock.withLock { n += k; return n } }
    public var value: Int { lock.withLock { n } }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Raised by SIGINT/SIGTERM: every loop checks it, so cleanup still runs.
public enum Abort {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var raised = false

    public static func raise() { lock.withLock { raised = true } }
    public static var isRaised: Bool { lock.withLock { raised } }

    public static func check() throws {
        if isRaised { throw BenchError("interrupted") }
    }
}
