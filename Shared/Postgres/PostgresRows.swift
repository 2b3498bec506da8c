import Foundation

/// The rows a statement returned, copied into Swift memory before the libpq result was freed.
public struct PostgresRows: Sendable, RandomAccessCollection {
    let storage: Storage
    /// The command tag's row count: rows inserted, updated, deleted or selected.
    public let affectedRows: Int

    public var columns: [String] { storage.columns }
    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.rowCount }

    public subscript(position: Int) -> PostgresRow {
        precondition(position >= 0 && position < storage.rowCount, "row index \(position) out of range")
        return PostgresRow(storage: storage, row: position)
    }

    init(columns: [String], cells: [String?], affectedRows: Int) {
        storage = Storage(columns: columns, cells: cells)
        self.affectedRows = affectedRows
    }

    /// Immutable and shared by every row, so a row is two words and copying rows is free.
    final class Storage: Sendable {
        let columns: [String]
        let columnIndex: [String: Int]
        /// Row-major text values; `nil` is SQL NULL.
        let cells: [String?]
        let rowCount: Int

        init(columns: [String], cells: [String?]) {
            self.columns = columns
            var index: [String: Int] = [:]
            // The first column wins on duplicate names, as in `SELECT a.id, b.id`.
            for (i, name) in columns.enumerated() where index[name] == nil { index[name] = i }
            columnIndex = index
            self.cells = cells
            rowCount = columns.isEmpty ? 0 : cells.count / columns.count
        }
    }
}

/// A column reference: a 0-based index or a column name.
public protocol PostgresColumn: Sendable {
    func resolve(in columns: [String: Int], count: Int) -> Int?
}

extension Int: PostgresColumn {
    public func resolve(in columns: [String: Int], count: Int) -> Int? { self >= 0 && self < count ? self : nil }
}

extension String: PostgresColumn {
    public func resolve(in columns: [String: Int], count: Int) -> Int? { columns[self] }
}

/// A value PostgreSQL's text output can be decoded into.
public protocol PostgresDecodable: Sendable {
    /// `nil` when `text` is not a valid representation.
    static func decode(postgresText text: String) -> Self?
}

extension String: PostgresDecodable {
    public static func decode(postgresText text: String) -> String? { text }
}

extension Int: PostgresDecodable {
    public static func decode(postgresText text: String) -> Int? { Int(text) }
}

extension Int64: PostgresDecodable {
    public static func decode(postgresText text: String) -> Int64? { Int64(text) }
}

extension Double: PostgresDecodable {
    public static func decode(postgresText text: String) -> Double? { Double(text) }
}

extension Bool: PostgresDecodable {
    public static func decode(postgresText text: String) -> Bool? {
        switch text {
        case "t", "true": return true
        case "f", "false": return false
        default: return nil
        }
    }
}

extension Date: PostgresDecodable {
    public static func decode(postgresText text: String) -> Date? { PostgresTimestamp.parse(text) }
}

extension UUID: PostgresDecodable {
    public static func decode(postgresText text: String) -> UUID? { UUID(uuidString: text) }
}

extension Array: PostgresDecodable where Element == UInt8 {
    /// bytea in hex output (`\x0aff`), which the connection selects with `bytea_output=hex`.
    public static func decode(postgresText text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            return nil
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var i = 2
        while i < utf8.count {
            guard let hi = hexValue(utf8[i]), let lo = hexValue(utf8[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            i += 2
        }
        return bytes
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// One row of `PostgresRows`, decoded by column index or name.
///
/// Every decoder throws `PostgresError` `decode_failed` naming the column when the column
/// does not exist, is NULL (for the non-optional forms) or does not hold that type.
public struct PostgresRow: Sendable {
    let storage: PostgresRows.Storage
    let row: Int

    public var columns: [String] { storage.columns }

    /// The column's text as PostgreSQL sent it, `nil` for NULL.
    public func raw(_ column: some PostgresColumn) throws -> String? {
        try storage.cells[row * storage.columns.count + index(column)]
    }

    public func isNull(_ column: some PostgresColumn) throws -> Bool { try raw(column) == nil }

    /// Decodes a non-NULL column.
    public func decode<T: PostgresDecodable>(_ type: T.Type, _ column: some PostgresColumn) throws -> T {
        guard let value = try decodeIfPresent(type, column) else {
            throw failure(column, "is NULL, expected \(T.self)")
        }
        return value
    }

    /// Decodes a column, `nil` for NULL.
    public func decodeIfPresent<T: PostgresDecodable>(_ type: T.Type, _ column: some PostgresColumn) throws -> T? {
        guard let text = try raw(column) else { return nil }
        guard let value = T.decode(postgresText: text) else {
            let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
            throw failure(column, "cannot decode \"\(shown)\" as \(T.self)")
        }
        return value
    }

    public func string(_ column: some PostgresColumn) throws -> String { try decode(String.self, column) }
    public func int(_ column: some PostgresColumn) throws -> Int { try decode(Int.self, column) }
    public func int64(_ column: some PostgresColumn) throws -> Int64 { try decode(Int64.self, column) }
    public func double(_ column: some PostgresColumn) throws -> Double { try decode(Double.self, column) }
    public func bool(_ column: some PostgresColumn) throws -> Bool { try decode(Bool.self, column) }
    public func date(_ column: some PostgresColumn) throws -> Date { try decode(Date.self, column) }
    public func uuid(_ column: some PostgresColumn) throws -> UUID { try decode(UUID.self, column) }
    public func bytes(_ column: some PostgresColumn) throws -> [UInt8] { try decode([UInt8].self, column) }

    public func optionalString(_ column: some PostgresColumn) throws -> String? { try decodeIfPresent(String.self, column) }
    public func optionalInt(_ column: some PostgresColumn) throws -> Int? { try decodeIfPresent(Int.self, column) }
    public func optionalInt64(_ column: some PostgresColumn) throws -> Int64? { try decodeIfPresent(Int64.self, column) }
    public func optionalDouble(_ column: some PostgresColumn) throws -> Double? { try decodeIfPresent(Double.self, column) }
    public func optionalBool(_ column: some PostgresColumn) throws -> Bool? { try decodeIfPresent(Bool.self, column) }
    public func optionalDate(_ column: some PostgresColumn) throws -> Date? { try decodeIfPresent(Date.self, column) }
    public func optionalUUID(_ column: some PostgresColumn) throws -> UUID? { try decodeIfPresent(UUID.self, column) }
    public func optionalBytes(_ column: some PostgresColumn) throws -> [UInt8]? { try decodeIfPresent([UInt8].self, column) }

    private func index(_ column: some PostgresColumn) throws -> Int {
        guard let i = column.resolve(in: storage.columnIndex, count: storage.columns.count) else {
            throw PostgresError(
                code: PostgresError.decodeFailed,
                message: "no column \(describe(column)); the row has \(storage.columns.joined(separator: ", "))")
        }
        return i
    }

    private func failure(_ column: some PostgresColumn, _ problem: String) -> PostgresError {
        PostgresError(code: PostgresError.decodeFailed, message: "column \(describe(column)) \(problem)", column: name(column))
    }

    private func name(_ column: some PostgresColumn) -> String? {
        column.resolve(in: storage.columnIndex, count: storage.columns.count).map { storage.columns[$0] }
    }

    private func describe(_ column: some PostgresColumn) -> String {
        if let i = column as? Int {
            return i >= 0 && i < storage.columns.count ? "\"\(storage.columns[i])\" (index \(i))" : "index \(i)"
        }
        return "\"\(column)\""
    }
}
