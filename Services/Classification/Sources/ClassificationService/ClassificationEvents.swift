import CSSCalendar
import CSSModel
import CSSRuntime
import CSSSupport
import Foundation
import Synchronization

/// Classification's settings (environment variables, documented in the README).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `CSS_CLOUD_PRODUCTS` | `OT Cloud` | the vendor's cloud products, comma-separated (dispatch `success_services`) |
/// | `CSS_THIRD_PARTY_PRODUCTS` | (none) | third-party products, comma-separated (dispatch `third_party`) |
/// | `CSS_QUOTA_TREND_MIN` | P30D | how much of a contract year must pass before a trend can warn (unless half the quota is used) |
public struct ClassificationSettings: Sendable {
    public var products: ProductCatalog
    public var trend: QuotaTrend

    public init(products: ProductCatalog = ProductCatalog(cloud: [ProductCatalog.defaultCloudProducts], thirdParty: []),
                trend: QuotaTrend = QuotaTrend()) {
        self.products = products
        self.trend = trend
    }

    public static func fromEnvironment(_ env: Environment) throws -> ClassificationSettings {
        let raw = env.string("CSS_QUOTA_TREND_MIN", default: "P30D")
        guard let seconds = ISODuration.parse(raw), seconds >= 0, seconds <= 366 * 86_400 else {
            throw ConfigurationError(variable: "CSS_QUOTA_TREND_MIN", message: "must be an ISO 8601 duration between PT0S and P366D, got \"\(raw)\"")
        }
        return ClassificationSettings(products: try ProductCatalog.fromEnvironment(env), trend: QuotaTrend(minimumWindow: Int64(seconds)))
    }
}

/// Customer profiles and time zones, parsed once per version and shared by every worker.
final class ProfileCache: Sendable {
    private let profiles = Mutex<[String: (version: Date, profile: CustomerProfile)]>([:])
    private let zones = Mutex<[String: ZoneRules]>([:])

    /// The customer's profile as stored, nil when classification has not seen the customer.
    func customer(_ id: String, store: ClassificationStore) throws -> CustomerProfile? {
        guard let stored = try store.customerProfile(id) else { return nil }
        if let hit = profiles.withLock({ $0[id] }), hit.version == stored.version { return hit.profile }
        let profile = try Self.parse(stored.profile, customer: id)
        profiles.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[id] = (stored.version, profile)
        }
        return profile
    }

    static func parse(_ text: String, customer: String) throws -> CustomerProfile {
        do {
            return try CustomerProfile(OnboardCustomer.parse(try JSONValue.parse(Array(text.utf8))))
        } catch {
            throw ClassificationFailure(message: "the stored profile of customer \(customer) cannot be read: \(error)")
        }
    }

    func zone(_ identifier: String) throws(CommandRejection) -> ZoneRules {
        if let hit = zones.withLock({ $0[identifier] }) { return hit }
        do {
            let rules = try ZoneRules.load(identifier: identifier)
            zones.withLock { $0[identifier] = rules }
            return rules
        } catch {
            throw CommandRejection(code: ErrorCode.invalidField, field: "timeZone", message: "time zone \(identifier) cannot be loaded: \(error.message)")
        }
    }
}

/// Stored state classification cannot read back: a bug or a manual edit, not the message's fault.
struct ClassificationFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Classification's reaction to intake's events: learn customers, classify tickets,
/// count quotas, follow transitions (R-CLS-1, -2, -4, -5, -6, R-QTA-1, -2).
///
/// Events may come in any order and more than once (several replicas, redelivery): a
/// ticket whose customer is not known yet waits and is classified when the customer
/// arrives; a transition of a ticket not known yet waits for the ticket; an older
/// `customer.onboarded` never replaces a newer one. Each fact has a unique key in the
/// schema, so nothing is classified, counted or announced twice.
public struct ClassificationEvents: EventHandler {
    // Made by ``ClassificationHandlers``, which gives both handlers one cache.
    let settings: ClassificationSettings
    let clock: any CSSModel.Clock
    let cache: ProfileCache

    public var eventTypes: [String] {
        [EventType.ticketReceived, EventType.customerOnboarded, EventType.ticketTransitioned]
    }

    public func handle(_ event: CloudEvent, context: CommandContext) throws -> [CloudEvent] {
        let store = ClassificationStore(session: context.session)
        switch event.type {
        case EventType.customerOnboarded:
            return try onboarded(event, store, context.events)
        case EventType.ticketReceived:
            return try received([event], store, context.events)[0].get()
        case EventType.ticketTransitioned:
            return try transitioned(event, store, context.events)
        default:
            throw CommandRejection(code: ErrorCode.unknownValue, field: "type", message: "classification does not consume \(event.type)")
        }
    }

