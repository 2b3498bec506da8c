import CSSCalendar
import CSSModel
import Foundation

/// The bodies of change management's commands, validated as `docs/asyncapi.yaml` pins them:
/// every problem reported at once, the command refused whole.
public enum ChangeBodies {
    static func reader(_ body: JSONValue, _ errors: ValidationErrors) throws(CommandRejection) -> FieldReader {
        try FieldReader.body(body, errors: errors)
    }

    /// A change id as commands give it.
    static func changeId(_ r: FieldReader) -> String? { r.string("changeId", maxLength: 40) }

    /// `by` of a command: an actor of at most 254 characters (e-mails compared in lower case).
    static func actor(_ r: FieldReader) -> String? { r.string("by", maxLength: 254)?.lowercased() }

    /// [start, end) with end after start.
    static func interval(_ r: FieldReader?, startKey: String = "start", endKey: String = "end") -> Interval? {
        guard let r, let start = r.timestamp(startKey), let end = r.timestamp(endKey) else { return nil }
        guard end > start else {
            r.errors.add(ErrorCode.invalidField, r.path(endKey), "\(r.path(endKey)) must be after \(r.path(startKey))")
            return nil
        }
        return Interval(start: Instant.seconds(start), end: Int64(end.timeIntervalSince1970.rounded(.up)))
    }

    static func components(_ r: FieldReader, _ key: String, required: Bool, allowEmpty: Bool) -> [String]? {
        guard let list = r.strings(key, required: required, maxCount: 50, maxLength: 200) else { return nil }
        if list.isEmpty, !allowEmpty {
            r.errors.add(ErrorCode.invalidField, r.path(key), "\(r.path(key)) must name at least one component")
            return nil
        }
        var seen = Set<String>()
        return list.filter { seen.insert($0).inserted }
    }

    // MARK: Catalogue, boards, windows

    public struct Template: Codable, Equatable, Sendable {
        public var templateId: String
        public var title: String
        public var description: String
        public var components: [String]
    }

    public static func template(_ body: JSONValue) throws(CommandRejection) -> (Template, by: String) {
        let errors = ValidationErrors()
        let r = try reader(body, errors)
        let id = Identifier.read(r, "templateId")
        let title = r.string("title", maxLength: 200)
        let description = r.string("description", maxLength: 2000)
        let components = components(r, "components", required: true, allowEmpty: true)
        let by = actor(r)
        try errors.throwIfAny()
        return (Template(templateId: id!, title: title!, description: description!, components: components!), by!)
    }

