import CSSModel
import Foundation

/// Intake's facts as another replica could deliver them: late, early, twice.
public struct IntakeFacts {
    public var customerId = "acme"

    public init(customerId: String = "acme") {
        self.customerId = customerId
    }

    public func onboarded(at time: Date, catalogue: [String] = ["password-reset"], extra: JSONObject = [:]) -> CloudEvent {
        var data: JSONObject = [
            "customerId": .string(customerId), "name": "Acme Corp", "timeZone": "Europe/Paris", "supportRegion": "FR", "team": "cloud-ops",
            "contractYearStart": "2026-01-01", "contacts": [["email": "ana@acme.example", "name": "Ana", "primary": true]],
            "changeContacts": [], "catalogue": .array(catalogue.map { .string($0) }), "quotas": ["standard": 10, "nonStandard": 1], "created": true,
        ]
        for (k, v) in extra { data[k] = v }
        return CloudEvent(id: UUID().uuidString, type: EventType.customerOnboarded, source: "/css/intake", time: time, subject: customerId, data: .object(data))
    }

    public func received(_ number: String, kind: String = "incident", impact: String? = "outage", catalogItem: String? = nil, at: Date = Date()) -> CloudEvent {
        var data: JSONObject = [
            "trackingNumber": .string(number), "customerId": .string(customerId), "kind": .string(kind), "environment": "production",
            "channel": "api", "receivedAt": .string(RFC3339.format(at)), "phoneRequired": false, "contactEmail": "ana@acme.example",
            "summary": "Portal down",
        ]
        data["impact"] = .optional(impact)
        data["catalogItem"] = .optional(catalogItem)
        return CloudEvent(id: UUID().uuidString, type: EventType.ticketReceived, source: "/css/intake", time: at, subject: number, data: .object(data))
    }

    public func transitioned(_ number: String, _ action: String, status: String, at: Date) -> CloudEvent {
        CloudEvent(id: UUID().uuidString, type: EventType.ticketTransitioned, source: "/css/intake", time: at, subject: number, data: [
            "trackingNumber": .string(number), "action": .string(action), "status": .string(status), "by": "eng@vendor.example",
            "at": .string(RFC3339.format(at)), "customerId": .string(customerId), "contactEmail": "ana@acme.example"])
    }
}

/// Classification's facts, as the SLA service consumes them.
public struct ClassificationFacts {
    public var customerId = "acme"

    public init(customerId: String = "acme") {
        self.customerId = customerId
    }

    /// With the ticket's facts that classification repeats from `ticket.received`, as the real one does.
    public func classified(_ number: String, priority: String, receivedAt: Date, at: Date? = nil, kind: String = "incident",
                           environment: String = "production") -> CloudEvent {
        CloudEvent(id: UUID().uuidString, type: EventType.ticketClassified, source: "/css/classification", time: at ?? receivedAt, subject: number, data: [
            "trackingNumber": .string(number), "customerId": .string(customerId), "priority": .string(priority), "requestedPriority": .null,
            "requestClass": .null, "dispatch": "success_services", "receivedAt": .string(RFC3339.format(receivedAt)),
            "kind": .string(kind), "environment": .string(environment), "classifiedAt": .string(RFC3339.format(at ?? receivedAt)),
            "phoneRequired": false, "contactEmail": "ana@acme.example"])
    }

    public func reclassified(_ number: String, from: String, to: String, at: Date) -> CloudEvent {
        CloudEvent(id: UUID().uuidString, type: EventType.ticketReclassified, source: "/css/classification", time: at, subject: number, data: [
            "trackingNumber": .string(number), "customerId": .string(customerId), "from": .string(from), "to": .string(to),
            "reason": "test", "by": "sam@vendor.example", "at": .string(RFC3339.format(at))])
    }
}

/// The SLA service's threshold facts, as the escalation service consumes them.
public struct SLAFacts {
    public var customerId = "acme"

    public init(customerId: String = "acme") {
        self.customerId = customerId
    }

    /// `sla.warning` (with a threshold) or `sla.breached` (without), with the SLA service's derived id.
    public func threshold(_ number: String, priority: String = "P1", target: String = "restoration", threshold: Double? = nil,
                          dueAt: Date, at: Date = Date()) -> CloudEvent {
        var data: JSONObject = ["trackingNumber": .string(number), "customerId": .string(customerId), "priority": .string(priority),
                                "target": .string(target), "dueAt": .string(RFC3339.format(dueAt)), "allowedSeconds": 3600]
        let type: String
        let id: String
        if let threshold {
            type = EventType.slaWarning
            data["threshold"] = .number(threshold)
            id = "sla:\(number):\(target):warning:\(JSONValue.number(threshold).jsonText)"
        } else {
            type = EventType.slaBreached
            id = "sla:\(number):\(target):breached"
        }
        return CloudEvent(id: id, type: type, source: "/css/sla", time: at, subject: number, data: .object(data))
    }
}
