import CSSCalendar
import CSSModel
import Foundation
@testable import EscalationService
import Testing

/// A valid `oncall.schedule.set` body, with `change` applied to it.
func scheduleBody(_ change: (inout JSONObject) -> Void = { _ in }) -> JSONValue {
    var o: JSONObject = [
        "team": "cloud-ops",
        "timeZone": "America/New_York",
        "members": [["name": "Ana", "email": "Ana@Example.com", "phone": "+1 555 0100"], ["name": "Bo", "email": "bo@example.com"]],
        "handoffTime": "09:00",
        "rotationDays": 7,
        "start": "2026-03-02",
        "levels": [
            ["role": "engineer", "after": "PT0S", "repeat": ["every": "PT5M", "times": 3]],
            ["role": "team_lead", "after": "PT15M", "contact": ["name": "Lee", "email": "lead@example.com"]],
            ["role": "team_lead", "after": "PT10M", "contact": ["name": "Lou", "email": "lou@example.com"]],
            ["role": "duty_manager", "after": "PT30M", "contact": ["name": "Dee", "email": "duty@example.com", "phone": "+1 555 0111"]],
        ],
        "overrides": [
            ["member": ["name": "Sub", "email": "sub@example.com"], "start": "2026-03-20T00:00:00Z", "end": "2026-03-21T00:00:00Z"],
            ["member": ["name": "Cy", "email": "cy@example.com"], "start": "2026-03-10T12:00:00Z", "end": "2026-03-11T12:00:00.5Z",
             "reason": "swap"],
        ],
        "by": "ops@example.com",
    ]
    change(&o)
    return .object(o)
}

/// The (code, field) of each error `body` is refused with; empty when it is accepted.
func refusal(_ body: JSONValue) -> [[String?]] {
    do {
        _ = try OnCallSchedule.parse(body)
        return []
    } catch {
        return error.errors.map { [$0.code, $0.field] }
    }
}

func level(_ role: String, _ after: String) -> JSONValue { ["role": .string(role), "after": .string(after)] }

