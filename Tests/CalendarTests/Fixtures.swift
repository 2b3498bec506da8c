import Foundation
@testable import CSSCalendar

/// Fixture files live in Tools/oracles/fixtures, found relative to this source file.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/oracles/fixtures")

    static func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func lines(_ name: String) throws -> [String] {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            .split(separator: "\n").map(String.init)
    }
}

/// Builds calendars once per spec; fixtures reuse a handful of them thousands of times.
final class CalendarCache: @unchecked Sendable {
    private var cache: [CalendarSpec: BusinessCalendar] = [:]
    private let lock = NSLock()

    func calendar(_ spec: CalendarSpec) throws -> BusinessCalendar {
        lock.lock()
        defer { lock.unlock() }
        if let c = cache[spec] { return c }
        let c = try spec.build()
        cache[spec] = c
        return c
    }
}

func t(_ iso: String) -> Int64 { try! ISO8601.parse(iso) }
func d(_ iso: String) -> LocalDate { try! LocalDate(iso: iso) }
