import CSSCalendar
import Foundation

/// Routing keys of the commands on `css.commands`.
public enum CommandName {
    public static let customerOnboard = "customer.onboard"
    public static let contactAvailability = "customer.contact.availability"
    public static let ticketSubmit = "ticket.submit"
    public static let ticketTransition = "ticket.transition"
    public static let ticketGet = "ticket.get"
    public static let slaExclusionAdd = "sla.exclusion.add"
    public static let reclassifyRequest = "ticket.reclassify.request"
    public static let reclassifyDecide = "ticket.reclassify.decide"
    public static let ticketDispatch = "ticket.dispatch"
    public static let quotaGet = "quota.get"
    public static let problemOpen = "problem.open"
    public static let problemUpdate = "problem.update"
    public static let problemLink = "problem.link"
    public static let problemGet = "problem.get"
    /// A team's on-call rotation and escalation chain (R-ESC-5, R-ESC-2).
    public static let oncallScheduleSet = "oncall.schedule.set"
    /// Who is on call for a team at an instant, and the next hand-offs (R-ESC-5).
    public static let oncallGet = "oncall.get"
    /// Acknowledges an escalation: its chain stops (R-ESC-6).
    public static let escalationAck = "escalation.ack"
    /// A team's open escalations.
    public static let escalationList = "escalation.list"
    /// Change management (the `change` service). The standard-change catalogue, the approval boards
    /// and a customer's maintenance windows and freezes (R-CHG-1, R-CHG-4).
    public static let changeTemplateSet = "change.template.set"
    public static let changeBoardSet = "change.board.set"
    public static let maintenanceWindowsSet = "maintenance.windows.set"
    /// A change's lifecycle: request, agreement, assessment, CAB votes, Test then Production
    /// (R-CHG-1..5), completion, closing and cancelling.
    public static let changeRequest = "change.request"
    public static let changeAgree = "change.agree"
    public static let changeAssess = "change.assess"
    public static let changeVote = "change.vote"
    public static let changeSchedule = "change.schedule"
    public static let changeDeploy = "change.deploy"
    public static let changeVerify = "change.verify"
    public static let changeImplement = "change.implement"
    public static let changeComplete = "change.complete"
    public static let changeClose = "change.close"
    public static let changeCancel = "change.cancel"
    /// Read-only: a change, and a customer's directory of installed components with its deployment timeline (R-CHG-6).
    public static let changeGet = "change.get"
    public static let changeDirectoryGet = "change.directory.get"
}

/// Identifiers that end up in routing keys (`customer.<id>`, `oncall.<team>.p1`) may
/// not contain dots or wildcards, or topic bindings would misroute them.
public enum Identifier {
    public static func isValid(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 64,
              first.properties.isASCIIHexDigit || ("a"..."z").contains(first) || ("A"..."Z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { c in
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "-" || c == "_"
        }
    }

    public static func read(_ r: FieldReader, _ key: String) -> String? {
        guard let s = r.string(key, maxLength: 64) else { return nil }
        guard isValid(s) else {
            r.errors.add(ErrorCode.invalidField, r.path(key), "\(r.path(key)) may use letters, digits, '-' and '_' only (it becomes part of routing keys), got \"\(s)\"")
            return nil
        }
        return s
    }
}

/// `customer.onboard` (R-CUS-1, R-CUS-2): an upsert of a customer's settings.
public struct OnboardCustomer: Sendable, Equatable {
    public struct Contact: Sendable, Equatable {
        public var email: String
        public var name: String
        public var phone: String?
        public var primary: Bool
    }

    public struct Quotas: Sendable, Equatable {
        public var standard: Int
        public var nonStandard: Int
    }

    /// One priority's overrides of the handbook's targets (R-SLA-1): whole seconds, at most 366 days.
    public struct Targets: Sendable, Equatable {
        public var response: Double?
        public var restoration: Double?
        /// `24x7` or `business`: the calendar this priority's clocks count on; nil keeps the handbook's.
        public var calendar: String?

        public init(response: Double? = nil, restoration: Double? = nil, calendar: String? = nil) {
            self.response = response
            self.restoration = restoration
            self.calendar = calendar
        }

        /// The calendars a target may count on.
        public static let calendars = ["24x7", "business"]
        /// The longest target a policy may set: 366 days.
        public static let maximumSeconds: Double = 366 * 86400
    }

