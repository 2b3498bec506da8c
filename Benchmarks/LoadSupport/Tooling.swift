import Foundation
import Logging

/// The machine's load average (1, 5, 15 minutes) as /proc/loadavg shows it.
public func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
}

/// Makes SIGINT and SIGTERM raise ``Abort``: every loop checks it, so a run interrupted
/// with Ctrl-C still stops its services and deletes its vhost and database. Keep the
/// returned sources alive for the whole run.
public func installAbortHandlers(tool: String) -> [DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler {
            FileHandle.standardError.write(Data("\(tool): signal \(sig): stopping and cleaning up\n".utf8))
            Abort.raise()
        }
        source.resume()
        return source
    }
}

/// What a load tool sets up before anything else: a logger at warning level, `CSS_BIN_DIR`
/// (where ServiceProcess finds the services) from `--bin-dir` relative to the working
/// directory, the abort handlers, and a run id. Keep it alive for the whole run.
public struct BenchRun {
    public let tool: String
    public let runID = String(UUID().uuidString.prefix(8).lowercased())
    public let logger: Logger
    private let handlers: [DispatchSourceSignal]

    public init(tool: String, binDir: String) {
        self.tool = tool
        var logger = Logger(label: tool)
        logger.logLevel = .warning
        self.logger = logger
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        setenv("CSS_BIN_DIR", URL(fileURLWithPath: binDir, relativeTo: cwd).standardizedFileURL.path, 1)
        handlers = installAbortHandlers(tool: tool)
    }

    /// The report's first line: `<tool> run <id>: <n> cores, load average ... at start`.
    public var headline: String {
        "\(tool) run \(runID): \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(loadAverage()) at start"
    }
}
