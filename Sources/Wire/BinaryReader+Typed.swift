import Foundation

/// Typed reads straight from the bytes, for decoders written by hand (``WorkerMessage``'s hot
/// cases): no `BinaryValue` tree, no `Decoder` containers. Each read follows the rules of the
/// generic decoder (`BinaryDecoding`) exactly — which tags a type accepts, the depth limit,
/// every length checked against what is left — so a hand-written decoder accepts and rejects
/// what the generic one does; anything it does not know it skips, or parses as a subtree for
/// the generic decoder (``subtree()``).
extension BinaryReader {
    /// A value of the wrong type, or a missing key.
    struct Mismatch: Error {}

    /// Reads a value's tag, counting it one level deeper (the generic reader's depth: a value
    /// nested k containers deep is at depth k + 1, and none may pass 64).
    mutating func valueTag() throws -> BinaryTag {
        guard depth + 1 <= 64, let tag = BinaryTag(rawValue: try u8()) else { throw Malformed() }
        return tag
    }

    /// Opens a map and returns its entry count; call ``close()`` after its last entry.
    mutating func openMap() throws -> Int {
        guard try valueTag() == .map else { throw Mismatch() }
        let n = try u32()
        guard n <= (bytes.count - at) / 5 else { throw Malformed() }
        depth += 1
        return n
    }

    /// Opens an array and returns its count; call ``close()`` after its last element.
    mutating func openArray() throws -> Int {
        guard try valueTag() == .array else { throw Mismatch() }
        let n = try u32()
        guard n <= bytes.count - at else { throw Malformed() }
        depth += 1
        return n
    }

    mutating func close() { depth -= 1 }

    /// A map's key as raw UTF-8, for comparing with known names without making a `String`.
    mutating func key() throws -> UnsafeRawBufferPointer {
        let n = try u32()
        guard n <= bytes.count - at else { throw Malformed() }
        defer { at += n }
        return UnsafeRawBufferPointer(rebasing: bytes[at..<at + n])
    }

    /// Skips one value, checking its structure as the generic reader would.
    mutating func skip() throws {
        _ = try subtree()
    }

    /// One value as a tree, for the generic decoder (rare fields: outputs, a verdict).
    mutating func subtree() throws -> BinaryValue {
        try value()
    }

    /// Whether the next value is null; consumes it if so.
    mutating func readNull() throws -> Bool {
        guard at < bytes.count else { throw Malformed() }
        guard bytes[at] == BinaryTag.null.rawValue else { return false }
        _ = try valueTag()
        return true
    }

    mutating func readString() throws -> String {
        guard try valueTag() == .string else { throw Mismatch() }
        return try string()
    }

    /// An `Int` as the generic decoder reads one: a signed value, or an unsigned one that fits.
    mutating func readInt() throws -> Int {
        switch try valueTag() {
        case .int: return Int(Int64(bitPattern: try u64()))
        case .uint:
            let u = try u64()
            guard u <= UInt64(Int64.max) else { throw Mismatch() }
            return Int(u)
        default: throw Mismatch()
        }
    }

    /// A `Double`: a double, or a signed integer (as the generic decoder widens one).
    mutating func readDouble() throws -> Double {
        switch try valueTag() {
        case .double: return Double(bitPattern: try u64())
        case .int: return Double(Int64(bitPattern: try u64()))
        default: throw Mismatch()
        }
    }

    mutating func readBool() throws -> Bool {
        switch try valueTag() {
        case .bfalse: return false
        case .btrue: return true
        default: throw Mismatch()
        }
    }

    /// A string-backed enum (`Role`, `AttemptEnd`): an unknown raw value is an error.
    mutating func readRaw<R: RawRepresentable>(_ type: R.Type) throws -> R where R.RawValue == String {
        guard let r = R(rawValue: try readString()) else { throw Mismatch() }
        return r
    }
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes are `name`'s UTF-8 (a map key against a known field name).
    @inline(__always) func isKey(_ name: StaticString) -> Bool {
        count == name.utf8CodeUnitCount && (count == 0 || memcmp(baseAddress!, name.utf8Start, count) == 0)
    }
}
