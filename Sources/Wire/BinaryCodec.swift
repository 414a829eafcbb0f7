import Foundation

/// A compact binary encoding for the `Codable` wire messages: the structure JSON would carry
/// (maps with string keys, arrays, scalars) without text formatting and number parsing, which
/// were the largest part of the coordinator's time per attempt. Self-describing and
/// bounds-checked: malformed or hostile input becomes a `DecodingError`, never a crash.
///
/// Layout: a tag byte, then nothing (null, false, true); 8 bytes little endian (int, uint,
/// double); a 4-byte length and UTF-8 (string); a 4-byte count and the values (array); a
/// 4-byte count and (string, value) pairs (map).
enum BinaryTag: UInt8 {
    case null = 0, bfalse, btrue, int, uint, double, string, array, map
}

/// A parsed value.
indirect enum BinaryValue {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([BinaryValue])
    case map([(String, BinaryValue)])
}

// MARK: - Writing

/// An encoding tree node; containers fill it in, `write` serializes it.
final class BinaryNode {
    enum Kind {
        case empty
        case scalar(BinaryValue)
        case map([(String, BinaryNode)])
        case array([BinaryNode])
    }

    var kind: Kind = .empty

    func write(to out: inout [UInt8]) {
        switch kind {
        case .empty: out.append(BinaryTag.null.rawValue)
        case .scalar(let v): Self.write(v, to: &out)
        case .map(let entries):
            out.append(BinaryTag.map.rawValue)
            Self.put32(entries.count, &out)
            for (k, v) in entries {
                Self.putString(k, &out)
                v.write(to: &out)
            }
        case .array(let items):
            out.append(BinaryTag.array.rawValue)
            Self.put32(items.count, &out)
            for v in items { v.write(to: &out) }
        }
    }

    static func write(_ v: BinaryValue, to out: inout [UInt8]) {
        switch v {
        case .null: out.append(BinaryTag.null.rawValue)
        case .bool(let b): out.append(b ? BinaryTag.btrue.rawValue : BinaryTag.bfalse.rawValue)
        case .int(let i):
            out.append(BinaryTag.int.rawValue)
            put64(UInt64(bitPattern: i), &out)
        case .uint(let u):
            out.append(BinaryTag.uint.rawValue)
            put64(u, &out)
        case .double(let d):
            out.append(BinaryTag.double.rawValue)
            put64(d.bitPattern, &out)
        case .string(let s):
            out.append(BinaryTag.string.rawValue)
            putString(s, &out)
        case .array(let a):
            out.append(BinaryTag.array.rawValue)
            put32(a.count, &out)
            for x in a { write(x, to: &out) }
        case .map(let m):
            out.append(BinaryTag.map.rawValue)
            put32(m.count, &out)
            for (k, x) in m {
                putString(k, &out)
                write(x, to: &out)
            }
        }
    }

    static func put64(_ v: UInt64, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func put32(_ v: Int, _ out: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { out.append(contentsOf: $0) }
    }

    static func putString(_ s: String, _ out: inout [UInt8]) {
        var s = s
        s.withUTF8 { u in
            put32(u.count, &out)
            out.append(contentsOf: u)
        }
    }
}

/// Coding paths are not tracked (always empty): building one array per value cost more than
/// the rest of the encoding, and the messages are small enough to find a problem without them.
struct BinaryEncoding: Encoder {
    let node: BinaryNode
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .map = node.kind {} else { node.kind = .map([]) }
        return KeyedEncodingContainer(KeyedBinaryEncoding<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = node.kind {} else { node.kind = .array([]) }
        return UnkeyedBinaryEncoding(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleBinaryEncoding(node: node, codingPath: codingPath)
    }

    /// Encodes any value into `node`, scalars directly.
    static func encode<T: Encodable>(_ value: T, into node: BinaryNode, path: [any CodingKey]) throws {
        if let s = scalar(value) {
            node.kind = .scalar(s)
        } else {
            try value.encode(to: BinaryEncoding(node: node, codingPath: path))
        }
    }

    static func scalar<T>(_ value: T) -> BinaryValue? {
        switch value {
        case let v as String: return .string(v)
        case let v as Int: return .int(Int64(v))
        case let v as Double: return .double(v)
        case let v as Bool: return .bool(v)
        case let v as Int64: return .int(v)
        case let v as UInt64: return .uint(v)
        case let v as Int32: return .int(Int64(v))
        case let v as UInt32: return .uint(UInt64(v))
        case let v as UInt: return .uint(UInt64(v))
        case let v as Float: return .double(Double(v))
        case let v as Int16: return .int(Int64(v))
        case let v as Int8: return .int(Int64(v))
        case let v as UInt16: return .uint(UInt64(v))
        case let v as UInt8: return .uint(UInt64(v))
        default: return nil
        }
    }
}

struct KeyedBinaryEncoding<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: BinaryNode
    var codingPath: [any CodingKey]

