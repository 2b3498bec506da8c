/// Capped exponential backoff with jitter, for reconnect loops.
///
/// The shape follows async-http-client's connection pool backoff: 100 ms × 1.25ⁿ,
/// capped, with ±3 % jitter so a fleet of services that lost the same server does
/// not reconnect in lockstep.
public struct Backoff: Sendable, Equatable {
    public var base: Duration
    public var factor: Double
    public var cap: Duration
    public var jitter: Double

    public init(base: Duration = .milliseconds(100), factor: Double = 1.25, cap: Duration = .seconds(10), jitter: Double = 0.03) {
        self.base = base
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
    }

    /// The delay before attempt `attempt` (0-based), before jitter.
    public func nominalDelay(attempt: Int) -> Duration {
        let baseSeconds = Self.seconds(base)
        let capSeconds = Self.seconds(cap)
        // Stop multiplying once past the cap so large attempt numbers cannot overflow.
        var value = baseSeconds
        var n = 0
        while n < attempt && value < capSeconds {
            value *= factor
            n += 1
        }
        return .nanoseconds(Int64(min(value, capSeconds) * 1e9))
    }

    /// The delay before attempt `attempt`, with jitter drawn from `generator`.
    public func delay<G: RandomNumberGenerator>(attempt: Int, using generator: inout G) -> Duration {
        let nominal = Self.seconds(nominalDelay(attempt: attempt))
        let spread = jitter == 0 ? 1.0 : Double.random(in: (1 - jitter)...(1 + jitter), using: &generator)
        return .nanoseconds(Int64(nominal * spread * 1e9))
    }

    public func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }

    static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
