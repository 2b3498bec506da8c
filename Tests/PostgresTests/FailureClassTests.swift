import CSSPostgres
import Testing

/// The classification table on `PostgresError.failureClass`, without a server.
@Suite struct FailureClassTests {
    /// A server statement error as `ConnectionCore` reports it: the SQLSTATE is the code.
    private func serverError(_ sqlState: String) -> PostgresError {
        PostgresError(code: sqlState, message: "server said \(sqlState)", sqlState: sqlState)
    }

    @Test(arguments: [
        // Class 08: connection exceptions.
        "08000", "08003", "08006", "08001", "08004", "08P01",
        // Class 40: serialization failure, deadlock, statement completion unknown, generic rollback.
        "40001", "40P01", "40003", "40000",
        // Class 53: insufficient resources.
        "53000", "53100", "53200", "53300", "53400",
        // Class 57: cancelled statement, shutdown, cannot connect now, idle session timeout.
        "57014", "57000", "57P01", "57P02", "57P03", "57P04", "57P05",
        // Lock not available, read-only after failover, idle-in-transaction timeout.
        "55P03", "25006", "25P03",
        // Class 58: system errors.
        "58000", "58030", "58P01", "58P02",
        // Snapshot too old.
        "72000",
    ])
    func transientSQLStates(sqlState: String) {
        let error = serverError(sqlState)
        #expect(error.failureClass == .transient)
        #expect(error.isTransient)
        #expect(PostgresError.failureClass(sqlState: sqlState) == .transient)
        #expect(!error.isConnectionError)
    }

    @Test(arguments: [
        // Class 22: data exceptions, including the two a NUL or bad encoding gives.
        "22000", "22001", "22003", "22007", "22008", "22012", "22021", "22P02", "22P05", "22023",
        // Class 23: integrity constraint violations.
        "23000", "23502", "23503", "23505", "23514", "23P01",
        // Integrity violation reported at commit: the data is at fault, not the timing.
        "40002",
        // Class 42: syntax and access rules.
        "42000", "42601", "42501", "42703", "42P01", "42883",
        // Wrong transaction state and other programming errors.
        "25000", "25001", "25P02", "55000", "55006", "0A000", "54000", "54001", "2BP01", "3D000", "3F000", "P0001",
        // Internal errors and corruption.
        "XX000", "XX001", "XX002",
        // Unknown.
        "ZZ999", "", "4",
    ])
    func permanentSQLStates(sqlState: String) {
        let error = serverError(sqlState)
        #expect(error.failureClass == .permanent)
        #expect(!error.isTransient)
        #expect(PostgresError.failureClass(sqlState: sqlState) == .permanent)
    }

    @Test(arguments: [PostgresError.connectionFailed, PostgresError.connectionLost, PostgresError.clientClosed, PostgresError.connectionClosed])
    func clientSideTransientCodes(code: String) {
        let error = PostgresError(code: code, message: "gone")
        #expect(error.failureClass == .transient)
        #expect(error.isTransient)
    }

    @Test(arguments: [
        PostgresError.invalidParameter, PostgresError.decodeFailed, PostgresError.transactionAborted,
        PostgresError.transactionLeftOpen, PostgresError.transactionInProgress, PostgresError.sessionExpired,
        PostgresError.queryFailed, PostgresError.unsupportedResult, PostgresError.invalidSchemaName,
        PostgresError.invalidMigrations, PostgresError.unknownMigrationVersion, PostgresError.breakingMigrationAhead,
        "something_new",
    ])
    func clientSidePermanentCodes(code: String) {
        let error = PostgresError(code: code, message: "refused")
        #expect(error.failureClass == .permanent)
        #expect(!error.isTransient)
        #expect(!error.isConnectionError)
    }

    @Test func lostConnectionIsTransientWhateverTheServerSaidOnItsWayOut() {
        // ConnectionCore reports 57P01 (terminated by an administrator) and class 08 as connection_lost.
        for sqlState in ["57P01", "57P02", "57P03", "08006", nil] {
            let error = PostgresError(code: PostgresError.connectionLost, message: "lost", sqlState: sqlState)
            #expect(error.failureClass == .transient)
            #expect(error.isConnectionError)
        }
    }

    @Test func connectionErrorsAreOnlyTheTwoConnectionCodes() {
        #expect(PostgresError(code: PostgresError.connectionFailed, message: "").isConnectionError)
        #expect(PostgresError(code: PostgresError.connectionLost, message: "").isConnectionError)
        // Transient, but the connection itself is fine: the caller retries on it.
        #expect(!PostgresError(code: "40001", message: "", sqlState: "40001").isConnectionError)
        #expect(!PostgresError(code: PostgresError.clientClosed, message: "").isConnectionError)
    }
}
