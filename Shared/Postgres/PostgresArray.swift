/// One-dimensional arrays as statement parameters, in PostgreSQL's array text form.
///
/// Set-based statements (`INSERT ... SELECT FROM unnest($1::text[], $2::int8[])`) send a
/// whole batch in one round trip instead of one statement per row. The value is still a
/// parameter (never spliced into SQL); cast it in the statement: `$1::text[]`.
public enum PostgresArray {
    /// A `text[]`, `jsonb[]`, `timestamptz[]` ... literal from optional strings (nil is NULL).
    public static func text(_ elements: [String?]) -> PostgresValue {
        var out = "{"
        out.reserveCapacity(elements.count * 16)
        for (i, e) in elements.enumerated() {
            if i > 0 { out += "," }
            guard let e else { out += "NULL"; continue }
            out += "\""
            for ch in e.unicodeScalars {
                if ch == "\"" || ch == "\\" { out += "\\" }
                out.unicodeScalars.append(ch)
            }
            out += "\""
        }
        out += "}"
        return .string(out)
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

    /// A `bytea[]` literal (hex form).
    public static func bytes(_ elements: [[UInt8]]) -> PostgresValue {
        let digits: [Character] = Array("0123456789abcdef")
        return text(elements.map { bytes -> String? in
            var s = "\\x"
            s.reserveCapacity(2 + bytes.count * 2)
            for b in bytes {
                s.append(digits[Int(b >> 4)])
                s.append(digits[Int(b & 0xF)])
            }
            return s
        })
    }
}
