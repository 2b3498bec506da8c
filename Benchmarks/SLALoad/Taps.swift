import CSSAMQP
import CSSModel
import CSSRuntime
import Foundation
import LoadSupport
import Logging

/// The wall clock in Unix seconds (due instants, event times).
func wallSeconds() -> Double { Date().timeIntervalSince1970 }

/// `sla.started` per ticket of the run: counts every copy (exactly once is checked) and
/// when the first copy arrived.
final class StartedLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [TicketSet: [UInt8]] = [:]
    private var times: [TicketSet: [UInt64]] = [:]
    private var duplicates: [TicketSet: Int] = [:]
    private var unknown = 0

    /// Makes room for `count` tickets of `set` (before their events are published).
    func register(_ set: TicketSet, count: Int) {
        lock.withLock {
            counts[set] = [UInt8](repeating: 0, count: count)
            times[set] = []
            times[set]!.reserveCapacity(count)
            duplicates[set] = 0
        }
    }

    /// One `sla.started`, by its message id `sla:<number>:started` (the event id, derived from the ticket).
    func record(_ d: Delivery, at now: UInt64) {
        var number: Substring?
        if let id = d.properties.messageID, id.hasPrefix("sla:"), id.hasSuffix(":started") {
            number = id.dropFirst(4).dropLast(8)
        } else if let n = (try? JSONValue.parse(d.body)).flatMap(CloudEvent.init(json:))?.data["trackingNumber"]?.stringValue {
            number = Substring(n)
        }
        lock.withLock {
            guard let number, let (set, index) = SLAPlan.parse(number), let n = counts[set]?.count, index >= 0, index < n else {
                unknown += 1
                return
            }
            if counts[set]![index] == 0 {
                times[set]!.append(now)
            } else {
                duplicates[set]! += 1
            }
            counts[set]![index] &+= 1
        }
    }

    /// Distinct tickets started, duplicate events, and when each first copy arrived.
    func snapshot(_ set: TicketSet) -> (started: Int, duplicates: Int, times: [UInt64]) {
        lock.withLock { ((times[set] ?? []).count, duplicates[set] ?? 0, times[set] ?? []) }
    }

    func started(_ set: TicketSet) -> Int { lock.withLock { times[set]?.count ?? 0 } }
    var unknownEvents: Int { lock.withLock { unknown } }
}

/// One planned firing as it arrived.
struct Firing: Sendable {
    var index: Int
    /// Event `time` (set by the service when it took the timer out) minus the due instant the event names, ns.
    var eventLateness: Int64
    /// When this tool received it minus that due instant, ns.
    var receiveLateness: Int64
    /// Monotonic receive time.
    var receivedAt: UInt64
    var dueSecond: Int64
}

/// `sla.warning` and `sla.breached` of the run: every planned firing must arrive exactly once,
/// on or after its due instant; anything else is counted as unplanned.
final class FiringLedger: @unchecked Sendable {
    private let lock = NSLock()
    let plan: SLAPlan
    /// The planned due second of each ticket of a set, once registered.
    private var due: [TicketSet: [Int64]] = [:]
    private var arrivals: [TicketSet: [UInt8]] = [:]
    private var firings: [TicketSet: [Firing]] = [:]
    private var duplicates: [TicketSet: Int] = [:]
    /// Events whose due instant (`reachedAt`/`dueAt`) is not the planned second.
    private var dueMismatches: [TicketSet: Int] = [:]
    private var unplanned = 0
    private var unplannedSamples: [String] = []
    private var unreadable = 0

    init(plan: SLAPlan) {
        self.plan = plan
    }

    func register(_ set: TicketSet, due: [Int64]) {
        lock.withLock {
            self.due[set] = due
            arrivals[set] = [UInt8](repeating: 0, count: due.count)
            firings[set] = []
            firings[set]!.reserveCapacity(due.count)
            duplicates[set] = 0
            dueMismatches[set] = 0
        }
    }

    func record(_ batch: [Delivery], wall: Double, at now: UInt64) {
        var parsed: [(CloudEvent?, String?)] = []
        for d in batch {
            let event = (try? JSONValue.parse(d.body)).flatMap(CloudEvent.init(json:))
            parsed.append((event, d.properties.messageID))
        }
        lock.withLock {
            for (event, messageID) in parsed {
                guard let event else {
                    unreadable += 1
                    continue
                }
                let number = event.data["trackingNumber"]?.stringValue ?? event.subject ?? ""
                guard let (set, index) = SLAPlan.parse(Substring(number)), let planned = due[set], index >= 0, index < planned.count,
                      event.id == plan.plannedEventID(set, index) else {
                    unplanned += 1
                    if unplannedSamples.count < 5 { unplannedSamples.append("\(event.type) \(messageID ?? event.id)") }
                    continue
                }
                arrivals[set]![index] &+= 1
                guard arrivals[set]![index] == 1 else {
                    duplicates[set]! += 1
                    continue
                }
                let named = (event.type == EventType.slaWarning ? event.data["reachedAt"] : event.data["dueAt"])?.stringValue.flatMap(RFC3339.parse)
                let dueInstant = named?.timeIntervalSince1970 ?? Double(planned[index])
                if named == nil || Int64(dueInstant.rounded(.down)) != planned[index] { dueMismatches[set]! += 1 }
                firings[set]!.append(Firing(index: index, eventLateness: Int64(((event.time.timeIntervalSince1970 - dueInstant) * 1e9).rounded()),
                                            receiveLateness: Int64(((wall - dueInstant) * 1e9).rounded()), receivedAt: now,
                                            dueSecond: planned[index]))
            }
        }
    }

