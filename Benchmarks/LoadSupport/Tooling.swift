import Foundation

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
