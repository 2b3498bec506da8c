import CSSAMQP
import CSSModel
import CSSRuntime
import Foundation
import LoadSupport
import Logging

/// A lean contract client for load: publishes `ticket.submit` commands with
/// `reply_to`/`correlation_id` through the project's ``AMQPPublisher`` and matches
/// replies from its own queue through an ``AMQPConsumer``.
///
/// Unlike the tests' `ContractClient` it keeps no task or continuation per request
/// and binds no event tap (a tap would queue every `ticket.received` event for the
/// rest of the run): per message it stores a send time in a flat array and, on the
/// reply, a latency.
final class LoadClient: @unchecked Sendable {
    let publisher: AMQPPublisher
    let replies: AMQPConsumer
    let replyQueue: String
    /// The `ticket.classified` events of the run, when the pipeline is measured.
    let classifiedTap: AMQPConsumer?
    /// The `sla.started` events of the run, when the pipeline is followed up to the SLA service.
    let slaStartedTap: AMQPConsumer?
    private var replyTask: Task<Void, Never>?
    private var classifiedTask: Task<Void, Never>?
    private var slaStartedTask: Task<Void, Never>?

    private let lock = NSLock()
    private var phase: PhaseState?
    /// Replies to control commands (onboarding, readiness probes), by correlation id.
    private var control: [String: Reply] = [:]

    /// - Parameter followClassification: also bind a transient queue to `ticket.classified`
    ///   and record, per submitted ticket, when its classification arrived.
    /// - Parameter followSLA: likewise for `sla.started` (the SLA service started the ticket's clocks).
    init(amqp: AMQPConfiguration, runID: String, prefetch: Int, followClassification: Bool = false, followSLA: Bool = false, logger: Logger) {
        replyQueue = "bench.replies.\(runID)"
        let classifiedQueue = "bench.classified.\(runID)"
        let slaStartedQueue = "bench.sla-started.\(runID)"
        // Like an integrator's RPC reply queue: transient (replies are not kept across a
        // broker restart, so the broker does not write them to disk).
        var topology = ContractTopology.base.merging(Topology(queues: [.init(replyQueue, durable: false, autoDelete: true)]))
        if followClassification {
            topology = topology.merging(Topology(queues: [.init(classifiedQueue, durable: false, autoDelete: true)],
                                                 bindings: [.init(queue: classifiedQueue, exchange: ExchangeName.events, routingKey: EventType.ticketClassified)]))
        }
        if followSLA {
            topology = topology.merging(Topology(queues: [.init(slaStartedQueue, durable: false, autoDelete: true)],
                                                 bindings: [.init(queue: slaStartedQueue, exchange: ExchangeName.events, routingKey: EventType.slaStarted)]))
        }
        publisher = AMQPPublisher(configuration: amqp, topology: topology, name: "intake-load-publisher", logger: logger)
        replies = AMQPConsumer(configuration: amqp, topology: topology, queue: replyQueue, prefetch: prefetch,
                               name: "intake-load-replies", logger: logger)
        classifiedTap = followClassification
            ? AMQPConsumer(configuration: amqp, topology: topology, queue: classifiedQueue, prefetch: prefetch, name: "intake-load-classified", logger: logger)
            : nil
        slaStartedTap = followSLA
            ? AMQPConsumer(configuration: amqp, topology: topology, queue: slaStartedQueue, prefetch: prefetch, name: "intake-load-sla-started", logger: logger)
            : nil
        replyTask = Task { [self] in
            while let batch = await replies.nextBatch(max: 500) {
                let now = monotonicNanos()
                handle(batch, at: now)
                replies.ack(batch)
            }
        }
        if let classifiedTap {
            classifiedTask = Task { [self] in
                while let batch = await classifiedTap.nextBatch(max: 500) {
                    let now = monotonicNanos()
                    let numbers = batch.compactMap { d in
                        (try? JSONValue.parse(d.body)).flatMap(CloudEvent.init(json:))?.data["trackingNumber"]?.stringValue
                    }
                    lock.withLock {
                        for n in numbers { phase?.arrived(n, stage: .classified, at: now) }
                    }
                    classifiedTap.ack(batch)
                }
            }
        }
        if let slaStartedTap {
            slaStartedTask = Task { [self] in
                while let batch = await slaStartedTap.nextBatch(max: 500) {
                    let now = monotonicNanos()
                    let numbers = batch.compactMap(Self.startedTrackingNumber)
                    lock.withLock {
                        for n in numbers { phase?.arrived(n, stage: .slaStarted, at: now) }
                    }
                    slaStartedTap.ack(batch)
                }
            }
        }
    }

