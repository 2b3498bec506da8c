#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The UTC-offset history of one IANA time zone, read from its TZif file (RFC 8536).
///
/// Explicit transitions come from the file; later years follow the POSIX TZ rule in
/// the file's footer, so the rules never run out. Parsing is pure (`init(identifier:tzif:)`);
/// `load(identifier:directory:)` is the one place this library touches the file system.
public struct ZoneRules: Sendable {
    public let identifier: String
    let initialOffset: Int32
    let times: [Int64]
    let offsets: [Int32]
    let footer: PosixTZ?

    /// Reads `<directory>/<identifier>` and parses it.
    ///
    /// - Throws: `unknown_time_zone` when the name is not a zone in the database
    ///   (never a silent fallback to UTC).
    public static func load(identifier: String, directory: String = "/usr/share/zoneinfo") throws(CalendarError) -> ZoneRules {
        guard Self.isPlausibleName(identifier) else { throw .unknownTimeZone(identifier) }
        guard let bytes = readFile(directory + "/" + identifier) else { throw .unknownTimeZone(identifier) }
        do {
            return try ZoneRules(identifier: identifier, tzif: bytes)
        } catch {
            throw CalendarError(code: "unknown_time_zone", message: "'\(identifier)' is not a valid TZif zone: \(error.message)")
        }
    }

    /// Parses TZif version 1–4 data.
    public init(identifier: String, tzif bytes: [UInt8]) throws(CalendarError) {
        self.identifier = identifier
        let bad = CalendarError(code: "unknown_time_zone", message: "malformed TZif data")
        var r = ByteReader(bytes: bytes)
        func header(_ r: inout ByteReader) throws(CalendarError) -> (version: UInt8, counts: [Int]) {
            guard r.remaining >= 44, r.bytes[r.pos] == 0x54, r.bytes[r.pos + 1] == 0x5A, r.bytes[r.pos + 2] == 0x69, r.bytes[r.pos + 3] == 0x66 else { throw bad }
            let version = r.bytes[r.pos + 4]
            r.pos += 20
            var counts: [Int] = []
            for _ in 0..<6 { counts.append(Int(r.u32())) }
            return (version, counts)
        }
        let (version, c1) = try header(&r)
        // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        var timeSize = 4
        var counts = c1
        if version >= 0x32 {
            let v1Size = c1[3] * 5 + c1[4] * 6 + c1[5] + c1[2] * 8 + c1[1] + c1[0]
            guard r.remaining >= v1Size else { throw bad }
            r.pos += v1Size
            counts = try header(&r).counts
            timeSize = 8
        }
        let (isut, isstd, leap, timecnt, typecnt, charcnt) = (counts[0], counts[1], counts[2], counts[3], counts[4], counts[5])
        guard typecnt > 0, r.remaining >= timecnt * (timeSize + 1) + typecnt * 6 + charcnt + leap * (timeSize + 4) + isstd + isut else { throw bad }
        var rawTimes: [Int64] = []
        rawTimes.reserveCapacity(timecnt)
        for _ in 0..<timecnt { rawTimes.append(timeSize == 8 ? Int64(bitPattern: r.u64()) : Int64(Int32(bitPattern: r.u32()))) }
        var idx: [Int] = []
        for _ in 0..<timecnt { idx.append(Int(r.bytes[r.pos])); r.pos += 1 }
        var typeOffsets: [Int32] = []
        for _ in 0..<typecnt {
            typeOffsets.append(Int32(bitPattern: r.u32()))
            r.pos += 2
        }
        r.pos += charcnt + leap * (timeSize + 4) + isstd + isut
        guard idx.allSatisfy({ $0 < typecnt }) else { throw bad }
        var footer: PosixTZ?
        if version >= 0x32, r.remaining >= 2, r.bytes[r.pos] == 10 {
            let start = r.pos + 1
            var end = start
            while end < bytes.count, bytes[end] != 10 { end += 1 }
            if end > start {
                footer = PosixTZ(String(decoding: bytes[start..<end], as: UTF8.self))
                guard footer != nil else { throw CalendarError(code: "unknown_time_zone", message: "unsupported TZ footer rule") }
            }
        }
        // Keep only real offset changes: abbreviation-only or isdst-only changes do not move the clock.
        var initial = typeOffsets[0]
        var times: [Int64] = []
        var offsets: [Int32] = []
        for (t, i) in zip(rawTimes, idx) {
            let o = typeOffsets[i]
            if o != (offsets.last ?? initial) {
                times.append(t)
                offsets.append(o)
            }
        }
        if times.isEmpty, let f = footer, f.dst == nil { initial = f.stdOffset }
        self.initialOffset = initial
        self.times = times
        self.offsets = offsets
        self.footer = footer
    }

