import CSSCalendar
import CSSModel
import Foundation

/// A routine maintenance window: every week on `weekday`, from `start` to `end` local time
/// (seconds after midnight); an `end` not after `start` crosses midnight.
public struct WeeklyWindow: Codable, Equatable, Sendable {
    public static let weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    public var weekday: Int
    public var start: Int
    public var end: Int

    public init(weekday: Weekday, start: Int, end: Int) {
        self.weekday = weekday.rawValue
        self.start = start
        self.end = end
    }

    public var description: String {
        "\(Self.weekdays[weekday]) \((try? TimeOfDay(seconds: start))?.description ?? "?")–\((try? TimeOfDay(seconds: end == 0 ? 86_400 : end))?.description ?? "?")"
    }
}

/// A period in which nothing but Emergency changes may be scheduled (R-CHG-4).
public struct Freeze: Codable, Equatable, Sendable {
    public var interval: Interval
    public var reason: String

    public init(interval: Interval, reason: String) {
        self.interval = interval
        self.reason = reason
    }
}

/// A customer's routine maintenance windows and freezes, in its time zone.
public struct MaintenancePlan: Codable, Equatable, Sendable {
    public var timeZone: String
    public var windows: [WeeklyWindow]
    public var freezes: [Freeze]

    public init(timeZone: String, windows: [WeeklyWindow], freezes: [Freeze] = []) {
        self.timeZone = timeZone
        self.windows = windows
        self.freezes = freezes
    }

    /// The windows as a calendar that is open exactly inside them (no holidays: a window is a
    /// window on a public holiday too); nil when there is none.
    public func windowCalendar() throws(CalendarError) -> BusinessCalendar? {
        guard !windows.isEmpty else { return nil }
        var hours: [OpeningWindow] = []
        for w in windows {
            let day = Weekday(rawValue: w.weekday)!
            if w.end == w.start, w.start != 0 {
                // From a time to the same time: a whole day, into the next one.
                hours.append(OpeningWindow(day, open: try TimeOfDay(seconds: w.start), close: try TimeOfDay(seconds: 86_400)))
                hours.append(OpeningWindow(Weekday(rawValue: (w.weekday + 1) % 7)!, open: try TimeOfDay(seconds: 0), close: try TimeOfDay(seconds: w.start)))
            } else {
                hours.append(OpeningWindow(day, open: try TimeOfDay(seconds: w.start), close: try TimeOfDay(seconds: w.end == 0 ? 86_400 : w.end)))
            }
        }
        return try CalendarSpec(kind: .business, timeZone: timeZone, openingHours: OpeningHours(hours)).build()
    }
}

/// Another change already scheduled or being implemented, as conflict detection sees it.
public struct ScheduledChange: Equatable, Sendable {
    public var changeId: String
    public var customerId: String
    public var type: ChangeType
    public var environment: Deployment
    public var components: [String]
    public var window: Interval

    public init(changeId: String, customerId: String, type: ChangeType, environment: Deployment, components: [String], window: Interval) {
        self.changeId = changeId
        self.customerId = customerId
        self.type = type
        self.environment = environment
        self.components = components
        self.window = window
    }
}

/// What a Production schedule that interrupts service must announce (R-CHG-4).
public struct Notice: Equatable, Sendable {
    /// Whether `maintenance.announced` goes to the customer.
    public var announce: Bool
    /// The earliest start routine maintenance could have had: 5 business days after the announcement.
    public var earliestRoutineStart: Int64?
}

/// R-CHG-4, R-CHG-5: whether a change may take place in a window, as rules that refuse what
/// breaks them, each refusal naming the rule and the window, freeze or change it hit.
public enum ChangePolicy {
    /// Routine maintenance that interrupts service is announced this many business days ahead.
    public static let noticeBusinessDays = 5

