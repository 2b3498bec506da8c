import CSSCalendar
import CSSModel
import Foundation
@testable import EscalationService
import Testing

/// Instants, days and people the escalation tests share.
enum Fx {
    /// Seconds since the epoch of an RFC 3339 time.
    static func s(_ text: String) -> Int64 { Int64(RFC3339.parse(text)!.timeIntervalSince1970) }
    /// The day number of a local date `YYYY-MM-DD`.
    static func day(_ text: String) -> Int64 { try! LocalDate(iso: text).dayNumber }
    /// Seconds after local midnight of `HH:MM`.
    static func hm(_ h: Int, _ m: Int = 0) -> Int { h * 3600 + m * 60 }

    static let ana = Contact(name: "Ana", email: "ana@example.com", phone: "+1 555 0100")
    static let bo = Contact(name: "Bo", email: "bo@example.com")
    static let cy = Contact(name: "Cy", email: "cy@example.com")
    static let sub = Contact(name: "Sub", email: "sub@example.com")
    static let lead = Contact(name: "Lee", email: "lead@example.com")
    static let duty = Contact(name: "Dee", email: "duty@example.com")
    static let success = Contact(name: "Sam", email: "sam@example.com")
    static let primary = Contact(name: "Pat", email: "pat@customer.example", phone: "+1 555 0199")

    /// A schedule with a single engineer level; the rotation is what these tests look at.
    static func schedule(zone: String, members: [Contact] = [ana, bo, cy], handoff: Int, rotationDays: Int, start: String,
                         overrides: [Override] = []) -> OnCallSchedule {
        OnCallSchedule(team: "cloud-ops", timeZone: zone, members: members, handoff: handoff, rotationDays: rotationDays,
                       startDay: day(start), overrides: overrides, levels: [Level(role: .engineer, after: 0)])
    }

    static func rotation(zone: String, members: [Contact] = [ana, bo, cy], handoff: Int, rotationDays: Int, start: String,
                         overrides: [Override] = []) throws -> Rotation {
        try Rotation(schedule(zone: zone, members: members, handoff: handoff, rotationDays: rotationDays, start: start, overrides: overrides))
    }

    static func onCall(_ c: Contact) -> OnCall { OnCall(member: c, source: .rotation) }
    static func covering(_ c: Contact) -> OnCall { OnCall(member: c, source: .override) }

    /// Ana on call every day from 2026-01-01 09:00 Toronto time: the engineer of every chain test.
    static let alwaysAna = try! rotation(zone: "America/Toronto", members: [ana], handoff: hm(9), rotationDays: 1, start: "2026-01-01")

    static func env(rotation: Rotation? = alwaysAna, successManager: Contact? = nil, businessHours: BusinessCalendar? = nil) -> ChainEnvironment {
        ChainEnvironment(rotation: rotation, successManager: successManager, businessHours: businessHours)
    }

    /// An sla.warning escalation of INC-000042, not yet routed.
    static func escalation(priority: Priority = .p2, openedAt: Int64) -> Escalation {
        Escalation(id: Escalation.id(trackingNumber: "INC-000042", reason: .slaWarning, target: "response", threshold: 0.5),
                   trackingNumber: "INC-000042", customerId: "acme", team: "cloud-ops", priority: priority, reason: .slaWarning,
                   target: "response", threshold: 0.5, dueAt: openedAt + 7200, phoneRequired: false, openedAt: openedAt)
    }

    /// Toronto business hours (Monday–Friday 08:00–17:00) with Ontario's statutory holidays.
    static func toronto(extraHolidays: [String] = []) -> BusinessCalendar {
        try! CalendarSpec(kind: .business, timeZone: "America/Toronto", region: "CA-ON",
                          extraHolidays: extraHolidays.map { try! LocalDate(iso: $0) }).build()
    }
}
