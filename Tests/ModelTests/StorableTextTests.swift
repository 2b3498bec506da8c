import CSSModel
import Foundation
import Testing

/// Issue 6, item 1: text PostgreSQL cannot store is found before any statement.
@Suite struct StorableTextTests {
    @Test func findsTheFirstNULWithItsPath() throws {
        #expect(StorableText.firstNUL(in: try JSONValue.parse(#"{"kind":"\u0000"}"#)) == "kind")
        #expect(StorableText.firstNUL(in: try JSONValue.parse(#"{"a":[1,{"b":"x\u0000y"}]}"#)) == "a[1].b")
        #expect(StorableText.firstNUL(in: try JSONValue.parse(#"{"k\u0000":1}"#)) == "k\\u0000")
        #expect(StorableText.firstNUL(in: try JSONValue.parse(#""\u0000""#)) == "(body)")
        #expect(StorableText.firstNUL(in: try JSONValue.parse(#"{"emoji":"🚀","sql":"'; DROP TABLE x; --"}"#)) == nil)
    }

    @Test func escapesNULForLogsAndHeaders() {
        #expect(StorableText.escaped("a\u{0}b") == "a\\u0000b")
        #expect(StorableText.isStorable(StorableText.escaped("\u{0}\u{0}")))
        #expect(StorableText.nulError("message_id").code == ErrorCode.invalidField)
    }

    @Test func yearZeroIsNotATimeTheContractAccepts() {
        #expect(RFC3339.parse("0000-01-01T00:00:00Z") == nil)
        #expect(RFC3339.parse("0001-01-01T00:00:00Z") != nil)
    }
}
