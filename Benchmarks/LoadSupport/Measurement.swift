import Foundation

/// Monotonic nanoseconds (CLOCK_MONOTONIC), cheap enough to take per message.
@inlinable
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Reply latencies of one phase, as exact percentiles of a sorted array.
///
/// A few hundred thousand samples sort in milliseconds, so an HDR histogram would only
/// add approximation here.
public struct LatencySummary: Sendable {
    public let count: Int
    public let p50: Double
    public let p90: Double
    public let p95: Double
    public let p99: Double
    public let p999: Double
    public let max: Double
    public let mean: Double

    /// - Parameter nanos: one latency per reply, in nanoseconds.
    public init(nanos: [UInt64]) {
        let sorted = nanos.sorted()
        count = sorted.count
        func ms(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            // Nearest rank: the smallest value with at least q of the samples at or below it.
            let rank = Int((q * Double(sorted.count)).rounded(.up))
            return Double(sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]) / 1e6
        }
        p50 = ms(0.50)
        p90 = ms(0.90)
        p95 = ms(0.95)
        p99 = ms(0.99)
        p999 = ms(0.999)
        max = sorted.last.map { Double($0) / 1e6 } ?? 0
        mean = sorted.isEmpty ? 0 : Double(sorted.reduce(0, &+)) / Double(sorted.count) / 1e6
    }

    public var line: String {
        "p50 \(fmt(p50)) ms  p90 \(fmt(p90)) ms  p95 \(fmt(p95)) ms  p99 \(fmt(p99)) ms  p99.9 \(fmt(p999)) ms  max \(fmt(max)) ms  (mean \(fmt(mean)) ms, n=\(count))"
    }
}

/// Throughput of a phase seen from the reply side.
public struct ThroughputSummary: Sendable {
    /// Accepted per second from the first send to the last reply.
    public let overall: Double
    /// Between the 10 % and the 90 % reply: the plateau, without ramp-up and drain.
    public let steady: Double
    /// The slowest whole second between the first and the last (0 when the run is shorter than 3 s).
    public let worstSecond: Double

    /// - Parameters:
    ///   - start: when the first message was sent.
    ///   - replyTimes: when each accepted reply arrived (any order).
    public init(start: UInt64, replyTimes: [UInt64]) {
        let times = replyTimes.sorted()
        guard let last = times.last, last > start else {
            overall = 0; steady = 0; worstSecond = 0
            return
        }
        overall = Double(times.count) / (Double(last - start) / 1e9)
        let a = times[times.count / 10], b = times[(times.count * 9) / 10]
        steady = b > a ? Double((times.count * 9) / 10 - times.count / 10) / (Double(b - a) / 1e9) : overall
        let seconds = Int((last - start) / 1_000_000_000)
        if seconds >= 3 {
            var buckets = [Int](repeating: 0, count: seconds + 1)
            for t in times { buckets[Int((t - start) / 1_000_000_000)] += 1 }
            worstSecond = Double(buckets[1..<(seconds)].min() ?? 0)
        } else {
            worstSecond = 0
        }
    }
}

public func fmt(_ x: Double, _ digits: Int = 1) -> String {
    String(format: "%.\(digits)f", x)
}

/// Rounds for the JSON line: figures, not float noise.
public func rounded(_ x: Double, _ digits: Int = 1) -> Double {
    let f = pow(10, Double(digits))
    return (x * f).rounded() / f
}
