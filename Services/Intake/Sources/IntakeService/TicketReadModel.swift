import CSSModel
import CSSPostgres
import CSSRuntime
import Foundation

/// What intake learns about its tickets from the classification and SLA services'
/// events, kept so `ticket.get` can answer without reading their tables.
public struct TicketReadModel: EventHandler {
    public init() {}

    public var eventTypes: [String] {
        [EventType.ticketClassified, EventType.ticketReclassified, EventType.slaStarted, EventType.slaRescheduled,
         EventType.slaWarning, EventType.slaBreached, EventType.slaStopped, EventType.slaPaused, EventType.slaResumed]
    }

    /// `ticket.classified` and the `sla.*` events go set-wise, together (the two producers' events
    /// interleave in the queue): one read and a statement per kind per batch instead of three per event.
    static let setWise: Set<String> = [EventType.ticketClassified, EventType.slaStarted, EventType.slaRescheduled, EventType.slaWarning,
                                       EventType.slaBreached, EventType.slaStopped, EventType.slaPaused, EventType.slaResumed]

    public func handlesInBatches(_ type: String) -> Bool { Self.setWise.contains(type) }

    public func batchFamily(_ type: String) -> String { Self.setWise.contains(type) ? "ticket-view" : type }

    public func handleBatch(_ events: [CloudEvent], context: CommandContext) throws -> [Result<[CloudEvent], CommandRejection>] {
        let store = IntakeStore(session: context.session)
        let numbers = events.map { $0.data["trackingNumber"]?.stringValue ?? $0.subject }
        // Every ticket of the batch is locked once, in one order, and its SLA view read.
        var targets = try store.slaTargets(Set(numbers.compactMap { $0 }))
        var results: [Result<[CloudEvent], CommandRejection>] = []
        var rows: [ClassifiedRow] = []
        var viewChanged: [String: Date] = [:]
        for (event, number) in zip(events, numbers) {
            do {
                guard let number else {
                    throw CommandRejection(code: ErrorCode.missingField, field: "data.trackingNumber", message: "\(event.type) carries no trackingNumber")
                }
                guard let current = targets[number] else {
                    // A ticket intake never had is set aside.
                    throw CommandRejection(code: ErrorCode.unknownTicket, field: "data.trackingNumber", message: "no ticket \(number) exists")
                }
                if event.type == EventType.ticketClassified {
                    let priority = try Self.priority(event.data["priority"], "data.priority")
                    rows.append(ClassifiedRow(trackingNumber: number, priority: priority, requestClass: event.data["requestClass"]?.stringValue,
                                              dispatch: event.data["dispatch"]?.stringValue, at: event.time,
                                              actor: event.data["by"]?.stringValue ?? event.source, data: event.data))
                } else {
                    targets[number] = try SLATargetsView.apply(event, to: current)
                    viewChanged[number] = max(viewChanged[number] ?? event.time, event.time)
                }
                results.append(.success([]))
            } catch let rejection as CommandRejection {
                results.append(.failure(rejection))
            }
        }
        _ = try store.applyClassifications(rows)
        try store.saveSLATargets(viewChanged.keys.sorted().map { ($0, targets[$0]!, viewChanged[$0]!) })
        return results
    }

    public func handle(_ event: CloudEvent, context: CommandContext) throws -> [CloudEvent] {
        guard let number = event.data["trackingNumber"]?.stringValue ?? event.subject else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.trackingNumber", message: "\(event.type) carries no trackingNumber")
        }
        // Only ticket.reclassified comes here: the other types go set-wise (handleBatch).
        let store = IntakeStore(session: context.session)
        guard try store.ticket(number, forUpdate: true) != nil else {
            throw CommandRejection(code: ErrorCode.unknownTicket, field: "data.trackingNumber", message: "no ticket \(number) exists")
        }
        let to = try Self.priority(event.data["to"], "data.to")
        try store.updatePriority(number, priority: to, at: event.time)
        try store.appendAudit(number, event: "reclassified", action: nil, from: nil, to: nil, actor: event.data["by"]?.stringValue ?? event.source,
                              note: event.data["reason"]?.stringValue, at: event.time, data: event.data)
        return []
    }

    static func priority(_ value: JSONValue?, _ field: String) throws -> Priority {
        guard let raw = value?.stringValue, let p = Priority(rawValue: raw) else {
            throw CommandRejection(code: ErrorCode.invalidField, field: field, message: "\(field) must be P1..P4")
        }
        return p
    }
}