    public struct SLAPolicy: Sendable, Equatable {
        public var targets: [Priority: Targets]
        public var warnAt: [Double]?
    }

    public var customerId: String
    public var name: String
    public var timeZone: String
    public var supportRegion: String
    public var extraHolidays: [String]
    /// The customer's own holidays as iCalendar text (all-day VEVENTs, RRULE YEARLY), checked
    /// to parse at onboarding; it is what lets a customer outside the supported regions onboard.
    public var holidayCalendar: String?
    public var team: String
    public var contractYearStart: String
    public var maxContacts: Int
    public var contacts: [Contact]
    public var changeContacts: [String]
    /// The customer's Customer Success Manager on the vendor's side: customer escalations
    /// (R-ESC-4, R-CUS-5) go to the primary POC and to them.
    public var successManager: Contact?
    public var catalogue: [String]
    public var quotas: Quotas?
    public var slaPolicy: SLAPolicy?
    /// The contract's overrides of the handbook's priority table (R-CLS-1).
    public var priorityRules: [PriorityRuleEntry] = []

    public static let defaultMaxContacts = 3
    public static let maxPriorityRules = 64
    /// The longest `holidayCalendar` accepted, in characters.
    public static let maxHolidayCalendarLength = 200_000

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> OnboardCustomer {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let customerId = Identifier.read(r, "customerId")
        let name = r.string("name", maxLength: 200)
        var timeZone = r.string("timeZone", maxLength: 64)
        if let tz = timeZone, TimeZone(identifier: tz) == nil || tz.isEmpty {
            errors.add(ErrorCode.invalidField, "timeZone", "timeZone must be an IANA time zone such as America/Toronto, got \"\(tz)\"")
            timeZone = nil
        }
        var region = r.string("supportRegion", maxLength: 10)
        if let reg = region, !Self.isRegionCode(reg) {
            errors.add(ErrorCode.invalidField, "supportRegion", "supportRegion must be an ISO 3166 code with optional subdivision such as US, CA-ON or GB-ENG, got \"\(reg)\"")
            region = nil
        }
        var extraHolidays: [String] = []
        let extraHolidayList = r.array("extraHolidays", required: false, maxCount: 1000)
        if let list = extraHolidayList {
            for (i, v) in list.enumerated() {
                if let s = v.stringValue, RFC3339.parseDate(s) != nil {
                    extraHolidays.append(s)
                } else {
                    errors.add(ErrorCode.invalidField, "extraHolidays[\(i)]", "extraHolidays[\(i)] must be a date YYYY-MM-DD")
                }
            }
        }
        let holidayCalendar = Self.readHolidayCalendar(r, errors)
        // R-CUS-1, R-SLA-2: the region's statutory holidays must be known, or the customer brings its own.
        let bringsHolidays = !(extraHolidayList?.isEmpty ?? true) || r.value("holidayCalendar", required: false) != nil
        if let reg = region, !HolidayRegion.supportedCodes.contains(reg), !bringsHolidays {
            errors.add(ErrorCode.unknownRegion, "supportRegion",
                       "supportRegion \"\(reg)\" has no statutory holiday rules here; supported: \(HolidayRegion.supportedCodes.joined(separator: ", ")). "
                       + "A customer in another region may bring its own holidays in extraHolidays (dates YYYY-MM-DD) or holidayCalendar (iCalendar text)")
            region = nil
        }
        let team = Identifier.read(r, "team")
        let contractYearStart = r.date("contractYearStart")
        let maxContacts = r.integer("maxContacts", required: false, range: 1...100) ?? defaultMaxContacts
        var contacts: [Contact] = []
        if let readers = r.objects("contacts", maxCount: 100) {
            for c in readers {
                let email = c.email("email")
                let cname = c.string("name", maxLength: 200)
                let phone = c.string("phone", required: false, maxLength: 40)
                let primary = c.bool("primary", required: false) ?? false
                if let email, let cname {
                    contacts.append(Contact(email: email, name: cname, phone: phone, primary: primary))
                }
            }
            if readers.isEmpty {
                errors.add(ErrorCode.invalidField, "contacts", "contacts must list at least one Point of Contact")
            }
            if contacts.count == readers.count, !readers.isEmpty {
                // R-CUS-2: at most maxContacts, exactly one primary, no duplicates.
                if contacts.count > maxContacts {
                    errors.add(ErrorCode.tooManyContacts, "contacts", "a customer may have at most \(maxContacts) Points of Contact; \(contacts.count) were given")
                }
                let primaries = contacts.filter(\.primary).count
                if primaries != 1 {
                    errors.add(ErrorCode.primaryContact, "contacts", "exactly one Point of Contact must be primary; \(primaries) are")
                }
                var seen = Set<String>()
                for (i, c) in contacts.enumerated() where !seen.insert(c.email).inserted {
                    errors.add(ErrorCode.duplicateContact, "contacts[\(i)].email", "\(c.email) is listed more than once")
                }
            }
        }
        var changeContacts: [String] = []
        if let list = r.strings("changeContacts", required: false, maxCount: 100, maxLength: 254) {
            for (i, e) in list.enumerated() {
                if FieldReader.isPlausibleEmail(e) {
                    changeContacts.append(e.lowercased())
                } else {
                    errors.add(ErrorCode.invalidField, "changeContacts[\(i)]", "changeContacts[\(i)] must be an e-mail address, got \"\(e)\"")
                }
            }
        }
        var successManager: Contact?
        if let m = r.object("successManager", required: false) {
            let email = m.email("email")
            let mname = m.string("name", maxLength: 200)
            let phone = m.string("phone", required: false, maxLength: 40)
            if let email, let mname { successManager = Contact(email: email, name: mname, phone: phone, primary: false) }
        }
        let catalogue = r.strings("catalogue", required: false, maxCount: 5000, maxLength: 200) ?? []
        var quotas: Quotas?
        if let q = r.object("quotas", required: false) {
            let s = q.integer("standard", range: 0...1_000_000)
            let n = q.integer("nonStandard", range: 0...1_000_000)
            if let s, let n { quotas = Quotas(standard: s, nonStandard: n) }
        }
        var policy: SLAPolicy?
        if let p = r.object("slaPolicy", required: false) {
            var targets: [Priority: Targets] = [:]
            for priority in Priority.allCases {
                if let t = p.object(priority.rawValue, required: false) {
                    let response = Self.readTarget(t, "response", errors)
                    let restoration = Self.readTarget(t, "restoration", errors)
                    var calendar = t.string("calendar", required: false, maxLength: 64)
                    if let c = calendar, !Targets.calendars.contains(c) {
                        errors.add(ErrorCode.invalidField, t.path("calendar"), "\(t.path("calendar")) must be \"24x7\" or \"business\", got \"\(c)\"")
                        calendar = nil
                    }
                    targets[priority] = Targets(response: response, restoration: restoration, calendar: calendar)
                }
            }
            var warnAt: [Double]?
            if let list = p.array("warnAt", required: false, maxCount: 10) {
                var fractions: [Double] = []
                for (i, v) in list.enumerated() {
                    if let n = v.numberValue, n > 0, n < 1 {
                        fractions.append(n)
                    } else {
                        errors.add(ErrorCode.invalidField, "slaPolicy.warnAt[\(i)]", "slaPolicy.warnAt[\(i)] must be a fraction between 0 and 1 (exclusive)")
                    }
                }
                if fractions.count == list.count {
                    if zip(fractions, fractions.dropFirst()).contains(where: { $0 >= $1 }) {
                        errors.add(ErrorCode.invalidField, "slaPolicy.warnAt", "slaPolicy.warnAt must be strictly increasing")
                    } else {
                        warnAt = fractions
                    }
                }
            }
            policy = SLAPolicy(targets: targets, warnAt: warnAt)
        }
        let priorityRules = Self.readPriorityRules(r, errors)
        try errors.throwIfAny()
        return OnboardCustomer(
            customerId: customerId!, name: name!, timeZone: timeZone!, supportRegion: region!,
            extraHolidays: extraHolidays, holidayCalendar: holidayCalendar, team: team!, contractYearStart: contractYearStart!,
            maxContacts: maxContacts, contacts: contacts, changeContacts: changeContacts, successManager: successManager,
            catalogue: catalogue, quotas: quotas, slaPolicy: policy, priorityRules: priorityRules)
    }

