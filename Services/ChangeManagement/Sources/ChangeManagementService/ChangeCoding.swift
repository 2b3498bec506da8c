import CSSModel
import Foundation

/// How changes and their facts look on the wire (`Change`, `ChangeEventData` and the change
/// events in `docs/asyncapi.yaml`).
public enum ChangeCoding {
    static func time(_ t: Int64?) -> JSONValue { t.map { .string(Instant.format($0)) } ?? .null }

    static func window(_ i: Interval) -> JSONValue { ["start": time(i.start), "end": time(i.end)] }

    static func schedule(_ s: Schedule?, _ environment: Deployment) -> JSONValue {
        guard let s else { return .null }
        return ["environment": .string(environment.rawValue), "start": time(s.window.start), "end": time(s.window.end),
                "maintenance": .optional(s.maintenance?.rawValue), "agreedBy": .optional(s.agreedBy), "by": .string(s.by), "at": time(s.at)]
    }

    static func installed(_ list: [InstalledComponent]) -> JSONValue {
        .array(list.map { ["component": .string($0.component), "kind": .string($0.kind.rawValue), "version": .string($0.version)] })
    }

    /// The `Change` schema: the result of `change.get` and of every lifecycle command.
    public static func json(_ c: Change) -> JSONValue {
        var o = request(c)
        let more: JSONObject = [
            "changeId": .string(c.id), "customerId": .string(c.customerId), "type": .string(c.type.rawValue), "state": .string(c.state.rawValue),
            "requestedBy": .string(c.requestedBy), "requestedAt": time(c.requestedAt),
            "assessment": c.assessment.map { ["risk": .string($0.risk), "plan": .string($0.plan), "by": .string($0.by), "at": time($0.at)] } ?? .null,
            "board": .optional(c.board?.rawValue), "quorum": c.quorum.map { .int($0) } ?? .null,
            "votes": .array(c.votes.map { ["by": .string($0.member), "approve": .bool($0.approve), "reason": .string($0.reason), "at": time($0.at)] }),
            "test": schedule(c.test, .test), "production": schedule(c.production, .production),
            "verification": c.verification.map { ["accepted": .bool($0.accepted), "notes": .optional($0.notes), "by": .string($0.by), "at": time($0.at)] } ?? .null,
            "implementationStartedAt": time(c.implementationStartedAt), "implementationEndedAt": time(c.implementationEndedAt),
            "installed": installed(c.installed), "rollback": .optional(c.rollback),
            "cancellation": c.cancellation.map { ["reason": .string($0.reason), "by": .string($0.by), "at": time($0.at)] } ?? .null,
            "history": .array(c.history.map { ["action": .string($0.action), "from": .string($0.from.rawValue), "to": .string($0.to.rawValue),
                                               "by": .string($0.by), "at": time($0.at)] }),
        ]
        for (k, v) in more { o[k] = v }
        return .object(o)
    }

    /// What the requester said (R-CHG-2), as both `Change` and `change.requested` carry it.
    static func request(_ c: Change) -> JSONObject {
        let d = c.details
        return [
            "title": .string(c.title), "reason": .optional(d?.reason), "work": .optional(d?.work), "impact": .optional(d?.impact),
            "cost": d.map { ["amount": .number($0.cost.amount), "currency": .string($0.cost.currency)] } ?? .null,
            "environments": .array((d?.environments ?? [.test, .production]).map { .string($0.rawValue) }),
            "requestedWindow": d.map { window($0.requestedWindow) } ?? .null,
            "components": .array(c.components.map { .string($0) }), "interruptsService": .bool(c.interruptsService),
            "templateId": .optional(c.templateId), "incident": .optional(c.incident),
        ]
    }

    /// `ChangeEventData`: what every change event carries.
    static func common(_ c: Change, from: ChangeState?, by: String, at: Int64) -> JSONObject {
        ["changeId": .string(c.id), "customerId": .string(c.customerId), "type": .string(c.type.rawValue), "state": .string(c.state.rawValue),
         "from": .optional(from?.rawValue), "at": time(at), "by": .string(by)]
    }

    /// `change.requested`.
    public static func requested(_ c: Change) -> JSONValue {
        var data = common(c, from: nil, by: c.requestedBy, at: c.requestedAt)
        for (k, v) in request(c) { data[k] = v }
        return .object(data)
    }

