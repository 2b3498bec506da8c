import ClassificationService
import CSSModel
import Foundation
import Testing

/// A customer as onboarding describes it, with what a test changes.
func customer(catalogue: [String] = ["password-reset", "add-user"], quotas: (Int, Int)? = (120, 12), rules: [PriorityRuleEntry] = [],
              timeZone: String = "America/Toronto", contractYearStart: String = "2026-01-01") throws -> CustomerProfile {
    var body: JSONObject = [
        "customerId": "acme", "name": "Acme", "timeZone": .string(timeZone), "supportRegion": "CA-ON", "team": "cloud-ops",
        "contractYearStart": .string(contractYearStart),
        "contacts": [["email": "ana@acme.example", "name": "Ana", "primary": true], ["email": "bo@acme.example", "name": "Bo"]],
        "changeContacts": ["cio@acme.example"],
        "catalogue": .array(catalogue.map { .string($0) }),
        "priorityRules": .array(rules.map(\.json)),
    ]
    if let quotas { body["quotas"] = ["standard": .int(quotas.0), "nonStandard": .int(quotas.1)] }
    return try CustomerProfile(OnboardCustomer.parse(.object(body)))
}

func ticket(_ kind: TicketKind = .incident, _ environment: DeploymentEnvironment = .production, impact: Impact? = .outage,
            urgency: Urgency? = nil, catalogItem: String? = nil, product: String? = nil, summary: String = "It broke",
            requested: Priority? = nil) -> ReceivedTicket {
    ReceivedTicket(trackingNumber: "INC-000001", customerId: "acme", kind: kind, environment: environment, impact: kind == .incident ? impact : nil,
                   urgency: urgency, catalogItem: catalogItem, component: nil, product: product, summary: summary, requestedPriority: requested,
                   receivedAt: Date(timeIntervalSince1970: 1_780_000_000))
}

@Suite struct PriorityPolicyTests {
    /// R-CLS-1: the whole matrix of kind × environment × impact × urgency, as the handbook states it.
    @Test func handbookMatrix() throws {
        let policy = PriorityPolicy()
        for kind in TicketKind.allCases {
            for env in DeploymentEnvironment.allCases {
                for impact in [nil] + Impact.allCases.map(Optional.some) {
                    for urgency in [nil] + Urgency.allCases.map(Optional.some) {
                        let expected: Priority
                        if env == .nonProduction {
                            expected = .p4
                        } else if kind == .serviceRequest {
                            expected = .p3
                        } else {
                            switch impact {
                            case .outage: expected = .p1
                            case .degraded: expected = urgency == .low ? .p3 : .p2 // Decision: low urgency lowers, never raises
                            case .minor: expected = .p3
                            case .inquiry, nil: expected = .p4
                            }
                        }
                        let got = policy.priority(kind: kind, environment: env, impact: impact, urgency: urgency)
                        #expect(got.priority == expected, "\(kind) \(env) \(String(describing: impact)) \(String(describing: urgency))")
                        #expect(got.source == .handbook)
                        // Intake's flag (R-TKT-2) reads the same table.
                        #expect(PriorityRule.priority(kind: kind, environment: env, impact: impact, urgency: urgency) == expected)
                    }
                }
            }
        }
    }

    /// R-CLS-1 Decision, configurable per contract: the most specific contract rule wins,
    /// the first listed on a tie, the handbook for everything else.
    @Test func contractRulesOverrideTheHandbook() {
        let policy = PriorityPolicy(contract: [
            PriorityRuleEntry(impact: .degraded, priority: .p1),
            PriorityRuleEntry(impact: .degraded, urgency: .low, priority: .p2),
            PriorityRuleEntry(environment: .nonProduction, priority: .p3),
            PriorityRuleEntry(environment: .nonProduction, priority: .p2),
        ])
        #expect(policy.priority(kind: .incident, environment: .production, impact: .degraded, urgency: .high) == (.p1, .contract))
        #expect(policy.priority(kind: .incident, environment: .production, impact: .degraded, urgency: .low) == (.p2, .contract))
        #expect(policy.priority(kind: .incident, environment: .nonProduction, impact: .minor, urgency: nil) == (.p3, .contract)) // the first of two equals
        #expect(policy.priority(kind: .incident, environment: .production, impact: .outage, urgency: nil) == (.p1, .handbook))
        #expect(policy.priority(kind: .serviceRequest, environment: .production, impact: nil, urgency: nil) == (.p3, .handbook))
    }

    @Test func onboardingRefusesRulesThatMatchEverythingOrNameUnknownValues() {
        let base: JSONObject = [
            "customerId": "acme", "name": "Acme", "timeZone": "UTC", "supportRegion": "US", "team": "t", "contractYearStart": "2026-01-01",
            "contacts": [["email": "a@b.example", "name": "A", "primary": true]],
        ]
        var body = base
        body["priorityRules"] = [["priority": "P1"], ["impact": "meltdown", "priority": "P1"], ["impact": "minor", "priority": "P0"]]
        #expect(throws: CommandRejection.self) { try OnboardCustomer.parse(.object(body)) }
        do {
            _ = try OnboardCustomer.parse(.object(body))
        } catch {
            #expect(error.errors.map(\.field) == ["priorityRules[0]", "priorityRules[1].impact", "priorityRules[2].priority"])
        }
        body["priorityRules"] = [["kind": "incident", "impact": "minor", "priority": "P2"]]
        let parsed = try? OnboardCustomer.parse(.object(body))
        #expect(parsed?.priorityRules == [PriorityRuleEntry(kind: .incident, impact: .minor, priority: .p2)])
        // The rules travel in customer.onboarded and read back the same.
        #expect(parsed.flatMap { try? OnboardCustomer.parse($0.json) } == parsed)
    }
}

