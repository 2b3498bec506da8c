import Testing
@testable import CSSModel

@Suite struct JSONParsingTests {
    @Test func parsesNestedDocumentsAndKeepsKeyOrder() throws {
        let v = try JSONValue.parse(#"{"b": [1, 2.5, -3e2, true, false, null], "a": {"x": "y"}}"#)
        #expect(v["b"] == [1, 2.5, -300, true, false, nil])
        #expect(v["a"]?["x"] == "y")
        #expect(v.objectValue?.keys == ["b", "a"])
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let v = try JSONValue.parse(#""a\"b\\c\/\n\u00e9\ud83d\ude80""#)
        #expect(v == .string("a\"b\\c/\né🚀"))
    }

    @Test func tellsBooleansFromNumbers() throws {
        #expect(try JSONValue.parse("true") == .bool(true))
        #expect(try JSONValue.parse("1") == .number(1))
        #expect(try JSONValue.parse("1") != .bool(true))
    }

    @Test(arguments: [
        "", "{", "{\"a\":}", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"abc", "\"\\x\"", "\"\\ud83d\"",
        "{\"a\":1}x", "\"tab\there\"", "nan", "[1 2]",
    ])
    func refusesMalformedText(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func refusesInvalidUTF8WithItsOwnKind() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22]] {
            do {
                _ = try JSONValue.parse(bytes)
                Issue.record("accepted \(bytes)")
            } catch {
                #expect(error.kind == .invalidUTF8)
            }
        }
    }

    @Test func refusesDuplicateKeys() {
        do {
            _ = try JSONValue.parse(#"{"a": 1, "a": 2}"#)
            Issue.record("accepted a duplicate key")
        } catch {
            #expect(error.kind == .duplicateKey)
        }
    }

    @Test func refusesExcessiveNesting() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        do {
            _ = try JSONValue.parse(deep)
            Issue.record("accepted 100 levels")
        } catch {
            #expect(error.kind == .tooDeep)
        }
    }

    @Test func encodesAndParsesBackTheSameValue() throws {
        let value: JSONValue = ["s": "quote \" backslash \\ newline \n ctrl \u{01} emoji 🚀 sql '; DROP TABLE t; --",
                                "n": 42, "f": 0.5, "neg": -7, "b": false, "z": nil, "a": [1, "two", [3]]]
        let text = value.jsonText
        #expect(try JSONValue.parse(text) == value)
        #expect(text.contains("\\u0001"))
        #expect(JSONValue.int(42).jsonText == "42")
    }
}

@Suite struct TimeTests {
    @Test func parsesAndFormatsRFC3339() throws {
        let d = try #require(RFC3339.parse("2026-03-02T08:00:00Z"))
        #expect(d.timeIntervalSince1970 == 1_772_438_400)
        #expect(RFC3339.format(d) == "2026-03-02T08:00:00Z")
        let f = try #require(RFC3339.parse("2026-03-02T08:00:00.125Z"))
        #expect(RFC3339.format(f) == "2026-03-02T08:00:00.125Z")
        let o = try #require(RFC3339.parse("2026-03-02T09:30:00+01:30"))
        #expect(o == d)
    }

    @Test(arguments: ["2026-02-30T00:00:00Z", "2026-03-02 08:00:00Z", "2026-03-02T24:00:00Z", "2026-03-02T08:00:00", "yesterday", "2026-03-02T08:00:00.Z"])
    func refusesInvalidTimes(_ text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func parsesDurations() {
        #expect(ISODuration.parse("PT4H") == 14400)
        #expect(ISODuration.parse("PT2S") == 2)
        #expect(ISODuration.parse("PT0.5S") == 0.5)
        #expect(ISODuration.parse("P1DT30M") == 88200)
        #expect(ISODuration.parse("PT0S") == 0)
        for bad in ["P1Y", "P1M", "PT", "P", "4H", "PT-1H", "PT1.5H", "PTH"] {
            #expect(ISODuration.parse(bad) == nil, "\(bad)")
        }
        #expect(ISODuration.format(seconds: 5400) == "PT1H30M")
    }
}
