import CSSCalendar
import CSSModel

/// Which clock of a ticket (R-SLA-3).
public enum SLATarget: String, Codable, Sendable, CaseIterable {
    /// From receipt to the first response by support.
    case response
    /// From receipt to restoration; the only clock that pauses (R-SLA-4) and honours exclusions (R-SLA-5).
    case restoration
}

/// The calendar a target counts on (R-SLA-1): P1 around the clock, the rest in business hours.
public enum SLACalendarKind: String, Codable, Sendable {
    case twentyFourSeven = "24x7"
    case business
}

/// What one target allows: so many seconds on one calendar.
public struct SLATerms: Codable, Equatable, Sendable {
    public var calendar: SLACalendarKind
    public var allowedSeconds: Int64

    public init(calendar: SLACalendarKind, allowedSeconds: Int64) {
        self.calendar = calendar
        self.allowedSeconds = allowedSeconds
    }
}

/// A customer's SLA terms: the handbook's table (R-SLA-1) with the contract's `slaPolicy`
/// overrides (any subset of priorities and targets), and the warning fractions (R-SLA-6).
public struct SLAPolicy: Codable, Equatable, Sendable {
    /// Terms by priority (`P1`...) and target.
    public var terms: [String: [String: SLATerms]]
    /// Fractions of the allowed time at which a warning is sent, increasing, each in (0, 1).
    public var warnAt: [Double]

    public static let defaultWarnAt = [0.5, 0.75, 0.9]

    /// The handbook's targets [§4.4.4].
    public static let handbook: SLAPolicy = {
        let hour: Int64 = 3600
        func pair(_ calendar: SLACalendarKind, _ response: Int64, _ restoration: Int64) -> [String: SLATerms] {
            [SLATarget.response.rawValue: SLATerms(calendar: calendar, allowedSeconds: response * hour),
             SLATarget.restoration.rawValue: SLATerms(calendar: calendar, allowedSeconds: restoration * hour)]
        }
        return SLAPolicy(terms: [
            Priority.p1.rawValue: pair(.twentyFourSeven, 1, 8),
            Priority.p2.rawValue: pair(.business, 2, 12),
            Priority.p3.rawValue: pair(.business, 4, 48),
            Priority.p4.rawValue: pair(.business, 8, 48),
        ], warnAt: defaultWarnAt)
    }()

    public init(terms: [String: [String: SLATerms]], warnAt: [Double]) {
        self.terms = terms
        self.warnAt = warnAt
    }