    /// The ticket of an `sla.started`: from its message id `sla:<number>:started` (the SLA
    /// service derives the event id from the ticket), else from the event's data.
    static func startedTrackingNumber(_ d: Delivery) -> String? {
        if let id = d.properties.messageID, id.hasPrefix("sla:"), id.hasSuffix(":started") {
            return String(id.dropFirst(4).dropLast(8))
        }
        return (try? JSONValue.parse(d.body)).flatMap(CloudEvent.init(json:))?.data["trackingNumber"]?.stringValue
    }

    // MARK: - Replies

    private func handle(_ batch: [Delivery], at now: UInt64) {
        var parsed: [(String, Bool, String?)] = []
        var controls: [(String, Reply)] = []
        for d in batch {
            guard let id = d.properties.correlationID, let reply = (try? JSONValue.parse(d.body)).flatMap(Reply.init(json:)) else { continue }
            if id.hasPrefix("ctl-") {
                controls.append((id, reply))
            } else {
                var tracking: String?
                if case .ok(let result) = reply { tracking = result["trackingNumber"]?.stringValue }
                parsed.append((id, reply.isOK, tracking))
            }
        }
        lock.withLock {
            for (id, reply) in controls { control[id] = reply }
            guard let phase else { return }
            for (id, ok, tracking) in parsed {
                // Late replies of an earlier phase carry its tag and are left out.
                guard let index = phase.index(of: id) else { continue }
                phase.record(index: index, ok: ok, trackingNumber: tracking, at: now)
            }
        }
    }

    // MARK: - Control commands

    /// Sends one command and waits for its reply, or nil after `timeout`.
    func request(_ name: String, _ body: JSONValue, timeout: Duration) async throws -> Reply? {
        let correlationID = "ctl-\(UUID().uuidString.lowercased())"
        try await publish([command(name, body: body.encoded(), messageID: UUID().uuidString.lowercased(), correlationID: correlationID)])
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let reply = lock.withLock({ control.removeValue(forKey: correlationID) }) { return reply }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    func command(_ name: String, body: [UInt8], messageID: String, correlationID: String) -> OutgoingMessage {
        OutgoingMessage(exchange: ExchangeName.commands, routingKey: name, body: body, properties: MessageProperties(
            contentType: "application/json", messageID: messageID, correlationID: correlationID, replyTo: replyQueue, persistent: true))
    }

    /// Publishes with confirms, waiting (up to a minute) while the publisher is still connecting.
    func publish(_ messages: [OutgoingMessage]) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            // A plain catch into a value: `catch where` on a typed error crashes Swift 6.3's SILGen.
            let failure: AMQPError?
            do {
                try await publisher.publish(messages)
                failure = nil
            } catch {
                failure = error
            }
            guard let failure else { return }
            guard failure.code == "connection_lost", ContinuousClock.now < deadline else { throw failure }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: - Phases

    /// Makes `phase` the one replies are recorded into.
    func begin(_ phase: PhaseState) {
        lock.withLock { self.phase = phase }
    }

    /// Reads the phase under the lock (the reply task writes it).
    func withPhase<T>(_ body: (PhaseState) -> T) -> T? {
        lock.withLock { phase.map(body) }
    }

    func close() async {
        await replies.stopConsuming()
        await replyTask?.value
        await replies.close()
        await classifiedTap?.stopConsuming()
        await classifiedTask?.value
        await classifiedTap?.close()
        await slaStartedTap?.stopConsuming()
        await slaStartedTask?.value
        await slaStartedTap?.close()
        await publisher.close()
    }
}

/// The bookkeeping of one phase; touched only under the ``LoadClient`` lock.
final class PhaseState {
    let tag: String
    let count: Int
    /// When each message was (or, open-loop, should have been) sent; 0 = not yet.
    var sentAt: [UInt64]
    var repliedAt: [UInt64]
    var latencies: [UInt64] = []
    var okTimes: [UInt64] = []
    var replies = 0
    var accepted = 0
    var rejected = 0
    var duplicates = 0
    var trackingNumbers = Set<String>()
    var lastReplyAt: UInt64 = 0
    /// Every `sampleEvery`-th accepted tracking number, for the read-after-reply check.
    var samples: [String] = []
    let sampleEvery: Int
    // Pipeline runs: the later events each accepted ticket is followed to.
    var indexByNumber: [String: Int] = [:]
    /// One per ``FollowedEvent``, in its order.
    let stages: [FollowedStage]

