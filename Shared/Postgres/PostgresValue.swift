import Foundation

/// A statement parameter, sent to the server apart from the SQL text (`$1`, `$2`, ...).
///
/// Every case carries its PostgreSQL type, so the server never has to guess: a `.json`
/// goes into a `jsonb` column, a `.uuid` into a `uuid` column. Literals work where a
/// value is expected: `["acme", 3, true, nil]`.
public enum PostgresValue: Sendable, Hashable {
    case null
    /// `text`. PostgreSQL text cannot hold NUL, so a string containing U+0000 is refused.
    case string(String)
    /// `int8`. Pass `$1::int` where a function wants `int4`.
    case int(Int)
    /// `int8`.
    case int64(Int64)
    /// `float8`.
    case double(Double)
    case bool(Bool)
    /// `timestamptz`, sent as RFC 3339 in UTC with microseconds.
    case date(Date)
    case uuid(UUID)
    /// `bytea`.
    case bytes([UInt8])
    /// `jsonb`, from JSON text the caller has already encoded.
    case json(String)

    /// `value` or `.null`.
    public static func optional(_ value: String?) -> PostgresValue { value.map(PostgresValue.string) ?? .null }
    /// `value` or `.null`.
    public static func optional(_ value: Int?) -> PostgresValue { value.map(PostgresValue.int) ?? .null }
    /// `value` or `.null`.
    public static func optional(_ value: Date?) -> PostgresValue { value.map(PostgresValue.date) ?? .null }
    /// `value` or `.null`.
    public static func optional(_ value: UUID?) -> PostgresValue { value.map(PostgresValue.uuid) ?? .null }
}

extension PostgresValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// How one parameter travels: its type OID, wire format and bytes.
struct EncodedParameter {
    var type: UInt32
    /// 0 = text, 1 = binary.
    var format: Int32
    /// `nil` for SQL NULL.
    var bytes: [UInt8]?

    // Type OIDs from pg_type.dat; they are fixed for the built-in types.
    static let unknownOID: UInt32 = 0
    static let boolOID: UInt32 = 16
    static let byteaOID: UInt32 = 17
    static let int8OID: UInt32 = 20
    static let textOID: UInt32 = 25
    static let float8OID: UInt32 = 701
    static let timestamptzOID: UInt32 = 1184
    static let uuidOID: UInt32 = 2950
    static let jsonbOID: UInt32 = 3802

    /// - Throws: `PostgresError` `invalid_parameter` for text with NUL or an unrepresentable date.
    init(_ value: PostgresValue, position: Int) throws {
        switch value {
        case .null:
            self.init(type: Self.unknownOID, format: 0, bytes: nil)
        case .string(let s):
            self.init(type: Self.textOID, format: 0, bytes: try Self.text(s, position: position))
        case .json(let s):
            self.init(type: Self.jsonbOID, format: 0, bytes: try Self.text(s, position: position))
        case .int(let i):
            self.init(type: Self.int8OID, format: 0, bytes: Array(String(i).utf8))
        case .int64(let i):
            self.init(type: Self.int8OID, format: 0, bytes: Array(String(i).utf8))
        case .double(let d):
            // Swift prints the shortest text that reads back to the same Double; "nan"/"inf" PostgreSQL accepts too.
            self.init(type: Self.float8OID, format: 0, bytes: Array(String(d).utf8))
        case .bool(let b):
            self.init(type: Self.boolOID, format: 0, bytes: Array((b ? "t" : "f").utf8))
        case .date(let date):
            guard let text = PostgresTimestamp.format(date) else {
                throw PostgresError(
                    code: PostgresError.invalidParameter,
                    message: "parameter $\(position) is a date outside years 1 to 9999 or not finite")
            }
            self.init(type: Self.timestamptzOID, format: 0, bytes: Array(text.utf8))
        case .uuid(let uuid):
            self.init(type: Self.uuidOID, format: 0, bytes: Array(uuid.uuidString.lowercased().utf8))
        case .bytes(let bytes):
            // Binary format: raw bytes need no hex encoding and may contain NUL, since the length is passed.
            self.init(type: Self.byteaOID, format: 1, bytes: bytes)
        }
    }

    private init(type: UInt32, format: Int32, bytes: [UInt8]?) {
        self.type = type
        self.format = format
        self.bytes = bytes
    }

    private static func text(_ s: String, position: Int) throws -> [UInt8] {
        let bytes = Array(s.utf8)
        // libpq would stop at the NUL and store a silently truncated value.
        if bytes.contains(0) {
            throw PostgresError(
                code: PostgresError.invalidParameter,
                message: "parameter $\(position) contains a NUL character (U+0000), which PostgreSQL text cannot store")
        }
        return bytes
    }
}
