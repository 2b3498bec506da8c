import CLibPQ

/// NUL-terminated C buffers that stay at one address until this object is released.
///
/// `[String]` → `[UnsafePointer<CChar>]` conversions only live for the duration of one
/// closure, and nesting one `withCString` per element does not scale to an array; so,
/// like Kitura's `PostgreSQLParameterSet`, the bytes are copied once into allocations
/// this object owns, and the libpq call happens while the object is alive.
final class CBufferArray {
    let count: Int
    /// `count` pointers followed by a terminating `nil` (what `PQconnectdbParams` expects).
    let pointers: UnsafeMutablePointer<UnsafePointer<CChar>?>
    /// The byte length of each buffer, without the terminating NUL (0 for `nil`).
    let lengths: UnsafeMutablePointer<Int32>

    init(_ buffers: [[UInt8]?]) {
        count = buffers.count
        pointers = .allocate(capacity: count + 1)
        lengths = .allocate(capacity: max(count, 1))
        for (i, buffer) in buffers.enumerated() {
            guard let buffer else {
                pointers[i] = nil
                lengths[i] = 0
                continue
            }
            let storage = UnsafeMutablePointer<CChar>.allocate(capacity: buffer.count + 1)
            buffer.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(storage).copyMemory(from: raw.baseAddress ?? UnsafeRawPointer(storage), byteCount: raw.count)
            }
            storage[buffer.count] = 0
            pointers[i] = UnsafePointer(storage)
            lengths[i] = Int32(buffer.count)
        }
        pointers[count] = nil
    }

    convenience init(strings: [String]) {
        self.init(strings.map { Array($0.utf8) })
    }

    deinit {
        for i in 0..<count {
            if let p = pointers[i] { UnsafeMutablePointer(mutating: p).deallocate() }
        }
        pointers.deallocate()
        lengths.deallocate()
    }
}

/// The four parallel arrays `PQexecParams` reads, owned for the duration of the call.
final class ParameterSet {
    let count: Int32
    let values: CBufferArray
    let types: UnsafeMutablePointer<Oid>
    let formats: UnsafeMutablePointer<Int32>

    /// - Throws: `PostgresError` `invalid_parameter` before anything is allocated or sent.
    init(_ parameters: [PostgresValue]) throws {
        let encoded = try parameters.enumerated().map { try EncodedParameter($0.element, position: $0.offset + 1) }
        guard encoded.count <= Int(Int16.max) else {
            // The protocol counts parameters in 16 bits.
            throw PostgresError(
                code: PostgresError.invalidParameter,
                message: "\(encoded.count) parameters is more than PostgreSQL's limit of 32767")
        }
        count = Int32(encoded.count)
        values = CBufferArray(encoded.map(\.bytes))
        types = .allocate(capacity: max(encoded.count, 1))
        formats = .allocate(capacity: max(encoded.count, 1))
        for (i, p) in encoded.enumerated() {
            types[i] = p.type
            formats[i] = p.format
        }
    }

    deinit {
        types.deallocate()
        formats.deallocate()
    }
}