    struct Snapshot {
        var planned: Int
        var firings: [Firing]
        var duplicates: Int
        var dueMismatches: Int
        /// Planned firings that never arrived.
        var missing: Int { planned - firings.count }
    }

    func snapshot(_ set: TicketSet) -> Snapshot {
        lock.withLock {
            Snapshot(planned: due[set]?.count ?? 0, firings: firings[set] ?? [], duplicates: duplicates[set] ?? 0,
                     dueMismatches: dueMismatches[set] ?? 0)
        }
    }

    func arrived(_ set: TicketSet) -> Int { lock.withLock { firings[set]?.count ?? 0 } }
    var unplannedEvents: (count: Int, samples: [String]) { lock.withLock { (unplanned, unplannedSamples) } }
    var unreadableEvents: Int { lock.withLock { unreadable } }
}

/// The tool's queues on `css.events`: `sla.started`, the thresholds, and (by default) the
/// intake service's event queue, drained as intake would consume it.
final class EventTaps: @unchecked Sendable {
    let started: AMQPConsumer
    let thresholds: AMQPConsumer
    let intakeDrain: AMQPConsumer?
    let startedLedger = StartedLedger()
    let firingLedger: FiringLedger
    let drained = Counter()
    private var tasks: [Task<Void, Never>] = []

    init(amqp: AMQPConfiguration, runID: String, plan: SLAPlan, drainIntakeQueue: Bool, logger: Logger) {
        let startedQueue = "bench.sla-started.\(runID)"
        let thresholdQueue = "bench.sla-thresholds.\(runID)"
        // Transient like a monitoring tap; bound before the service starts, so nothing is missed.
        let topology = ContractTopology.all.merging(Topology(
            queues: [.init(startedQueue, durable: false, autoDelete: true), .init(thresholdQueue, durable: false, autoDelete: true)],
            bindings: [.init(queue: startedQueue, exchange: ExchangeName.events, routingKey: EventType.slaStarted),
                       .init(queue: thresholdQueue, exchange: ExchangeName.events, routingKey: EventType.slaWarning),
                       .init(queue: thresholdQueue, exchange: ExchangeName.events, routingKey: EventType.slaBreached)]))
        firingLedger = FiringLedger(plan: plan)
        started = AMQPConsumer(configuration: amqp, topology: topology, queue: startedQueue, prefetch: 2000, name: "sla-load-started", logger: logger)
        thresholds = AMQPConsumer(configuration: amqp, topology: topology, queue: thresholdQueue, prefetch: 2000, name: "sla-load-thresholds", logger: logger)
        intakeDrain = drainIntakeQueue
            ? AMQPConsumer(configuration: amqp, topology: topology, queue: ContractTopology.eventQueueName(service: "intake"), prefetch: 2000,
                           name: "sla-load-intake-drain", logger: logger)
            : nil
        let started = self.started, thresholds = self.thresholds, startedLedger = self.startedLedger, firingLedger = self.firingLedger
        tasks.append(Task {
            while let batch = await started.nextBatch(max: 1000) {
                let now = monotonicNanos()
                for d in batch { startedLedger.record(d, at: now) }
                started.ack(batch)
            }
        })
        tasks.append(Task {
            while let batch = await thresholds.nextBatch(max: 1000) {
                let now = monotonicNanos()
                firingLedger.record(batch, wall: wallSeconds(), at: now)
                thresholds.ack(batch)
            }
        })
        if let intakeDrain {
            let drained = self.drained
            tasks.append(Task {
                while let batch = await intakeDrain.nextBatch(max: 1000) {
                    drained.add(batch.count)
                    intakeDrain.ack(batch)
                }
            })
        }
    }

    var isConnected: Bool { started.isConnected && thresholds.isConnected && (intakeDrain?.isConnected ?? true) }

    func close() async {
        for c in [started, thresholds] + (intakeDrain.map { [$0] } ?? []) { await c.stopConsuming() }
        for t in tasks { await t.value }
        for c in [started, thresholds] + (intakeDrain.map { [$0] } ?? []) { await c.close() }
    }
}
