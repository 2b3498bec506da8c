import CSSCalendar
import CSSModel
import Foundation

/// Someone a message can go to.
public struct Contact: Codable, Equatable, Hashable, Sendable {
    public var name: String
    public var email: String
    public var phone: String?

    public init(name: String, email: String, phone: String? = nil) {
        self.name = name
        self.email = email
        self.phone = phone
    }

    public var json: JSONValue { ["name": .string(name), "email": .string(email), "phone": .optional(phone)] }

    /// `{name, email, phone?}` at `r`; nil (with the errors recorded) when it is not one.
    static func read(_ r: FieldReader) -> Contact? {
        let name = r.string("name", maxLength: 200)
        let email = r.email("email")
        let phone = r.string("phone", required: false, maxLength: 40)
        guard let name, let email else { return nil }
        return Contact(name: name, email: email, phone: phone)
    }

    init?(json: JSONValue?) {
        guard let name = json?["name"]?.stringValue, let email = json?["email"]?.stringValue else { return nil }
        self.init(name: name, email: email, phone: json?["phone"]?.stringValue)
    }
}

/// The rungs of an escalation chain, lowest first (R-ESC-2).
public enum Role: String, Codable, CaseIterable, Sendable {
    case engineer
    case teamLead = "team_lead"
    case successManager = "success_manager"
    case dutyManager = "duty_manager"

    var rank: Int { Self.allCases.firstIndex(of: self)! }
}

/// One level of a team's chain.
public struct Level: Codable, Equatable, Sendable {
    public var role: Role
    /// Seconds after the previous level's first message without an acknowledgement (0 for the first level).
    public var after: Int64
    public var contact: Contact?
    /// Seconds between repeats of this level, and how many messages it sends in all (1: no repeat).
    public var every: Int64?
    public var times: Int

    public init(role: Role, after: Int64, contact: Contact? = nil, every: Int64? = nil, times: Int = 1) {
        self.role = role
        self.after = after
        self.contact = contact
        self.every = every
        self.times = times
    }

    public var json: JSONValue {
        var o: JSONObject = ["role": .string(role.rawValue), "after": .string(ISODuration.format(seconds: Double(after)))]
        if let contact { o["contact"] = contact.json }
        if let every, times > 1 { o["repeat"] = ["every": .string(ISODuration.format(seconds: Double(every))), "times": .int(times)] }
        return .object(o)
    }
}

/// Someone covering the rotation over an interval.
public struct Override: Codable, Equatable, Sendable {
    public var member: Contact
    public var start: Int64
    public var end: Int64
    public var reason: String?

    public var json: JSONValue {
        ["member": member.json, "start": .string(Instant.format(start)), "end": .string(Instant.format(end)), "reason": .optional(reason)]
    }
}

/// A team's on-call schedule (R-ESC-5) and escalation chain (R-ESC-2), as `oncall.schedule.set` sets it.
public struct OnCallSchedule: Codable, Equatable, Sendable {
    public var team: String
    public var timeZone: String
    public var members: [Contact]
    /// The hand-off's local wall time, seconds after midnight.
    public var handoff: Int
    public var rotationDays: Int
    /// The local date of the first hand-off.
    public var startDay: Int64
    public var overrides: [Override]
    public var levels: [Level]

    public static let maxMembers = 50
    public static let maxLevels = 10
    public static let maxOverrides = 200
    public static let maxLevelSeconds: Double = 86_400
    public static let maxOverrideSeconds: Int64 = 90 * 86_400

    public init(team: String, timeZone: String, members: [Contact], handoff: Int, rotationDays: Int, startDay: Int64,
                overrides: [Override] = [], levels: [Level]) {
        self.team = team
        self.timeZone = timeZone
        self.members = members
        self.handoff = handoff
        self.rotationDays = rotationDays
        self.startDay = startDay
        self.overrides = overrides
        self.levels = levels
    }

