import CSSAMQP
import CSSModel
import CSSRuntime
import Foundation

/// The messages of a run, as intake and a change-management integrator send them
/// (docs/asyncapi.yaml, `change.*`, `maintenance.windows.set`, `change.template.set`), and the
/// plan that keeps the run's changes out of each other's way.
///
/// Every change of the run has a global index k (the lifecycle phase's first, then the max
/// phase's). It belongs to customer `k % customers` (`chgbench-01`, ...), changes its own
/// component `svc-<k>` (so Test schedules never share a component, R-CHG-5) and has its own
/// Production slot: the customer's `k / customers`-th window of ``Plan/slotSeconds``, so no two
/// Production implementations of one customer overlap (R-CHG-5 refuses those with `change_conflict`).
enum Wire {
    static let templateID = "bench-minor-patch"
    /// Support staff (`by` of schedule, deploy, implement, complete, close).
    static let staff = "eng@vendor.example"
    static let cab = "cab@vendor.example"

    static func customerID(_ c: Int) -> String { c < 9 ? "chgbench-0\(c + 1)" : "chgbench-\(c + 1)" }
    /// The customer's Authorized Change Contact: requests, agrees, verifies.
    static func changeContact(_ c: Int) -> String { "cio@\(customerID(c)).example" }
    static func component(_ k: Int) -> String { "svc-\(k)" }
    static func version(_ k: Int) -> String { "1.0.\(k)" }

    /// Where each change is scheduled: Production in slot `k / customers` of its customer, Test a day earlier.
    struct Plan: Sendable {
        static let slotSeconds: Int64 = 1200
        let customers: Int
        /// The start of every customer's slot 0 in Production: two days after the next whole hour.
        let base: Int64

        init(customers: Int, now: Date) {
            self.customers = customers
            let hour = (Int64(now.timeIntervalSince1970) / 3600 + 1) * 3600
            base = hour + 2 * 86_400
        }

        func customer(_ k: Int) -> Int { k % customers }
        func slot(_ k: Int) -> Int { k / customers }
        func production(_ k: Int) -> (start: Int64, end: Int64) {
            let start = base + Int64(slot(k)) * Self.slotSeconds
            return (start, start + Self.slotSeconds)
        }
        func test(_ k: Int) -> (start: Int64, end: Int64) {
            let p = production(k)
            return (p.start - 86_400, p.end - 86_400)
        }
        /// The last Production window's end of `changes` changes, for the report.
        func lastEnd(_ changes: Int) -> Int64 { production(max(0, changes - 1)).end }
    }

