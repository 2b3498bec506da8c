import CSSAMQP
import CSSModel
import CSSRuntime
import CSSTestSupport
import Foundation

/// The messages of a run, as the other services and an on-call integration send them
/// (docs/asyncapi.yaml), and the names the escalation service derives from them.
///
/// Every ticket of the run has an index k (the page phase's first, then the hold phase's):
/// tracking number `INC-<100001 + k>`, one `sla.breached` of its P1 restoration target, so one
/// escalation `ESC-<number>-restoration-breached` paged once on `oncall.cloud-ops.p1`.
enum Wire {
    static let customerID = "escbench"
    static let team = "cloud-ops"
    static let pageRoutingKey = "oncall.cloud-ops.p1"
    static let firstNumber = 100_001
    /// Who acknowledges (`by` of every escalation.ack).
    static let acknowledger = "jdoe@support.example"

    static func trackingNumber(_ k: Int) -> String { "INC-\(firstNumber + k)" }

    static func escalationID(_ k: Int) -> String { "ESC-\(trackingNumber(k))-restoration-breached" }

    /// The ticket index of one of the run's tracking numbers.
    static func index(ofTrackingNumber number: some StringProtocol) -> Int? {
        guard number.hasPrefix("INC-"), let n = Int(number.dropFirst(4)) else { return nil }
        return n - firstNumber
    }

    /// Ticket, level and attempt of a page, from its message id `<escalationId>/<level>/<attempt>`.
    static func page(messageID: String) -> (index: Int, level: Int, attempt: Int)? {
        let parts = messageID.split(separator: "/")
        guard parts.count == 3, let level = Int(parts[1]), let attempt = Int(parts[2]), parts[0].hasPrefix("ESC-"),
              parts[0].hasSuffix("-restoration-breached") else { return nil }
        let number = parts[0].dropFirst(4).dropLast("-restoration-breached".count)
        return index(ofTrackingNumber: number).map { ($0, level, attempt) }
    }

    // MARK: Events

    /// `customer.onboarded` as intake publishes it: the fields of `SystemHarness.onboard()` (team
    /// cloud-ops, a success manager) through intake's own parse and rendering (`OnboardCustomer`).
    static func onboarded(at now: Date) throws -> OutgoingMessage {
        let body: JSONValue = [
            "customerId": .string(customerID), "name": "Escalation Bench Corp", "timeZone": "America/Toronto", "supportRegion": "CA-ON",
            "team": .string(team), "contractYearStart": "2026-01-01",
            "contacts": [["email": "ana@escbench.example", "name": "Ana", "phone": "+1 555 0100", "primary": true],
                         ["email": "bo@escbench.example", "name": "Bo"]],
            "changeContacts": ["cio@escbench.example"], "catalogue": ["password-reset", "add-user"],
            "quotas": ["standard": 120, "nonStandard": 12],
            "successManager": ["name": "Sam Okafor", "email": "sam@vendor.example", "phone": "+1 555 0150"],
        ]
        var data = try OnboardCustomer.parse(body).json.objectValue ?? [:]
        data["created"] = true
        let event = CloudEvent(id: UUID().uuidString.lowercased(), type: EventType.customerOnboarded, source: "/css/intake", time: now,
                               subject: customerID, data: .object(data))
        return OutboxMessage.event(event).amqpMessage
    }

    /// `sla.breached` of ticket k's P1 restoration target, due at `due` (whole seconds), as the SLA
    /// service publishes it (`SLAClock.fire`: id `sla:<number>:restoration:breached`, time = the due instant).
    static func breached(_ k: Int, due: Date) -> OutgoingMessage {
        let event = SLAFacts(customerId: customerID).threshold(trackingNumber(k), priority: "P1", target: "restoration", dueAt: due, at: due)
        return OutboxMessage.event(event).amqpMessage
    }

    // MARK: Commands

    /// The cloud-ops schedule: Jane and Raj a day each from yesterday (so someone is on call now);
    /// level 1 the engineer on call at once, level 2 a team lead with a contact an hour later, so
    /// every chain stays open (its timer armed) for the whole run.
    static func schedule(now: Date) -> JSONValue {
        let yesterday = String(RFC3339.format(now.addingTimeInterval(-86_400)).prefix(10))
        return [
            "team": .string(team), "timeZone": "UTC", "handoffTime": "00:00", "rotationDays": 1, "start": .string(yesterday),
            "members": [["name": "Jane Doe", "email": .string(acknowledger), "phone": "+1 555 0199"],
                        ["name": "Raj Patel", "email": "rpatel@support.example"]],
            "levels": [["role": "engineer", "after": "PT0S"],
                       ["role": "team_lead", "after": "PT1H", "contact": ["name": "Lee Chen", "email": "lchen@support.example", "phone": "+1 555 0110"]]],
            "by": "escalation-load@vendor.example",
        ]
    }

    static func ack(_ k: Int) -> JSONValue {
        ["escalationId": .string(escalationID(k)), "by": .string(acknowledger)]
    }

    /// A command with `reply_to` and `correlation_id`, as an integrator sends it.
    static func command(_ name: String, _ body: JSONValue, correlationID: String, replyTo: String) -> OutgoingMessage {
        OutgoingMessage(exchange: ExchangeName.commands, routingKey: name, body: body.encoded(), properties: MessageProperties(
            contentType: "application/json", messageID: "cmd-\(correlationID)", correlationID: correlationID, replyTo: replyTo, persistent: true))
    }
}
