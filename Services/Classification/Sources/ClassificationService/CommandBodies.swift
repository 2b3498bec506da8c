import CSSModel

/// `ticket.reclassify.request` (R-CLS-3): a Point of Contact asks for another priority.
public struct RequestReclassification: Sendable, Equatable {
    public var trackingNumber: String
    public var priority: Priority
    public var reason: String
    public var by: String

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> RequestReclassification {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let number = r.string("trackingNumber", maxLength: 40)
        let priority = r.enumeration("priority", Priority.self)
        let reason = r.string("reason", maxLength: 2000)
        let by = r.email("by")
        try errors.throwIfAny()
        return RequestReclassification(trackingNumber: number!, priority: priority!, reason: reason!, by: by!)
    }
}

/// `ticket.reclassify.decide` (R-CLS-3): support staff accept or decline a request.
public struct DecideReclassification: Sendable, Equatable {
    public var requestId: String
    public var accept: Bool
    public var reason: String
    public var by: String

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> DecideReclassification {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let id = r.string("requestId", maxLength: 40)
        let accept = r.bool("accept")
        let reason = r.string("reason", maxLength: 2000)
        let by = r.string("by", maxLength: 254)
        try errors.throwIfAny()
        return DecideReclassification(requestId: id!, accept: accept!, reason: reason!, by: by!)
    }
}

/// `ticket.dispatch` (R-CLS-6): a ticket's source is known; support staff send it on.
public struct DispatchTicket: Sendable, Equatable {
    public var trackingNumber: String
    public var dispatch: Dispatch
    public var by: String
    public var reason: String?
    public var thirdParty: String?

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> DispatchTicket {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let number = r.string("trackingNumber", maxLength: 40)
        let dispatch = r.enumeration("dispatch", Dispatch.self)
        let by = r.string("by", maxLength: 254)
        let reason = r.string("reason", required: false, maxLength: 2000)
        let thirdParty = r.string("thirdParty", required: dispatch == .thirdParty, maxLength: 200)
        try errors.throwIfAny()
        return DispatchTicket(trackingNumber: number!, dispatch: dispatch!, by: by!, reason: reason,
                              thirdParty: dispatch == .thirdParty ? thirdParty : nil)
    }
}

/// `quota.get`: a customer's Service Request consumption this contract year.
public struct GetQuota: Sendable, Equatable {
    public var customerId: String

    public static func parse(_ body: JSONValue) throws(CommandRejection) -> GetQuota {
        let errors = ValidationErrors()
        let r = try FieldReader.body(body, errors: errors)
        let id = r.string("customerId", maxLength: 64)
        try errors.throwIfAny()
        return GetQuota(customerId: id!)
    }
}
