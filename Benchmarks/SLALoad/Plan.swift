import CSSAMQP
import CSSModel
import CSSRuntime
import Foundation
import LoadSupport

/// The three kinds of tickets a run creates; the letter is part of their tracking numbers.
enum TicketSet: String, CaseIterable, Sendable {
    /// The bulk of the armed targets: thresholds weeks ahead, nothing falls due during the run.
    case background = "B"
    /// Armed last; exactly one threshold each falls due in the measure window, `--due-rate` a second.
    case measured = "M"
    /// Armed in the recovery phase; one threshold each, all due at the same second.
    case recovery = "R"

    var name: String {
        switch self {
        case .background: "background"
        case .measured: "measured"
        case .recovery: "recovery"
        }
    }
}

/// What the run asks of the SLA service, and when every threshold it arms falls due.
///
/// One customer, every priority on the 24x7 calendar (so a due time is the receipt plus the
/// allowed seconds, whatever the hour). Each ticket has two targets, response and restoration:
/// each target is one row in `sla.timers` (armed at its next threshold) and has
/// `warnAt.count` warnings plus the breach, so `warnAt.count + 1` thresholds.
///
/// - Measured and recovery tickets alternate P1 and P2. P1's response and P2's restoration are
///   `short`; P1's restoration and P2's response are `long`. The receipt is chosen (in the past)
///   so that the first threshold of the short target (the first warning, or the breach when
///   `warnAt` is empty) falls due on the planned second; the next threshold of that target is at
///   least six hours later, the long target's first weeks later. So each such ticket contributes
///   exactly one firing (one `sla.warning` or `sla.breached`) to the run, on its planned second,
///   and half of them are on the response clock, half on the restoration clock.
/// - Background tickets alternate P3 and P4, all targets `long` or longer, received up to a
///   day before the run: their first thresholds are hours to weeks after the run.
struct SLAPlan: Sendable {
    let warnAt: [Double]
    /// Allowed seconds of the measured targets (P1 response, P2 restoration).
    let short: Int64
    /// Allowed seconds of every other target (longer multiples for P3 restoration and P4).
    let long: Int64
    /// Background receipts lie up to this many seconds before the arm phase.
    let backgroundSpread: Int64
    /// The customer's calendar zone (24x7 counts in it, which changes nothing).
    static let customerID = "slabench"

    /// The maximum `--lead` the plan leaves room for, in seconds.
    static let maximumLead: Int64 = 1800

    init(warnAt: [Double], windowSeconds: Int) throws {
        self.warnAt = warnAt
        let f1 = warnAt.first ?? 1.0
        // The fraction of `short` from the in-run threshold to the next one of the same target.
        let gap = warnAt.count >= 2 ? warnAt[1] - warnAt[0] : (warnAt.count == 1 ? 1 - warnAt[0] : 1.0)
        // Receipts at least two minutes before the events that carry them, whatever the lead;
        // the next threshold at least six hours after the planned one.
        let needed = max(Double(Self.maximumLead + Int64(windowSeconds) + 120) / f1, 6 * 3600 / gap, 3600)
        short = Int64((needed / 3600).rounded(.up)) * 3600
        long = max(60 * 86400, ((4 * short + 86399) / 86400) * 86400)
        guard 3 * long <= 366 * 86400 else {
            throw BenchError("warnAt \(warnAt) needs targets of \(short / 3600) h for the measured tickets and \(3 * long / 86400) days for the others, "
                + "more than slaPolicy's 366 days: use fractions further apart")
        }
        backgroundSpread = min(86400, SLAPlan.thresholdSeconds(warnAt.first ?? 1, of: long) / 2)
    }

    /// Like the SLA service's `SLAPolicy.thresholdSeconds`: exact when whole, else the next whole second.
    static func thresholdSeconds(_ fraction: Double, of allowed: Int64) -> Int64 {
        let exact = fraction * Double(allowed)
        let nearest = exact.rounded()
        if abs(exact - nearest) <= 1e-6 * max(1, abs(exact)) { return Int64(nearest) }
        return Int64(exact.rounded(.up))
    }