    /// Parses and checks `oncall.schedule.set`; every problem is reported, nothing is half-read.
    public static func parse(_ body: JSONValue) throws(CommandRejection) -> (schedule: OnCallSchedule, by: String?) {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let team = Identifier.read(r, "team")
        var zone: ZoneRules?
        if let tz = r.string("timeZone", maxLength: 64) {
            zone = try? ZoneRules.load(identifier: tz)
            if zone == nil { errors.add(ErrorCode.invalidField, "timeZone", "timeZone must be an IANA time zone such as Europe/London, got \"\(tz)\"") }
        }
        var members: [Contact] = []
        if let readers = r.objects("members", maxCount: maxMembers) {
            let read = readers.map(Contact.read)
            members = read.compactMap { $0 }
            if readers.isEmpty { errors.add(ErrorCode.invalidField, "members", "members must list at least one person: a rotation cannot be empty") }
            var seen = Set<String>()
            // Indexed over every entry, not just the valid ones, so the field names the right entry.
            for (i, m) in read.enumerated() {
                if let m, !seen.insert(m.email).inserted {
                    errors.add(ErrorCode.duplicateContact, "members[\(i)].email", "\(m.email) is listed more than once")
                }
            }
        }
        var handoff: Int?
        if let text = r.string("handoffTime", maxLength: 8) {
            if let t = try? TimeOfDay(parsing: text), t.seconds < 86_400 {
                handoff = t.seconds
            } else {
                errors.add(ErrorCode.invalidField, "handoffTime", "handoffTime must be a local time HH:MM or HH:MM:SS from 00:00 to 23:59:59, got \"\(text)\"")
            }
        }
        let rotationDays = r.integer("rotationDays", range: 1...366)
        var startDay: Int64?
        if let text = r.string("start", maxLength: 64) {
            if let day = try? LocalDate(iso: text), text.count == 10 {
                startDay = day.dayNumber
            } else if let instant = RFC3339.parse(text) {
                startDay = zone.map { $0.localDate(at: Instant.seconds(instant)).dayNumber }
            } else {
                errors.add(ErrorCode.invalidField, "start", "start must be the day of the first hand-off, YYYY-MM-DD (or an RFC 3339 time), got \"\(text)\"")
            }
        }
        let levels = readLevels(r, errors)
        let overrides = readOverrides(r, errors)
        let by = r.string("by", required: false, maxLength: 254)
        try errors.throwIfAny()
        return (OnCallSchedule(team: team!, timeZone: zone!.identifier, members: members, handoff: handoff!, rotationDays: rotationDays!,
                               startDay: startDay!, overrides: overrides, levels: levels), by)
    }

    static func readLevels(_ r: FieldReader, _ errors: ValidationErrors) -> [Level] {
        guard let readers = r.objects("levels", maxCount: maxLevels) else { return [] }
        if readers.isEmpty { errors.add(ErrorCode.invalidField, "levels", "levels must list at least one level (the first is notified at once)") }
        var levels: [Level] = []
        for (i, l) in readers.enumerated() {
            let role = l.enumeration("role", Role.self)
            let after = wholeSeconds(l, "after", errors)
            let contact = l.object("contact", required: false).flatMap(Contact.read)
            var every: Int64?, times = 1
            if let rep = l.object("repeat", required: false) {
                every = wholeSeconds(rep, "every", errors)
                times = rep.integer("times", range: 2...20) ?? 1
                if every == 0 { errors.add(ErrorCode.invalidField, rep.path("every"), "\(rep.path("every")) must be longer than zero"); every = nil }
            }
            guard let role, let after else { continue }
            if i == 0, after != 0 {
                errors.add(ErrorCode.invalidField, l.path("after"), "\(l.path("after")) must be PT0S: the first level is notified at once")
            } else if i > 0, after == 0 {
                errors.add(ErrorCode.invalidField, l.path("after"), "\(l.path("after")) must be longer than zero: it is how long level \(i) has to acknowledge")
            }
            if let previous = levels.last, role.rank < previous.role.rank {
                errors.add(ErrorCode.invalidField, l.path("role"),
                           "levels must go up the chain (engineer, team_lead, success_manager, duty_manager): \(role.rawValue) cannot follow \(previous.role.rawValue)")
            }
            levels.append(Level(role: role, after: after, contact: contact, every: times > 1 ? every : nil, times: times))
        }
        return levels
    }

    /// An ISO 8601 duration of whole seconds, at most a day.
    static func wholeSeconds(_ r: FieldReader, _ key: String, _ errors: ValidationErrors) -> Int64? {
        guard let d = r.duration(key, maximum: .greatestFiniteMagnitude) else { return nil }
        guard d >= 0, d == d.rounded(.down), d <= maxLevelSeconds else {
            errors.add(ErrorCode.invalidField, r.path(key), "\(r.path(key)) must be a whole number of seconds from PT0S to P1D, got \(ISODuration.format(seconds: d))")
            return nil
        }
        return Int64(d)
    }

    static func readOverrides(_ r: FieldReader, _ errors: ValidationErrors) -> [Override] {
        guard let readers = r.objects("overrides", required: false, maxCount: maxOverrides) else { return [] }
        var list: [(index: Int, override: Override)] = []
        for (i, o) in readers.enumerated() {
            let member = o.object("member").flatMap(Contact.read)
            let start = o.timestamp("start").map(Instant.seconds)
            let end = o.timestamp("end").map { Int64($0.timeIntervalSince1970.rounded(.up)) }
            let reason = o.string("reason", required: false, maxLength: 500)
            guard let member, let start, let end else { continue }
            if end <= start {
                errors.add(ErrorCode.invalidField, o.path("end"), "\(o.path("end")) must be after \(o.path("start"))")
            } else if end - start > maxOverrideSeconds {
                errors.add(ErrorCode.invalidField, o.path("end"), "an override may last at most 90 days")
            } else {
                list.append((i, Override(member: member, start: start, end: end, reason: reason)))
            }
        }
        // Each override against every earlier one: a long override can overlap several that do not overlap each other.
        for (k, second) in list.enumerated() {
            guard let first = list[..<k].first(where: { $0.override.start < second.override.end && second.override.start < $0.override.end }) else { continue }
            errors.add(ErrorCode.overlappingOverrides, "overrides[\(second.index)]",
                       "overrides[\(second.index)] (\(Instant.format(second.override.start)) to \(Instant.format(second.override.end))) overlaps overrides[\(first.index)] (\(Instant.format(first.override.start)) to \(Instant.format(first.override.end)))")
        }
        return list.sorted { $0.override.start < $1.override.start }.map(\.override)
    }

