import CSSModel
import Foundation
import LoadSupport

/// Command latencies: LoadSupport's ``LatencySummary`` (p50, p90, p95, p99, p99.9, max, mean),
/// with the per-command table rows and the JSON of this report.
typealias Percentiles = LatencySummary

extension LatencySummary {
    /// One row of the per-command table: `label  n  p50  p95  p99  max`.
    func row(_ label: String) -> String {
        label.padding(toLength: 28, withPad: " ", startingAt: 0)
            + [String(count), fmt(p50), fmt(p95), fmt(p99), fmt(p999), fmt(max), fmt(mean)].map { $0.leftPadded(9) }.joined()
    }

    static func header(_ first: String) -> String {
        first.padding(toLength: 28, withPad: " ", startingAt: 0)
            + ["n", "p50", "p95", "p99", "p99.9", "max", "mean"].map { $0.leftPadded(9) }.joined() + "   (ms)"
    }

    var json: JSONValue {
        ["n": .int(count), "p50": .number(rounded(p50, 2)), "p90": .number(rounded(p90, 2)), "p95": .number(rounded(p95, 2)),
         "p99": .number(rounded(p99, 2)), "p999": .number(rounded(p999, 2)), "max": .number(rounded(max, 2)), "mean": .number(rounded(mean, 2))]
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
