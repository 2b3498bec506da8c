// Plain release-mode benchmark: `swift run -c release calendar-bench` (or Tools/bench-calendar.sh,
// which installs the Python comparison first). Not a timed test.
import CSSCalendar
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct Options {
    var startsPerZone = 100_000
    var rounds = 5
    var pythonCases = 3000
    var python: String? = "python3"
    var root = FileManager.default.currentDirectoryPath

    init(_ args: [String]) {
        var i = 1
        while i < args.count {
            let v = i + 1 < args.count ? args[i + 1] : ""
            switch args[i] {
            case "--starts": startsPerZone = Int(v) ?? startsPerZone; i += 1
            case "--rounds": rounds = Int(v) ?? rounds; i += 1
            case "--python-cases": pythonCases = Int(v) ?? pythonCases; i += 1
            case "--python": python = v; i += 1
            case "--no-python": python = nil
            case "--root": root = v; i += 1
            default: FileHandle.standardError.write(Data("unknown option \(args[i])\n".utf8)); exit(2)
            }
            i += 1
        }
    }
}

let options = Options(CommandLine.arguments)
let zones: [(String, String?)] = [
    ("America/New_York", "US"), ("America/Toronto", "CA-ON"), ("Europe/London", "GB-ENG"),
    ("Europe/Berlin", "DE"), ("Australia/Sydney", "AU-NSW"), ("Asia/Kolkata", nil),
]
let durations: [Int64] = [4 * 3600, 48 * 3600] // P3 response and restoration targets (R-SLA-1)

do {
    // Realistic starts over 2026–2027: 70 % during or just around opening hours, the rest at any time.
    var rng = SplitMix64(state: 2026)
    let lo = try ISO8601.parse("2026-01-01T00:00:00Z"), hi = try ISO8601.parse("2027-12-01T00:00:00Z")
    var calendars: [BusinessCalendar] = []
    var starts: [[Int64]] = []
    for (zone, region) in zones {
        let cal = try CalendarSpec(kind: .business, timeZone: zone, region: region).build()
        calendars.append(cal)
        var s: [Int64] = []
        s.reserveCapacity(options.startsPerZone)
        for _ in 0..<options.startsPerZone {
            var t = Int64.random(in: lo..<hi, using: &rng)
            if Double.random(in: 0..<1, using: &rng) < 0.7, let open = try cal.nextOpening(atOrAfter: t) {
                t = open + Int64.random(in: -3600..<(10 * 3600), using: &rng)
            }
            s.append(t)
        }
        starts.append(s)
    }

    // Swift: best of `rounds`, one thread.
    var best = Double.infinity
    var checksum: Int64 = 0
    let perRound = zones.count * options.startsPerZone * durations.count
    for _ in 0..<options.rounds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        var sum: Int64 = 0
        for z in 0..<calendars.count {
            let cal = calendars[z]
            for start in starts[z] {
                for n in durations { sum &+= try cal.adding(businessSeconds: n, to: start) }
            }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        best = min(best, elapsed)
        checksum = sum
    }
    let swiftRate = Double(perRound) / best
    print("calendar-bench: \(perRound) due times per round (\(zones.count) zones × \(options.startsPerZone) starts × 4 h and 48 h), best of \(options.rounds)")
    print(String(format: "  swift: %.0f due times/s on one core (%.1f ns each), checksum %lld", swiftRate, best / Double(perRound) * 1e9, checksum))

    // Memory per calendar: logical bytes, and what the allocator actually handed out.
    let decade = try CalendarSpec(kind: .business, timeZone: "America/New_York", region: "US", years: 2026...2035).build()
    let century = try CalendarSpec(kind: .business, timeZone: "America/New_York", region: "US").build()
    // Resident-set growth while holding 2000 more such calendars (an upper bound: it includes
    // allocator slack and the temporaries used while building them).
    func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }
    var kept: [BusinessCalendar] = []
    kept.reserveCapacity(2000)
    let before = residentBytes()
    for _ in 0..<2000 { kept.append(try CalendarSpec(kind: .business, timeZone: "America/New_York", region: "US", years: 2026...2035).build()) }
    let measured = (residentBytes() - before) / kept.count
    print("  memory per calendar (US, America/New_York): decade 2026–2035 \(decade.memoryFootprint) B (RSS growth per calendar \(measured) B), default years \(century.years) \(century.memoryFootprint) B; budget 65536 B")

    // Python businesstimedelta on a subset of the same cases, same calendars.
    guard let python = options.python else { exit(0) }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calendar-bench-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var cases: [(zone: Int, start: Int64, seconds: Int64)] = []
    var text = ""
    let perZone = max(1, options.pythonCases / (zones.count * durations.count))
    for z in 0..<zones.count {
        for start in starts[z].prefix(perZone) {
            for n in durations {
                cases.append((z, start, n))
                let region = zones[z].1.map { "\"\($0)\"" } ?? "null"
                text += "{\"timeZone\":\"\(zones[z].0)\",\"region\":\(region),\"start\":\(start),\"seconds\":\(n)}\n"
            }
        }
    }
    let casesFile = dir.appendingPathComponent("cases.jsonl"), resultsFile = dir.appendingPathComponent("results.jsonl")
    try text.write(to: casesFile, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [python, options.root + "/Tools/oracles/bench_businesstimedelta.py", casesFile.path, resultsFile.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0,
          let summary = try JSONSerialization.jsonObject(with: output) as? [String: Any],
          let elapsed = summary["elapsed"] as? Double else {
        print("  python: businesstimedelta run failed (status \(process.terminationStatus)); install with pip install -r Tools/oracles/requirements.txt")
        exit(1)
    }
    let pyRate = Double(cases.count) / elapsed
    let lines = try String(contentsOf: resultsFile, encoding: .utf8).split(separator: "\n")
    var same = 0
    var differences: [String] = []
    for (c, line) in zip(cases, lines) {
        let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        let theirs = Int64(row["due"] as! Int)
        let ours = try calendars[c.zone].adding(businessSeconds: c.seconds, to: c.start)
        if theirs == ours { same += 1 } else if differences.count < 5 {
            differences.append("\(zones[c.zone].0) start \(ISO8601.format(c.start)) +\(c.seconds)s: ours \(ISO8601.format(ours)), businesstimedelta \(ISO8601.format(theirs))")
        }
    }
    print(String(format: "  python businesstimedelta: %.0f due times/s on %d cases", pyRate, cases.count))
    print(String(format: "  ratio: %.0f× faster; identical results on %d of %d cases", swiftRate / pyRate, same, cases.count))
    for d in differences { print("    differs: \(d)") }
} catch {
    print("calendar-bench failed: \(error)")
    exit(1)
}
