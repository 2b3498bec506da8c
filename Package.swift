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

        // Business-hours calendar engine: pure, no I/O except the explicit TZif loader.
        .target(name: "CSSCalendar", path: "Shared/Calendar"),
        .testTarget(name: "CalendarTests", dependencies: ["CSSCalendar"], path: "Tests/CalendarTests"),

        // Operator tool; `cssctl calendar ...` is its first subcommand group.
        .executableTarget(name: "cssctl", dependencies: ["CSSCalendar", argumentParser], path: "Tools/cssctl"),

        // Plain release-mode benchmark harness (run with `swift run -c release calendar-bench`).
        .executableTarget(name: "calendar-bench", dependencies: ["CSSCalendar"], path: "Benchmarks/CalendarBench"),
    ]
)
