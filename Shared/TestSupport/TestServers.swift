import CSSAMQP
import CSSModel
import CSSPostgres
import CSSSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Fresh, isolated places on the real servers for one test: a RabbitMQ vhost and a
/// PostgreSQL database of their own, so runs never see each other's data.
///
/// The servers themselves are started by `deploy/local/servers.sh` (the test command
/// does it); this only reads `CSS_AMQP_URL` / `CSS_DATABASE_URL` with local defaults.
public enum TestServers {
    /// The checkout's root (where Package.swift is), found from this file's path.
    public static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    public static var environment: CSSSupport.Environment { .process }

    public static func amqp() throws -> AMQPConfiguration {
        try AMQPConfiguration.fromEnvironment(environment)
    }

    public static func database() throws -> PostgresConfiguration {
        try PostgresConfiguration.fromEnvironment(environment, applicationName: "css-tests")
    }

    /// Creates vhost `name` through the project's script and returns its configuration.
    public static func freshVhost(_ prefix: String = "test") throws -> AMQPConfiguration {
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        try runScript(["add-vhost", name])
        return try amqp().with(vhost: name)
    }

    public static func deleteVhost(_ configuration: AMQPConfiguration) {
        _ = try? runScript(["delete-vhost", configuration.vhost])
    }

    /// Creates database `prefix_<random>` owned by the test role and returns its configuration.
    public static func freshDatabase(_ prefix: String = "test", logger: Logger) async throws -> PostgresConfiguration {
        let base = try database()
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = PostgresClient(configuration: base, size: 1, logger: logger)
        defer { Task { await admin.close() } }
        try await admin.withSession { session in _ = try session.execute("CREATE DATABASE \(name)") }
        var copy = base
        copy.database = name
        return copy
    }

    public static func dropDatabase(_ configuration: PostgresConfiguration, logger: Logger) async {
        guard let name = configuration.database else { return }
        var base = configuration
        base.database = try? database().database
        let admin = PostgresClient(configuration: base, size: 1, logger: logger)
        _ = try? await admin.withSession { session in _ = try session.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        await admin.close()
    }

    /// Runs `deploy/local/servers.sh` with `arguments`, failing with its output.
    ///
    /// Spawns and reaps the child with posix_spawn/waitpid: Foundation's
    /// `Process.waitUntilExit` was seen to hang on Linux after the script had exited.
    /// Output goes to a file, not a pipe, because a server the script starts in the
    /// background would inherit a pipe and keep it open.
    @discardableResult
    public static func runScript(_ arguments: [String]) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("servers-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: output) }
        let argv = ["/bin/bash", root.appendingPathComponent("deploy/local/servers.sh").path] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cArgs = argv.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, cArgs, environ)
        guard spawned == 0 else { throw TestSupportError("cannot run servers.sh: error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            throw TestSupportError("servers.sh \(arguments.joined(separator: " ")) failed (status \(status)): \(text)")
        }
        return text
    }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(30), interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}
