import CSSModel
import CSSRuntime
import Foundation
import IntakeService
import Testing

/// Issue 6, items 7 and 8: intake consumes exactly what the shared description declares,
/// and orders its commands by customer and ticket.
@Suite struct IntakeContractTests {
    @Test func intakeConsumesWhatTheSharedTopologySays() throws {
        let entry = try #require(ContractTopology.queues(of: "intake"))
        #expect(Set(entry.commands) == Set(IntakeHandler().commandNames))
        #expect(Set(entry.events) == Set(TicketReadModel().eventTypes))
        // Every service's queue is in the whole topology, bound to what it consumes.
        let all = ContractTopology.all
        for s in ContractTopology.services {
            for c in s.commands {
                #expect(all.bindings.contains { $0.queue == "css.\(s.service).commands" && $0.routingKey == c })
            }
            for e in s.events {
                #expect(all.bindings.contains { $0.queue == "css.\(s.service).events" && $0.routingKey == e })
            }
        }
        #expect(all.bindings.contains { $0.queue == "css.classification.events" && $0.routingKey == EventType.ticketReceived })
    }

    // ticket.classified repeats what escalation and change management read of ticket.received, so the
    // broker keeps one copy of every ticket's first event (classification's), not three; a broker of an
    // earlier release loses the two bindings at start, and a copy still queued is applied.
    @Test func ticketReceivedGoesToClassificationAloneAndOldBindingsAreRemoved() {
        let all = ContractTopology.all
        #expect(all.bindings.filter { $0.routingKey == EventType.ticketReceived }.map(\.queue) == ["css.classification.events"])
        #expect(Set(all.bindingsToRemove) == [
            .init(queue: "css.escalation.events", exchange: "css.events", routingKey: EventType.ticketReceived),
            .init(queue: "css.change.events", exchange: "css.events", routingKey: EventType.ticketReceived),
        ])
        for s in ContractTopology.services {
            #expect(Set(s.events).isDisjoint(with: s.retiredEvents), "\(s.service) both consumes and retires an event type")
        }
        // A retired binding that a later entry declares again is kept, not removed.
        let back = all.merging(.init(bindings: [.init(queue: "css.change.events", exchange: "css.events", routingKey: EventType.ticketReceived)]))
        #expect(back.bindingsToRemove.map(\.queue) == ["css.escalation.events"])
    }

    @Test func orderingKeysArePerCustomerAndPerTicket() {
        let h = IntakeHandler()
        func keys(_ name: String, _ body: JSONValue) -> [OrderingKey] {
            h.orderingKeys(IncomingCommand(name: name, messageID: "m", body: body, receivedAt: Date(timeIntervalSince1970: 0)))
        }
        #expect(keys(CommandName.ticketSubmit, ["customerId": "acme"]) == [.shared("customer:acme")])
        #expect(keys(CommandName.customerOnboard, ["customerId": "acme"]) == [.exclusive("customer:acme")])
        #expect(keys(CommandName.contactAvailability, ["customerId": "acme"]) == [.exclusive("customer:acme")])
        #expect(keys(CommandName.ticketTransition, ["trackingNumber": "INC-000001"]) == [.exclusive("ticket:INC-000001")])
        #expect(keys(CommandName.ticketGet, ["trackingNumber": "INC-000001"]) == [.shared("ticket:INC-000001")])
        #expect(keys(CommandName.ticketSubmit, [1]) == [])
    }
}
