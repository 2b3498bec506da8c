import CSSModel
import Foundation

/// Samples a process's resident memory (VmRSS) on a timer.
public final class RSSSampler: @unchecked Sendable {
    public let pid: Int32
    private let lock = NSLock()
    private var maxKiB = 0
    private var phaseMaxKiB = 0
    private var lastKiB = 0
    private var samples: [(at: UInt64, kib: Int)] = []
    private var task: Task<Void, Never>?

    public init(pid: Int32) {
        self.pid = pid
    }

    /// Starts sampling every `interval` until ``stop()``.
    public func start(interval: Duration = .milliseconds(100)) {
        task = Task { [self] in
            while !Task.isCancelled {
                if let kib = Self.vmRSS(pid: pid) {
                    lock.withLock {
                        lastKiB = kib
                        samples.append((monotonicNanos(), kib))
                        maxKiB = Swift.max(maxKiB, kib)
                        phaseMaxKiB = Swift.max(phaseMaxKiB, kib)
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    public func stop() {
        task?.cancel()
    }

    /// The largest sample since the previous call (or the start), in MiB; resets the phase maximum.
    public func takePhaseMaxMiB() -> Double {
        lock.withLock {
            let m = Swift.max(phaseMaxKiB, lastKiB)
            phaseMaxKiB = lastKiB
            return Double(m) / 1024
        }
    }

    /// RSS in MiB at the start, 25/50/75 % and the end of `start...end`: a leak grows
    /// steadily through a phase, a working set levels off.
    public func trend(from start: UInt64, to end: UInt64) -> [Double] {
        let inRange = lock.withLock { samples.filter { $0.at >= start && $0.at <= end } }
        guard !inRange.isEmpty else { return [] }
        return [0, 0.25, 0.5, 0.75, 1].map { q in
            Double(inRange[min(inRange.count - 1, Int(q * Double(inRange.count - 1)))].kib) / 1024
        }
    }

    public var maxMiB: Double { lock.withLock { Double(maxKiB) / 1024 } }
    public var lastMiB: Double { lock.withLock { Double(lastKiB) / 1024 } }

    public static func vmRSS(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }
}

/// Which processes a CPU profile names: the services under test (listed first, in this
/// order, also when one is not running), then PostgreSQL, RabbitMQ, the tool, the rest.
public struct CPUGroups: Sendable {
    public var services: [(name: String, pid: Int32?)]
    /// The name of the load tool's own row (`intake-load`, `sla-load`).
    public var tool: String

    public init(services: [(name: String, pid: Int32?)], tool: String) {
        self.services = services
        self.tool = tool
    }

    /// The rows of the profile, in print order (a service restarted under a new pid is one row).
    public var order: [String] {
        var seen = Set<String>()
        return services.map(\.name).filter { seen.insert($0).inserted } + ["postgres(bench db)", "postgres(other)", "rabbitmq", tool, "rest of machine"]
    }
}

/// CPU time used during a phase by the processes that take part, from /proc.
///
/// This is the benchmark's profiler (perf is not available): it shows whether the
/// machine was saturated, and which of the services, PostgreSQL, RabbitMQ, this tool or
/// something else (another engineer's tests) used the cores.
public struct CPUSnapshot: Sendable {
    public var at: UInt64
    /// Group and jiffies (utime + stime) of every process.
    var processes: [Int32: (group: String, jiffies: UInt64)]
    /// Machine-wide busy and total jiffies from /proc/stat.
    var busy: UInt64
    var total: UInt64
    /// The profile's rows, in print order.
    var order: [String]

    public static func take(_ groups: CPUGroups, database: String) -> CPUSnapshot {
        var processes: [Int32: (group: String, jiffies: UInt64)] = [:]
        let me = getpid()
        var named: [Int32: String] = [:]
        for s in groups.services { if let pid = s.pid { named[pid] = s.name } }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
            for entry in entries {
                guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { continue }
                // comm may hold spaces: the fields after it start behind the last ')'.
                guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
                let comm = stat[stat.index(after: open)..<close]
                let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
                // fields[0] is state (field 3); utime is field 14, stime 15.
                guard fields.count > 13, let u = UInt64(fields[11]), let s = UInt64(fields[12]) else { continue }
                let group: String
                if let name = named[pid] {
                    group = name
                } else if pid == me {
                    group = groups.tool
                } else if comm.hasPrefix("beam") || comm == "epmd" || comm == "erl_child_setup" || comm == "inet_gethost" {
                    group = "rabbitmq"
                } else if comm.hasPrefix("postgres") {
                    let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                    group = cmdline.contains(" \(database) ") ? "postgres(bench db)" : "postgres(other)"
                } else {
                    group = "rest of machine"
                }
                processes[pid] = (group, u + s)
            }
        }
        var busy: UInt64 = 0, total: UInt64 = 0
        if let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = text.split(separator: "\n").first {
            let v = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
            total = v.reduce(0, +)
            // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
            busy = total - (v.count > 4 ? v[3] + v[4] : 0)
        }
        return CPUSnapshot(at: monotonicNanos(), processes: processes, busy: busy, total: total, order: groups.order)
    }

    /// The broker's main VM (beam.smp) processes.
    var brokerPIDs: Set<Int32> {
        Set(processes.filter { $0.value.group == "rabbitmq" && $0.value.jiffies > 100 }.map(\.key))
    }

    /// Per group: CPU seconds used between `self` and `later`; the machine's busy share.
    ///
    /// Counted per process, so a process that started in between (a restarted broker,
    /// a new backend, a restarted service) counts whole and one that exited drops out
    /// without going negative.
    public func usage(until later: CPUSnapshot) -> CPUUsage {
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        var jiffies: [String: UInt64] = [:]
        for (pid, p) in later.processes {
            let before = processes[pid].map { $0.jiffies <= p.jiffies ? $0.jiffies : 0 } ?? 0
            jiffies[p.group, default: 0] += p.jiffies - before
        }
        var seconds: [String: Double] = [:]
        for name in order { seconds[name] = Double(jiffies[name] ?? 0) / hz }
        let wall = Double(later.at - at) / 1e9
        let busyShare = later.total > total ? Double(later.busy - busy) / Double(later.total - total) : 0
        let restarted = !brokerPIDs.isEmpty && brokerPIDs.isDisjoint(with: later.processes.keys)
        return CPUUsage(wall: wall, seconds: seconds, order: order, machineBusy: busyShare, brokerRestarted: restarted)
    }
}

public struct CPUUsage: Sendable {
    public var wall: Double
    public var seconds: [String: Double]
    /// The rows, in print order.
    public var order: [String]
    /// 0...1 of all cores.
    public var machineBusy: Double
    /// The broker process of the start was gone at the end (another user restarted it).
    public var brokerRestarted: Bool

    /// "intake 1.23 s (61% of a core, 12.3 µs/ticket) ..."
    public func lines(per items: Int, unit: String) -> [String] {
        var out = ["machine busy \(fmt(machineBusy * 100))% of \(ProcessInfo.processInfo.activeProcessorCount) cores over \(fmt(wall, 2)) s"]
        if brokerRestarted { out.append("WARNING: RabbitMQ was restarted during this phase (not by this tool): figures are disturbed") }
        for name in order {
            let s = seconds[name] ?? 0
            let perItem = items > 0 ? s / Double(items) * 1e6 : 0
            out.append("  \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(fmt(s, 2)) s cpu  \(fmt(s / Swift.max(wall, 1e-9) * 100))% of a core  \(fmt(perItem)) µs/\(unit)")
        }
        return out
    }

    public var json: [String: Double] {
        var out: [String: Double] = ["wallSeconds": rounded(wall, 2), "machineBusyPercent": rounded(machineBusy * 100),
                                     "brokerRestarted": brokerRestarted ? 1 : 0]
        for (k, v) in seconds { out[k] = rounded(v, 2) }
        return out
    }
}

/// CPU, memory and time of one phase of a load tool, from its first message to its last reply.
public struct PhaseUsage: Sendable {
    public var start: UInt64
    public var cpu: CPUUsage
    public var maxRSSMiB: Double
    public var rssTrend: [Double]

    public init(start: UInt64, cpu: CPUUsage, maxRSSMiB: Double, rssTrend: [Double]) {
        self.start = start
        self.cpu = cpu
        self.maxRSSMiB = maxRSSMiB
        self.rssTrend = rssTrend
    }

    /// As the tools' JSON reports write it.
    public var json: JSONValue {
        ["cpuSeconds": figures(cpu.json), "maxRSSMiB": .number(rounded(maxRSSMiB)), "rssTrendMiB": .array(rssTrend.map { .number(rounded($0)) })]
    }
}

/// A figure map of LoadSupport (latency, CPU, raw) as a JSON object, keys sorted.
public func figures(_ map: [String: Double]) -> JSONValue {
    var o = JSONObject()
    for (k, v) in map.sorted(by: { $0.key < $1.key }) { o[k] = .number(v) }
    return .object(o)
}
