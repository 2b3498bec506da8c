/// One reason a command was refused, as it goes on the wire.
///
/// `code` is a stable snake_case word that integrators branch on and that metrics
/// use as a label; `field` names the offending field (a JSON path such as
/// `contacts[1].email`) when there is one; `message` is for people.
public struct CommandError: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    public var code: String
    public var field: String?
    public var message: String

    public init(code: String, field: String? = nil, message: String) {
        self.code = code
        self.field = field
        self.message = message
    }

    public var description: String {
        field.map { "\(code) (\($0)): \(message)" } ?? "\(code): \(message)"
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["code"] = .string(code)
        o["field"] = .optional(field)
        o["message"] = .string(message)
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard let code = json["code"]?.stringValue, let message = json["message"]?.stringValue else { return nil }
        self.init(code: code, field: json["field"]?.stringValue, message: message)
    }
}

/// Every reason a command was refused: validation reports all problems at once.
public struct CommandRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var errors: [CommandError]

    public init(_ errors: [CommandError]) {
        precondition(!errors.isEmpty, "a rejection has at least one reason")
        self.errors = errors
    }

    public init(_ error: CommandError) {
        self.errors = [error]
    }

    public init(code: String, field: String? = nil, message: String) {
        self.errors = [CommandError(code: code, field: field, message: message)]
    }

    public var description: String { errors.map(\.description).joined(separator: "; ") }

    public var codes: [String] { errors.map(\.code) }
}

/// The stable error codes of the contract, in one place so they cannot drift.
public enum ErrorCode {
    public static let malformedJSON = "malformed_json"
    public static let invalidUTF8 = "invalid_utf8"
    public static let tooLarge = "too_large"
    public static let notAnObject = "not_an_object"
    public static let missingField = "missing_field"
    public static let wrongType = "wrong_type"
    public static let emptyField = "empty_field"
    public static let tooLong = "too_long"
    public static let invalidField = "invalid_field"
    public static let unknownValue = "unknown_value"
    public static let unknownCommand = "unknown_command"
    public static let missingMessageID = "missing_message_id"
    public static let unsupportedContentType = "unsupported_content_type"
    public static let unknownCustomer = "unknown_customer"
    public static let notAContact = "not_a_contact"
    public static let contactInactive = "contact_inactive"
    public static let tooManyContacts = "too_many_contacts"
    public static let primaryContact = "primary_contact"
    public static let duplicateContact = "duplicate_contact"
    public static let unknownTicket = "unknown_ticket"
    public static let illegalTransition = "illegal_transition"
    public static let internalError = "internal_error"
    public static let notSupportStaff = "not_support_staff"
    public static let unknownRequest = "unknown_request"
    public static let alreadyDecided = "already_decided"
    public static let requestPending = "request_pending"
    public static let samePriority = "same_priority"
    public static let sameDispatch = "same_dispatch"
    public static let notClassified = "not_classified"
    public static let unknownProblem = "unknown_problem"
    public static let alreadyResolved = "already_resolved"
    public static let notAnIncident = "not_an_incident"
    public static let otherCustomer = "other_customer"
    public static let unknownRegion = "unknown_region"
    public static let conflict = "conflict"
    public static let unknownTeam = "unknown_team"
    public static let unknownEscalation = "unknown_escalation"
    public static let overlappingOverrides = "overlapping_overrides"
    /// Change management: who may act on a change.
    public static let notAChangeContact = "not_a_change_contact"
    public static let notABoardMember = "not_a_board_member"
    public static let alreadyVoted = "already_voted"
    /// Change management: the ids a command names.
    public static let unknownChange = "unknown_change"
    public static let unknownTemplate = "unknown_template"
    public static let unknownIncident = "unknown_incident"
    public static let unknownBoard = "unknown_board"
    /// Change management: the scheduling policy (R-CHG-3..5); a refusal names the window, freeze or change it hit.
    public static let testNotVerified = "test_not_verified"
    public static let outsideWindow = "outside_window"
    public static let insufficientNotice = "insufficient_notice"
    public static let inFreeze = "in_freeze"
    public static let changeConflict = "change_conflict"
    public static let windowInPast = "window_in_past"
}