    /// The data of `change.<name>` caused by a transition from `from` to the change as it is now.
    /// `board` is the board the change's votes count against (vote, approval, rejection).
    public static func data(_ name: String, _ c: Change, from: ChangeState, by: String, at: Int64, board: Board?) -> JSONValue {
        var data = common(c, from: from, by: by, at: at)
        let counted = board.map { b in c.votes.filter { b.members.contains($0.member) } } ?? c.votes
        let approvals = counted.filter(\.approve).count
        let rejections = counted.count - approvals
        switch name {
        case EventType.changeAssessed:
            data["risk"] = .optional(c.assessment?.risk)
            data["plan"] = .optional(c.assessment?.plan)
        case EventType.changeVoteRecorded:
            // The state a vote leaves is the state before any decision it caused.
            data["state"] = .string(from.rawValue)
            let vote = c.votes.last
            data["board"] = .optional(c.board?.rawValue)
            data["approve"] = .bool(vote?.approve ?? false)
            data["reason"] = .optional(vote?.reason)
            data["approvals"] = .int(approvals)
            data["rejections"] = .int(rejections)
            data["quorum"] = .int(board?.quorum ?? c.quorum ?? 1)
            data["members"] = .int(board?.members.count ?? 1)
        case EventType.changeApproved:
            data["board"] = .optional(c.board?.rawValue)
            data["approvals"] = .int(c.type == .standard ? 0 : approvals)
            data["quorum"] = c.type == .standard ? .null : .int(board?.quorum ?? c.quorum ?? 1)
            data["templateId"] = .optional(c.templateId)
            if c.type == .standard { data["from"] = .string(ChangeState.agreed.rawValue) }
        case EventType.changeRejected:
            data["board"] = .optional(c.board?.rawValue)
            data["approvals"] = .int(approvals)
            data["rejections"] = .int(rejections)
            data["quorum"] = .int(board?.quorum ?? c.quorum ?? 1)
            data["members"] = .int(board?.members.count ?? 1)
        case EventType.changeAgreed where c.type == .standard:
            data["state"] = .string(ChangeState.agreed.rawValue) // approved follows in its own event
        case EventType.changeScheduled:
            let production = c.state == .scheduledProduction
            let s = production ? c.production : c.test
            data["environment"] = .string(production ? "production" : "test")
            data["start"] = time(s?.window.start)
            data["end"] = time(s?.window.end)
            data["maintenance"] = .optional(production ? s?.maintenance?.rawValue : nil)
            data["agreedBy"] = .optional(production ? s?.agreedBy : nil)
        case EventType.changeDeployed:
            data["environment"] = "test"
        case EventType.changeVerified:
            data["accepted"] = .bool(c.verification?.accepted ?? false)
            data["notes"] = .optional(c.verification?.notes)
        case EventType.changeImplementing:
            data["scheduledStart"] = time(c.production?.window.start)
            data["scheduledEnd"] = time(c.production?.window.end)
        case EventType.changeImplemented:
            data["installed"] = installed(c.installed)
        case EventType.changeFailed:
            data["rollback"] = .optional(c.rollback)
        case EventType.changeCancelled:
            data["reason"] = .optional(c.cancellation?.reason)
        default:
            break
        }
        return .object(data)
    }

    /// `maintenance.announced` for a Production schedule of a change that interrupts service.
    public static func announced(_ c: Change, from: ChangeState, by: String, at: Int64, noticeBusinessDays: Int, addressedTo: [String]) -> JSONValue {
        var data = common(c, from: from, by: by, at: at)
        data["title"] = .string(c.title)
        data["maintenance"] = .optional(c.production?.maintenance?.rawValue)
        data["start"] = time(c.production?.window.start)
        data["end"] = time(c.production?.window.end)
        data["interruptsService"] = .bool(c.interruptsService)
        data["noticeBusinessDays"] = .int(noticeBusinessDays)
        data["addressedTo"] = .array(addressedTo.sorted().map { .string($0) })
        return .object(data)
    }

    /// `maintenance.windows.updated` and the stored plan.
    public static func plan(_ customerId: String, _ plan: MaintenancePlan, revision: Int, by: String, at: Int64) -> JSONValue {
        [
            "customerId": .string(customerId), "revision": .int(revision), "timeZone": .string(plan.timeZone),
            "windows": .array(plan.windows.map { w in
                ["weekday": .string(WeeklyWindow.weekdays[w.weekday]), "start": .string(localTime(w.start)), "end": .string(localTime(w.end))]
            }),
            "freezes": .array(plan.freezes.map { ["start": time($0.interval.start), "end": time($0.interval.end), "reason": .string($0.reason)] }),
            "by": .string(by), "at": time(at),
        ]
    }

    /// The deployment steps of a change (`DeploymentTimelineEntry`), oldest first.
    public static func timeline(_ c: Change) -> [JSONValue] {
        let steps: Set<String> = ["schedule", "deploy", "verify", "implement", "complete", "fail"]
        return c.history.filter { steps.contains($0.action) }.map { t in
            let production = t.to.stage >= ChangeState.scheduledProduction.stage
            let scheduled = t.action == "schedule" ? (t.window ?? (production ? c.production : c.test)?.window) : nil
            return ["at": time(t.at), "changeId": .string(c.id), "title": .string(c.title), "environment": .string(production ? "production" : "test"),
                    "state": .string(t.to.rawValue), "start": time(scheduled?.start), "end": time(scheduled?.end)]
        }
    }

    /// The `sla.exclusion.added` of an excluded interval (R-SLA-5), as pieces of at most 31 days (the
    /// SLA timer's limit): `<changeId>-<part>`, then `<changeId>-<part>-2`, ...
    public static func exclusions(_ c: Change, _ interval: Interval, part: String, by: String) -> [(id: String, data: JSONValue)] {
        let limit: Int64 = 31 * 86_400
        var out: [(id: String, data: JSONValue)] = []
        var start = interval.start
        while start < interval.end {
            let end = min(interval.end, start + limit)
            let id = "\(c.id)-\(part)" + (out.isEmpty ? "" : "-\(out.count + 1)")
            out.append((id, [
                "customerId": .string(c.customerId), "exclusionId": .string(id), "start": time(start), "end": time(end),
                "reason": .string("implementation of \(c.id): \(c.title)"), "changeId": .string(c.id), "by": .string(by),
            ]))
            start = end
        }
        return out
    }

    static func localTime(_ seconds: Int) -> String {
        let h = seconds / 3600, m = seconds / 60 % 60
        return (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)"
    }
}
