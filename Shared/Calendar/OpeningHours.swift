/// A time of day as seconds since local midnight, `0...86_400` (86 400 is 24:00).
public struct TimeOfDay: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let seconds: Int

    public init(seconds: Int) throws(CalendarError) {
        guard (0...86_400).contains(seconds) else {
            throw CalendarError(code: "invalid_opening_hours", message: "time of day \(seconds)s is outside 00:00...24:00")
        }
        self.seconds = seconds
    }

    public init(hour: Int, minute: Int = 0, second: Int = 0) throws(CalendarError) {
        guard (0...59).contains(minute), (0...59).contains(second) else {
            throw CalendarError(code: "invalid_opening_hours", message: "invalid time \(hour):\(minute):\(second)")
        }
        try self.init(seconds: hour * 3600 + minute * 60 + second)
    }

    /// Parses `HH:MM` or `HH:MM:SS` (`24:00` allowed).
    public init(parsing text: String) throws(CalendarError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
              let h = Int(parts[0]), let m = Int(parts[1]), let s = parts.count == 3 ? Int(parts[2]) : 0 else {
            throw CalendarError(code: "invalid_opening_hours", message: "expected HH:MM, got '\(text)'")
        }
        try self.init(hour: h, minute: m, second: s)
    }

    public static func < (a: TimeOfDay, b: TimeOfDay) -> Bool { a.seconds < b.seconds }

    public var description: String {
        pad(seconds / 3600, 2) + ":" + pad(seconds / 60 % 60, 2) + (seconds % 60 == 0 ? "" : ":" + pad(seconds % 60, 2))
    }
}

/// One opening window on a weekday, in local wall-clock time.
///
/// When `close` is not after `open` the window crosses midnight and ends on the next
/// day (`22:00–06:00`). A window belongs to the day it opens on: if that day is a
/// holiday the whole window is closed, including its part after midnight; if only the
/// next day is a holiday, the part after midnight stays open.
public struct OpeningWindow: Hashable, Sendable {
    public var weekday: Weekday
    public var open: TimeOfDay
    public var close: TimeOfDay

    public init(_ weekday: Weekday, open: TimeOfDay, close: TimeOfDay) {
        self.weekday = weekday
        self.open = open
        self.close = close
    }
}

/// Weekly opening hours: any set of windows per weekday.
public struct OpeningHours: Hashable, Sendable {
    public var windows: [OpeningWindow]

    public init(_ windows: [OpeningWindow]) {
        self.windows = windows
    }

    /// The same window on each of `days`.
    public init(days: [Weekday], open: TimeOfDay, close: TimeOfDay) {
        self.windows = days.map { OpeningWindow($0, open: open, close: close) }
    }

    /// Monday to Friday, 08:00–17:00 (R-SLA-2).
    public static let standard = OpeningHours(days: [.monday, .tuesday, .wednesday, .thursday, .friday],
                                              open: try! TimeOfDay(hour: 8), close: try! TimeOfDay(hour: 17))

    /// Every day, all day: the 24x7 calendar (R-SLA-1, P1).
    public static let always = OpeningHours(days: Weekday.allCases, open: try! TimeOfDay(seconds: 0), close: try! TimeOfDay(seconds: 86_400))

    public var isEmpty: Bool { windows.isEmpty }
}

/// Opening hours compiled into per-weekday pieces inside `[0, 86 400)`.
///
/// A window crossing midnight becomes two pieces; the second has `owner == -1`, meaning
/// its holiday status is that of the previous day (the day the window opened).
struct CompiledWeek: Sendable {
    struct Piece: Sendable, Equatable {
        var start: Int32
        var end: Int32
        var owner: Int32 // 0 = this day, -1 = previous day
    }

    /// Pieces of weekday `w` are `pieces[bounds[w] ..< bounds[w + 1]]`, sorted and disjoint.
    let pieces: [Piece]
    let bounds: [Int]

    init(_ hours: OpeningHours) throws(CalendarError) {
        var perDay: [[Piece]] = Array(repeating: [], count: 7)
        for w in hours.windows {
            let d = w.weekday.rawValue
            let open = Int32(w.open.seconds), close = Int32(w.close.seconds)
            if open == close {
                throw CalendarError(code: "invalid_opening_hours", message: "window on \(w.weekday) opens and closes at \(w.open); use 00:00–24:00 for a full day")
            }
            if close > open {
                perDay[d].append(Piece(start: open, end: close, owner: 0))
            } else {
                if open < 86_400 { perDay[d].append(Piece(start: open, end: 86_400, owner: 0)) }
                if close > 0 { perDay[(d + 1) % 7].append(Piece(start: 0, end: close, owner: -1)) }
            }
        }
        var pieces: [Piece] = []
        var bounds: [Int] = [0]
        for d in 0..<7 {
            let sorted = perDay[d].sorted { ($0.start, $0.end) < ($1.start, $1.end) }
            var merged: [Piece] = []
            for p in sorted {
                if var last = merged.last, p.start <= last.end {
                    guard last.owner == p.owner else {
                        throw CalendarError(code: "invalid_opening_hours", message: "a window crossing midnight into \(Weekday(rawValue: d)!) overlaps that day's own window; merge them into one window")
                    }
                    last.end = max(last.end, p.end)
                    merged[merged.count - 1] = last
                } else {
                    merged.append(p)
                }
            }
            pieces += merged
            bounds.append(pieces.count)
        }
        self.pieces = pieces
        self.bounds = bounds
    }

    var isEmpty: Bool { pieces.isEmpty }

    /// Whether weekday `w` has a window that opens on it (what makes it a business day).
    func opens(on w: Int) -> Bool {
        pieces[bounds[w]..<bounds[w + 1]].contains { $0.owner == 0 }
    }
}
