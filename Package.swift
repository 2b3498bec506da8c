// swift-tools-version:6.1
import PackageDescription

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "customer-success-backbone",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
    ],
    targets: [
        // C clients, one system library each.
        .systemLibrary(name: "CLibRabbitMQ", path: "Shared/CLibRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CLibPQ", path: "Shared/CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        // Small, dependency-free helpers every layer uses (backoff, environment, URLs).
        .target(name: "CSSSupport", path: "Shared/Support"),
        .testTarget(name: "SupportTests", dependencies: ["CSSSupport"], path: "Tests/SupportTests"),

        // The pure domain: contract messages, validation, lifecycle rules. No I/O.
        .target(name: "CSSModel", dependencies: ["CSSCalendar"], path: "Shared/Model"),
        .testTarget(name: "ModelTests", dependencies: ["CSSModel"], path: "Tests/ModelTests"),

        // Business-hours calendar engine: pure, no I/O except the explicit TZif loader.
        .target(name: "CSSCalendar", path: "Shared/Calendar"),
        .testTarget(name: "CalendarTests", dependencies: ["CSSCalendar"], path: "Tests/CalendarTests"),

        // One wrapper per C client; C pointers never leave them.
        .target(name: "CSSAMQP", dependencies: ["CLibRabbitMQ", "CSSSupport", logging], path: "Shared/AMQP"),
        .testTarget(name: "AMQPTests", dependencies: ["CSSAMQP", "CSSSupport", logging], path: "Tests/AMQPTests"),
        // PostgreSQL client over libpq: one dedicated thread per connection, a small pool, migrations.
        .target(name: "CSSPostgres", dependencies: ["CLibPQ", "CSSSupport", logging], path: "Shared/Postgres"),
        // Integration tests: need a server at CSS_DATABASE_URL (default postgres://css@127.0.0.1:5432/css).
        .testTarget(name: "PostgresTests", dependencies: ["CSSPostgres", "CSSSupport", logging], path: "Tests/PostgresTests"),

        // Reliable messaging and the service runtime: inbox, outbox, command processing, lifecycle.
        .target(name: "CSSRuntime", dependencies: ["CSSModel", "CSSAMQP", "CSSPostgres", "CSSSupport", logging, lifecycle], path: "Shared/Runtime"),
        .testTarget(name: "RuntimeTests", dependencies: ["CSSRuntime", "CSSModel"], path: "Tests/RuntimeTests"),
        // Integration tests of the runtime's durable timers against the real PostgreSQL (and RabbitMQ for the relay).
        .testTarget(name: "RuntimeIntegrationTests", dependencies: ["CSSRuntime", "CSSModel", "CSSAMQP", "CSSPostgres", "CSSTestSupport", "CSSSupport", logging],
                    path: "Tests/RuntimeIntegrationTests"),

        // What integration tests share: fresh vhosts and databases, service processes, a contract client.
        .target(name: "CSSTestSupport", dependencies: ["CSSModel", "CSSAMQP", "CSSPostgres", "CSSRuntime", "CSSSupport", logging], path: "Shared/TestSupport"),

        // Services: a thin executable each, its logic in a library tests can import.
        .target(name: "IntakeService", dependencies: ["CSSModel", "CSSRuntime", "CSSPostgres"], path: "Services/Intake/Sources/IntakeService"),
        .executableTarget(name: "intake", dependencies: ["IntakeService", "CSSRuntime"], path: "Services/Intake/Sources/intake"),
        .testTarget(name: "IntakeTests", dependencies: ["IntakeService", "CSSModel", "CSSRuntime"], path: "Tests/IntakeTests"),
        // What the load benchmarks share: percentiles, RSS and /proc CPU sampling, the raw broker ceiling.
        .target(name: "LoadSupport", dependencies: ["CSSAMQP", "CSSModel", logging], path: "Benchmarks/LoadSupport"),
        // Load benchmark: intake end to end over AMQP, against the raw broker rate. See Benchmarks/README.md.
        .executableTarget(name: "intake-load", dependencies: [
            "CSSAMQP", "CSSModel", "CSSPostgres", "CSSTestSupport", "CSSRuntime", "CSSSupport", "LoadSupport", logging,
            argumentParser,
        ], path: "Benchmarks/IntakeLoad"),
        // Load benchmark of the SLA timer service (issue 8): arm, firing lateness, memory, recovery after kill -9.
        .executableTarget(name: "sla-load", dependencies: [
            "CSSAMQP", "CSSModel", "CSSPostgres", "CSSTestSupport", "CSSRuntime", "CSSSupport", "LoadSupport", logging,
            argumentParser,
        ], path: "Benchmarks/SLALoad"),
        // Load benchmark of the escalation service (issue 9): breach -> page latency, open chains held, ack latency.
        .executableTarget(name: "escalation-load", dependencies: [
            "CSSAMQP", "CSSModel", "CSSPostgres", "CSSTestSupport", "CSSRuntime", "CSSSupport", "LoadSupport", logging,
            argumentParser,
        ], path: "Benchmarks/EscalationLoad"),
        // Load benchmark of the change-management service (issue 10): changes through the standard lifecycle, command latency, memory.
        .executableTarget(name: "change-load", dependencies: [
            "CSSAMQP", "CSSModel", "CSSPostgres", "CSSTestSupport", "CSSRuntime", "CSSSupport", "LoadSupport", logging,
            argumentParser,
        ], path: "Benchmarks/ChangeLoad"),
        .testTarget(name: "IntakeIntegrationTests", dependencies: ["CSSTestSupport", "CSSModel", "CSSAMQP", "CSSPostgres", "IntakeService"], path: "Tests/IntakeIntegrationTests"),

        // The classification service (issue 7): priority, request class, dispatch, quotas, reclassification.
        .target(name: "ClassificationService", dependencies: ["CSSModel", "CSSCalendar", "CSSRuntime", "CSSPostgres", "CSSSupport"],
                path: "Services/Classification/Sources/ClassificationService"),
        .executableTarget(name: "classification", dependencies: ["ClassificationService", "CSSRuntime"], path: "Services/Classification/Sources/classification"),
        .testTarget(name: "ClassificationTests", dependencies: ["ClassificationService", "CSSModel", "CSSCalendar"], path: "Tests/ClassificationTests"),
        .testTarget(name: "ClassificationIntegrationTests", dependencies: ["CSSTestSupport", "CSSModel", "CSSAMQP", "CSSPostgres", "ClassificationService"],
                    path: "Tests/ClassificationIntegrationTests"),

        // The SLA timer service (issue 8): response and restoration clocks, fired on time, once.
        .target(name: "SLATimerService", dependencies: ["CSSModel", "CSSCalendar", "CSSRuntime", "CSSPostgres", "CSSSupport"],
                path: "Services/SLATimer/Sources/SLATimerService"),
        .executableTarget(name: "sla", dependencies: ["SLATimerService", "CSSRuntime"], path: "Services/SLATimer/Sources/sla"),
        .testTarget(name: "SLATimerTests", dependencies: ["SLATimerService", "CSSModel", "CSSCalendar"], path: "Tests/SLATimerTests"),
        .testTarget(name: "SLATimerIntegrationTests", dependencies: ["CSSTestSupport", "CSSModel", "CSSAMQP", "CSSPostgres", "CSSRuntime", "SLATimerService"],
                    path: "Tests/SLATimerIntegrationTests"),

        // The escalation notification service (issue 9): on-call rotations, chains, acknowledgements.
        .target(name: "EscalationService", dependencies: ["CSSModel", "CSSCalendar", "CSSRuntime", "CSSPostgres", "CSSSupport"],
                path: "Services/Escalation/Sources/EscalationService"),
        .executableTarget(name: "escalation", dependencies: ["EscalationService", "CSSRuntime"], path: "Services/Escalation/Sources/escalation"),
        .testTarget(name: "EscalationTests", dependencies: ["EscalationService", "CSSModel", "CSSCalendar"], path: "Tests/EscalationTests"),
        .testTarget(name: "EscalationIntegrationTests", dependencies: ["CSSTestSupport", "CSSModel", "CSSCalendar", "CSSAMQP", "CSSPostgres", "CSSRuntime", "EscalationService"],
                    path: "Tests/EscalationIntegrationTests"),

        // Change management (issue 10): standard, normal and emergency changes, CAB, Test before Production,
        // maintenance windows, notice, freezes, SLA exclusion, the component directory, Service Updates.
        .target(name: "ChangeManagementService", dependencies: ["CSSModel", "CSSCalendar", "CSSRuntime", "CSSPostgres", "CSSSupport"],
                path: "Services/ChangeManagement/Sources/ChangeManagementService"),
        .executableTarget(name: "change", dependencies: ["ChangeManagementService", "CSSRuntime"], path: "Services/ChangeManagement/Sources/change"),
        .testTarget(name: "ChangeManagementTests", dependencies: ["ChangeManagementService", "CSSModel", "CSSCalendar"], path: "Tests/ChangeManagementTests"),
        .testTarget(name: "ChangeManagementIntegrationTests", dependencies: ["CSSTestSupport", "CSSModel", "CSSCalendar", "CSSAMQP", "CSSPostgres", "CSSRuntime", "ChangeManagementService"],
                    path: "Tests/ChangeManagementIntegrationTests"),

        // Operator tool; `cssctl calendar ...` is its first subcommand group.
        .executableTarget(name: "cssctl", dependencies: ["CSSCalendar", argumentParser], path: "Tools/cssctl"),

        // Plain release-mode benchmark harness (run with `swift run -c release calendar-bench`).
        .executableTarget(name: "calendar-bench", dependencies: ["CSSCalendar"], path: "Benchmarks/CalendarBench"),
    ]
)
