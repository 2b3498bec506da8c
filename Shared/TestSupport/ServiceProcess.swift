import CSSAMQP
import CSSPostgres
import Foundation

/// A service executable started as a real process, for tests that kill, restart or
/// signal it.
public final class ServiceProcess: @unchecked Sendable {
    public let executable: URL
    public let environment: [String: String]
    public let logFile: URL
    private var process: Process?

    /// The directory with the built executables: `CSS_BIN_DIR`, else `.build/debug`.
    public static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["CSS_BIN_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        return TestServers.root.appendingPathComponent(".build/debug")
    }

    public init(name: String, amqp: AMQPConfiguration, database: PostgresConfiguration, extra: [String: String] = [:]) throws {
        executable = Self.binDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw TestSupportError("\(executable.path) is not built: run `swift build` first (the test command does)")
        }
        var env = ProcessInfo.processInfo.environment
        env["CSS_AMQP_URL"] = "amqp://\(amqp.user):\(amqp.password)@\(amqp.host):\(amqp.port)/\(amqp.vhost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? amqp.vhost)"
        env["CSS_DATABASE_URL"] = database.url
        env["CSS_AMQP_HEARTBEAT"] = "10"
        for (k, v) in extra { env[k] = v }
        environment = env
        let logs = TestServers.root.appendingPathComponent(".state/log/tests")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        logFile = logs.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
    }

    public func start() throws {
        let p = Process()
        p.executableURL = executable
        p.environment = environment
        let handle = try FileHandle(forWritingTo: logFile)
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        process = p
    }

    public var pid: Int32? { process?.processIdentifier }
    public var isRunning: Bool { process?.isRunning ?? false }

    /// Sends `signal` (SIGTERM for a graceful stop, SIGKILL for a crash).
    public func signal(_ signal: Int32) {
        if let pid = process?.processIdentifier, process?.isRunning == true { kill(pid, signal) }
    }

    /// Waits up to `timeout` for the process to exit; returns its status or nil if it still runs.
    public func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        guard let p = process else { return nil }
        let deadline = ContinuousClock.now + timeout
        while p.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return p.isRunning ? nil : p.terminationStatus
    }

    /// Kills the process if it still runs (end of a test).
    public func stop() async {
        signal(SIGKILL)
        _ = await waitForExit(timeout: .seconds(10))
    }

    public var log: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }
}

extension PostgresConfiguration {
    /// This configuration as a `postgres://` URL for a child process.
    public var url: String {
        let userPart = user.map { u in password.map { "\(u):\($0)@" } ?? "\(u)@" } ?? ""
        return "postgres://\(userPart)\(host):\(port)/\(database ?? "")"
    }
}
