import CSSCalendar
import CSSModel
import Foundation

/// Standard or Non-Standard Service Request (R-CLS-5).
public enum RequestClass: String, CaseIterable, Sendable {
    case standard
    case nonStandard = "non_standard"
}

/// What classification knows of a customer, from intake's `customer.onboarded`.
public struct CustomerProfile: Sendable, Equatable {
    public var customerId: String
    public var timeZone: String
    public var contractStart: LocalDate
    /// The Request Catalogue, lower-cased.
    public var catalogue: Set<String>
    public var quotas: [QuotaKind: Int]
    public var policy: PriorityPolicy
    /// Active Points of Contact (lower-cased e-mail addresses).
    public var pocs: Set<String>
    /// Everyone on the customer's side: POCs and Authorized Change Contacts. Support
    /// staff is anyone else.
    public var customerSide: Set<String>

    public init(_ c: OnboardCustomer) throws(CommandRejection) {
        guard let start = RFC3339.parseDate(c.contractYearStart) else {
            throw CommandRejection(code: ErrorCode.invalidField, field: "data.contractYearStart", message: "contractYearStart must be a date YYYY-MM-DD")
        }
        customerId = c.customerId
        timeZone = c.timeZone
        contractStart = LocalDate(dayNumber: Civil.dayNumber(year: start.year, month: start.month, day: start.day))
        catalogue = Set(c.catalogue.map { $0.lowercased() })
        quotas = c.quotas.map { [.standard: $0.standard, .nonStandard: $0.nonStandard] } ?? [:]
        policy = PriorityPolicy(contract: c.priorityRules)
        pocs = Set(c.contacts.map { $0.email.lowercased() })
        customerSide = pocs.union(c.changeContacts.map { $0.lowercased() })
    }

    public func isPOC(_ who: String) -> Bool { pocs.contains(who.lowercased()) }

    public func isSupportStaff(_ who: String) -> Bool { !customerSide.contains(who.lowercased()) }
}

/// A ticket as intake announced it in `ticket.received`.
public struct ReceivedTicket: Sendable, Equatable {
    public var trackingNumber: String
    public var customerId: String
    public var kind: TicketKind
    public var environment: DeploymentEnvironment
    public var impact: Impact?
    public var urgency: Urgency?
    public var catalogItem: String?
    public var component: String?
    public var product: String?
    public var summary: String
    public var requestedPriority: Priority?
    public var receivedAt: Date
    /// Repeated in `ticket.classified` for escalation; nil for a ticket stored before they were kept.
    public var phoneRequired: Bool?
    public var contactEmail: String?

    public init(trackingNumber: String, customerId: String, kind: TicketKind, environment: DeploymentEnvironment, impact: Impact? = nil, urgency: Urgency? = nil, catalogItem: String? = nil, component: String? = nil, product: String? = nil, summary: String, requestedPriority: Priority? = nil, receivedAt: Date,
                phoneRequired: Bool? = nil, contactEmail: String? = nil) {
        self.trackingNumber = trackingNumber
        self.customerId = customerId
        self.kind = kind
        self.environment = environment
        self.impact = impact
        self.urgency = urgency
        self.catalogItem = catalogItem
        self.component = component
        self.product = product
        self.summary = summary
        self.requestedPriority = requestedPriority
        self.receivedAt = receivedAt
        self.phoneRequired = phoneRequired
        self.contactEmail = contactEmail
    }

    /// Reads the event's `data`; every problem is reported at once (the event is then dead-lettered).
    public static func parse(_ data: JSONValue) throws(CommandRejection) -> ReceivedTicket {
        let errors = ValidationErrors()
        guard let object = data.objectValue else {
            throw CommandRejection(code: ErrorCode.notAnObject, field: "data", message: "data must be a JSON object, got \(data.typeName)")
        }
        let r = FieldReader(object, prefix: "data.", errors: errors)
        let number = r.string("trackingNumber", maxLength: 40)
        let customerId = r.string("customerId", maxLength: 64)
        let kind = r.enumeration("kind", TicketKind.self)
        let environment = r.enumeration("environment", DeploymentEnvironment.self)
        let impact = r.enumeration("impact", Impact.self, required: false)
        let urgency = r.enumeration("urgency", Urgency.self, required: false)
        let catalogItem = r.string("catalogItem", required: false, maxLength: 200)
        let component = r.string("component", required: false, maxLength: 200)
        let product = r.string("product", required: false, maxLength: 200)
        let summary = r.string("summary", required: false, maxLength: 500)
        let requested = r.enumeration("requestedPriority", Priority.self, required: false)
        let receivedAt = r.timestamp("receivedAt")
        let phoneRequired = r.bool("phoneRequired", required: false)
        let contactEmail = r.email("contactEmail", required: false)
        try errors.throwIfAny()
        return ReceivedTicket(trackingNumber: number!, customerId: customerId!, kind: kind!, environment: environment!, impact: impact,
                              urgency: urgency, catalogItem: catalogItem, component: component, product: product, summary: summary ?? "",
                              requestedPriority: requested, receivedAt: receivedAt!, phoneRequired: phoneRequired, contactEmail: contactEmail)
    }
}

/// A ticket's classification: what `ticket.classified` says.
public struct Classification: Sendable, Equatable {
    public var priority: Priority
    public var source: PrioritySource
    public var requestedPriority: Priority?
    public var requestClass: RequestClass?
    public var dispatch: Dispatch
    public var thirdParty: String?

    public init(priority: Priority, source: PrioritySource, requestedPriority: Priority? = nil, requestClass: RequestClass? = nil, dispatch: Dispatch, thirdParty: String? = nil) {
        self.priority = priority
        self.source = source
        self.requestedPriority = requestedPriority
        self.requestClass = requestClass
        self.dispatch = dispatch
        self.thirdParty = thirdParty
    }

    /// The customer asked for another priority (R-CLS-2): a reclassification candidate.
    public var isReclassificationCandidate: Bool {
        requestedPriority.map { $0 != priority } ?? false
    }

    /// The quota a service request consumes; nil for incidents.
    public var quota: QuotaKind? { requestClass.map(QuotaKind.init) }
}

/// Classifies a new ticket (R-CLS-1, R-CLS-2, R-CLS-5, R-CLS-6). Pure.
public enum Classifier {
    public static func classify(_ t: ReceivedTicket, customer: CustomerProfile, products: ProductCatalog) -> Classification {
        let assigned = customer.policy.priority(kind: t.kind, environment: t.environment, impact: t.impact, urgency: t.urgency)
        let requestClass: RequestClass? = switch t.kind {
        case .incident: nil
        case .serviceRequest: customer.catalogue.contains((t.catalogItem ?? "").lowercased()) ? .standard : .nonStandard
        }
        let (dispatch, thirdParty) = products.dispatch(kind: t.kind, product: t.product, summary: t.summary)
        return Classification(priority: assigned.priority, source: assigned.source, requestedPriority: t.requestedPriority,
                              requestClass: requestClass, dispatch: dispatch, thirdParty: thirdParty)
    }
}