    /// `ticket.received` goes set-wise: a batch of new tickets costs a handful of statements.
    public func handlesInBatches(_ type: String) -> Bool {
        type == EventType.ticketReceived
    }

    public func handleBatch(_ events: [CloudEvent], context: CommandContext) throws -> [Result<[CloudEvent], CommandRejection>] {
        try received(events, ClassificationStore(session: context.session), context.events)
    }

    // MARK: customer.onboarded

    func onboarded(_ event: CloudEvent, _ store: ClassificationStore, _ events: EventFactory) throws -> [CloudEvent] {
        let onboard = try Self.withDataPrefix { () throws(CommandRejection) in try OnboardCustomer.parse(event.data) }
        let profile = try CustomerProfile(onboard)
        _ = try cache.zone(profile.timeZone)
        try store.lock(exclusive: ["customer:\(profile.customerId)"])
        guard try store.upsertCustomer(profile.customerId, profile: onboard.json, version: event.time) else { return [] }
        let waiting = try store.waitingTickets(profile.customerId).map(\.ticket)
        return try classify(waiting, customers: [profile.customerId: profile], store, events).values.flatMap { $0 }
    }

    /// Reads event data with the command parsers, naming fields as `data.<field>`.
    static func withDataPrefix<T>(_ parse: () throws(CommandRejection) -> T) throws(CommandRejection) -> T {
        do {
            return try parse()
        } catch {
            throw CommandRejection(error.errors.map { e in
                CommandError(code: e.code, field: e.field.map { "data.\($0)" } ?? "data", message: e.message)
            })
        }
    }

    // MARK: ticket.received

    /// New tickets: stored, then classified when their customer is known (else they wait
    /// for `customer.onboarded`). Everything that can refuse an event is decided before
    /// the first write.
    func received(_ batch: [CloudEvent], _ store: ClassificationStore, _ events: EventFactory) throws -> [Result<[CloudEvent], CommandRejection>] {
        var results: [Result<[CloudEvent], CommandRejection>] = []
        var tickets: [ReceivedTicket] = []
        var seen = Set<String>()
        for event in batch {
            do {
                let t = try ReceivedTicket.parse(event.data)
                results.append(.success([]))
                // The same ticket twice in one batch (two ids for one fact) is taken once.
                if seen.insert(t.trackingNumber).inserted { tickets.append(t) }
            } catch {
                results.append(.failure(error))
            }
        }
        guard !tickets.isEmpty else { return results }
        try store.lock(exclusive: tickets.map { "ticket:\($0.trackingNumber)" }, shared: tickets.map { "customer:\($0.customerId)" })
        let fresh = try store.insertTickets(tickets)
        var customers: [String: CustomerProfile] = [:]
        for id in Set(tickets.filter { fresh.contains($0.trackingNumber) }.map(\.customerId)) {
            // A customer not seen yet: its tickets wait for customer.onboarded (events out of order).
            if let profile = try cache.customer(id, store: store) { customers[id] = profile }
        }
        let ready = tickets.filter { fresh.contains($0.trackingNumber) && customers[$0.customerId] != nil }
        var caused = try classify(ready, customers: customers, store, events)
        for (i, event) in batch.enumerated() {
            guard case .success = results[i], let number = event.data["trackingNumber"]?.stringValue, let out = caused[number] else { continue }
            results[i] = .success(out)
            caused.removeValue(forKey: number)
        }
        return results
    }