@Suite("oncall.schedule.set validation (R-ESC-2, R-ESC-5)")
struct ScheduleValidationTests {
    // R-ESC-5, R-ESC-2: a valid body is read with every field as given (e-mail lower-cased,
    // overrides sorted by start, the override's end rounded up to the second).
    @Test("A valid body parses with every field as given")
    func valid() throws {
        let (s, by) = try OnCallSchedule.parse(scheduleBody())
        #expect(by == "ops@example.com")
        #expect(s.team == "cloud-ops")
        #expect(s.timeZone == "America/New_York")
        #expect(s.members == [Contact(name: "Ana", email: "ana@example.com", phone: "+1 555 0100"), Fx.bo])
        #expect(s.handoff == 9 * 3600)
        #expect(s.rotationDays == 7)
        #expect(s.startDay == Fx.day("2026-03-02"))
        #expect(s.levels == [
            Level(role: .engineer, after: 0, every: 300, times: 3),
            Level(role: .teamLead, after: 900, contact: Fx.lead),
            Level(role: .teamLead, after: 600, contact: Contact(name: "Lou", email: "lou@example.com")),
            Level(role: .dutyManager, after: 1800, contact: Contact(name: "Dee", email: "duty@example.com", phone: "+1 555 0111")),
        ])
        #expect(s.overrides == [
            Override(member: Fx.cy, start: Fx.s("2026-03-10T12:00:00Z"), end: Fx.s("2026-03-11T12:00:01Z"), reason: "swap"),
            Override(member: Fx.sub, start: Fx.s("2026-03-20T00:00:00Z"), end: Fx.s("2026-03-21T00:00:00Z"), reason: nil),
        ])
        // What oncall.get echoes reads back as the same schedule.
        #expect(try OnCallSchedule.parse(s.json).schedule == s)
        // Without overrides or by, with seconds in the hand-off time.
        let (bare, nobody) = try OnCallSchedule.parse(scheduleBody {
            $0["overrides"] = nil
            $0["by"] = nil
            $0["handoffTime"] = "23:59:59"
        })
        #expect(bare.overrides.isEmpty)
        #expect(nobody == nil)
        #expect(bare.handoff == 86_399)
    }

    // R-ESC-5: a rotation cannot be empty.
    @Test("R-ESC-5: no members → invalid_field on members")
    func emptyMembers() {
        #expect(refusal(scheduleBody { $0["members"] = [] }) == [["invalid_field", "members"]])
        #expect(refusal(scheduleBody { $0["members"] = nil }) == [["missing_field", "members"]])
    }

    // R-ESC-5: one person listed twice (e-mails compare case-insensitively) is refused on the second entry.
    @Test("R-ESC-5: a member listed twice → duplicate_contact on the second")
    func duplicateMember() {
        let twice: JSONValue = [["name": "Ana", "email": "ana@example.com"], ["name": "Bo", "email": "bo@example.com"],
                                ["name": "Ana again", "email": "ANA@example.com"]]
        #expect(refusal(scheduleBody { $0["members"] = twice }) == [["duplicate_contact", "members[2].email"]])
        // The index is the entry's own, even when an earlier entry is itself invalid.
        let withBad: JSONValue = [["name": "X", "email": "not-an-email"], ["name": "Bo", "email": "bo@example.com"],
                                  ["name": "Bo", "email": "Bo@Example.com"]]
        #expect(refusal(scheduleBody { $0["members"] = withBad }) == [["invalid_field", "members[0].email"], ["duplicate_contact", "members[2].email"]])
    }

    // R-ESC-5: two overrides covering the same instant are refused, on the later one's index.
    @Test("R-ESC-5: overlapping overrides → overlapping_overrides on the later entry")
    func overlappingOverrides() {
        func o(_ email: String, _ start: String, _ end: String) -> JSONValue {
            ["member": ["name": "X", "email": .string(email)], "start": .string(start), "end": .string(end)]
        }
        let overlapping: JSONValue = [o("a@example.com", "2026-03-10T00:00:00Z", "2026-03-12T00:00:00Z"),
                                      o("b@example.com", "2026-03-20T00:00:00Z", "2026-03-21T00:00:00Z"),
                                      o("c@example.com", "2026-03-11T00:00:00Z", "2026-03-13T00:00:00Z")]
        #expect(refusal(scheduleBody { $0["overrides"] = overlapping }) == [["overlapping_overrides", "overrides[2]"]])
        // Listed in the other order: still the later entry.
        let reversed: JSONValue = [o("c@example.com", "2026-03-11T00:00:00Z", "2026-03-13T00:00:00Z"),
                                   o("a@example.com", "2026-03-10T00:00:00Z", "2026-03-12T00:00:00Z")]
        #expect(refusal(scheduleBody { $0["overrides"] = reversed }) == [["overlapping_overrides", "overrides[1]"]])
        // Touching ends do not overlap: [start, end).
        let touching: JSONValue = [o("a@example.com", "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z"),
                                   o("b@example.com", "2026-03-11T00:00:00Z", "2026-03-12T00:00:00Z")]
        #expect(refusal(scheduleBody { $0["overrides"] = touching }) == [])
        // A long override overlapping two short ones that do not overlap each other: both are reported.
        let long: JSONValue = [o("a@example.com", "2026-03-10T00:00:00Z", "2026-03-20T00:00:00Z"),
                               o("b@example.com", "2026-03-12T00:00:00Z", "2026-03-13T00:00:00Z"),
                               o("c@example.com", "2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z")]
        #expect(refusal(scheduleBody { $0["overrides"] = long }) == [["overlapping_overrides", "overrides[1]"],
                                                                      ["overlapping_overrides", "overrides[2]"]])
        // An end not after the start, and an override longer than 90 days.
        #expect(refusal(scheduleBody { $0["overrides"] = [o("a@example.com", "2026-03-10T00:00:00Z", "2026-03-10T00:00:00Z")] })
            == [["invalid_field", "overrides[0].end"]])
        #expect(refusal(scheduleBody { $0["overrides"] = [o("a@example.com", "2026-03-10T00:00:00Z", "2026-06-09T00:00:01Z")] })
            == [["invalid_field", "overrides[0].end"]])
    }

    // R-ESC-2: a chain has at least one level, the first notified at once, each later one after a wait.
    @Test("R-ESC-2: levels empty, first level not PT0S, later level PT0S → invalid_field")
    func levelTiming() {
        #expect(refusal(scheduleBody { $0["levels"] = [] }) == [["invalid_field", "levels"]])
        #expect(refusal(scheduleBody { $0["levels"] = [level("engineer", "PT5M")] }) == [["invalid_field", "levels[0].after"]])
        #expect(refusal(scheduleBody { $0["levels"] = [level("engineer", "PT0S"), level("team_lead", "PT0S")] })
            == [["invalid_field", "levels[1].after"]])
    }

    // R-ESC-2: engineer → team lead → success manager → duty manager; a level never goes down.
    @Test("R-ESC-2: roles out of order → invalid_field on levels[i].role; an unknown role → unknown_value")
    func roles() {
        #expect(refusal(scheduleBody {
            $0["levels"] = [level("engineer", "PT0S"), level("success_manager", "PT15M"), level("team_lead", "PT30M")]
        }) == [["invalid_field", "levels[2].role"]])
        #expect(refusal(scheduleBody { $0["levels"] = [level("engineer", "PT0S"), level("manager", "PT15M")] })
            == [["unknown_value", "levels[1].role"]])
        #expect(refusal(scheduleBody { $0["levels"] = [["after": "PT0S"]] }) == [["missing_field", "levels[0].role"]])
    }

    // R-ESC-2: waits are whole seconds of at most a day.
    @Test("R-ESC-2: fractional, too long or malformed durations → invalid_field")
    func durations() {
        for bad in ["PT1.5S", "P2D", "PT24H1S", "PT15", "15m"] {
            #expect(refusal(scheduleBody { $0["levels"] = [level("engineer", "PT0S"), level("team_lead", bad)] })
                == [["invalid_field", "levels[1].after"]], "\(bad)")
        }
        #expect(refusal(scheduleBody { $0["levels"] = [level("engineer", "PT0S"), level("team_lead", "P1D")] }) == [])
        #expect(refusal(scheduleBody { $0["levels"] = [["role": "engineer", "after": "PT0S", "repeat": ["every": "PT0S", "times": 2]]] })
            == [["invalid_field", "levels[0].repeat.every"]])
        #expect(refusal(scheduleBody { $0["levels"] = [["role": "engineer", "after": "PT0S", "repeat": ["every": "PT0.5S", "times": 2]]] })
            == [["invalid_field", "levels[0].repeat.every"]])
        #expect(refusal(scheduleBody { $0["levels"] = [["role": "engineer", "after": "PT0S", "repeat": ["every": "PT5M", "times": 21]]] })
            == [["invalid_field", "levels[0].repeat.times"]])
    }

    // R-ESC-5: the hand-off is a local wall time 00:00..23:59:59.
    @Test("R-ESC-5: handoffTime 24:00 or 9am → invalid_field")
    func handoffTime() {
        for bad in ["24:00", "9am", "9:00", "12:60"] {
            #expect(refusal(scheduleBody { $0["handoffTime"] = .string(bad) }) == [["invalid_field", "handoffTime"]], "\(bad)")
        }
    }

    // R-ESC-5: the zone must be an IANA zone the service can load.
    @Test("R-ESC-5: an unknown time zone → invalid_field on timeZone")
    func timeZone() {
        #expect(refusal(scheduleBody { $0["timeZone"] = "Mars/Olympus_Mons" }) == [["invalid_field", "timeZone"]])
        #expect(refusal(scheduleBody { $0["timeZone"] = "../etc/passwd" }) == [["invalid_field", "timeZone"]])
        // With an instant as start, the unknown zone is the only error.
        #expect(refusal(scheduleBody {
            $0["timeZone"] = "Mars/Olympus_Mons"
            $0["start"] = "2026-03-02T03:30:00Z"
        }) == [["invalid_field", "timeZone"]])
    }

    // R-ESC-5: a rotation hands off every 1..366 days.
    @Test("R-ESC-5: rotationDays 0 → invalid_field")
    func rotationDays() {
        #expect(refusal(scheduleBody { $0["rotationDays"] = 0 }) == [["invalid_field", "rotationDays"]])
        #expect(refusal(scheduleBody { $0["rotationDays"] = 1.5 }) == [["invalid_field", "rotationDays"]])
        #expect(refusal(scheduleBody { $0["rotationDays"] = "7" }) == [["wrong_type", "rotationDays"]])
    }

    // R-ESC-5: start is the local date of the first hand-off; an instant gives its local date in the zone.
    @Test("R-ESC-5: start as YYYY-MM-DD, or as an instant whose local date in the zone is taken")
    func start() throws {
        #expect(try OnCallSchedule.parse(scheduleBody { $0["start"] = "2026-11-01" }).schedule.startDay == Fx.day("2026-11-01"))
        // 03:30Z on 2 March is 22:30 EST on 1 March.
        #expect(try OnCallSchedule.parse(scheduleBody { $0["start"] = "2026-03-02T03:30:00Z" }).schedule.startDay == Fx.day("2026-03-01"))
        #expect(try OnCallSchedule.parse(scheduleBody { $0["start"] = "2026-03-02T05:30:00Z" }).schedule.startDay == Fx.day("2026-03-02"))
        // 14:00Z on 1 March is 01:00 (+11) on 2 March at Lord Howe.
        let lordHowe = try OnCallSchedule.parse(scheduleBody {
            $0["timeZone"] = "Australia/Lord_Howe"
            $0["start"] = "2026-03-01T14:00:00Z"
        }).schedule
        #expect(lordHowe.startDay == Fx.day("2026-03-02"))
        #expect(lordHowe.timeZone == "Australia/Lord_Howe")
        for bad in ["03/02/2026", "2026-02-30", "2026-3-2"] {
            #expect(refusal(scheduleBody { $0["start"] = .string(bad) }) == [["invalid_field", "start"]], "\(bad)")
        }
    }

    // Every problem is reported at once, nothing half-read.
    @Test("Several problems are all reported in one refusal")
    func several() {
        let codes = refusal(scheduleBody {
            $0["team"] = "cloud ops"
            $0["members"] = []
            $0["rotationDays"] = 0
            $0["levels"] = [level("engineer", "PT1M")]
        })
        #expect(codes == [["invalid_field", "team"], ["invalid_field", "members"], ["invalid_field", "rotationDays"],
                          ["invalid_field", "levels[0].after"]])
        #expect(refusal("not an object") == [["not_an_object", nil]])
    }
}
