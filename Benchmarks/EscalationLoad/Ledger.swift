import CSSAMQP
import CSSModel
import CSSRuntime
import CSSTestSupport
import Foundation
import LoadSupport
import Logging

/// What the run sent and received, per ticket index: when its breach was published (due), when
/// its page arrived and how many copies, when its ack was sent (due) and when the reply came
/// with which state. Written by the pacers and the consumer tasks, so behind a lock.
final class RunLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var breachAt: [UInt64]
    private var pageAt: [UInt64]
    private var pageCopies: [UInt8]
    private var ackAt: [UInt64]
    private var replyAt: [UInt64]
    /// Per ack reply: 1 = ok with state acknowledged by the acknowledger, 2 = anything else.
    private var replyKind: [UInt8]
    private var controls: [String: Reply] = [:]
    private var distinctPages = 0
    private var oddities = Oddities()

    /// Messages that do not fit the plan; all zero in a clean run.
    struct Oddities {
        /// Pages whose message id names no ticket of the run.
        var unknownPages = 0
        /// Pages of the run's tickets with a routing key other than `oncall.cloud-ops.p1`.
        var wrongRoute = 0
        /// Pages whose body does not name the escalation and ticket of their message id.
        var wrongBody = 0
        /// Pages of a later level or repeat (the team lead's, due an hour later).
        var laterMessages = 0
        var duplicateReplies = 0
        var unknownReplies = 0
        /// Up to five ack replies that were not `acknowledged`.
        var badReplySamples: [String] = []
    }

    init(tickets: Int) {
        breachAt = [UInt64](repeating: 0, count: tickets)
        pageAt = breachAt
        ackAt = breachAt
        replyAt = breachAt
        pageCopies = [UInt8](repeating: 0, count: tickets)
        replyKind = pageCopies
    }

    static func ackCorrelationID(_ k: Int) -> String { "ack-\(k)" }

    func stampBreaches(_ range: Range<Int>, at stamp: (Int) -> UInt64) {
        lock.withLock { for k in range { breachAt[k] = stamp(k) } }
    }

    func stampAcks(_ range: Range<Int>, at stamp: (Int) -> UInt64) {
        lock.withLock { for k in range { ackAt[k] = stamp(k) } }
    }

    /// Messages on `css.escalations` (the tool's queue is bound to `oncall.#`).
    func recordPages(_ batch: [Delivery], at now: UInt64) {
        let parsed = batch.map { d in
            (d.routingKey, d.properties.messageID.flatMap(Wire.page(messageID:)), try? JSONValue.parse(d.body))
        }
        lock.withLock {
            for (routingKey, id, body) in parsed {
                guard let (k, level, attempt) = id, k >= 0, k < pageAt.count else {
                    oddities.unknownPages += 1
                    continue
                }
                guard level == 1, attempt == 1 else {
                    oddities.laterMessages += 1
                    continue
                }
                if routingKey != Wire.pageRoutingKey { oddities.wrongRoute += 1 }
                if body?["escalationId"]?.stringValue != Wire.escalationID(k) || body?["trackingNumber"]?.stringValue != Wire.trackingNumber(k) {
                    oddities.wrongBody += 1
                }
                if pageCopies[k] == 0 {
                    pageAt[k] = now
                    distinctPages += 1
                }
                pageCopies[k] &+= 1
            }
        }
    }

    /// Replies on the tool's reply queue: acks by their correlation id `ack-<k>`, the rest kept for ``control(_:)``.
    func recordReplies(_ batch: [Delivery], at now: UInt64) {
        let parsed = batch.map { d in (d.properties.correlationID ?? "", (try? JSONValue.parse(d.body)).flatMap(Reply.init(json:))) }
        lock.withLock {
            for (id, reply) in parsed {
                guard id.hasPrefix("ack-"), let k = Int(id.dropFirst(4)), k >= 0, k < replyAt.count else {
                    if let reply { controls[id] = reply } else { oddities.unknownReplies += 1 }
                    continue
                }
                guard replyAt[k] == 0 else {
                    oddities.duplicateReplies += 1
                    continue
                }
                replyAt[k] = now
                let result = reply?.result
                let ok = result?["state"]?.stringValue == "acknowledged" && result?["acknowledgedBy"]?.stringValue == Wire.acknowledger
                    && result?["escalationId"]?.stringValue == Wire.escalationID(k)
                replyKind[k] = ok ? 1 : 2
                if !ok, oddities.badReplySamples.count < 5 { oddities.badReplySamples.append("\(Wire.escalationID(k)): \(reply.map { $0.json.jsonText } ?? "unreadable")") }
            }
        }
    }

    func control(_ correlationID: String) -> Reply? { lock.withLock { controls[correlationID] } }

    var counts: Oddities { lock.withLock { oddities } }

    /// Tickets of the run whose page arrived.
    var paged: Int { lock.withLock { distinctPages } }

    func replied(_ range: Range<Int>) -> Int { lock.withLock { range.filter { replyAt[$0] != 0 }.count } }

    /// One side of a phase: how many arrived, arrival times, latencies from the stamp, extra copies.
    struct Arrivals {
        var arrived = 0
        var times: [UInt64] = []
        var latencies: [UInt64] = []
        var duplicates = 0
        /// Ack replies only: how many said `acknowledged` by the acknowledger.
        var acknowledged = 0
    }

    func pages(_ range: Range<Int>) -> Arrivals {
        lock.withLock {
            var a = Arrivals()
            for k in range where pageCopies[k] > 0 {
                a.arrived += 1
                a.duplicates += Int(pageCopies[k]) - 1
                a.times.append(pageAt[k])
                a.latencies.append(pageAt[k] &- min(pageAt[k], breachAt[k]))
            }
            return a
        }
    }

    func acks(_ range: Range<Int>) -> Arrivals {
        lock.withLock {
            var a = Arrivals()
            a.duplicates = oddities.duplicateReplies
            for k in range where replyAt[k] != 0 {
                a.arrived += 1
                a.times.append(replyAt[k])
                a.latencies.append(replyAt[k] &- min(replyAt[k], ackAt[k]))
                if replyKind[k] == 1 { a.acknowledged += 1 }
            }
            return a
        }
    }
}