    func append(_ key: Key) -> BinaryNode {
        let child = BinaryNode()
        if case .map(var entries) = node.kind {
            node.kind = .empty
            entries.append((key.stringValue, child))
            node.kind = .map(entries)
        }
        return child
    }

    mutating func encodeNil(forKey key: Key) throws { append(key).kind = .scalar(.null) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try BinaryEncoding.encode(value, into: append(key), path: codingPath)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        BinaryEncoding(node: append(key), codingPath: codingPath).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        BinaryEncoding(node: append(key), codingPath: codingPath).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { BinaryEncoding(node: append(Key(stringValue: "super")!), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { BinaryEncoding(node: append(key), codingPath: codingPath) }
}

struct UnkeyedBinaryEncoding: UnkeyedEncodingContainer {
    let node: BinaryNode
    var codingPath: [any CodingKey]
    var count: Int {
        if case .array(let items) = node.kind { return items.count }
        return 0
    }

    func append() -> BinaryNode {
        let child = BinaryNode()
        if case .array(var items) = node.kind {
            node.kind = .empty
            items.append(child)
            node.kind = .array(items)
        }
        return child
    }

    mutating func encodeNil() throws { append().kind = .scalar(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try BinaryEncoding.encode(value, into: append(), path: codingPath) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        BinaryEncoding(node: append(), codingPath: codingPath).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        BinaryEncoding(node: append(), codingPath: codingPath).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { BinaryEncoding(node: append(), codingPath: codingPath) }
}

struct SingleBinaryEncoding: SingleValueEncodingContainer {
    let node: BinaryNode
    var codingPath: [any CodingKey]

    mutating func encodeNil() throws { node.kind = .scalar(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try BinaryEncoding.encode(value, into: node, path: codingPath) }
}

// MARK: - Reading

/// Parses bytes into a `BinaryValue`, checking every length against what is left.
struct BinaryReader {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    var depth = 0

    struct Malformed: Error {}

    mutating func u8() throws -> UInt8 {
        guard at < bytes.count else { throw Malformed() }
        defer { at += 1 }
        return bytes[at]
    }

    mutating func u64() throws -> UInt64 {
        guard bytes.count - at >= 8 else { throw Malformed() }
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[at..<at + 8])) }
        at += 8
        return UInt64(littleEndian: v)
    }

    mutating func u32() throws -> Int {
        guard bytes.count - at >= 4 else { throw Malformed() }
        var v: UInt32 = 0
        withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[at..<at + 4])) }
        at += 4
        return Int(UInt32(littleEndian: v))
    }

    mutating func string() throws -> String {
        let n = try u32()
        guard n <= bytes.count - at else { throw Malformed() }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<at + n]), as: UTF8.self)
        at += n
        return s
    }

    mutating func value() throws -> BinaryValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 64 else { throw Malformed() }
        guard let tag = BinaryTag(rawValue: try u8()) else { throw Malformed() }
        switch tag {
        case .null: return .null
        case .bfalse: return .bool(false)
        case .btrue: return .bool(true)
        case .int: return .int(Int64(bitPattern: try u64()))
        case .uint: return .uint(try u64())
        case .double: return .double(Double(bitPattern: try u64()))
        case .string: return .string(try string())
        case .array:
            let n = try u32()
            // Every element takes at least one byte, so a count above what is left is a lie.
            guard n <= bytes.count - at else { throw Malformed() }
            var a: [BinaryValue] = []
            a.reserveCapacity(n)
            for _ in 0..<n { a.append(try value()) }
            return .array(a)
        case .map:
            let n = try u32()
            guard n <= (bytes.count - at) / 5 else { throw Malformed() }
            var m: [(String, BinaryValue)] = []
            m.reserveCapacity(n)
            for _ in 0..<n {
                let k = try string()
                m.append((k, try value()))
            }
            return .map(m)
        }
    }
}

