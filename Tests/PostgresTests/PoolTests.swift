import CSSPostgres
import Testing

@Suite struct PoolTests {
    @Test func twoHundredConcurrentInsertsThroughFourConnections() async throws {
        try await withFreshSchema(poolSize: 4) { client, schema in
            try await client.execute("CREATE TABLE \(schema).events (id int PRIMARY KEY, backend int NOT NULL)")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in 0..<200 {
                    group.addTask {
                        let inserted = try await client.withTransaction { session in
                            try session.execute("INSERT INTO \(schema).events VALUES ($1, pg_backend_pid())", [.int(id)])
                        }
                        #expect(inserted == 1)
                    }
                }
                try await group.waitForAll()
            }
            let row = try await client.query("SELECT count(*) AS n, count(DISTINCT backend) AS backends FROM \(schema).events")[0]
            #expect(try row.int("n") == 200)
            #expect(try row.int("backends") <= 4)
        }
    }

    @Test func closeWaitsForWorkInProgressThenRefusesNewWork() async throws {
        let client = PostgresClient(configuration: try testConfiguration(), size: 2, logger: testLogger())
        let slow = Task { try await client.query("SELECT pg_sleep(0.3), 1 AS done")[0].int("done") }
        try await Task.sleep(for: .milliseconds(100))
        await client.close()
        #expect(try await slow.value == 1)
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error?.code == "client_closed")
    }

    @Test func cancelledWaiterLeavesTheLine() async throws {
        let client = PostgresClient(configuration: try testConfiguration(), size: 1, logger: testLogger())
        let holder = Task { try await client.query("SELECT pg_sleep(0.5)") }
        try await Task.sleep(for: .milliseconds(100))
        let waiter = Task { try await client.query("SELECT 1") }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        _ = try await holder.value
        #expect(try await client.query("SELECT 2 AS v")[0].int("v") == 2)
        await client.close()
    }
}
