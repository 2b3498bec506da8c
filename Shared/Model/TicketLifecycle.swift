/// The ticket lifecycle of R-TKT-3 as a pure transition function.
///
/// new → classified → responded → (awaiting customer ⇄ in progress) → restored →
/// closed, and reopen from restored. Two decisions the handbook leaves open:
/// `respond` is allowed from `new` as well as `classified`, because a person may
/// answer before the classification event has reached intake and the response
/// clock must stop at the first response either way; and `restore` is allowed while
/// awaiting the customer, because a fix can land while a question is pending.
public enum TicketLifecycle {
    public static func allowedFrom(_ action: TicketAction) -> Set<TicketStatus> {
        switch action {
        case .respond: return [.new, .classified]
        case .awaitCustomer: return [.responded, .inProgress]
        case .customerReplied: return [.awaitingCustomer]
        case .restore: return [.responded, .inProgress, .awaitingCustomer]
        case .close: return [.restored]
        case .reopen: return [.restored]
        }
    }

    public static func target(of action: TicketAction) -> TicketStatus {
        switch action {
        case .respond: return .responded
        case .awaitCustomer: return .awaitingCustomer
        case .customerReplied: return .inProgress
        case .restore: return .restored
        case .close: return .closed
        case .reopen: return .inProgress
        }
    }

    /// The status after `action`, or the reason it is not allowed now.
    public static func apply(_ action: TicketAction, to status: TicketStatus) -> Result<TicketStatus, CommandError> {
        let allowed = allowedFrom(action)
        guard allowed.contains(status) else {
            let from = TicketStatus.allCases.filter(allowed.contains).map(\.rawValue).joined(separator: ", ")
            return .failure(CommandError(
                code: ErrorCode.illegalTransition,
                field: "action",
                message: "\(action.rawValue) is not allowed while the ticket is \(status.rawValue); it is allowed from: \(from)"))
        }
        return .success(target(of: action))
    }

    /// Classification moves a new ticket to `classified`; a ticket already further
    /// along keeps its status (the event only brings the priority).
    public static func classified(_ status: TicketStatus) -> TicketStatus {
        status == .new ? .classified : status
    }
}

/// Human-readable tracking numbers: `INC-000042` and `SR-000043`.
///
/// The number comes from one database sequence, so several intake processes never
/// hand out the same one; gaps are allowed.
public enum TrackingNumber {
    public static func make(kind: TicketKind, sequence: Int64) -> String {
        let prefix = kind == .incident ? "INC" : "SR"
        let digits = String(sequence)
        let padded = digits.count >= 6 ? digits : String(repeating: "0", count: 6 - digits.count) + digits
        return "\(prefix)-\(padded)"
    }

    public static func isWellFormed(_ text: String) -> Bool {
        let parts = text.split(separator: "-")
        guard parts.count == 2, parts[0] == "INC" || parts[0] == "SR" else { return false }
        return parts[1].count >= 6 && parts[1].allSatisfy { $0.isASCII && $0.isNumber }
    }
}