    /// Classifies stored tickets of known customers, counts their quotas, opens or joins
    /// trend problems and applies the transitions that came before them.
    ///
    /// - Returns: the events each ticket causes, by tracking number (trend problems that
    ///   several tickets share go with the last of them).
    func classify(_ tickets: [ReceivedTicket], customers: [String: CustomerProfile], _ store: ClassificationStore,
                  _ events: EventFactory) throws -> [String: [CloudEvent]] {
        guard !tickets.isEmpty else { return [:] }
        let now = clock.now()
        var out: [String: [CloudEvent]] = [:]
        var decided: [(number: String, classification: Classification)] = []
        var audit: [(number: String, event: String, actor: String, at: Date, data: JSONValue)] = []
        for ticket in tickets {
            let c = Classifier.classify(ticket, customer: customers[ticket.customerId]!, products: settings.products)
            decided.append((ticket.trackingNumber, c))
            var data = JSONObject()
            data["trackingNumber"] = .string(ticket.trackingNumber)
            data["customerId"] = .string(ticket.customerId)
            data["priority"] = .string(c.priority.rawValue)
            data["requestedPriority"] = .optional(c.requestedPriority?.rawValue)
            data["requestClass"] = .optional(c.requestClass?.rawValue)
            data["dispatch"] = .string(c.dispatch.rawValue)
            data["thirdParty"] = .optional(c.thirdParty)
            data["reclassificationCandidate"] = .bool(c.isReclassificationCandidate)
            data["policy"] = .string(c.source.rawValue)
            data["kind"] = .string(ticket.kind.rawValue)
            data["environment"] = .string(ticket.environment.rawValue)
            data["receivedAt"] = .string(RFC3339.format(ticket.receivedAt))
            data["classifiedAt"] = .string(RFC3339.format(now))
            data["phoneRequired"] = ticket.phoneRequired.map(JSONValue.bool) ?? .null
            data["contactEmail"] = .optional(ticket.contactEmail)
            audit.append((ticket.trackingNumber, "classified", "classification", now, .object(data)))
            out[ticket.trackingNumber] = [events.make(EventType.ticketClassified, subject: ticket.trackingNumber, data: .object(data), time: now)]
        }
        try store.saveClassifications(decided, at: now)
        try store.audit(audit)
        let byNumber = Dictionary(uniqueKeysWithValues: tickets.map { ($0.trackingNumber, $0) })
        for (number, caused) in try consume(tickets, decided, customers: customers, store, events, now: now) {
            out[number, default: []] += caused
        }
        for (number, caused) in try trends(tickets, store, events, now: now) {
            out[number, default: []] += caused
        }
        let early = try store.takeEarlyTransitions(tickets.map(\.trackingNumber))
        for (number, c) in decided {
            guard let waiting = early[number] else { continue }
            var row = TicketRow(ticket: byNumber[number]!, classification: c, classifiedAt: now, everCritical: c.priority == .p1, status: "classified")
            for t in waiting { out[number, default: []] += try apply(t, to: &row, store, events) }
        }
        return out
    }

