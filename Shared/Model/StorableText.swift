/// Text that PostgreSQL can store: `text` and `jsonb` refuse the NUL character
/// (SQLSTATE 22P05), so a NUL anywhere in what a message carries must be refused at
/// validation, with a field path, before it reaches a statement.
public enum StorableText {
    /// Whether `s` can be stored in a `text` or `jsonb` column.
    public static func isStorable(_ s: String) -> Bool {
        !s.utf8.contains(0)
    }

    /// `s` with every NUL written as the six characters `\u0000`: for logs, error
    /// messages and dead-letter headers that describe hostile input without carrying it.
    public static func escaped(_ s: String) -> String {
        isStorable(s) ? s : s.replacingOccurrences(of: "\u{0}", with: "\\u0000")
    }

    /// The JSON path of the first string or object key in `value` that holds a NUL
    /// (`summary`, `contacts[1].email`, `data.note`), nil when there is none.
    ///
    /// A key holding a NUL is named by its escaped form.
    public static func firstNUL(in value: JSONValue, path: String = "") -> String? {
        switch value {
        case .string(let s):
            return isStorable(s) ? nil : (path.isEmpty ? "(body)" : path)
        case .array(let items):
            for (i, item) in items.enumerated() {
                if let found = firstNUL(in: item, path: "\(path)[\(i)]") { return found }
            }
            return nil
        case .object(let object):
            for (key, item) in object {
                let child = path.isEmpty ? escaped(key) : "\(path).\(escaped(key))"
                if !isStorable(key) { return child }
                if let found = firstNUL(in: item, path: child) { return found }
            }
            return nil
        case .null, .bool, .number:
            return nil
        }
    }

    /// The `invalid_field` error for a NUL at `field`.
    public static func nulError(_ field: String) -> CommandError {
        CommandError(code: ErrorCode.invalidField, field: field, message: "\(field) contains a NUL character, which cannot be stored")
    }
}