struct BinaryDecoding: Decoder {
    let value: BinaryValue
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch(_ what: String) -> DecodingError {
        .typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "expected \(what)"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let entries) = value else { throw mismatch("a map") }
        return KeyedDecodingContainer(KeyedBinaryDecoding<Key>(entries: entries, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch("an array") }
        return UnkeyedBinaryDecoding(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleBinaryDecoding(value: value, codingPath: codingPath) }

    static func decode<T: Decodable>(_ type: T.Type, from value: BinaryValue, path: [any CodingKey]) throws -> T {
        let fail = DecodingError.typeMismatch(T.self, .init(codingPath: path, debugDescription: "wrong scalar type"))
        func int() throws -> Int64 {
            switch value {
            case .int(let i): return i
            case .uint(let u) where u <= UInt64(Int64.max): return Int64(u)
            default: throw fail
            }
        }
        func uint() throws -> UInt64 {
            switch value {
            case .uint(let u): return u
            case .int(let i) where i >= 0: return UInt64(i)
            default: throw fail
            }
        }
        func exact<I: FixedWidthInteger>(_ v: some BinaryInteger) throws -> I {
            guard let r = I(exactly: v) else { throw fail }
            return r
        }
        switch type {
        case is String.Type:
            guard case .string(let s) = value else { throw fail }
            return s as! T
        case is Int.Type: return try exact(try int()) as Int as! T
        case is Double.Type:
            switch value {
            case .double(let d): return d as! T
            case .int(let i): return Double(i) as! T
            default: throw fail
            }
        case is Bool.Type:
            guard case .bool(let b) = value else { throw fail }
            return b as! T
        case is Int64.Type: return try int() as! T
        case is UInt64.Type: return try uint() as! T
        case is Int32.Type: return try exact(try int()) as Int32 as! T
        case is UInt32.Type: return try exact(try uint()) as UInt32 as! T
        case is UInt.Type: return try exact(try uint()) as UInt as! T
        case is Int16.Type: return try exact(try int()) as Int16 as! T
        case is Int8.Type: return try exact(try int()) as Int8 as! T
        case is UInt16.Type: return try exact(try uint()) as UInt16 as! T
        case is UInt8.Type: return try exact(try uint()) as UInt8 as! T
        case is Float.Type:
            guard case .double(let d) = value else { throw fail }
            return Float(d) as! T
        default:
            return try T(from: BinaryDecoding(value: value, codingPath: path))
        }
    }
}

struct KeyedBinaryDecoding<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let entries: [(String, BinaryValue)]
    var codingPath: [any CodingKey]

    var allKeys: [Key] { entries.compactMap { Key(stringValue: $0.0) } }

    func find(_ key: Key) -> BinaryValue? {
        let k = key.stringValue
        for (name, v) in entries where name == k { return v }
        return nil
    }

    func require(_ key: Key) throws -> BinaryValue {
        guard let v = find(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing \(key.stringValue)"))
        }
        return v
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }
    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try require(key) { return true }
        return false
    }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try BinaryDecoding.decode(type, from: try require(key), path: codingPath)
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = find(key) else { return nil }
        if case .null = v { return nil }
        return try BinaryDecoding.decode(type, from: v, path: codingPath)
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try BinaryDecoding(value: try require(key), codingPath: codingPath).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try BinaryDecoding(value: try require(key), codingPath: codingPath).unkeyedContainer()
    }
    func superDecoder() throws -> any Decoder { BinaryDecoding(value: find(Key(stringValue: "super")!) ?? .null, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { BinaryDecoding(value: try require(key), codingPath: codingPath) }
}

struct UnkeyedBinaryDecoding: UnkeyedDecodingContainer {
    let items: [BinaryValue]
    var codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    mutating func next() throws -> BinaryValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "array ended"))
        }
        defer { currentIndex += 1 }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if case .null = items[currentIndex] {
            currentIndex += 1
            return true
        }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try BinaryDecoding.decode(type, from: try next(), path: codingPath) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try BinaryDecoding(value: try next(), codingPath: codingPath).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try BinaryDecoding(value: try next(), codingPath: codingPath).unkeyedContainer()
    }
    mutating func superDecoder() throws -> any Decoder { BinaryDecoding(value: try next(), codingPath: codingPath) }
}

struct SingleBinaryDecoding: SingleValueDecodingContainer {
    let value: BinaryValue
    var codingPath: [any CodingKey]

    func decodeNil() -> Bool {
        if case .null = value { return true }
        return false
    }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try BinaryDecoding.decode(type, from: value, path: codingPath) }
}

/// Encodes and decodes wire messages in the binary format.
public enum BinaryCodec {
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let root = BinaryNode()
        try BinaryEncoding.encode(value, into: root, path: [])
        var out: [UInt8] = []
        out.reserveCapacity(256)
        root.write(to: &out)
        return Data(out)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let value: BinaryValue = try data.withUnsafeBytes { raw in
            var reader = BinaryReader(bytes: raw)
            do {
                let v = try reader.value()
                guard reader.at == raw.count else { throw BinaryReader.Malformed() }
                return v
            } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "malformed binary message at byte \(reader.at)"))
            }
        }
        return try BinaryDecoding.decode(type, from: value, path: [])
    }
}
