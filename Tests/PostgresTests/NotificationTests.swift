import CSSPostgres
import Foundation
import Testing

/// LISTEN/NOTIFY through the wrapper: a wake-up that says when it (re)started listening.
@Suite struct NotificationTests {
    @Test func notificationsArriveAndARestartedListenIsReported() async throws {
        let application = "listener-\(UUID().uuidString.prefix(8))"
        let channel = "test_\(UUID().uuidString.prefix(8).lowercased())"
        let listener = PostgresConnection(configuration: try testConfiguration(applicationName: application), logger: testLogger())
        let sender = PostgresConnection(configuration: try testConfiguration(), logger: testLogger())
        defer {
            Task {
                await listener.close()
                await sender.close()
            }
        }
        let first = try await listener.notifications(channel: channel, timeout: .seconds(1))
        #expect(first.startedListening && first.payloads.isEmpty, "the first call listens and says so at once")
        let quiet = try await listener.notifications(channel: channel, timeout: .milliseconds(100))
        #expect(quiet.payloads.isEmpty && !quiet.startedListening)

        try await sender.execute("SELECT pg_notify($1, 'one')", [.string(channel)])
        var got: [String] = []
        for _ in 0..<20 where got.isEmpty { got = try await listener.notifications(channel: channel, timeout: .milliseconds(250)).payloads }
        #expect(got == ["one"])

        // The listener's backend is killed: the next calls fail or reconnect, and the first that
        // listens again says so, because whatever was sent in between is lost.
        try await sender.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [.string(application)])
        var restarted = false
        for _ in 0..<40 where !restarted {
            do {
                restarted = try await listener.notifications(channel: channel, timeout: .milliseconds(100)).startedListening
            } catch let error as PostgresError {
                #expect(error.isTransient, "a dropped listener fails transiently: \(error)")
            }
        }
        #expect(restarted)
        try await sender.execute("SELECT pg_notify($1, 'two')", [.string(channel)])
        got = []
        for _ in 0..<20 where got.isEmpty { got = try await listener.notifications(channel: channel, timeout: .milliseconds(250)).payloads }
        #expect(got == ["two"])
    }
}