/// The SLA targets of one ticket as `ticket.get` shows them, folded from `sla.*` events.
///
/// Pure: (targets, event) → targets. Each target keeps the time of the event it last
/// took, and an older event never overwrites a newer one, so events that arrive out
/// of order (several workers, redelivery) leave the same view.
///
/// A target's `state` is `running`, `paused` or `stopped`; a breach is the flag `breached`,
/// not a state, because a breached target keeps running until it stops (R-SLA-6).
/// sla.started and sla.rescheduled carry whole target objects (state, breached, outcome,
/// pausedSeconds, ...) and every field they carry is taken as it is.
public enum SLATargetsView {
    public static func apply(_ event: CloudEvent, to current: JSONValue) throws(CommandRejection) -> JSONValue {
        var targets: [String: JSONObject] = [:]
        var order: [String] = []
        for t in current.arrayValue ?? [] {
            guard let o = t.objectValue, let name = o["target"]?.stringValue else { continue }
            targets[name] = o
            order.append(name)
        }
        let time = RFC3339.format(event.time)
        func update(_ name: String, _ change: (inout JSONObject) -> Void) {
            var o = targets[name] ?? ["target": .string(name)]
            if let seen = o["updatedAt"]?.stringValue.flatMap(RFC3339.parse), seen > event.time { return }
            change(&o)
            o["updatedAt"] = .string(time)
            if targets[name] == nil { order.append(name) }
            targets[name] = o
        }
        switch event.type {
        case EventType.slaStarted, EventType.slaRescheduled:
            guard let list = event.data["targets"]?.arrayValue else {
                throw CommandRejection(code: ErrorCode.missingField, field: "data.targets", message: "\(event.type) carries no targets")
            }
            for t in list {
                guard let o = t.objectValue, let name = o["target"]?.stringValue else {
                    throw CommandRejection(code: ErrorCode.invalidField, field: "data.targets", message: "every target needs a name")
                }
                update(name) { view in
                    for (k, v) in o { view[k] = v }
                    if view["state"] == nil { view["state"] = "running" }
                }
            }
        case EventType.slaWarning:
            let name = try targetName(event)
            update(name) { view in
                view["lastWarning"] = event.data["threshold"] ?? .null
                if let due = event.data["dueAt"] { view["dueAt"] = due }
            }
        case EventType.slaBreached:
            // R-SLA-6: the state stays what it is; a breached target keeps running.
            let name = try targetName(event)
            update(name) { view in
                view["breached"] = true
                view["breachedAt"] = .string(time)
                if let due = event.data["dueAt"] { view["dueAt"] = due }
            }
        case EventType.slaStopped:
            let name = try targetName(event)
            update(name) { view in
                view["state"] = "stopped"
                view["outcome"] = event.data["outcome"] ?? .null
                // A missed target used up its allowed time: it was breached, even when
                // the sla.breached event has not arrived (or arrives late and is older).
                if event.data["outcome"] == "missed" { view["breached"] = true }
                view["businessSecondsUsed"] = event.data["businessSecondsUsed"] ?? .null
                if let due = event.data["dueAt"] { view["dueAt"] = due }
                if let allowed = event.data["allowedSeconds"] { view["allowedSeconds"] = allowed }
                view["stoppedAt"] = event.data["stoppedAt"] ?? .string(time)
            }
        case EventType.slaPaused:
            // R-SLA-4: while paused the due time is unknown.
            let name = try targetName(event)
            update(name) { view in
                view["state"] = "paused"
                view["dueAt"] = .null
                view["pausedAt"] = event.data["pausedAt"] ?? .string(time)
                if let remaining = event.data["remainingSeconds"] { view["remainingSeconds"] = remaining }
            }
        case EventType.slaResumed:
            let name = try targetName(event)
            update(name) { view in
                view["state"] = "running"
                view["dueAt"] = event.data["dueAt"] ?? .null
                view["pausedAt"] = .null
                view["resumedAt"] = event.data["resumedAt"] ?? .string(time)
                if let total = event.data["totalPausedSeconds"] { view["pausedSeconds"] = total }
                // Resumed after a reopen: the target runs again, its earlier outcome no longer stands.
                view["outcome"] = .null
            }
        default:
            break
        }
        return .array(order.map { .object(targets[$0]!) })
    }

    static func targetName(_ event: CloudEvent) throws(CommandRejection) -> String {
        guard let name = event.data["target"]?.stringValue else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.target", message: "\(event.type) carries no target")
        }
        return name
    }
}