    /// Stored compactly (`P1:24x7:3600:28800;P2:...|0.5,0.75,0.9`): every ticket keeps the
    /// terms its clocks started with, and a keyed JSON object per priority costs more to
    /// decode than everything else a firing does.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        let halves = text.split(separator: "|", omittingEmptySubsequences: false)
        guard halves.count == 2 else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a stored SLA policy")) }
        var terms: [String: [String: SLATerms]] = [:]
        for entry in halves[0].split(separator: ";") {
            let f = entry.split(separator: ":")
            guard f.count == 4, let calendar = SLACalendarKind(rawValue: String(f[1])), let response = Int64(f[2]), let restoration = Int64(f[3]) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad policy entry \(entry)"))
            }
            terms[String(f[0])] = [SLATarget.response.rawValue: SLATerms(calendar: calendar, allowedSeconds: response),
                                   SLATarget.restoration.rawValue: SLATerms(calendar: calendar, allowedSeconds: restoration)]
        }
        self.terms = terms
        warnAt = try halves[1].split(separator: ",").map { part in
            guard let v = Double(part) else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad warnAt \(part)")) }
            return v
        }
    }

    public func encode(to encoder: any Encoder) throws {
        // Both targets of a priority share its calendar (slaPolicy sets it per priority).
        let entries = Priority.allCases.map { p in
            let response = self.terms(p, .response), restoration = self.terms(p, .restoration)
            return "\(p.rawValue):\(response.calendar.rawValue):\(response.allowedSeconds):\(restoration.allowedSeconds)"
        }
        var container = encoder.singleValueContainer()
        try container.encode(entries.joined(separator: ";") + "|" + warnAt.map { "\($0)" }.joined(separator: ","))
    }

    public func terms(_ priority: Priority, _ target: SLATarget) -> SLATerms {
        terms[priority.rawValue]?[target.rawValue] ?? Self.handbook.terms[priority.rawValue]![target.rawValue]!
    }

    /// The handbook's terms with the contract's overrides, from `customer.onboarded`'s `slaPolicy`
    /// (validated by intake: whole seconds, a known calendar, increasing fractions).
    /// - Throws: ``CommandRejection`` `invalid_field` for a value intake would have refused.
    public static func from(slaPolicy value: JSONValue?) throws(CommandRejection) -> SLAPolicy {
        var policy = handbook
        guard let o = value?.objectValue else { return policy }
        for priority in Priority.allCases {
            guard let p = o[priority.rawValue]?.objectValue else { continue }
            var calendar: SLACalendarKind?
            if let raw = p["calendar"]?.stringValue {
                guard let kind = SLACalendarKind(rawValue: raw) else {
                    throw CommandRejection(code: ErrorCode.invalidField, field: "data.slaPolicy.\(priority.rawValue).calendar", message: "calendar must be 24x7 or business, got \"\(raw)\"")
                }
                calendar = kind
            }
            for target in SLATarget.allCases {
                var t = policy.terms(priority, target)
                if let calendar { t.calendar = calendar }
                if let raw = p[target.rawValue]?.stringValue {
                    guard let seconds = ISODuration.parse(raw), seconds >= 1, seconds.rounded() == seconds else {
                        throw CommandRejection(code: ErrorCode.invalidField, field: "data.slaPolicy.\(priority.rawValue).\(target.rawValue)",
                                               message: "\(target.rawValue) must be a duration of whole seconds, got \"\(raw)\"")
                    }
                    t.allowedSeconds = Int64(seconds)
                }
                policy.terms[priority.rawValue, default: [:]][target.rawValue] = t
            }
        }
        if let list = o["warnAt"]?.arrayValue {
            let fractions = list.compactMap(\.numberValue)
            guard fractions.count == list.count, fractions.allSatisfy({ $0 > 0 && $0 < 1 }),
                  !zip(fractions, fractions.dropFirst()).contains(where: { $0 >= $1 }) else {
                throw CommandRejection(code: ErrorCode.invalidField, field: "data.slaPolicy.warnAt", message: "warnAt must be increasing fractions between 0 and 1")
            }
            policy.warnAt = fractions
        }
        return policy
    }

    /// The business seconds after which `fraction` of `allowed` is used up: exact when the
    /// product is a whole number (0.75 × 4 h), else the next whole second. Never rounds a
    /// threshold down, so a warning never comes before its fraction is really reached.
    public static func thresholdSeconds(_ fraction: Double, of allowed: Int64) -> Int64 {
        let exact = fraction * Double(allowed)
        let nearest = exact.rounded()
        if abs(exact - nearest) <= 1e-6 * max(1, abs(exact)) { return Int64(nearest) }
        return Int64(exact.rounded(.up))
    }

    /// A threshold's stable name, used in event ids and to remember it was sent: `0.75`, `breach`.
    public static func key(_ fraction: Double) -> String {
        var text = String(format: "%.6f", fraction)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

/// A customer's two calendars (R-SLA-2): business hours in its zone with its region's and
/// its own holidays, and around the clock in the same zone.
public struct SLACalendars: Sendable {
    public let business: BusinessCalendar
    public let always: BusinessCalendar

    public init(business: BusinessCalendar, always: BusinessCalendar) {
        self.business = business
        self.always = always
    }

    public func calendar(_ kind: SLACalendarKind) -> BusinessCalendar {
        kind == .business ? business : always
    }
}

/// Everything the clock needs besides its own state; all of it pure values.
public struct SLAEnvironment: Sendable {
    public var calendars: SLACalendars
    public var policy: SLAPolicy
    /// The customer's excluded intervals (R-SLA-5), in Unix seconds.
    public var exclusions: [InstantRange]

    public init(calendars: SLACalendars, policy: SLAPolicy, exclusions: [InstantRange] = []) {
        self.calendars = calendars
        self.policy = policy
        self.exclusions = exclusions
    }
}
