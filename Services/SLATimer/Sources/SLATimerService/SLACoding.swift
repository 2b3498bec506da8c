import CSSCalendar
import CSSModel

/// How a ticket's clocks and facts are stored (`sla.tickets.clock`, `.log`): plain JSON built
/// with the model's own JSON values, readable in SQL. Every firing reads and writes a clock,
/// and Foundation's Codable JSON cost more than the clock arithmetic itself.
struct StoredValueError: Error, CustomStringConvertible {
    let description: String
}

private struct Reader {
    let object: JSONObject
    let what: String

    init(_ value: JSONValue, _ what: String) throws {
        guard let o = value.objectValue else { throw StoredValueError(description: "stored \(what) is not an object") }
        object = o
        self.what = what
    }

    func string(_ key: String) throws -> String {
        guard let s = object[key]?.stringValue else { throw StoredValueError(description: "stored \(what) has no \(key)") }
        return s
    }

    func int(_ key: String) throws -> Int64 {
        guard let n = object[key]?.numberValue, n == n.rounded() else { throw StoredValueError(description: "stored \(what) has no whole \(key)") }
        return Int64(n)
    }

    func optionalInt(_ key: String) throws -> Int64? {
        guard let v = object[key], v != .null else { return nil }
        return try int(key)
    }

    func array(_ key: String) throws -> [JSONValue] {
        guard let a = object[key]?.arrayValue else { throw StoredValueError(description: "stored \(what) has no list \(key)") }
        return a
    }

    func raw<T: RawRepresentable>(_ key: String, _ type: T.Type) throws -> T where T.RawValue == String {
        guard let v = T(rawValue: try string(key)) else { throw StoredValueError(description: "stored \(what) has an unknown \(key)") }
        return v
    }
}

extension TicketClock {
    var stored: JSONValue {
        .object([
            "trackingNumber": .string(trackingNumber), "customerId": .string(customerId), "priority": .string(priority.rawValue),
            "receivedAt": .string(receivedAt), "start": .number(Double(start)), "targets": .array(targets.map(\.stored)),
            "warnAt": .array(warnAt.map { .number($0) }), "emitted": .array(emitted.map { .string($0) }),
        ])
    }

    init(stored value: JSONValue) throws {
        let r = try Reader(value, "clock")
        self.init(trackingNumber: try r.string("trackingNumber"), customerId: try r.string("customerId"), priority: try r.raw("priority", Priority.self),
                  receivedAt: try r.string("receivedAt"), start: try r.int("start"),
                  targets: try r.array("targets").map(TargetClock.init(stored:)),
                  warnAt: try r.array("warnAt").map { v in
                      guard let n = v.numberValue else { throw StoredValueError(description: "stored warnAt holds a non-number") }
                      return n
                  },
                  emitted: try r.array("emitted").map { v in
                      guard let s = v.stringValue else { throw StoredValueError(description: "stored emitted holds a non-string") }
                      return s
                  })
    }
}

extension TargetClock {
    var stored: JSONValue {
        .object([
            "target": .string(target.rawValue), "calendar": .string(terms.calendar.rawValue), "allowedSeconds": .number(Double(terms.allowedSeconds)),
            "pauses": .array(pauses.map { .array([.number(Double($0.start)), .number(Double($0.end))]) }),
            "pausedSince": pausedSince.map { .number(Double($0)) } ?? .null, "stoppedAt": stoppedAt.map { .number(Double($0)) } ?? .null,
            "outcome": outcome.map { .string($0.rawValue) } ?? .null, "usedAtStop": usedAtStop.map { .number(Double($0)) } ?? .null,
            "sent": .array(sent.map { .string($0) }), "stops": .int(stops), "pauseCount": .int(pauseCount),
        ])
    }

    init(stored value: JSONValue) throws {
        let r = try Reader(value, "target")
        self.init(target: try r.raw("target", SLATarget.self),
                  terms: SLATerms(calendar: try r.raw("calendar", SLACalendarKind.self), allowedSeconds: try r.int("allowedSeconds")))
        pauses = try r.array("pauses").map { p in
            guard let pair = p.arrayValue, pair.count == 2, let a = pair[0].numberValue, let b = pair[1].numberValue else {
                throw StoredValueError(description: "stored pause is not [start, end]")
            }
            return InstantRange(start: Int64(a), end: Int64(b))
        }
        pausedSince = try r.optionalInt("pausedSince")
        stoppedAt = try r.optionalInt("stoppedAt")
        outcome = try r.object["outcome"].flatMap { $0 == .null ? nil : try r.raw("outcome", Outcome.self) }
        usedAtStop = try r.optionalInt("usedAtStop")
        sent = try r.array("sent").map { v in
            guard let s = v.stringValue else { throw StoredValueError(description: "stored sent holds a non-string") }
            return s
        }
        stops = Int(try r.int("stops"))
        pauseCount = Int(try r.int("pauseCount"))
    }
}

extension SLAInput {
    var stored: JSONValue {
        .object(["kind": .string(kind.rawValue), "at": .number(Double(at)), "id": .string(id),
                 "priority": priority.map { .string($0.rawValue) } ?? .null, "action": action.map { .string($0.rawValue) } ?? .null])
    }

    init(stored value: JSONValue) throws {
        let r = try Reader(value, "fact")
        self.init(kind: try r.raw("kind", Kind.self), at: try r.int("at"), id: try r.string("id"),
                  priority: try r.object["priority"].flatMap { $0 == .null ? nil : try r.raw("priority", Priority.self) },
                  action: try r.object["action"].flatMap { $0 == .null ? nil : try r.raw("action", TicketAction.self) })
    }
}
