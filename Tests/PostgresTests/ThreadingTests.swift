import Foundation
import Testing

@testable import CSSPostgres

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ThreadingTests {
    @Test func everyUnitOfWorkRunsOnTheConnectionsOwnThread() async throws {
        let connection = PostgresConnection(configuration: try testConfiguration(), logger: testLogger())
        let threads = try await (0..<5).asyncMap { _ in
            try await connection.withTransaction { _ in UInt(pthread_self()) }
        }
        let onConnectionThread = try await connection.withSession { _ in ConnectionThread.isCurrent }
        #expect(Set(threads).count == 1)
        #expect(threads[0] != UInt(pthread_self()))
        #expect(onConnectionThread)
        #expect(!ConnectionThread.isCurrent)
        await connection.close()
    }

    @Test func droppingAConnectionEndsItsBackend() async throws {
        let application = "dropped-\(UUID().uuidString.prefix(8))"
        let observer = PostgresConnection(configuration: try testConfiguration(), logger: testLogger())
        let count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        do {
            let connections = (0..<3).map { _ in
                PostgresConnection(configuration: try! testConfiguration(applicationName: application), logger: testLogger())
            }
            for connection in connections { try await connection.connect() }
            #expect(try await observer.query(count, [.string(application)])[0].int(0) == 3)
        }
        // The connections' threads finish them after the last reference goes; give them a moment.
        var remaining = -1
        for _ in 0..<50 where remaining != 0 {
            try await Task.sleep(for: .milliseconds(20))
            remaining = try await observer.query(count, [.string(application)])[0].int(0)
        }
        #expect(remaining == 0)
        await observer.close()
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