@Suite struct ClassifierTests {
    // R-CLS-2: the requested priority is kept beside the assigned one; a difference is a candidate.
    @Test func requestedPriorityIsRecordedAndADifferenceIsACandidate() throws {
        let acme = try customer()
        let products = ProductCatalog(cloud: ["OT Cloud"], thirdParty: [])
        let asked = Classifier.classify(ticket(impact: .minor, requested: .p1), customer: acme, products: products)
        #expect(asked.priority == .p3)
        #expect(asked.requestedPriority == .p1)
        #expect(asked.isReclassificationCandidate)
        let same = Classifier.classify(ticket(impact: .minor, requested: .p3), customer: acme, products: products)
        #expect(!same.isReclassificationCandidate)
        #expect(!Classifier.classify(ticket(impact: .minor), customer: acme, products: products).isReclassificationCandidate)
    }

    // R-CLS-5: standard when the item is in the Request Catalogue (any case), non-standard otherwise, null for incidents.
    @Test func requestClassComesFromTheCatalogue() throws {
        let acme = try customer()
        let products = ProductCatalog(cloud: [], thirdParty: [])
        let standard = Classifier.classify(ticket(.serviceRequest, catalogItem: "Password-Reset"), customer: acme, products: products)
        #expect(standard.requestClass == .standard)
        #expect(standard.quota == .standard)
        let other = Classifier.classify(ticket(.serviceRequest, catalogItem: "migrate-datacenter"), customer: acme, products: products)
        #expect(other.requestClass == .nonStandard)
        #expect(other.quota == .nonStandard)
        #expect(Classifier.classify(ticket(.incident), customer: acme, products: products).requestClass == nil)
        #expect(Classifier.classify(ticket(.incident), customer: acme, products: products).quota == nil)
    }

    // R-CLS-1 with a contract override, end to end through the customer profile.
    @Test func theCustomersContractRulesApply() throws {
        let acme = try customer(rules: [PriorityRuleEntry(kind: .incident, environment: .nonProduction, impact: .outage, priority: .p2)])
        let c = Classifier.classify(ticket(.incident, .nonProduction, impact: .outage), customer: acme, products: ProductCatalog(cloud: [], thirdParty: []))
        #expect(c.priority == .p2)
        #expect(c.source == .contract)
    }
}

@Suite struct DispatchTests {
    let products = ProductCatalog(cloud: ["OT Cloud", "Extended ECM"], thirdParty: ["SAP", "Microsoft Teams"])

    // R-CLS-6
    @Test func aNamedProductDecides() {
        #expect(products.dispatch(kind: .incident, product: "extended  ecm", summary: "x") == (.successServices, nil))
        #expect(products.dispatch(kind: .incident, product: "Microsoft teams", summary: "x") == (.thirdParty, "Microsoft teams"))
        #expect(products.dispatch(kind: .incident, product: "Acme Payroll", summary: "OT Cloud is fine") == (.vendor, nil))
    }

    // R-CLS-6: without a product the summary may settle it, by whole words only.
    @Test func theSummarySettlesItOrTheTicketIsInvestigated() {
        #expect(products.dispatch(kind: .incident, product: nil, summary: "Extended ECM search is slow") == (.successServices, nil))
        #expect(products.dispatch(kind: .incident, product: nil, summary: "SAP export fails") == (.thirdParty, "sap"))
        #expect(products.dispatch(kind: .incident, product: nil, summary: "Sapphire report fails") == (.investigation, nil))
        #expect(products.dispatch(kind: .incident, product: nil, summary: "SAP import into Extended ECM fails") == (.investigation, nil))
        #expect(products.dispatch(kind: .incident, product: nil, summary: "everything is slow") == (.investigation, nil))
        #expect(products.dispatch(kind: .incident, product: "  ", summary: "everything is slow") == (.investigation, nil))
        // Decision: a service request's catalogue item is the vendor's service.
        #expect(products.dispatch(kind: .serviceRequest, product: nil, summary: "add a user") == (.successServices, nil))
    }
}

@Suite struct RestorationDowngradeTests {
    // R-CLS-4
    @Test func criticalAndHighProductionIncidentsAreDowngradedOnRestore() {
        #expect(Downgrade.afterRestoration(kind: .incident, environment: .production, priority: .p1) == .p3)
        #expect(Downgrade.afterRestoration(kind: .incident, environment: .production, priority: .p2) == .p3)
        #expect(Downgrade.afterRestoration(kind: .incident, environment: .production, priority: .p3) == nil)
        #expect(Downgrade.afterRestoration(kind: .incident, environment: .nonProduction, priority: .p1) == nil)
        #expect(Downgrade.afterRestoration(kind: .serviceRequest, environment: .production, priority: .p2) == nil)
    }
}
