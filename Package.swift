// swift-tools-version:6.1
import PackageDescription

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")

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

        // PostgreSQL client over libpq: one dedicated thread per connection, a small pool, migrations.
        .target(name: "CSSPostgres", dependencies: ["CLibPQ", "CSSSupport", logging], path: "Shared/Postgres"),
        // Integration tests: need a server at CSS_DATABASE_URL (default postgres://css@127.0.0.1:5432/css).
        .testTarget(name: "PostgresTests", dependencies: ["CSSPostgres", "CSSSupport", logging], path: "Tests/PostgresTests"),
    ]
)