    public var json: JSONValue {
        ["team": .string(team), "timeZone": .string(timeZone), "members": .array(members.map(\.json)),
         "handoffTime": .string(try! TimeOfDay(seconds: handoff).description), "rotationDays": .int(rotationDays),
         "start": .string(LocalDate(dayNumber: startDay).description), "overrides": .array(overrides.map(\.json)),
         "levels": .array(levels.map(\.json))]
    }
}

/// Who is on call, and why.
public struct OnCall: Equatable, Sendable {
    public enum Source: String, Sendable { case rotation, override }
    public var member: Contact
    public var source: Source

    public var json: JSONValue {
        var o = member.json.objectValue!
        o["source"] = .string(source.rawValue)
        return .object(o)
    }
}

/// A schedule with its zone's rules: who is on call at an instant, exact across DST (R-ESC-5).
///
/// Hand-off n happens at the hand-off wall time on local date `start + n × rotationDays`;
/// a wall time skipped by a spring-forward hands off when the clocks jump, one repeated by
/// a fall-back at its first occurrence (``ZoneRules/instant(_:secondsOfDay:)``). Before the
/// first hand-off nobody is on call from the rotation; an override covers whoever would be.
public struct Rotation: Sendable {
    public let schedule: OnCallSchedule
    let zone: ZoneRules

    public init(_ schedule: OnCallSchedule, zone: ZoneRules) {
        self.schedule = schedule
        self.zone = zone
    }

    public init(_ schedule: OnCallSchedule) throws(CalendarError) {
        self.init(schedule, zone: try ZoneRules.load(identifier: schedule.timeZone))
    }

    /// The instant of hand-off `n` (0 is the first).
    public func handoff(_ n: Int64) -> Int64 {
        zone.instant(LocalDate(dayNumber: schedule.startDay + n * Int64(schedule.rotationDays)), secondsOfDay: schedule.handoff)
    }

    /// The last hand-off at or before `t`; nil before the first.
    func handoffIndex(at t: Int64) -> Int64? {
        let day = zone.localDate(at: t).dayNumber
        let d = day - schedule.startDay, days = Int64(schedule.rotationDays)
        var n = d >= 0 ? d / days : -((-d + days - 1) / days)
        if handoff(n + 1) <= t { n += 1 }
        while n >= 0, handoff(n) > t { n -= 1 }
        return n >= 0 ? n : nil
    }

    /// Who is on call at `t`: an override covering it, else the rotation's member.
    public func onCall(at t: Int64) -> OnCall? {
        if let o = schedule.overrides.first(where: { $0.start <= t && t < $0.end }) {
            return OnCall(member: o.member, source: .override)
        }
        guard let n = handoffIndex(at: t) else { return nil }
        let members = schedule.members
        return OnCall(member: members[Int(n % Int64(members.count))], source: .rotation)
    }

    /// The next `count` instants after `t` at which who is on call changes, with who takes over.
    public func handoffs(after t: Int64, count: Int) -> [(at: Int64, onCall: OnCall?)] {
        var out: [(at: Int64, onCall: OnCall?)] = []
        var current = onCall(at: t)
        var cursor = t
        // Rotation hand-offs and override edges are the only instants where it can change.
        var n = (handoffIndex(at: t) ?? -1) + 1
        // Enough steps to pass every member once per answer and every override edge.
        var steps = (count + 1) * (schedule.members.count + 1) + 2 * schedule.overrides.count + 2
        while out.count < count, steps > 0 {
            steps -= 1
            let nextRotation = handoff(n)
            let nextEdge = schedule.overrides.flatMap { [$0.start, $0.end] }.filter { $0 > cursor }.min()
            let next = min(nextRotation, nextEdge ?? .max)
            if next == nextRotation { n += 1 }
            cursor = next
            let who = onCall(at: next)
            // Rotation hand-offs inside an override change nothing: go on from its end (else a long
            // override would use up the steps before the list gets past it).
            if who?.source == .override, let o = schedule.overrides.first(where: { $0.start <= next && next < $0.end }) {
                n = max(n, (handoffIndex(at: o.end - 1) ?? -1) + 1)
            }
            if who != current {
                out.append((next, who))
                current = who
            }
        }
        return out
    }
}
