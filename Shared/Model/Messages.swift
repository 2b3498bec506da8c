import Foundation

/// The reply to a command, as sent to its `reply_to` queue.
public enum Reply: Sendable, Equatable {
    case ok(JSONValue)
    case rejected([CommandError])

    public var json: JSONValue {
        switch self {
        case .ok(let result):
            return ["ok": true, "result": result]
        case .rejected(let errors):
            return ["ok": false, "errors": .array(errors.map(\.json))]
        }
    }

    public init?(json: JSONValue) {
        guard let ok = json["ok"]?.boolValue else { return nil }
        if ok {
            self = .ok(json["result"] ?? .null)
        } else {
            guard let list = json["errors"]?.arrayValue else { return nil }
            self = .rejected(list.compactMap(CommandError.init(json:)))
        }
    }

    public var isOK: Bool {
        if case .ok = self { return true }
        return false
    }
}

/// Routing keys of the events on `css.events`.
public enum EventType {
    public static let ticketReceived = "ticket.received"
    public static let ticketClassified = "ticket.classified"
    public static let ticketReclassified = "ticket.reclassified"
    public static let ticketTransitioned = "ticket.transitioned"
    public static let commandRejected = "command.rejected"
    public static let customerOnboarded = "customer.onboarded"
    public static let contactAvailabilityChanged = "customer.contact.availability_changed"
    public static let slaStarted = "sla.started"
    public static let slaRescheduled = "sla.rescheduled"
    public static let slaWarning = "sla.warning"
    public static let slaBreached = "sla.breached"
    public static let slaStopped = "sla.stopped"
    public static let slaPaused = "sla.paused"
    public static let slaResumed = "sla.resumed"
    /// An interval that does not count toward a customer's restoration clocks (R-SLA-5).
    public static let slaExclusionAdded = "sla.exclusion.added"
    public static let reclassifyRequested = "ticket.reclassify.requested"
    public static let reclassifyDecided = "ticket.reclassify.decided"
    public static let ticketDispatched = "ticket.dispatched"
    public static let quotaWarning = "quota.warning"
    public static let quotaExceeded = "quota.exceeded"
    public static let problemOpened = "problem.opened"
    public static let problemIncidentsLinked = "problem.incidents_linked"
    public static let problemCauseRecorded = "problem.cause_recorded"
    public static let problemWorkaroundRecorded = "problem.workaround_recorded"
    public static let problemResolved = "problem.resolved"
    /// A team's on-call schedule was set or replaced (R-ESC-5).
    public static let oncallScheduleUpdated = "oncall.schedule.updated"
    /// An escalation message went to one level of a chain (R-ESC-1..4).
    public static let escalationSent = "escalation.sent"
    public static let escalationAcknowledged = "escalation.acknowledged"
    /// A level with nobody to notify was skipped at once, with the reason (R-ESC-6).
    public static let escalationSkipped = "escalation.skipped"
    /// A P2–P4 notification outside the customer's business hours waits for the next opening (R-ESC-1).
    public static let escalationHeld = "escalation.held"
    /// The ticket was restored, closed or responded to, or the contact is back: the chain ends (R-ESC-6).
    public static let escalationResolved = "escalation.resolved"
    /// Change management (the `change` service): one event per step of a change's lifecycle (R-CHG-1..6).
    public static let changeRequested = "change.requested"
    public static let changeAgreed = "change.agreed"
    public static let changeAssessed = "change.assessed"
    public static let changeVoteRecorded = "change.vote.recorded"
    public static let changeApproved = "change.approved"
    public static let changeRejected = "change.rejected"
    public static let changeScheduled = "change.scheduled"
    public static let changeDeployed = "change.deployed"
    public static let changeVerified = "change.verified"
    public static let changeImplementing = "change.implementing"
    public static let changeImplemented = "change.implemented"
    public static let changeFailed = "change.failed"
    public static let changeClosed = "change.closed"
    public static let changeCancelled = "change.cancelled"
    /// Maintenance announced to a customer's change contacts, and a customer's windows and freezes replaced (R-CHG-4).
    public static let maintenanceAnnounced = "maintenance.announced"
    public static let maintenanceWindowsUpdated = "maintenance.windows.updated"
    /// A customer's last Service Update is more than a year old (R-CHG-7).
    public static let serviceUpdateOverdue = "customer.service_update.overdue"
}

/// A CloudEvents 1.0 event in structured mode.
public struct CloudEvent: Sendable, Equatable {
    public var id: String
    public var type: String
    public var source: String
    public var time: Date
    public var subject: String?
    public var data: JSONValue
    /// A message published together with this event, in the same outbox write: the page on
    /// `css.escalations` that an `escalation.sent` records. Not part of the event's JSON.
    public var companion: Companion?

    public static let contentType = "application/cloudevents+json"

    /// A plain JSON message to another exchange than `css.events`.
    public struct Companion: Sendable, Equatable {
        public var exchange: String
        public var routingKey: String
        public var messageID: String
        public var body: JSONValue

        public init(exchange: String, routingKey: String, messageID: String, body: JSONValue) {
            self.exchange = exchange
            self.routingKey = routingKey
            self.messageID = messageID
            self.body = body
        }
    }

    public init(id: String, type: String, source: String, time: Date, subject: String?, data: JSONValue, companion: Companion? = nil) {
        self.id = id
        self.type = type
        self.source = source
        self.time = time
        self.subject = subject
        self.data = data
        self.companion = companion
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["specversion"] = "1.0"
        o["id"] = .string(id)
        o["type"] = .string(type)
        o["source"] = .string(source)
        o["time"] = .string(RFC3339.format(time))
        if let subject { o["subject"] = .string(subject) }
        o["datacontenttype"] = "application/json"
        o["data"] = data
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard json["specversion"]?.stringValue == "1.0",
              let id = json["id"]?.stringValue, let type = json["type"]?.stringValue,
              let source = json["source"]?.stringValue,
              let timeText = json["time"]?.stringValue, let time = RFC3339.parse(timeText)
        else { return nil }
        self.init(id: id, type: type, source: source, time: time, subject: json["subject"]?.stringValue, data: json["data"] ?? .null)
    }
}

/// The exchanges of the wire contract.
public enum ExchangeName {
    public static let commands = "css.commands"
    public static let events = "css.events"
    public static let escalations = "css.escalations"
    public static let dead = "css.dead"
}

/// Limits of the wire contract.
public enum ContractLimits {
    /// Command bodies larger than this are refused before parsing.
    public static let maxBodyBytes = 256 * 1024
}
