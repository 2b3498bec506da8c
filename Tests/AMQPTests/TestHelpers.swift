@testable import CSSAMQP
import Foundation

/// Waits at most `within` for a batch; on timeout closes the consumer, which ends the wait with nil.
func nextBatch(_ consumer: AMQPConsumer, max: Int = 100, maxBytes: Int = .max, within: Duration = .seconds(15)) async -> [Delivery]? {
    let timer = Task {
        try await Task.sleep(for: within)
        await consumer.close()
    }
    defer { timer.cancel() }
    return await consumer.nextBatch(max: max, maxBytes: maxBytes)
}

/// A short-lived connection of its own, for what the code under test does not do (delete a queue, count messages).
func withAdminLink<T>(_ configuration: AMQPConfiguration, _ body: (AMQPLink) throws(AMQPError) -> T) throws(AMQPError) -> T {
    let link = AMQPLink()
    try link.open(configuration, name: "amqp-tests-admin")
    defer { link.close() }
    return try body(link)
}

/// Polls `condition` every 20 ms for at most `timeout`; its last value.
func eventually(_ timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now >= deadline { return false }
        try await Task.sleep(for: .milliseconds(20))
    }
    return true
}

/// The test process's resident memory (VmRSS), in bytes.
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb * 1024
}