    /// All offset changes in `[from, to)` plus the offset in effect at `from`.
    func table(from: Int64, to: Int64) -> (initial: Int32, times: [Int64], offsets: [Int32]) {
        var allTimes = times
        var allOffsets = offsets
        if let f = footer, let dst = f.dst {
            let lastExplicit = times.last ?? Int64.min
            let firstYear = Civil.civil(Civil.floorDiv(max(lastExplicit, from), 86_400)).year - 1
            let lastYear = Civil.civil(Civil.floorDiv(to, 86_400)).year + 1
            var generated: [(Int64, Int32)] = []
            if firstYear <= lastYear {
                for y in firstYear...lastYear {
                    let start = dst.start.day(in: y) * 86_400 + Int64(dst.startTime) - Int64(f.stdOffset)
                    let end = dst.end.day(in: y) * 86_400 + Int64(dst.endTime) - Int64(dst.offset)
                    generated.append((start, dst.offset))
                    generated.append((end, f.stdOffset))
                }
            }
            generated.sort { $0.0 < $1.0 }
            for (t, o) in generated where t > lastExplicit {
                if o != (allOffsets.last ?? initialOffset) {
                    allTimes.append(t)
                    allOffsets.append(o)
                }
            }
        }
        // Offset in effect at `from`, then the changes inside the window.
        var lo = 0, hi = allTimes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if allTimes[mid] <= from { lo = mid + 1 } else { hi = mid }
        }
        let initial = lo == 0 ? initialOffset : allOffsets[lo - 1]
        var outTimes: [Int64] = []
        var outOffsets: [Int32] = []
        var i = lo
        while i < allTimes.count, allTimes[i] < to {
            outTimes.append(allTimes[i])
            outOffsets.append(allOffsets[i])
            i += 1
        }
        return (initial, outTimes, outOffsets)
    }

    /// The UTC offset in seconds at instant `t` (slow path; calendars precompute a table).
    public func offset(at t: Int64) -> Int {
        let tab = table(from: t, to: t + 1)
        return Int(tab.initial)
    }

    /// The local calendar date at instant `t` (seconds since the epoch).
    public func localDate(at t: Int64) -> LocalDate {
        LocalDate(dayNumber: Civil.floorDiv(t + Int64(offset(at: t)), 86_400))
    }

    /// The first instant of local date `date`: its midnight or, where a transition skips
    /// midnight (America/Santiago, Asia/Beirut), the transition itself.
    public func startOfDay(_ date: LocalDate) -> Int64 {
        let wall = date.dayNumber * 86_400
        let tab = table(from: wall - 2 * 86_400, to: wall + 2 * 86_400)
        return Self.instant(localWall: wall, initial: Int64(tab.initial), times: tab.times, offsets: tab.offsets.map(Int64.init), from: 0)
    }

    /// The instant of wall time `secondsOfDay` (0..<86 400) on local date `date`: where that wall
    /// time exists twice (a fall-back), its first occurrence; where a transition skipped it (a
    /// spring-forward gap), the transition itself, the first instant after the gap.
    public func instant(_ date: LocalDate, secondsOfDay: Int) -> Int64 {
        let wall = date.dayNumber * 86_400 + Int64(secondsOfDay)
        let tab = table(from: wall - 2 * 86_400, to: wall + 2 * 86_400)
        return Self.instant(localWall: wall, initial: Int64(tab.initial), times: tab.times, offsets: tab.offsets.map(Int64.init), from: 0)
    }

    /// The earliest instant whose local wall time is `wall` or, where a transition skipped
    /// that wall time, the transition itself.
    ///
    /// - Parameters:
    ///   - initial: the offset before `times[0]`; `offsets[k]` applies from `times[k]`.
    ///   - from: the offset segment to start looking in (0 = the one before `times[0]`);
    ///     it must not lie after the answer.
    static func instant(localWall wall: Int64, initial: Int64, times: [Int64], offsets: [Int64], from: Int) -> Int64 {
        var k = from
        while true {
            let offset = k == 0 ? initial : offsets[k - 1]
            let segmentStart = k == 0 ? Int64.min : times[k - 1]
            let segmentEnd = k < times.count ? times[k] : Int64.max
            let u = wall - offset
            if u < segmentStart { return segmentStart } // the wall time was skipped
            if u < segmentEnd { return u }
            k += 1
        }
    }

    static func isPlausibleName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count < 256, !name.hasPrefix("/"), !name.contains("..") else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 47 || c == 95 || c == 45 || c == 43
        }
    }

    static func readFile(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, 65_536, f) }
            if n > 0 { out.append(contentsOf: buffer[0..<n]) }
            if n < 65_536 { break }
            if out.count > 4_000_000 { return nil }
        }
        if ferror(f) != 0 { return nil }
        return out
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var pos = 0
    var remaining: Int { bytes.count - pos }

    mutating func u32() -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 { v = v << 8 | UInt32(bytes[pos]); pos += 1 }
        return v
    }

    mutating func u64() -> UInt64 {
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(bytes[pos]); pos += 1 }
        return v
    }
}