    /// `holidayCalendar`: iCalendar text that must parse as the calendar engine reads it, with at least one holiday.
    static func readHolidayCalendar(_ r: FieldReader, _ errors: ValidationErrors) -> String? {
        guard let text = r.string("holidayCalendar", required: false, maxLength: maxHolidayCalendarLength) else { return nil }
        do {
            // An empty calendar would let a region without statutory rules onboard with no holidays at all.
            guard !(try ICalendarHolidays(parsing: text)).events.isEmpty else {
                errors.add(ErrorCode.invalidField, r.path("holidayCalendar"), "\(r.path("holidayCalendar")) lists no holidays (no all-day VEVENT)")
                return nil
            }
        } catch {
            errors.add(ErrorCode.invalidField, r.path("holidayCalendar"), "\(r.path("holidayCalendar")) is not a usable iCalendar: \(error.message)")
            return nil
        }
        return text
    }

    /// `slaPolicy.<P>.response` / `.restoration`: an ISO 8601 duration of whole seconds, more
    /// than zero and at most 366 days (the calendar counts whole seconds).
    static func readTarget(_ t: FieldReader, _ key: String, _ errors: ValidationErrors) -> Double? {
        guard let d = t.duration(key, required: false, maximum: .greatestFiniteMagnitude) else { return nil }
        let field = t.path(key)
        if d <= 0 {
            errors.add(ErrorCode.invalidField, field, "\(field) must be longer than zero")
        } else if d != d.rounded(.down) {
            errors.add(ErrorCode.invalidField, field, "\(field) must be a whole number of seconds, got \(d) seconds")
        } else if d > Targets.maximumSeconds {
            errors.add(ErrorCode.invalidField, field, "\(field) must be at most 366 days (P366D), got \(ISODuration.format(seconds: d))")
        } else {
            return d
        }
        return nil
    }

