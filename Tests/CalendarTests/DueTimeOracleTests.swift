import Foundation
import Testing
@testable import CSSCalendar

/// Due times against the independent minute-walking reference (Tools/oracles/gen_due_times.py):
/// thousands of random starts and durations, DST-heavy zones, 30- and 45-minute offsets,
/// windows crossing midnight, excluded intervals. Compared to the second.
@Suite struct DueTimeOracleTests {
    static let cache = CalendarCache()

    static func specs() throws -> [String: CalendarSpec] {
        let root = try #require(Fixtures.json("due_calendars.json") as? [String: Any])
        let calendars = try #require(root["calendars"] as? [String: [String: Any]])
        var out: [String: CalendarSpec] = [:]
        for (name, c) in calendars {
            let kind = try #require(CalendarSpec.Kind(rawValue: c["kind"] as! String))
            var hours: OpeningHours?
            if let rows = c["hours"] as? [[Any]] {
                hours = OpeningHours(try rows.map { row in
                    OpeningWindow(Weekday(rawValue: row[0] as! Int)!, open: try TimeOfDay(parsing: row[1] as! String), close: try TimeOfDay(parsing: row[2] as! String))
                })
            }
            out[name] = CalendarSpec(kind: kind, timeZone: c["timeZone"] as! String, region: c["region"] as? String,
                                     extraHolidays: ((c["extraHolidays"] as? [String]) ?? []).map(d), openingHours: hours)
        }
        return out
    }

    @Test func matchesMinuteWalkingReference() throws { // R-SLA-1, R-SLA-2, R-SLA-4, R-SLA-5
        let specs = try Self.specs()
        let lines = try Fixtures.lines("due_times.jsonl")
        #expect(lines.count >= 3000)
        var failures: [String] = []
        var checkedBetween = 0, withExclusions = 0
        for line in lines {
            let row = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let name = row["cal"] as! String
            var cal = try Self.cache.calendar(try #require(specs[name]))
            if let ex = row["excluded"] as? [[Int]] {
                cal = cal.excluding(ex.map { InstantRange(start: Int64($0[0]), end: Int64($0[1])) })
                withExclusions += 1
            }
            let start = Int64(row["start"] as! Int), seconds = Int64(row["seconds"] as! Int), due = Int64(row["due"] as! Int)
            let got = try cal.adding(businessSeconds: seconds, to: start)
            if got != due { failures.append("\(name) start \(ISO8601.format(start)) +\(seconds)s: got \(ISO8601.format(got)), oracle \(ISO8601.format(due))") }
            if try cal.isBusinessTime(start) != (row["business"] as! Bool) { failures.append("\(name) isBusiness(\(ISO8601.format(start)))") }
            if let probe = row["probe"] as? Int, let between = row["between"] as? Int {
                checkedBetween += 1
                let b = try cal.businessSeconds(from: start, to: Int64(probe))
                if b != Int64(between) { failures.append("\(name) between \(ISO8601.format(start)) and \(ISO8601.format(Int64(probe))): got \(b), oracle \(between)") }
            }
            // Adding then measuring returns the duration.
            if try cal.businessSeconds(from: start, to: got) != seconds { failures.append("\(name) measure(add) != duration at \(start)") }
        }
        let mismatches = failures.count
        #expect(mismatches == 0, Comment(rawValue: failures.prefix(8).joined(separator: "\n")))
        #expect(checkedBetween > 1000)
        #expect(withExclusions > 500)
    }
}
