import Testing
@testable import CSSSupport

@Suite struct BackoffTests {
    @Test func growsByFactorAndCaps() {
        let backoff = Backoff(base: .milliseconds(100), factor: 1.25, cap: .seconds(1), jitter: 0)
        #expect(backoff.nominalDelay(attempt: 0) == .milliseconds(100))
        #expect(backoff.nominalDelay(attempt: 1) == .milliseconds(125))
        #expect(backoff.nominalDelay(attempt: 100) == .seconds(1))
        #expect(backoff.nominalDelay(attempt: Int.max) == .seconds(1))
    }

    @Test func jitterStaysWithinThreePercent() {
        let backoff = Backoff(base: .seconds(1), factor: 2, cap: .seconds(1), jitter: 0.03)
        for attempt in 0..<200 {
            let d = Backoff.seconds(backoff.delay(attempt: attempt))
            #expect(d >= 0.97 && d <= 1.03)
        }
    }
}

@Suite struct ServerURLTests {
    @Test func parsesAMQPDefaultWithEncodedVhost() throws {
        let url = try ServerURL(parsing: "amqp://guest:guest@127.0.0.1:5672/%2F", schemes: ["amqp"])
        #expect(url.user == "guest" && url.password == "guest")
        #expect(url.host == "127.0.0.1" && url.port == 5672)
        #expect(url.path == "/")
    }

    @Test func parsesPostgresWithoutPasswordOrPort() throws {
        let url = try ServerURL(parsing: "postgres://css@localhost/css?sslmode=disable", schemes: ["postgres", "postgresql"])
        #expect(url.user == "css" && url.password == nil)
        #expect(url.port == nil && url.path == "css")
        #expect(url.query["sslmode"] == "disable")
    }

    @Test func decodesReservedCharactersInPassword() throws {
        let url = try ServerURL(parsing: "postgres://u:p%40ss%3Aw@[::1]:6543/db", schemes: ["postgres"])
        #expect(url.password == "p@ss:w")
        #expect(url.host == "::1" && url.port == 6543)
    }

    @Test(arguments: [
        "127.0.0.1:5672",
        "http://h/",
        "amqp://h:99999/",
        "amqp://h:abc/",
        "amqp:///vhost",
        "amqp://u:%zz@h/",
    ])
    func refusesMalformed(_ text: String) {
        #expect(throws: ServerURL.ParseError.self) { try ServerURL(parsing: text, schemes: ["amqp"]) }
    }
}

@Suite struct EnvironmentTests {
    @Test func namesTheVariableOnBadValues() {
        let env = Environment(["CSS_PREFETCH": "lots", "CSS_FLAG": "maybe"])
        #expect(throws: ConfigurationError.self) { try env.int("CSS_PREFETCH", default: 1, range: 1...10) }
        do {
            _ = try env.bool("CSS_FLAG", default: false)
            Issue.record("expected an error")
        } catch let error as ConfigurationError {
            #expect(error.variable == "CSS_FLAG")
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(env.string("CSS_MISSING", default: "d") == "d")
        #expect(throws: ConfigurationError.self) { try env.requiredString("CSS_MISSING") }
    }
}