    /// `priorityRules`: each names at least one ticket attribute to match, and a priority.
    static func readPriorityRules(_ r: FieldReader, _ errors: ValidationErrors) -> [PriorityRuleEntry] {
        guard let readers = r.objects("priorityRules", required: false, maxCount: maxPriorityRules) else { return [] }
        var rules: [PriorityRuleEntry] = []
        for (i, rule) in readers.enumerated() {
            let before = errors.errors.count
            let entry = PriorityRuleEntry(
                kind: rule.enumeration("kind", TicketKind.self, required: false),
                environment: rule.enumeration("environment", DeploymentEnvironment.self, required: false),
                impact: rule.enumeration("impact", Impact.self, required: false),
                urgency: rule.enumeration("urgency", Urgency.self, required: false),
                priority: rule.enumeration("priority", Priority.self) ?? .p4)
            guard errors.errors.count == before else { continue }
            if entry.specificity == 0 {
                errors.add(ErrorCode.invalidField, "priorityRules[\(i)]",
                           "priorityRules[\(i)] must match at least one of kind, environment, impact, urgency; a rule that matches every ticket would replace the handbook's table")
                continue
            }
            rules.append(entry)
        }
        return rules
    }

    public static func isRegionCode(_ s: String) -> Bool {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2, parts[0].count == 2, parts[0].allSatisfy({ $0.isASCII && $0.isUppercase }) else { return false }
        if parts.count == 2 {
            return (1...3).contains(parts[1].count) && parts[1].allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber) }
        }
        return true
    }

    /// The settings as JSON, the shape of the command (for storage and the `customer.onboarded` event).
    public var json: JSONValue {
        var o = JSONObject()
        o["customerId"] = .string(customerId)
        o["name"] = .string(name)
        o["timeZone"] = .string(timeZone)
        o["supportRegion"] = .string(supportRegion)
        o["extraHolidays"] = .array(extraHolidays.map { .string($0) })
        o["holidayCalendar"] = .optional(holidayCalendar)
        o["team"] = .string(team)
        o["contractYearStart"] = .string(contractYearStart)
        o["maxContacts"] = .int(maxContacts)
        o["contacts"] = .array(contacts.map { c in
            ["email": .string(c.email), "name": .string(c.name), "phone": .optional(c.phone), "primary": .bool(c.primary)]
        })
        o["changeContacts"] = .array(changeContacts.map { .string($0) })
        o["successManager"] = successManager.map { ["email": .string($0.email), "name": .string($0.name), "phone": .optional($0.phone)] } ?? .null
        o["catalogue"] = .array(catalogue.map { .string($0) })
        o["quotas"] = quotas.map { ["standard": .int($0.standard), "nonStandard": .int($0.nonStandard)] } ?? .null
        if let slaPolicy {
            var p = JSONObject()
            for priority in Priority.allCases {
                if let t = slaPolicy.targets[priority] {
                    var to = JSONObject()
                    if let r = t.response { to["response"] = .string(ISODuration.format(seconds: r)) }
                    if let r = t.restoration { to["restoration"] = .string(ISODuration.format(seconds: r)) }
                    if let c = t.calendar { to["calendar"] = .string(c) }
                    p[priority.rawValue] = .object(to)
                }
            }
            if let w = slaPolicy.warnAt { p["warnAt"] = .array(w.map { .number($0) }) }
            o["slaPolicy"] = .object(p)
        } else {
            o["slaPolicy"] = .null
        }
        o["priorityRules"] = .array(priorityRules.map(\.json))
        return .object(o)
    }
}

