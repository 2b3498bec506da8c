import CSSCalendar
import CSSModel

/// The two Service Request quotas of a contract (R-QTA-1), named as on the wire.
public enum QuotaKind: String, CaseIterable, Sendable {
    case standard
    case nonStandard

    public init(_ requestClass: RequestClass) {
        self = requestClass == .standard ? .standard : .nonStandard
    }
}

/// One contract year: from one anniversary of the contract's start, at local midnight
/// in the customer's time zone, to the next (seconds since the epoch, end exclusive).
public struct ContractYear: Sendable, Equatable, Hashable {
    public var firstDay: LocalDate
    public var start: Int64
    public var end: Int64

    public init(firstDay: LocalDate, start: Int64, end: Int64) {
        self.firstDay = firstDay
        self.start = start
        self.end = end
    }

    /// The anniversary of `start` in `year`. A 29 February start rolls on 1 March in
    /// common years (**Decision**: the year is then never shorter than 365 days).
    public static func anniversary(of start: LocalDate, in year: Int) -> LocalDate {
        let (_, month, day) = start.components
        if month == 2 && day == 29 && !Civil.isLeap(year) {
            return LocalDate(dayNumber: Civil.dayNumber(year: year, month: 3, day: 1))
        }
        return LocalDate(dayNumber: Civil.dayNumber(year: year, month: month, day: day))
    }

    /// The contract year that holds instant `t`.
    public static func containing(_ t: Int64, contractStart: LocalDate, zone: ZoneRules) -> ContractYear {
        let local = zone.localDate(at: t)
        var year = local.year
        if local < anniversary(of: contractStart, in: year) { year -= 1 }
        let first = anniversary(of: contractStart, in: year)
        return ContractYear(firstDay: first, start: zone.startOfDay(first), end: zone.startOfDay(anniversary(of: contractStart, in: year + 1)))
    }
}

/// What a consumption should announce (R-QTA-2).
public struct QuotaAlerts: Sendable, Equatable {
    /// The projected exhaustion to announce in a `quota.warning`, when one is due.
    public var warning: Int64?
    /// Whether this consumption took the quota over its limit for the first time this year.
    public var exceeded: Bool

    public init(warning: Int64? = nil, exceeded: Bool = false) {
        self.warning = warning
        self.exceeded = exceeded
    }
}

/// The linear trend of a quota's consumption and when it deserves a warning (R-QTA-2).
///
/// used ÷ elapsed share of the year is the rate; at that rate the limit is reached at
/// `start + elapsed × limit ÷ used`. Pure: `now` is the injected clock's.
public struct QuotaTrend: Sendable, Equatable {
    /// No warning before this much of the year has elapsed, unless half the quota is
    /// used already: one request in the first hour would otherwise project thousands.
    public var minimumWindow: Int64
    /// A second warning in one year only when the projection moved earlier by more than this.
    public var moveThreshold: Int64 = 7 * 86_400

    public static let defaultMinimumWindow: Int64 = 30 * 86_400

    public init(minimumWindow: Int64 = QuotaTrend.defaultMinimumWindow) {
        self.minimumWindow = minimumWindow
    }

    /// When the quota runs out at the current rate; nil without a positive limit, without
    /// consumption, or outside the year.
    public func projectedExhaustion(used: Int, limit: Int?, year: ContractYear, now: Int64) -> Int64? {
        guard let limit, limit > 0, used > 0, now > year.start, now < year.end else { return nil }
        let elapsed = now - year.start
        return year.start + elapsed * Int64(limit) / Int64(used)
    }

    /// Whether the projection deserves a warning now: it falls inside the year, the trend
    /// has enough behind it, and no warning said as much already.
    public func isTrendReliable(used: Int, limit: Int, year: ContractYear, now: Int64) -> Bool {
        now - year.start >= minimumWindow || 2 * used >= limit
    }

    /// The alerts of one consumption that brought the quota to `used`.
    ///
    /// - Parameters:
    ///   - lastWarning: the projection announced by this year's last warning, if any.
    ///   - exceededFlagged: whether this year's `quota.exceeded` was sent already.
    public func alerts(used: Int, limit: Int?, year: ContractYear, now: Int64, lastWarning: Int64?, exceededFlagged: Bool) -> QuotaAlerts {
        guard let limit else { return QuotaAlerts() }
        var alerts = QuotaAlerts(exceeded: used > limit && !exceededFlagged)
        if let projected = projectedExhaustion(used: used, limit: limit, year: year, now: now), projected < year.end,
           isTrendReliable(used: used, limit: limit, year: year, now: now),
           lastWarning.map({ projected < $0 - moveThreshold }) ?? true {
            alerts.warning = projected
        }
        return alerts
    }
}