    public static func board(_ body: JSONValue) throws(CommandRejection) -> (BoardName, Board, by: String) {
        let errors = ValidationErrors()
        let r = try reader(body, errors)
        let name = r.enumeration("board", BoardName.self)
        var members: [String]?
        if let raw = r.array("members", maxCount: 20) {
            if raw.isEmpty { errors.add(ErrorCode.invalidField, "members", "members must list at least one member") }
            var list: [String] = []
            var seen = Set<String>()
            for (i, v) in raw.enumerated() {
                guard let s = v.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), FieldReader.isPlausibleEmail(s), StorableText.isStorable(s), s.count <= 254 else {
                    errors.add(ErrorCode.invalidField, "members[\(i)]", "members[\(i)] must be an e-mail address")
                    continue
                }
                if !seen.insert(s.lowercased()).inserted {
                    errors.add(ErrorCode.duplicateContact, "members[\(i)]", "\(s) is listed twice")
                }
                list.append(s.lowercased())
            }
            members = raw.isEmpty ? nil : list
        }
        let quorum = r.integer("quorum", range: 1...20)
        let by = actor(r)
        if let q = quorum, let m = members, q > m.count {
            errors.add(ErrorCode.invalidField, "quorum", "quorum must be from 1 to the number of members (\(m.count)), got \(q)")
        }
        try errors.throwIfAny()
        return (name!, Board(members: members!, quorum: quorum!), by!)
    }

    /// `maintenance.windows.set`: the windows and freezes (in the customer's zone, which the caller adds).
    public static func windows(_ body: JSONValue) throws(CommandRejection) -> (customerId: String, windows: [WeeklyWindow], freezes: [Freeze], by: String) {
        let errors = ValidationErrors()
        let r = try reader(body, errors)
        let customerId = Identifier.read(r, "customerId")
        var windows: [WeeklyWindow] = []
        for w in r.objects("windows", maxCount: 28) ?? [] {
            let day = w.string("weekday", maxLength: 20)
            let start = localTime(w, "start")
            let end = localTime(w, "end")
            var weekday: Weekday?
            if let day {
                if let i = WeeklyWindow.weekdays.firstIndex(of: day) { weekday = Weekday(rawValue: i) } else {
                    errors.add(ErrorCode.unknownValue, w.path("weekday"), "\(w.path("weekday")) must be one of \(WeeklyWindow.weekdays.joined(separator: ", ")), got \"\(day)\"")
                }
            }
            if let weekday, let start, let end {
                windows.append(WeeklyWindow(weekday: weekday, start: start, end: end))
            }
        }
        var freezes: [Freeze] = []
        for (i, f) in (r.objects("freezes", maxCount: 50) ?? []).enumerated() {
            let span = interval(f)
            let reason = f.string("reason", maxLength: 500)
            if let span, span.end - span.start > 90 * 86_400 {
                errors.add(ErrorCode.invalidField, f.path("end"), "a freeze lasts at most 90 days")
            } else if let span, let reason {
                if let j = freezes.firstIndex(where: { $0.interval.overlaps(span) }) {
                    errors.add(ErrorCode.invalidField, "freezes[\(i)]", "freezes[\(i)] overlaps freezes[\(j)]")
                }
                freezes.append(Freeze(interval: span, reason: reason))
            }
        }
        let by = actor(r)
        try errors.throwIfAny()
        return (customerId!, windows, freezes.sorted { $0.interval.start < $1.interval.start }, by!)
    }

    /// `HH:MM`, as seconds after midnight.
    static func localTime(_ r: FieldReader, _ key: String) -> Int? {
        guard let s = r.string(key, maxLength: 5) else { return nil }
        let parts = s.split(separator: ":")
        guard s.count == 5, parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...23).contains(h), (0...59).contains(m) else {
            r.errors.add(ErrorCode.invalidField, r.path(key), "\(r.path(key)) must be a local time HH:MM from 00:00 to 23:59, got \"\(s)\"")
            return nil
        }
        return h * 3600 + m * 60
    }

    // MARK: The request

    public struct Request: Equatable, Sendable {
        public var customerId: String
        public var type: ChangeType
        public var title: String
        public var details: RequestDetails
        public var components: [String]
        public var interruptsService: Bool
        public var templateId: String?
        public var incident: String?
        public var by: String
    }

    public static func request(_ body: JSONValue) throws(CommandRejection) -> Request {
        let errors = ValidationErrors()
        let r = try reader(body, errors)
        let customerId = Identifier.read(r, "customerId")
        let type = r.enumeration("type", ChangeType.self)
        let title = r.string("title", maxLength: 200)
        let reason = r.string("reason", maxLength: 2000)
        let work = r.string("work", maxLength: 4000)
        let impact = r.string("impact", maxLength: 2000)
        var cost: Cost?
        if let c = r.object("cost") {
            let amount = c.number("amount", range: 0...1e15)
            let currency = c.string("currency", maxLength: 3)
            if let cur = currency, !(cur.count == 3 && cur.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) }) {
                errors.add(ErrorCode.invalidField, "cost.currency", "cost.currency must be an ISO 4217 code of three capital letters, got \"\(cur)\"")
            } else if let amount, let currency { cost = Cost(amount: amount, currency: currency) }
        }
        var environments: [Deployment]?
        if let raw = r.array("environments", maxCount: 2) {
            var list: [Deployment] = []
            for (i, v) in raw.enumerated() {
                if let s = v.stringValue, let d = Deployment(rawValue: s) {
                    if !list.contains(d) { list.append(d) }
                } else {
                    errors.add(ErrorCode.unknownValue, "environments[\(i)]", "environments[\(i)] must be \"test\" or \"production\"")
                }
            }
            if list.count == raw.count, !(list.contains(.test) && list.contains(.production)) {
                errors.add(ErrorCode.invalidField, "environments", "environments must include test and production: every change is deployed to Test and verified there before Production (R-CHG-3)")
            }
            environments = [.test, .production]
        }
        let requested = interval(r.object("requestedWindow"))
        let components = components(r, "components", required: true, allowEmpty: false)
        let interrupts = r.bool("interruptsService")
        let templateId = r.value("templateId", required: false) == nil ? nil : Identifier.read(r, "templateId")
        let incident = r.string("incident", required: false, maxLength: 40)
        let by = r.email("by")
        if let type {
            if type == .standard, r.value("templateId", required: false) == nil {
                errors.add(ErrorCode.missingField, "templateId", "a Standard change names its template of the standard-change catalogue (templateId)")
            }
            if type != .standard, r.value("templateId", required: false) != nil {
                errors.add(ErrorCode.invalidField, "templateId", "templateId is for Standard changes only")
            }
            if type == .emergency, r.value("incident", required: false) == nil {
                errors.add(ErrorCode.missingField, "incident", "an Emergency change references the open P1 or P2 production incident it addresses (incident)")
            }
            if type != .emergency, r.value("incident", required: false) != nil {
                errors.add(ErrorCode.invalidField, "incident", "incident is for Emergency changes only")
            }
        }
        try errors.throwIfAny()
        return Request(customerId: customerId!, type: type!, title: title!,
                       details: RequestDetails(reason: reason!, work: work!, impact: impact!, cost: cost!, environments: environments!, requestedWindow: requested!),
                       components: components!, interruptsService: interrupts!, templateId: type == .standard ? templateId : nil,
                       incident: type == .emergency ? incident?.uppercased() : nil, by: by!)
    }

    // MARK: Lifecycle commands

    /// A lifecycle command: which change, the action, who.
    public struct Step: Equatable, Sendable {
        public var changeId: String
        public var action: ChangeAction
        public var by: String
    }

    public static func step(_ command: String, _ body: JSONValue) throws(CommandRejection) -> Step {
        let errors = ValidationErrors()
        let r = try reader(body, errors)
        let id = changeId(r)
        var action: ChangeAction?
        switch command {
        case CommandName.changeAgree:
            action = .agree
        case CommandName.changeAssess:
            let risk = r.enumeration("risk", Risk.self)
            let plan = r.string("plan", maxLength: 4000)
            if let risk, let plan { action = .assess(risk: risk.rawValue, plan: plan) }
        case CommandName.changeVote:
            let approve = r.bool("approve")
            let reason = r.string("reason", maxLength: 1000)
            if let approve, let reason { action = .vote(approve: approve, reason: reason) }
        case CommandName.changeSchedule:
            let environment = r.enumeration("environment", Deployment.self)
            let span = interval(r)
            let maintenance = r.enumeration("maintenance", Maintenance.self, required: false)
            let agreedBy = r.email("agreedBy", required: false)
            if environment == .test, maintenance != nil || agreedBy != nil {
                errors.add(ErrorCode.invalidField, maintenance != nil ? "maintenance" : "agreedBy", "maintenance and agreedBy are for Production schedules only")
            }
            if maintenance == .agreed, agreedBy == nil, r.value("agreedBy", required: false) == nil {
                errors.add(ErrorCode.missingField, "agreedBy", "agreed maintenance names the change contact who agreed it (agreedBy)")
            }
            if maintenance != .agreed, agreedBy != nil, environment != .test {
                errors.add(ErrorCode.invalidField, "agreedBy", "agreedBy goes with maintenance agreed only")
            }
            if let span, span.end - span.start > 31 * 86_400 {
                errors.add(ErrorCode.invalidField, "end", "a schedule lasts at most 31 days")
            }
            if let environment, let span { action = .schedule(environment, span, maintenance: maintenance, agreedBy: agreedBy) }
        case CommandName.changeDeploy:
            action = .deploy
        case CommandName.changeVerify:
            let accepted = r.bool("accepted")
            let notes = r.string("notes", required: false, maxLength: 2000)
            if let accepted { action = .verify(accepted: accepted, notes: notes) }
        case CommandName.changeImplement:
            action = .implement
        case CommandName.changeComplete:
            let outcome = r.enumeration("outcome", Outcome.self)
            let given = (installed: r.value("installed", required: false) != nil, rollback: r.value("rollback", required: false) != nil)
            switch outcome {
            case .implemented:
                if given.rollback { errors.add(ErrorCode.invalidField, "rollback", "rollback is for a failed implementation only") }
                if let list = installed(r) { action = .complete(installed: list) }
            case .failed:
                if given.installed { errors.add(ErrorCode.invalidField, "installed", "installed is for an implemented change only") }
                if let rollback = r.string("rollback", maxLength: 2000) { action = .fail(rollback: rollback) }
            case nil:
                break
            }
        case CommandName.changeClose:
            action = .close
        case CommandName.changeCancel:
            if let reason = r.string("reason", maxLength: 2000) { action = .cancel(reason: reason) }
        default:
            throw CommandRejection(code: ErrorCode.unknownCommand, message: "\(command) is not a change lifecycle command")
        }
        // Who: change contacts (agree, verify) and board members (vote) are e-mail addresses.
        let needsEmail = [CommandName.changeAgree, CommandName.changeVerify, CommandName.changeVote].contains(command)
        let by = needsEmail ? r.email("by") : actor(r)
        try errors.throwIfAny()
        return Step(changeId: id!.uppercased(), action: action!, by: by!)
    }

    static func installed(_ r: FieldReader) -> [InstalledComponent]? {
        guard let list = r.objects("installed", maxCount: 50) else { return nil }
        if list.isEmpty {
            r.errors.add(ErrorCode.invalidField, "installed", "installed must list what the change delivered")
            return nil
        }
        var out: [InstalledComponent] = []
        for i in list {
            let component = i.string("component", maxLength: 200)
            let kind = i.enumeration("kind", InstalledComponent.Kind.self)
            let version = i.string("version", maxLength: 100)
            if let component, let kind, let version { out.append(InstalledComponent(component: component, kind: kind, version: version)) }
        }
        return out.count == list.count ? out : nil
    }

    enum Risk: String, CaseIterable { case low, medium, high }
    enum Outcome: String, CaseIterable { case implemented, failed }
}
