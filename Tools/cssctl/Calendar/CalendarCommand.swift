import ArgumentParser
import Foundation
import CSSCalendar
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct CalendarCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calendar",
        abstract: "Business-hours calendar: SLA due times and statutory holidays.",
        subcommands: [Due.self, Holidays.self]
    )

    struct Due: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read JSON request lines on stdin, write one JSON result line per request.",
            discussion: """
            Request: {"start": "2026-03-06T20:30:00Z", "seconds": 14400, "calendar": "business",
                      "timeZone": "America/Toronto", "region": "CA-ON", "extraHolidays": ["2026-03-09"]}
            Optional: "ics" (iCalendar text), "excluded": [{"start": ..., "end": ...}],
                      "hours": [{"day": "mon", "open": "08:00", "close": "17:00"}].
            Result: {"dueAt": "..."} or {"error": {"code": "...", "message": "..."}}. Blank lines are skipped.
            """
        )

        @Option(help: "Directory of the IANA time zone database (TZif files).")
        var zoneinfo = "/usr/share/zoneinfo"

        func run() throws {
            let handler = DueRequestHandler(zoneDirectory: zoneinfo)
            while let line = readLine(strippingNewline: true) {
                if line.allSatisfy(\.isWhitespace) { continue }
                print(handler.respond(to: line))
                fflush(nil) // answer each line at once: callers may stream requests
            }
        }
    }

    struct Holidays: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a region's statutory holidays (or an iCalendar file's) for a year.")

        @Option(help: "ISO 3166 region: \(HolidayRegion.supportedCodes.joined(separator: ", ")).")
        var region: String?

        @Option(help: "An iCalendar (.ics) file of holidays to list instead of, or as well as, the region's.")
        var ics: String?

        @Option(help: "Year to list.")
        var year: Int

        func run() throws {
            do {
                var days: [Holiday] = []
                if let region { days += try HolidayRegion(code: region).holidays(in: year) }
                if let ics {
                    guard let text = try? String(contentsOfFile: ics, encoding: .utf8) else {
                        throw CalendarError(code: "invalid_request", message: "cannot read \(ics)")
                    }
                    days += try ICalendarHolidays(parsing: text).holidays(in: year...year).filter { $0.date.year == year }
                }
                guard region != nil || ics != nil else { throw CalendarError(code: "invalid_request", message: "give --region or --ics") }
                for h in days.sorted() { print("\(h.date)  \(h.date.weekday.short)  \(h.name)") }
            } catch let error as CalendarError {
                FileHandleStderr.write("error: \(error.code): \(error.message)\n")
                throw ExitCode(2)
            }
        }
    }
}

extension Weekday {
    var short: String { ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][rawValue] }
}

enum FileHandleStderr {
    static func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