/// `customer.contact.availability` (R-CUS-5).
public struct ContactAvailability: Sendable, Equatable {
    public var customerId: String
    public var email: String
    public var available: Bool

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> ContactAvailability {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let customerId = Identifier.read(r, "customerId")
        let email = r.email("email")
        let available = r.bool("available")
        try errors.throwIfAny()
        return ContactAvailability(customerId: customerId!, email: email!, available: available!)
    }
}

/// `ticket.submit` (R-TKT-1, R-TKT-2).
public struct SubmitTicket: Sendable, Equatable {
    public var customerId: String
    public var contactEmail: String
    public var kind: TicketKind
    public var environment: DeploymentEnvironment
    public var summary: String
    public var impact: Impact?
    public var catalogItem: String?
    public var urgency: Urgency?
    public var channel: Channel
    public var description: String?
    public var component: String?
    public var product: String?
    public var requestedPriority: Priority?

    public static let maxDescriptionLength = 65_536

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> SubmitTicket {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let customerId = Identifier.read(r, "customerId")
        let contactEmail = r.email("contactEmail")
        let kind = r.enumeration("kind", TicketKind.self)
        let environment = r.enumeration("environment", DeploymentEnvironment.self)
        let summary = r.string("summary", maxLength: 500)
        // Which of impact / catalogItem is required depends on the kind; when the
        // kind itself is bad, neither is reported missing (one root cause, one error).
        let impact = r.enumeration("impact", Impact.self, required: kind == .incident)
        let catalogItem = r.string("catalogItem", required: kind == .serviceRequest, maxLength: 200)
        let urgency = r.enumeration("urgency", Urgency.self, required: false)
        let channel = r.enumeration("channel", Channel.self, required: false)
        let description = r.string("description", required: false, maxLength: maxDescriptionLength)
        let component = r.string("component", required: false, maxLength: 200)
        let product = r.string("product", required: false, maxLength: 200)
        let requestedPriority = r.enumeration("requestedPriority", Priority.self, required: false)
        let channelGiven = r.object["channel"] != nil && r.object["channel"] != .null
        try errors.throwIfAny()
        return SubmitTicket(
            customerId: customerId!, contactEmail: contactEmail!, kind: kind!, environment: environment!,
            summary: summary!, impact: kind == .incident ? impact : nil, catalogItem: kind == .serviceRequest ? catalogItem : nil,
            urgency: urgency, channel: channelGiven ? channel! : .api, description: description,
            component: component, product: product, requestedPriority: requestedPriority)
    }

    public var phoneRequired: Bool {
        PriorityRule.phoneRequired(kind: kind, environment: environment, impact: impact, urgency: urgency, channel: channel)
    }
}

/// `ticket.transition` (R-TKT-3).
public struct TransitionTicket: Sendable, Equatable {
    public var trackingNumber: String
    public var action: TicketAction
    public var by: String
    public var note: String?

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> TransitionTicket {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let trackingNumber = r.string("trackingNumber", maxLength: 40)
        let action = r.enumeration("action", TicketAction.self)
        let by = r.string("by", maxLength: 254)
        let note = r.string("note", required: false, maxLength: 10_000)
        try errors.throwIfAny()
        return TransitionTicket(trackingNumber: trackingNumber!, action: action!, by: by!, note: note)
    }
}

/// `ticket.get`.
public struct GetTicket: Sendable, Equatable {
    public var trackingNumber: String

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> GetTicket {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let trackingNumber = r.string("trackingNumber", maxLength: 40)
        try errors.throwIfAny()
        return GetTicket(trackingNumber: trackingNumber!)
    }
}