    /// Like `SLAPolicy.key`: `0.5`, `0.75`.
    static func key(_ fraction: Double) -> String {
        var text = String(format: "%.6f", fraction)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// Seconds from a measured ticket's start (its receipt, rounded down) to its planned threshold.
    var plannedOffset: Int64 { Self.thresholdSeconds(warnAt.first ?? 1, of: short) }

    /// Thresholds per target.
    var thresholdsPerTarget: Int { warnAt.count + 1 }

    /// Whether the planned firing is a warning (else the breach).
    var plannedIsWarning: Bool { !warnAt.isEmpty }

    /// The earliest any background threshold can fall due, counted from the arm phase's start.
    var backgroundFirstDueSeconds: Int64 { Self.thresholdSeconds(warnAt.first ?? 1, of: long) - backgroundSpread }

    // MARK: Tickets

    static func trackingNumber(_ set: TicketSet, _ index: Int) -> String {
        "INC-\(set.rawValue)" + String(index).leftPadded(to: 7)
    }

    /// The set and index of one of the run's tracking numbers.
    static func parse(_ number: Substring) -> (TicketSet, Int)? {
        guard number.hasPrefix("INC-"), number.count >= 6 else { return nil }
        let rest = number.dropFirst(4)
        guard let set = TicketSet(rawValue: String(rest.prefix(1))), let index = Int(rest.dropFirst()) else { return nil }
        return (set, index)
    }

    func priority(_ set: TicketSet, _ index: Int) -> Priority {
        switch set {
        case .background: index % 2 == 0 ? .p3 : .p4
        case .measured, .recovery: index % 2 == 0 ? .p1 : .p2
        }
    }

    /// The target whose threshold falls due in the run (measured and recovery tickets).
    func plannedTarget(_ index: Int) -> String { index % 2 == 0 ? "response" : "restoration" }

    /// The id the SLA service gives the planned firing of ticket `index` (`TicketClock.fire`).
    func plannedEventID(_ set: TicketSet, _ index: Int) -> String {
        let number = Self.trackingNumber(set, index)
        if let f = warnAt.first { return "sla:\(number):\(plannedTarget(index)):warning:\(Self.key(f))" }
        return "sla:\(number):\(plannedTarget(index)):breached"
    }

    /// The receipt that makes the planned threshold of a measured or recovery ticket fall due
    /// at `due` (Unix seconds); the fraction of a second varies and does not move it.
    func receivedAt(due: Int64, index: Int) -> Date {
        Date(timeIntervalSince1970: TimeInterval(due - plannedOffset) + Double(index % 997) / 1000)
    }

    /// A background receipt: spread over the `backgroundSpread` seconds before `armStart`.
    func backgroundReceivedAt(armStart: Int64, index: Int) -> Date {
        let back = Int64((index &* 7919) % Int(max(1, backgroundSpread)))
        return Date(timeIntervalSince1970: TimeInterval(armStart - back) - Double(index % 997) / 1000)
    }

    // MARK: Events

    /// The onboarding body: intake's own parse and rendering of it (`OnboardCustomer.json`).
    func onboardBody() throws -> JSONValue {
        func targets(_ response: Int64, _ restoration: Int64) -> JSONValue {
            ["response": .string(ISODuration.format(seconds: Double(response))), "restoration": .string(ISODuration.format(seconds: Double(restoration))),
             "calendar": "24x7"]
        }
        let body: JSONValue = [
            "customerId": .string(Self.customerID), "name": "SLA Bench Corp", "timeZone": "America/Toronto", "supportRegion": "CA-ON",
            "team": "cloud-ops", "contractYearStart": "2026-01-01", "maxContacts": 3,
            "contacts": [["email": "ana@slabench.example", "name": "Ana", "phone": "+1 555 0100", "primary": true]],
            "changeContacts": ["cio@slabench.example"], "catalogue": ["password-reset"],
            "quotas": ["standard": 1_000_000, "nonStandard": 1_000_000],
            "slaPolicy": [
                "P1": targets(short, long), "P2": targets(long, short),
                "P3": targets(long, 2 * long), "P4": targets(2 * long, 3 * long),
                "warnAt": .array(warnAt.map { .number($0) }),
            ],
        ]
        let parsed: OnboardCustomer
        do {
            parsed = try OnboardCustomer.parse(body)
        } catch {
            throw BenchError("intake would refuse the bench customer: \(error)")
        }
        var data = parsed.json.objectValue!
        data["created"] = true
        return .object(data)
    }

    /// `customer.onboarded` as intake publishes it.
    func onboarded(at now: Date) throws -> OutgoingMessage {
        let event = CloudEvent(id: UUID().uuidString.lowercased(), type: EventType.customerOnboarded, source: "/css/intake", time: now,
                               subject: Self.customerID, data: try onboardBody())
        return OutboxMessage.event(event).amqpMessage
    }

    /// `ticket.classified` as classification publishes it, for one ticket of the run.
    func classified(_ set: TicketSet, _ index: Int, receivedAt: Date, now: Date) -> OutgoingMessage {
        let number = Self.trackingNumber(set, index)
        var data = JSONObject()
        data["trackingNumber"] = .string(number)
        data["customerId"] = .string(Self.customerID)
        data["priority"] = .string(priority(set, index).rawValue)
        data["requestedPriority"] = .null
        data["requestClass"] = .null
        data["dispatch"] = "success_services"
        data["thirdParty"] = .null
        data["reclassificationCandidate"] = false
        data["policy"] = "handbook"
        data["kind"] = "incident"
        data["environment"] = "production"
        data["receivedAt"] = .string(RFC3339.format(receivedAt))
        data["classifiedAt"] = .string(RFC3339.format(now))
        let event = CloudEvent(id: UUID().uuidString.lowercased(), type: EventType.ticketClassified, source: "/css/classification",
                               time: now, subject: number, data: .object(data))
        return OutboxMessage.event(event).amqpMessage
    }

    var policyLine: String {
        func h(_ s: Int64) -> String { s % 86400 == 0 ? "\(s / 86400) d" : "\(s / 3600) h" }
        let warn = warnAt.isEmpty ? "none" : warnAt.map { Self.key($0) }.joined(separator: ", ")
        return "slaPolicy (all 24x7): P1 response \(h(short)) / restoration \(h(long)), P2 \(h(long)) / \(h(short)), "
            + "P3 \(h(long)) / \(h(2 * long)), P4 \(h(2 * long)) / \(h(3 * long)); warnAt \(warn) (\(thresholdsPerTarget) thresholds per target)"
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