    init(tag: String, count: Int, sampleEvery: Int = 500) {
        self.tag = tag
        self.count = count
        self.sampleEvery = sampleEvery
        sentAt = [UInt64](repeating: 0, count: count)
        repliedAt = [UInt64](repeating: 0, count: count)
        stages = FollowedEvent.allCases.map { _ in FollowedStage(count: count) }
        latencies.reserveCapacity(count)
        okTimes.reserveCapacity(count)
        trackingNumbers.reserveCapacity(count)
    }

    /// Correlation ids of load messages are `<tag><index>`; control replies start with `ctl-`.
    func correlationID(_ index: Int) -> String { "\(tag)\(index)" }

    func index(of correlationID: String) -> Int? {
        guard correlationID.hasPrefix(tag) else { return nil }
        return Int(correlationID.dropFirst(tag.count))
    }

    func stage(_ event: FollowedEvent) -> FollowedStage { stages[event.rawValue] }

    func record(index: Int, ok: Bool, trackingNumber: String?, at now: UInt64) {
        guard index >= 0, index < count, sentAt[index] != 0 else { return }
        guard repliedAt[index] == 0 else {
            duplicates += 1
            return
        }
        repliedAt[index] = now
        replies += 1
        lastReplyAt = now
        latencies.append(now &- sentAt[index])
        if ok {
            accepted += 1
            okTimes.append(now)
            if let trackingNumber {
                trackingNumbers.insert(trackingNumber)
                if accepted % sampleEvery == 0 { samples.append(trackingNumber) }
                indexByNumber[trackingNumber] = index
                for stage in stages {
                    if let at = stage.early.removeValue(forKey: trackingNumber) { stage.mark(index, at: at, sentAt: sentAt[index]) }
                }
            }
        } else {
            rejected += 1
        }
    }

    /// The `stage` event for `number` arrived at `now`.
    func arrived(_ number: String, stage event: FollowedEvent, at now: UInt64) {
        let stage = stage(event)
        if let index = indexByNumber[number] {
            stage.mark(index, at: now, sentAt: sentAt[index])
        } else {
            stage.early[number] = now // its reply has not arrived yet (or it belongs to another phase)
        }
    }
}

/// The events after the reply that a pipeline run follows each accepted ticket to.
enum FollowedEvent: Int, CaseIterable {
    /// `ticket.classified` (classification).
    case classified
    /// `sla.started` (the SLA service started the ticket's clocks).
    case slaStarted
}

/// When one followed event arrived for each ticket of a phase; touched only under the ``LoadClient`` lock.
final class FollowedStage {
    var at: [UInt64]
    /// From the time each ticket was sent (or due) to its event.
    var latencies: [UInt64] = []
    var times: [UInt64] = []
    var duplicates = 0
    var last: UInt64 = 0
    /// Events that arrived before the reply that names the ticket.
    var early: [String: UInt64] = [:]

    init(count: Int) {
        at = [UInt64](repeating: 0, count: count)
    }

    func mark(_ index: Int, at now: UInt64, sentAt: UInt64) {
        guard at[index] == 0 else {
            duplicates += 1
            return
        }
        at[index] = now
        last = max(last, now)
        latencies.append(now &- sentAt)
        times.append(now)
    }
}
