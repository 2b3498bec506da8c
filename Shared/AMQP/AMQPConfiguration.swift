import CSSSupport

/// Where and how to reach RabbitMQ.
public struct AMQPConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var vhost: String
    /// Heartbeat interval negotiated with the broker, in seconds.
    public var heartbeatSeconds: Int
    public var connectTimeoutSeconds: Int
    /// How long a reconnect loop waits between attempts.
    public var backoff: Backoff

    public static let defaultURL = "amqp://guest:guest@127.0.0.1:5672/%2F"

    /// Reads `amqp://user:pass@host:port/vhost`; an empty path is the default vhost `/`.
    public init(url: String, heartbeatSeconds: Int = 30, connectTimeoutSeconds: Int = 5, backoff: Backoff = Backoff()) throws {
        let parsed = try ServerURL(parsing: url, schemes: ["amqp"])
        host = parsed.host
        port = parsed.port ?? 5672
        user = parsed.user ?? "guest"
        password = parsed.password ?? "guest"
        vhost = parsed.path.isEmpty ? "/" : parsed.path
        self.heartbeatSeconds = heartbeatSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.backoff = backoff
    }

    /// `CSS_AMQP_URL` (default ``defaultURL``) and `CSS_AMQP_HEARTBEAT` (seconds, default 30).
    public static func fromEnvironment(_ env: Environment) throws -> AMQPConfiguration {
        let url = env.string("CSS_AMQP_URL", default: defaultURL)
        let heartbeat = try env.int("CSS_AMQP_HEARTBEAT", default: 30, range: 2...600)
        do {
            return try AMQPConfiguration(url: url, heartbeatSeconds: heartbeat)
        } catch let error as ServerURL.ParseError {
            throw ConfigurationError(variable: "CSS_AMQP_URL", message: error.message)
        }
    }

    /// The same broker, another vhost (tests use fresh vhosts).
    public func with(vhost: String) -> AMQPConfiguration {
        var copy = self
        copy.vhost = vhost
        return copy
    }

    public var redactedURL: String {
        "amqp://\(user)@\(host):\(port)/\(vhost == "/" ? "%2F" : vhost)"
    }
}

/// A failure talking to the broker.
public struct AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable code: `connection_failed`, `connection_lost`, `login_failed`,
    /// `channel_closed`, `declare_failed`, `nacked`, `confirm_timeout`, `protocol_error`
    /// (the broker sent frames out of order: the connection is dropped), `publish_failed`, `closed`.
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func closed() -> AMQPError { AMQPError(code: "closed", message: "the connection was closed by this process") }
}