    /// R-QTA-1, R-QTA-2: one consumption per request, a warning when the trend projects
    /// exhaustion before the year ends, a flag when the quota is exceeded.
    func consume(_ tickets: [ReceivedTicket], _ decided: [(number: String, classification: Classification)], customers: [String: CustomerProfile],
                 _ store: ClassificationStore, _ events: EventFactory, now: Date) throws -> [(String, [CloudEvent])] {
        var items: [(number: String, customerId: String, quota: QuotaKind, yearStart: String)] = []
        var years: [QuotaKey: ContractYear] = [:]
        for (ticket, (_, c)) in zip(tickets, decided) {
            guard let quota = c.quota, let customer = customers[ticket.customerId] else { continue }
            let zone = try cache.zone(customer.timeZone)
            let year = ContractYear.containing(Int64(ticket.receivedAt.timeIntervalSince1970.rounded(.down)), contractStart: customer.contractStart, zone: zone)
            let key = QuotaKey(customerId: customer.customerId, quota: quota, yearStart: year.firstDay.description)
            years[key] = year
            items.append((ticket.trackingNumber, customer.customerId, quota, key.yearStart))
        }
        var out: [(String, [CloudEvent])] = []
        let nowSeconds = Int64(now.timeIntervalSince1970.rounded(.down))
        for (key, numbers, usage) in try store.consume(items, at: now) {
            let year = years[key]!
            let limit = customers[key.customerId]?.quotas[key.quota]
            var lastWarning = usage.warnedProjection.map { Int64($0.timeIntervalSince1970) }
            var exceeded = usage.exceeded
            var newWarning: Int64?
            var exceededNow = false
            // Each request in turn, as if they had come one by one.
            for (k, number) in numbers.enumerated() {
                let used = usage.used - numbers.count + k + 1
                let alerts = settings.trend.alerts(used: used, limit: limit, year: year, now: nowSeconds, lastWarning: lastWarning, exceededFlagged: exceeded)
                var caused: [CloudEvent] = []
                func data() -> JSONObject {
                    var d = JSONObject()
                    d["customerId"] = .string(key.customerId)
                    d["quota"] = .string(key.quota.rawValue)
                    d["used"] = .int(used)
                    d["limit"] = .optional(limit)
                    d["contractYearStart"] = .string(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(year.start))))
                    d["contractYearEnd"] = .string(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(year.end))))
                    d["trackingNumber"] = .string(number)
                    return d
                }
                if let projected = alerts.warning {
                    var d = data()
                    d["projectedExhaustion"] = .string(RFC3339.format(Date(timeIntervalSince1970: TimeInterval(projected))))
                    d["previousProjection"] = .optional(lastWarning.map { RFC3339.format(Date(timeIntervalSince1970: TimeInterval($0))) })
                    caused.append(events.make(EventType.quotaWarning, subject: key.customerId, data: .object(d), time: now))
                    lastWarning = projected
                    newWarning = projected
                }
                if alerts.exceeded {
                    caused.append(events.make(EventType.quotaExceeded, subject: key.customerId, data: .object(data()), time: now))
                    exceeded = true
                    exceededNow = true
                }
                if !caused.isEmpty { out.append((number, caused)) }
            }
            if let newWarning {
                try store.markWarned(customerId: key.customerId, quota: key.quota, yearStart: key.yearStart,
                                     projection: Date(timeIntervalSince1970: TimeInterval(newWarning)))
            }
            if exceededNow { try store.markExceeded(customerId: key.customerId, quota: key.quota, yearStart: key.yearStart, at: now) }
        }
        return out
    }

    // MARK: ticket.transitioned

    func transitioned(_ event: CloudEvent, _ store: ClassificationStore, _ events: EventFactory) throws -> [CloudEvent] {
        let errors = ValidationErrors()
        guard let object = event.data.objectValue else {
            throw CommandRejection(code: ErrorCode.notAnObject, field: "data", message: "data must be a JSON object")
        }
        let r = FieldReader(object, prefix: "data.", errors: errors)
        let number = r.string("trackingNumber", maxLength: 40)
        let action = r.enumeration("action", TicketAction.self)
        let status = r.enumeration("status", TicketStatus.self)
        let by = r.string("by", maxLength: 254)
        let at = r.timestamp("at", required: false) ?? event.time
        try errors.throwIfAny()
        let transition = EarlyTransition(action: action!.rawValue, status: status!.rawValue, actor: by!, at: at)
        try store.lock(exclusive: ["ticket:\(number!)"])
        guard var row = try store.ticket(number!, forUpdate: true), row.classification != nil else {
            try store.recordEarlyTransition(eventID: event.id, number: number!, transition)
            return []
        }
        return try apply(transition, to: &row, store, events)
    }

    /// A transition of a classified ticket: its status, the downgrade after restoration
    /// (R-CLS-4), the problem of a Critical incident once it is closed (R-PRB-1).
    func apply(_ t: EarlyTransition, to row: inout TicketRow, _ store: ClassificationStore, _ events: EventFactory) throws -> [CloudEvent] {
        try store.setStatus(row.trackingNumber, t.status, at: t.at)
        if t.action == TicketAction.close.rawValue, row.everCritical, row.ticket.kind == .incident {
            return try criticalProblem(row, store, events)
        }
        guard t.action == TicketAction.restore.rawValue, let c = row.classification,
              let to = Downgrade.afterRestoration(kind: row.ticket.kind, environment: row.ticket.environment, priority: c.priority) else { return [] }
        try store.setPriority(row.trackingNumber, to)
        row.classification?.priority = to
        let now = clock.now()
        var data = JSONObject()
        data["trackingNumber"] = .string(row.trackingNumber)
        data["customerId"] = .string(row.ticket.customerId)
        data["from"] = .string(c.priority.rawValue)
        data["to"] = .string(to.rawValue)
        data["reason"] = .string(Downgrade.reason)
        data["by"] = .string(Downgrade.actor)
        data["cause"] = .string("restored")
        data["requestId"] = .null
        data["receivedAt"] = .string(RFC3339.format(row.ticket.receivedAt))
        data["restoredBy"] = .string(t.actor)
        data["at"] = .string(RFC3339.format(now))
        try store.audit(row.trackingNumber, event: "reclassified", actor: Downgrade.actor, at: now, data: .object(data))
        return [events.make(EventType.ticketReclassified, subject: row.trackingNumber, data: .object(data), time: now)]
    }
}

// MARK: - Problems opened by classification itself (R-PRB-1, R-PRB-2)