/// The tool's side of the broker: one publisher (events and commands) and its queues, all
/// declared before the service starts: the pages (bound to `oncall.#` on `css.escalations`),
/// the replies, and two drains: `css.intake.events` (intake is not running, but every service
/// declares the whole contract, so each `sla.breached` also lands there) and the dead letters.
final class BenchLink: @unchecked Sendable {
    let publisher: AMQPPublisher
    let replyQueue: String
    let pages, replies, intakeDrain, deadLetters: DeliveryTap

    init(amqp: AMQPConfiguration, runID: String, ledger: RunLedger, logger: Logger) {
        let pageQueue = "bench.esc-pages.\(runID)"
        replyQueue = "bench.esc-replies.\(runID)"
        // Transient, like a pager integration's and an RPC client's queues.
        let topology = ContractTopology.all.merging(Topology(
            queues: [.init(pageQueue, durable: false, autoDelete: true), .init(replyQueue, durable: false, autoDelete: true)],
            bindings: [.init(queue: pageQueue, exchange: ExchangeName.escalations, routingKey: "oncall.#")]))
        publisher = AMQPPublisher(configuration: amqp, topology: topology, name: "escalation-load-publisher", logger: logger)
        pages = DeliveryTap(amqp: amqp, topology: topology, queue: pageQueue, name: "escalation-load-pages", logger: logger, record: ledger.recordPages)
        replies = DeliveryTap(amqp: amqp, topology: topology, queue: replyQueue, name: "escalation-load-replies", logger: logger, record: ledger.recordReplies)
        intakeDrain = DeliveryTap(amqp: amqp, topology: topology, queue: ContractTopology.eventQueueName(service: "intake"),
                                  name: "escalation-load-intake-drain", logger: logger)
        deadLetters = DeliveryTap(amqp: amqp, topology: topology, queue: ContractTopology.deadLetterQueue, prefetch: 100,
                                  name: "escalation-load-dead", logger: logger)
    }

    var taps: [DeliveryTap] { [pages, replies, intakeDrain, deadLetters] }
    var isConnected: Bool { publisher.isConnected && taps.allSatisfy(\.isConnected) }

    /// Sends one command and waits for its reply; nil after `timeout`.
    func request(_ name: String, _ body: JSONValue, ledger: RunLedger, timeout: Duration) async throws -> Reply? {
        let id = "ctl-\(UUID().uuidString.lowercased())"
        _ = try await publisher.publishConfirmed([Wire.command(name, body, correlationID: id, replyTo: replyQueue)])
        _ = await eventually(timeout: timeout, interval: .milliseconds(5)) { ledger.control(id) != nil }
        return ledger.control(id)
    }

    func close() async {
        for t in taps { await t.close() }
        await publisher.close()
    }
}