    static func time(_ seconds: Int64) -> JSONValue { .string(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(seconds)))) }

    /// The nine commands of a Standard change's whole lifecycle, in order, and the state each leaves.
    enum Step: Int, CaseIterable, Sendable {
        case request, agree, scheduleTest, deploy, verify, scheduleProduction, implement, complete, close

        var command: String {
            switch self {
            case .request: CommandName.changeRequest
            case .agree: CommandName.changeAgree
            case .scheduleTest, .scheduleProduction: CommandName.changeSchedule
            case .deploy: CommandName.changeDeploy
            case .verify: CommandName.changeVerify
            case .implement: CommandName.changeImplement
            case .complete: CommandName.changeComplete
            case .close: CommandName.changeClose
            }
        }

        /// The command's name, the schedule's environment added.
        var label: String {
            switch self {
            case .scheduleTest: "change.schedule test"
            case .scheduleProduction: "change.schedule production"
            default: command
            }
        }

        /// The state in the accepted reply (a Standard change is agreed and approved at once).
        var expectedState: String {
            switch self {
            case .request: "requested"
            case .agree: "approved"
            case .scheduleTest: "scheduled_test"
            case .deploy: "deployed_test"
            case .verify: "verified_test"
            case .scheduleProduction: "scheduled_production"
            case .implement: "implementing"
            case .complete: "implemented"
            case .close: "closed"
            }
        }
    }

    /// The body of step `step` of change k (`changeId` from its request's reply, nil for the request).
    static func body(_ step: Step, k: Int, changeId: String?, plan: Plan) -> JSONValue {
        let c = plan.customer(k)
        let production = plan.production(k)
        var body: JSONObject = ["changeId": .string(changeId ?? ""), "by": .string(staff)]
        switch step {
        case .request:
            return [
                "customerId": .string(customerID(c)), "type": "standard", "templateId": .string(templateID),
                "title": .string("Minor patch of \(component(k))"), "reason": "Vendor security fix",
                "work": "Apply the patch on Test, then Production; rollback by snapshot", "impact": "None expected: rolling restart",
                "cost": ["amount": 0, "currency": "CAD"], "environments": ["test", "production"],
                "requestedWindow": ["start": time(production.start), "end": time(production.end)],
                "components": [.string(component(k))], "interruptsService": false, "by": .string(changeContact(c)),
            ]
        case .agree:
            body["by"] = .string(changeContact(c))
        case .scheduleTest:
            let t = plan.test(k)
            body["environment"] = "test"
            body["start"] = time(t.start)
            body["end"] = time(t.end)
        case .deploy, .implement, .close:
            break
        case .verify:
            body["accepted"] = true
            body["notes"] = "smoke tests green"
            body["by"] = .string(changeContact(c))
        case .scheduleProduction:
            body["environment"] = "production"
            body["start"] = time(production.start)
            body["end"] = time(production.end)
            body["maintenance"] = "window"
        case .complete:
            body["outcome"] = "implemented"
            body["installed"] = [["component": .string(component(k)), "kind": "patch", "version": .string(version(k))]]
        }
        return .object(body)
    }

    /// Correlation id of step `step` of change k: `<k>.<step>` (the message id adds the run id).
    static func correlationID(_ k: Int, _ step: Step) -> String { "\(k).\(step.rawValue)" }

    static func parse(correlationID id: String) -> (k: Int, step: Step)? {
        guard let dot = id.firstIndex(of: "."), let k = Int(id[..<dot]), let s = Int(id[id.index(after: dot)...]),
              let step = Step(rawValue: s) else { return nil }
        return (k, step)
    }

    // MARK: Set-up

    /// `customer.onboarded` of customer c as intake publishes it (through intake's own parse and
    /// rendering, `OnboardCustomer`): zone, region, two Points of Contact and one change contact.
    static func onboarded(_ c: Int, at now: Date) throws -> OutgoingMessage {
        let id = customerID(c)
        let body: JSONValue = [
            "customerId": .string(id), "name": .string("Change Bench \(c + 1) Corp"), "timeZone": "America/Toronto", "supportRegion": "CA-ON",
            "team": "cloud-ops", "contractYearStart": "2026-01-01",
            "contacts": [["email": .string("ana@\(id).example"), "name": "Ana", "phone": "+1 555 0100", "primary": true],
                         ["email": .string("bo@\(id).example"), "name": "Bo"]],
            "changeContacts": [.string(changeContact(c))], "catalogue": ["password-reset", "add-user"],
            "quotas": ["standard": 120, "nonStandard": 12],
        ]
        var data = try OnboardCustomer.parse(body).json.objectValue ?? [:]
        data["created"] = true
        let event = CloudEvent(id: UUID().uuidString.lowercased(), type: EventType.customerOnboarded, source: "/css/intake", time: now,
                               subject: id, data: .object(data))
        return OutboxMessage.event(event).amqpMessage
    }

    /// Every day of the week is a maintenance window, all day (`00:00` to `00:00`), no freeze.
    static func windows(_ c: Int) -> JSONValue {
        let days: [JSONValue] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"].map {
            ["weekday": .string($0), "start": "00:00", "end": "00:00"]
        }
        return ["customerId": .string(customerID(c)), "windows": .array(days), "freezes": [], "by": .string(cab)]
    }

    static func template() -> JSONValue {
        ["templateId": .string(templateID), "title": "Minor service patch",
         "description": "A vendor patch of one service component, rolling restart; rollback by snapshot.",
         "components": ["application-service"], "by": .string(cab)]
    }

    /// A command with `reply_to` and `correlation_id`, as an integrator sends it.
    static func command(_ name: String, _ body: JSONValue, messageID: String, correlationID: String, replyTo: String) -> OutgoingMessage {
        OutgoingMessage(exchange: ExchangeName.commands, routingKey: name, body: body.encoded(), properties: MessageProperties(
            contentType: "application/json", messageID: messageID, correlationID: correlationID, replyTo: replyTo, persistent: true))
    }
}