    /// Checks a schedule of `change` for `environment` in `window`, decided at `now`.
    ///
    /// - Parameters:
    ///   - windowCalendar: ``MaintenancePlan/windowCalendar()`` of the customer's plan (nil: no windows).
    ///   - business: the customer's business calendar (its zone, region holidays, extra holidays).
    ///   - others: other changes scheduled or being implemented (this one left out).
    public static func check(_ change: Change, _ environment: Deployment, _ window: Interval, maintenance: Maintenance?, now: Int64,
                             plan: MaintenancePlan, windowCalendar: BusinessCalendar?, business: BusinessCalendar,
                             others: [ScheduledChange]) throws(CommandRejection) -> Notice {
        let errors = ValidationErrors()
        let span = "\(Instant.format(window.start)) to \(Instant.format(window.end))"
        guard window.end > window.start else {
            throw CommandRejection(code: ErrorCode.invalidField, field: "end", message: "end must be after start")
        }
        if window.start < now {
            errors.add(ErrorCode.windowInPast, "start", "\(Instant.format(window.start)) is in the past")
        }
        let emergency = change.type == .emergency
        if !emergency, let f = plan.freezes.first(where: { $0.interval.overlaps(window) }) {
            errors.add(ErrorCode.inFreeze, "start",
                       "\(span) overlaps the freeze \(Instant.format(f.interval.start)) to \(Instant.format(f.interval.end)) (\(f.reason)): only Emergency changes then (R-CHG-4)")
        }
        var notice = Notice(announce: false, earliestRoutineStart: nil)
        if environment == .production {
            let kind = maintenance ?? (emergency ? .emergency : .window)
            if kind == .emergency, !emergency {
                errors.add(ErrorCode.invalidField, "maintenance", "maintenance emergency is only for Emergency changes")
            }
            if kind == .window {
                // R-CHG-4: inside the customer's routine windows, wholly.
                var inside = false
                do {
                    if let calendar = windowCalendar {
                        inside = try calendar.businessSeconds(from: window.start, to: window.end) == window.end - window.start
                    }
                } catch {
                    throw CommandRejection(code: ErrorCode.invalidField, field: "start", message: "the window cannot be checked: \(error.message)")
                }
                if !inside {
                    let listed = plan.windows.isEmpty ? "the customer has no maintenance window (maintenance.windows.set)"
                        : "the customer's maintenance windows are \(plan.windows.map(\.description).joined(separator: ", ")) (\(plan.timeZone))"
                    errors.add(ErrorCode.outsideWindow, "start",
                               "\(span) is not inside a maintenance window: \(listed); outside them the customer's agreement is needed (maintenance agreed, agreedBy) (R-CHG-4)")
                }
                if change.interruptsService {
                    // R-CHG-4: routine maintenance that interrupts service is announced 5 business days ahead.
                    let earliest: Int64
                    do {
                        earliest = try business.adding(businessDays: noticeBusinessDays, to: now)
                    } catch {
                        throw CommandRejection(code: ErrorCode.invalidField, field: "start", message: "the notice cannot be computed: \(error.message)")
                    }
                    notice.earliestRoutineStart = earliest
                    if window.start < earliest {
                        errors.add(ErrorCode.insufficientNotice, "start",
                                   "routine maintenance that interrupts service is announced at least \(noticeBusinessDays) business days ahead: announced now (\(Instant.format(now))), it may start at \(Instant.format(earliest)) at the earliest (R-CHG-4)")
                    }
                }
            }
            notice.announce = change.interruptsService
        }
        // R-CHG-5: no overlapping Production implementations of a customer, no component changed twice at once,
        // unless one of the two is an Emergency change.
        for other in others where other.changeId != change.id && other.window.overlaps(window) && !emergency && other.type != .emergency {
            let shared = Set(other.components).intersection(change.components).sorted()
            if environment == .production, other.environment == .production, other.customerId == change.customerId {
                errors.add(ErrorCode.changeConflict, "start",
                           "\(span) overlaps the Production implementation of \(other.changeId) (\(Instant.format(other.window.start)) to \(Instant.format(other.window.end))) (R-CHG-5)")
            } else if !shared.isEmpty, other.environment == environment {
                errors.add(ErrorCode.changeConflict, "start",
                           "\(other.changeId) changes \(shared.joined(separator: ", ")) at an overlapping time (\(Instant.format(other.window.start)) to \(Instant.format(other.window.end))) (R-CHG-5)")
            }
        }
        try errors.throwIfAny()
        return notice
    }
}

extension ChangePolicy {
    /// The notice `maintenance.announced` gives: the largest `n` for which the same wall time `n`
    /// business days after `now`, in the customer's business calendar, is not after `start`.
    public static func businessDaysOfNotice(from now: Int64, to start: Int64, business: BusinessCalendar) -> Int {
        var n = 0
        while n < 400, let next = try? business.adding(businessDays: n + 1, to: now), next <= start { n += 1 }
        return n
    }
}
