import CSSSupport

/// Where and how to connect to PostgreSQL.
///
/// Settings come from one URL, `CSS_DATABASE_URL`
/// (`postgres://user:pass@host:port/db`, default `postgres://css@127.0.0.1:5432/css`).
/// The query part may carry `sslmode`, `application_name` and `connect_timeout`.
public struct PostgresConfiguration: Sendable, Equatable {
    /// The environment variable holding the database URL.
    public static let environmentVariable = "CSS_DATABASE_URL"
    /// The URL used when `CSS_DATABASE_URL` is unset.
    public static let defaultURL = "postgres://css@127.0.0.1:5432/css"

    /// A host name, an IP address, or a Unix socket directory (starting with `/`).
    public var host: String
    public var port: Int
    /// `nil` lets libpq use its own default (the operating system user).
    public var user: String?
    public var password: String?
    /// `nil` lets libpq use its own default (the user name).
    public var database: String?
    /// Shown in `pg_stat_activity`, so an operator can tell which service holds a backend.
    public var applicationName: String
    /// Seconds libpq waits for a connection to open; PostgreSQL's own granularity is seconds.
    public var connectTimeoutSeconds: Int
    /// libpq's `sslmode` (`disable`, `prefer`, `require`, ...); `nil` keeps libpq's default.
    public var sslMode: String?
    /// Sent as the session's `statement_timeout`; `nil` leaves the server's setting alone.
    public var statementTimeout: Duration?
    /// The delays between reconnect attempts.
    public var backoff: Backoff
    /// How many times one call tries to open a connection before it reports `connection_failed`.
    public var connectAttempts: Int

    public init(
        host: String = "127.0.0.1", port: Int = 5432, user: String? = nil, password: String? = nil,
        database: String? = nil, applicationName: String = "css", connectTimeoutSeconds: Int = 5,
        sslMode: String? = nil, statementTimeout: Duration? = nil, backoff: Backoff = Backoff(),
        connectAttempts: Int = 8
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.applicationName = applicationName
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.sslMode = sslMode
        self.statementTimeout = statementTimeout
        self.backoff = backoff
        self.connectAttempts = connectAttempts
    }

    /// Reads a `postgres://` or `postgresql://` URL.
    ///
    /// - Parameters:
    ///   - url: `postgres://user:pass@host:port/db?sslmode=require`; parts are percent-decoded.
    ///   - applicationName: used unless the URL sets `application_name`.
    /// - Throws: `ServerURL.ParseError` when the URL is malformed or has an unknown query key.
    public init(url: String, applicationName: String = "css") throws {
        let parsed = try ServerURL(parsing: url, schemes: ["postgres", "postgresql"])
        self.init(
            host: parsed.host, port: parsed.port ?? 5432, user: parsed.user, password: parsed.password,
            database: parsed.path.isEmpty ? nil : parsed.path, applicationName: applicationName)
        for (key, value) in parsed.query {
            switch key {
            case "sslmode": sslMode = value
            case "application_name": self.applicationName = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds >= 0 else {
                    throw ServerURL.ParseError(message: "connect_timeout \"\(value)\" is not a whole number of seconds")
                }
                connectTimeoutSeconds = seconds
            default:
                // Refusing beats ignoring: a typo like `sslmod=require` would otherwise silently connect in clear text.
                throw ServerURL.ParseError(message: "unknown query parameter \"\(key)\" in database URL")
            }
        }
    }

    /// Reads `CSS_DATABASE_URL`, falling back to `postgres://css@127.0.0.1:5432/css`.
    ///
    /// - Throws: `ConfigurationError` naming `CSS_DATABASE_URL` when the value is malformed.
    public static func fromEnvironment(_ environment: Environment, applicationName: String = "css") throws -> PostgresConfiguration {
        let text = environment.string(environmentVariable, default: defaultURL)
        do {
            return try PostgresConfiguration(url: text, applicationName: applicationName)
        } catch let error as ServerURL.ParseError {
            throw ConfigurationError(variable: environmentVariable, message: error.message)
        }
    }

    /// The keyword/value pairs for `PQconnectdbParams`.
    ///
    /// Session settings travel in `options` so they hold from the first statement and
    /// after every reconnect, without a round trip: timestamps come back in UTC ISO form
    /// and bytea as hex, which is what `PostgresRow` parses.
    var connectionParameters: [(String, String)] {
        var pairs: [(String, String)] = [
            ("host", host),
            ("port", String(port)),
            ("application_name", applicationName),
            ("connect_timeout", String(connectTimeoutSeconds)),
            ("client_encoding", "UTF8"),
        ]
        if let user { pairs.append(("user", user)) }
        if let password { pairs.append(("password", password)) }
        if let database { pairs.append(("dbname", database)) }
        if let sslMode { pairs.append(("sslmode", sslMode)) }
        var options = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601 -c bytea_output=hex"
        if let statementTimeout {
            let c = statementTimeout.components
            let milliseconds = c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000
            options += " -c statement_timeout=\(max(milliseconds, 1))"
        }
        pairs.append(("options", options))
        return pairs
    }
}

extension PostgresConfiguration: CustomStringConvertible {
    /// The settings without the password, safe for logs.
    public var description: String {
        let who = user.map { "\($0)\(password == nil ? "" : ":***")@" } ?? ""
        return "postgres://\(who)\(host):\(port)/\(database ?? "") application_name=\(applicationName)"
    }
}