extension ClassificationEvents {
    /// R-PRB-1: a Critical incident, restored and closed, opens one problem linked to it.
    func criticalProblem(_ row: TicketRow, _ store: ClassificationStore, _ events: EventFactory) throws -> [CloudEvent] {
        let now = clock.now()
        let summary = "Root cause of Critical incident \(row.trackingNumber): \(row.ticket.summary)"
        guard let id = try store.openProblem(customerId: row.ticket.customerId, source: .criticalIncident, component: row.ticket.component,
                                             summary: String(summary.prefix(500)), description: nil, by: Downgrade.actor, at: now,
                                             originTicket: row.trackingNumber, incidents: [row.trackingNumber]) else { return [] }
        return [Self.problemOpened(id, customerId: row.ticket.customerId, source: .criticalIncident, incidents: [row.trackingNumber],
                                   component: row.ticket.component, summary: String(summary.prefix(500)), by: Downgrade.actor, at: now, events)]
    }

    /// R-PRB-2: incidents join the open trend problem of their component, or complete a
    /// trend of 3 within 30 days that opens one.
    func trends(_ tickets: [ReceivedTicket], _ store: ClassificationStore, _ events: EventFactory, now: Date) throws -> [(String, [CloudEvent])] {
        var groups: [String: [ReceivedTicket]] = [:]
        var order: [String] = []
        for t in tickets where t.kind == .incident && t.component != nil {
            let key = "trend:\(t.customerId):\(t.component!)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(t)
        }
        guard !order.isEmpty else { return [] }
        try store.lock(exclusive: order)
        var out: [(String, [CloudEvent])] = []
        let rule = TrendRule()
        for key in order {
            let group = groups[key]!
            let customerId = group[0].customerId, component = group[0].component!
            var open = try store.openTrendProblem(customerId: customerId, component: component)
            var pending = group
            if open == nil {
                let span = (group.map(\.receivedAt).min()!, group.map(\.receivedAt).max()!)
                let middle = span.0.addingTimeInterval(span.1.timeIntervalSince(span.0) / 2)
                let reach = rule.window + span.1.timeIntervalSince(span.0) / 2
                let candidates = try store.trendCandidates(customerId: customerId, component: component, around: middle, window: reach)
                for (k, t) in group.enumerated() {
                    guard let members = rule.window(candidates, containing: t.trackingNumber) else { continue }
                    let summary = String("\(members.count) incidents of \(component) within 30 days".prefix(500))
                    guard let id = try store.openProblem(customerId: customerId, source: .trend, component: component, summary: summary, description: nil,
                                                         by: Downgrade.actor, at: now, originTicket: nil, incidents: members) else { break }
                    out.append((t.trackingNumber, [Self.problemOpened(id, customerId: customerId, source: .trend, incidents: members,
                                                                      component: component, summary: summary, by: Downgrade.actor, at: now, events)]))
                    open = id
                    pending = Array(group[(k + 1)...]).filter { !members.contains($0.trackingNumber) }
                    break
                }
                if open == nil { continue }
            }
            let added = try store.link(open!, pending.map(\.trackingNumber), by: Downgrade.actor, at: now)
            if let last = pending.last, !added.isEmpty {
                out.append((last.trackingNumber, [Self.incidentsLinked(open!, customerId: customerId, incidents: added, by: Downgrade.actor, at: now, events)]))
            }
        }
        return out
    }

    static func problemOpened(_ id: String, customerId: String, source: ProblemSource, incidents: [String], component: String?,
                              summary: String, by: String, at: Date, _ events: EventFactory) -> CloudEvent {
        var d = JSONObject()
        d["problemId"] = .string(id)
        d["customerId"] = .string(customerId)
        d["source"] = .string(source.rawValue)
        d["incidents"] = .array(incidents.map { .string($0) })
        d["component"] = .optional(component)
        d["summary"] = .string(summary)
        d["by"] = .string(by)
        d["openedAt"] = .string(RFC3339.format(at))
        return events.make(EventType.problemOpened, subject: id, data: .object(d), time: at)
    }

    static func incidentsLinked(_ id: String, customerId: String, incidents: [String], by: String, at: Date, _ events: EventFactory) -> CloudEvent {
        events.make(EventType.problemIncidentsLinked, subject: id, data: [
            "problemId": .string(id), "customerId": .string(customerId), "incidents": .array(incidents.map { .string($0) }),
            "by": .string(by), "at": .string(RFC3339.format(at)),
        ], time: at)
    }
}

/// R-CLS-4: once production service is restored, a Critical or High incident is
/// downgraded to Moderate while root-cause work continues (handbook §4.5.2).
public enum Downgrade {
    public static let reason = "restored"
    public static let actor = "classification"

    /// The priority after restoration, nil when it stays.
    public static func afterRestoration(kind: TicketKind, environment: DeploymentEnvironment, priority: Priority) -> Priority? {
        guard kind == .incident, environment == .production, priority == .p1 || priority == .p2 else { return nil }
        return .p3
    }
}
