import CSSTestSupport
import Foundation
import LoadSupport

/// The `sla` process under test: started, killed with SIGKILL, started again; its resident
/// memory sampled every 100 ms whichever process is current.
final class SLAService: @unchecked Sendable {
    let process: ServiceProcess
    private var samplers: [RSSSampler] = []
    /// Samplers of processes that exited since the last ``takePhaseMaxMiB()``.
    private var retiring: [RSSSampler] = []
    private(set) var pids: [Int32] = []

    init(process: ServiceProcess) {
        self.process = process
    }

    /// Starts the process (again, after a kill) and samples it.
    func start() throws {
        if let old = samplers.last {
            old.stop()
            retiring.append(old)
        }
        try process.start()
        let pid = process.pid!
        let sampler = RSSSampler(pid: pid)
        sampler.start()
        samplers.append(sampler)
        pids.append(pid)
    }

    var current: RSSSampler? { samplers.last }
    var pid: Int32? { process.pid }
    var isRunning: Bool { process.isRunning }

    /// Every sla process of the run is one CPU row.
    var groups: CPUGroups { CPUGroups(services: pids.isEmpty ? [("sla", nil)] : pids.map { ("sla", $0) }, tool: "sla-load") }

    /// The largest RSS of any sla process of the run, in MiB.
    var maxMiB: Double { samplers.map(\.maxMiB).max() ?? 0 }

    /// The largest RSS since the previous call, over the current process and any that exited meanwhile.
    func takePhaseMaxMiB() -> Double {
        let m = (retiring + (current.map { [$0] } ?? [])).map { $0.takePhaseMaxMiB() }.max() ?? 0
        retiring.removeAll()
        return m
    }

    func trend(from start: UInt64, to end: UInt64) -> [Double] {
        current?.trend(from: start, to: end) ?? []
    }

    func stopSampling() {
        for s in samplers { s.stop() }
    }
}