/// A POSIX TZ rule string as found in TZif footers, e.g. `EST5EDT,M3.2.0,M11.1.0`.
struct PosixTZ: Sendable {
    enum DateRule: Sendable {
        case julianNoLeap(Int)       // Jn, 1...365, February 29 never counted
        case zeroBased(Int)          // n, 0...365
        case monthWeekDay(Int, Int, Int) // Mm.w.d, d: 0 = Sunday

        func day(in year: Int) -> Int64 {
            let jan1 = Civil.dayNumber(year: year, month: 1, day: 1)
            switch self {
            case .julianNoLeap(let n):
                return jan1 + Int64(n - 1) + ((Civil.isLeap(year) && n >= 60) ? 1 : 0)
            case .zeroBased(let n):
                return jan1 + Int64(n)
            case .monthWeekDay(let m, let w, let d):
                let first = Civil.dayNumber(year: year, month: m, day: 1)
                let firstSundayBased = (Civil.weekdayIndex(first) + 1) % 7
                var day = first + Int64((d - firstSundayBased + 7) % 7) + Int64(7 * (w - 1))
                let monthEnd = first + Int64(Civil.daysInMonth(year: year, month: m))
                while day >= monthEnd { day -= 7 }
                return day
            }
        }
    }

    struct DST: Sendable {
        var offset: Int32
        var start: DateRule
        var startTime: Int32
        var end: DateRule
        var endTime: Int32
    }

    var stdOffset: Int32
    var dst: DST?

    init?(_ text: String) {
        var p = Parser(Array(text.utf8))
        guard p.name(), let std = p.offset() else { return nil }
        stdOffset = -std
        if p.atEnd { dst = nil; return }
        guard p.name() else { return nil }
        var dstOffset = stdOffset + 3600
        if !p.atEnd, p.peek != 44, let o = p.offset() { dstOffset = -o }
        var startRule = DateRule.monthWeekDay(3, 2, 0), endRule = DateRule.monthWeekDay(11, 1, 0)
        var startTime: Int32 = 7200, endTime: Int32 = 7200
        if !p.atEnd {
            guard p.eat(44), let s = p.dateRule() else { return nil }
            startRule = s
            if p.eat(47) { guard let t = p.offset() else { return nil }; startTime = t }
            guard p.eat(44), let e = p.dateRule() else { return nil }
            endRule = e
            if p.eat(47) { guard let t = p.offset() else { return nil }; endTime = t }
            guard p.atEnd else { return nil }
        }
        // Permanent daylight time ("…,0/0,J365/25") is a fixed offset.
        if case .zeroBased(0) = startRule, startTime == 0, case .julianNoLeap(365) = endRule, endTime >= 24 * 3600 {
            stdOffset = dstOffset
            dst = nil
            return
        }
        dst = DST(offset: dstOffset, start: startRule, startTime: startTime, end: endRule, endTime: endTime)
    }

    struct Parser {
        let b: [UInt8]
        var i = 0
        init(_ b: [UInt8]) { self.b = b }
        var atEnd: Bool { i >= b.count }
        var peek: UInt8 { b[i] }

        mutating func eat(_ c: UInt8) -> Bool {
            if i < b.count, b[i] == c { i += 1; return true }
            return false
        }

        mutating func name() -> Bool {
            if eat(60) { // <...>
                while i < b.count, b[i] != 62 { i += 1 }
                return eat(62)
            }
            let start = i
            while i < b.count, (b[i] >= 65 && b[i] <= 90) || (b[i] >= 97 && b[i] <= 122) { i += 1 }
            return i - start >= 3
        }

        mutating func number() -> Int? {
            let start = i
            var v = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 { v = v * 10 + Int(b[i] - 48); i += 1 }
            return i > start ? v : nil
        }

        /// `[+-]hh[:mm[:ss]]` in seconds, POSIX sign (positive west of Greenwich for zone offsets).
        mutating func offset() -> Int32? {
            var sign: Int32 = 1
            if eat(45) { sign = -1 } else { _ = eat(43) }
            guard let h = number() else { return nil }
            var v = h * 3600
            if eat(58) { guard let m = number() else { return nil }; v += m * 60
                if eat(58) { guard let s = number() else { return nil }; v += s }
            }
            return sign * Int32(v)
        }

        mutating func dateRule() -> DateRule? {
            if eat(74) { // J
                guard let n = number(), (1...365).contains(n) else { return nil }
                return .julianNoLeap(n)
            }
            if eat(77) { // M
                guard let m = number(), eat(46), let w = number(), eat(46), let d = number(),
                      (1...12).contains(m), (1...5).contains(w), (0...6).contains(d) else { return nil }
                return .monthWeekDay(m, w, d)
            }
            guard let n = number(), (0...365).contains(n) else { return nil }
            return .zeroBased(n)
        }
    }
}
