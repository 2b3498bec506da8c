/// One-dimensional arrays as statement parameters, in PostgreSQL's array text form.
///
/// Set-based statements (`INSERT ... SELECT FROM unnest($1::text[], $2::int8[])`) send a
/// whole batch in one round trip instead of one statement per row. The value is still a
/// parameter (never spliced into SQL); cast it in the statement: `$1::text[]`.
public enum PostgresArray {
    /// A `text[]`, `jsonb[]`, `timestamptz[]` ... literal from optional strings (nil is NULL).
    public static func text(_ elements: [String?]) -> PostgresValue {
        // Built on UTF-8 bytes: a batch's arrays are most of the runtime's own CPU per command.
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (i, e) in elements.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            guard let e else { out += Array("NULL".utf8); continue }
            out.append(UInt8(ascii: "\""))
            for b in e.utf8 {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                out.append(b)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return .string(String(decoding: out, as: UTF8.self))
    }

    public static func text(_ elements: [String]) -> PostgresValue {
        text(elements.map { Optional($0) })
    }

    /// An `int8[]` literal.
    public static func int64(_ elements: [Int64]) -> PostgresValue {
        .string("{" + elements.map(String.init).joined(separator: ",") + "}")
    }

    /// A `bool[]` literal.
    public static func bool(_ elements: [Bool]) -> PostgresValue {
        .string("{" + elements.map { $0 ? "t" : "f" }.joined(separator: ",") + "}")
    }

    /// A `bytea[]` literal (hex form): `{"\\x0a1b",...}`.
    public static func bytes(_ elements: [[UInt8]]) -> PostgresValue {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(elements.reduce(2) { $0 + $1.count * 2 + 6 })
        for (i, bytes) in elements.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            // "\x" inside a quoted element: the backslash itself is escaped.
            out += [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "\\"), UInt8(ascii: "x")]
            for b in bytes {
                out.append(digits[Int(b >> 4)])
                out.append(digits[Int(b & 0xF)])
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return .string(String(decoding: out, as: UTF8.self))
    }
}
