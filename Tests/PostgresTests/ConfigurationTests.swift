import CSSSupport
import Foundation
import Testing

@testable import CSSPostgres

/// These need no server.
@Suite struct ConfigurationTests {
    @Test func defaultComesFromTheContract() throws {
        let configuration = try PostgresConfiguration.fromEnvironment(Environment([:]), applicationName: "tickets")
        #expect(configuration.host == "127.0.0.1" && configuration.port == 5432)
        #expect(configuration.user == "css" && configuration.password == nil && configuration.database == "css")
        #expect(configuration.applicationName == "tickets")
    }

    @Test func readsEveryPartOfTheURL() throws {
        let configuration = try PostgresConfiguration(
            url: "postgresql://svc:p%40ss@db.internal:6543/css_prod?sslmode=require&connect_timeout=3&application_name=sla")
        #expect(configuration.user == "svc" && configuration.password == "p@ss")
        #expect(configuration.host == "db.internal" && configuration.port == 6543 && configuration.database == "css_prod")
        #expect(configuration.sslMode == "require" && configuration.connectTimeoutSeconds == 3)
        #expect(configuration.applicationName == "sla")
        #expect(!configuration.description.contains("p@ss"))
        let keys = configuration.connectionParameters.map(\.0)
        #expect(keys.contains("options") && keys.contains("sslmode") && !keys.contains("conninfo"))
    }

    @Test func malformedValueNamesTheVariable() {
        let error = #expect(throws: ConfigurationError.self) {
            try PostgresConfiguration.fromEnvironment(Environment(["CSS_DATABASE_URL": "mysql://x@y/z"]))
        }
        #expect(error?.variable == "CSS_DATABASE_URL")
        #expect(throws: ServerURL.ParseError.self) { try PostgresConfiguration(url: "postgres://h/db?sslmod=require") }
    }

    @Test func timestampsFormatAsRFC3339UTCWithMicroseconds() {
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 1_772_438_400.25)) == "2026-03-02T08:00:00.250000Z")
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500000Z")
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000000Z")
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 300_000_000_000)) == nil)  // year 11476
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: .infinity)) == nil)
    }

    @Test func timestampsParseFromPostgresOutput() {
        let expected = Date(timeIntervalSince1970: 1_772_438_400)
        #expect(PostgresTimestamp.parse("2026-03-02 08:00:00+00") == expected)
        #expect(PostgresTimestamp.parse("2026-03-02T08:00:00Z") == expected)
        #expect(PostgresTimestamp.parse("2026-03-02 13:30:00+05:30") == expected)
        #expect(PostgresTimestamp.parse("2026-03-02 03:00:00-05") == expected)
        #expect(PostgresTimestamp.parse("2026-03-02 08:00:00") == expected)
        #expect(PostgresTimestamp.parse("2026-03-02 08:00:00.000001+00") == Date(timeIntervalSince1970: 1_772_438_400.000001))
        for bad in ["infinity", "2026-02-30 00:00:00+00", "2026-03-02 08:00:00+00 BC", "2026-3-2", "", "2026-03-02 25:00:00"] {
            #expect(PostgresTimestamp.parse(bad) == nil, "\(bad)")
        }
    }
}
