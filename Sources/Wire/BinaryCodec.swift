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

/// The bytes being written, shared by every container of one `encode` call. Values are written
/// as they are encoded, in one pass: a map or array writes its tag and a 4-byte count of 0 when
/// it is opened and bumps the count in place as entries are added, so no tree of the value is
/// built first. This relies on what every `Encodable` here does (the synthesized ones, and the
/// hand-written ones, which follow the same shape): a nested container is filled before its
/// parent goes on. An `Encodable` that writes nothing encodes as null.
final class BinaryWriter {
    /// Unchecked: the dynamic exclusivity check of a class's stored property, on every tag,
    /// length and byte appended, was about a third of a frame's encoding (perf, 7 Dec). No access
    /// to it overlaps another: each method finishes its own before the next begins (`bump`'s
    /// `withUnsafeMutableBytes` and `putString`'s `withUTF8` touch nothing else of the writer).
    @exclusivity(unchecked) var out: [UInt8] = []

    /// A dispatch or a result of the `sim` backend is about 400 bytes: one allocation, not a
    /// growth and a copy on the way.
    init() { out.reserveCapacity(1024) }

    func tag(_ t: BinaryTag) { out.append(t.rawValue) }

    func put64(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    func put32(_ v: Int) {
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { out.append(contentsOf: $0) }
    }

    func putString(_ s: String) {
        var s = s
        s.withUTF8 { u in
            put32(u.count)
            out.append(contentsOf: u)
        }
    }

    func string(_ s: String) {
        tag(.string)
        putString(s)
    }

    func int(_ v: Int64) {
        tag(.int)
        put64(UInt64(bitPattern: v))
    }

    func uint(_ v: UInt64) {
        tag(.uint)
        put64(v)
    }

    func double(_ v: Double) {
        tag(.double)
        put64(v.bitPattern)
    }

    func bool(_ v: Bool) { tag(v ? .btrue : .bfalse) }

    /// Opens a map or array: its tag and a count of 0; returns where the count is.
    func open(_ t: BinaryTag) -> Int {
        tag(t)
        let at = out.count
        put32(0)
        return at
    }

    /// Adds one to the 4-byte count at `at`.
    func bump(_ at: Int) {
        out.withUnsafeMutableBytes { raw in
            let n = raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)
            raw.storeBytes(of: (UInt32(littleEndian: n) &+ 1).littleEndian, toByteOffset: at, as: UInt32.self)
        }
    }

    /// Writes `value`: scalars directly, anything else through its `encode(to:)`.
    func value<T: Encodable>(_ value: T) throws {
        if writeScalar(value) { return }
        let slot = BinarySlot()
        try value.encode(to: BinaryEncoding(writer: self, slot: slot))
        if case .none = slot.kind { tag(.null) }
    }

    /// Scalars by exact type (a comparison of type metadata, not a dynamic cast per candidate).
    func writeScalar<T>(_ value: T) -> Bool {
        let t = T.self
        if t == String.self { string(unsafeBitCast(value, to: String.self)) }
        else if t == Int.self { int(Int64(unsafeBitCast(value, to: Int.self))) }
        else if t == Double.self { double(unsafeBitCast(value, to: Double.self)) }
        else if t == Bool.self { bool(unsafeBitCast(value, to: Bool.self)) }
        else if t == Int64.self { int(unsafeBitCast(value, to: Int64.self)) }
        else if t == UInt64.self { uint(unsafeBitCast(value, to: UInt64.self)) }
        else if t == Int32.self { int(Int64(unsafeBitCast(value, to: Int32.self))) }
        else if t == UInt32.self { uint(UInt64(unsafeBitCast(value, to: UInt32.self))) }
        else if t == UInt.self { uint(UInt64(unsafeBitCast(value, to: UInt.self))) }
        else if t == Float.self { double(Double(unsafeBitCast(value, to: Float.self))) }
        else if t == Int16.self { int(Int64(unsafeBitCast(value, to: Int16.self))) }
        else if t == Int8.self { int(Int64(unsafeBitCast(value, to: Int8.self))) }
        else if t == UInt16.self { uint(UInt64(unsafeBitCast(value, to: UInt16.self))) }
        else if t == UInt8.self { uint(UInt64(unsafeBitCast(value, to: UInt8.self))) }
        else { return false }
        return true
    }
}

/// What one value's encoder has opened so far.
final class BinarySlot {
    enum Kind {
        case none
        /// A map or an array, its count at `countAt`.
        case container(BinaryTag, countAt: Int)
        case single
    }

    var kind: Kind = .none

    /// Where the count of this value's map or array is: opened now (tag and a count of 0), or
    /// the one already opened when its encoder asks for the same container again.
    func open(_ tag: BinaryTag, in writer: BinaryWriter) -> Int {
        if case .container(let t, let at) = kind, t == tag { return at }
        let at = writer.open(tag)
        kind = .container(tag, countAt: at)
        return at
    }
}

/// Coding paths are not tracked (always empty): building one array per value cost more than
/// the rest of the encoding, and the messages are small enough to find a problem without them.
struct BinaryEncoding: Encoder {
    let writer: BinaryWriter
    let slot: BinarySlot
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedBinaryEncoding<Key>(writer: writer, countAt: slot.open(.map, in: writer)))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedBinaryEncoding(writer: writer, countAt: slot.open(.array, in: writer))
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleBinaryEncoding(writer: writer, slot: slot)
    }
}

struct KeyedBinaryEncoding<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let writer: BinaryWriter
    let countAt: Int
    var codingPath: [any CodingKey] { [] }

    /// Counts one more entry and writes its key; its value follows.
    func key(_ key: Key) {
        writer.bump(countAt)
        writer.putString(key.stringValue)
    }

    mutating func encodeNil(forKey key: Key) throws {
        self.key(key)
        writer.tag(.null)
    }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        self.key(key)
        try writer.value(value)
    }
    mutating func encode(_ value: String, forKey key: Key) throws {
        self.key(key)
        writer.string(value)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws {
        self.key(key)
        writer.int(Int64(value))
    }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        self.key(key)
        writer.double(value)
    }
    mutating func encode(_ value: Bool, forKey key: Key) throws {
        self.key(key)
        writer.bool(value)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        self.key(key)
        return BinaryEncoding(writer: writer, slot: BinarySlot()).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        self.key(key)
        return BinaryEncoding(writer: writer, slot: BinarySlot()).unkeyedContainer()
    }
    /// The returned encoder must write exactly one value (nothing else in this codebase uses it).
    mutating func superEncoder() -> any Encoder {
        self.key(Key(stringValue: "super")!)
        return BinaryEncoding(writer: writer, slot: BinarySlot())
    }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        self.key(key)
        return BinaryEncoding(writer: writer, slot: BinarySlot())
    }
}

struct UnkeyedBinaryEncoding: UnkeyedEncodingContainer {
    let writer: BinaryWriter
    let countAt: Int
    var codingPath: [any CodingKey] { [] }
    private(set) var count = 0

    mutating func next() {
        writer.bump(countAt)
        count += 1
    }

    mutating func encodeNil() throws {
        next()
        writer.tag(.null)
    }
    mutating func encode<T: Encodable>(_ value: T) throws {
        next()
        try writer.value(value)
    }
    mutating func encode(_ value: String) throws {
        next()
        writer.string(value)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        next()
        return BinaryEncoding(writer: writer, slot: BinarySlot()).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        next()
        return BinaryEncoding(writer: writer, slot: BinarySlot()).unkeyedContainer()
    }
    /// The returned encoder must write exactly one value.
    mutating func superEncoder() -> any Encoder {
        next()
        return BinaryEncoding(writer: writer, slot: BinarySlot())
    }
}

struct SingleBinaryEncoding: SingleValueEncodingContainer {
    let writer: BinaryWriter
    let slot: BinarySlot
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws {
        slot.kind = .single
        writer.tag(.null)
    }
    mutating func encode<T: Encodable>(_ value: T) throws {
        slot.kind = .single
        try writer.value(value)
    }
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
        // By exact type: a comparison of type metadata per candidate, not a dynamic cast.
        func cast<V>(_ v: V) -> T { unsafeBitCast(v, to: T.self) }
        let t = T.self
        if t == String.self {
            guard case .string(let s) = value else { throw fail }
            return cast(s)
        }
        if t == Int.self { return cast(try exact(try int()) as Int) }
        if t == Double.self {
            switch value {
            case .double(let d): return cast(d)
            case .int(let i): return cast(Double(i))
            default: throw fail
            }
        }
        if t == Bool.self {
            guard case .bool(let b) = value else { throw fail }
            return cast(b)
        }
        if t == Int64.self { return cast(try int()) }
        if t == UInt64.self { return cast(try uint()) }
        if t == Int32.self { return cast(try exact(try int()) as Int32) }
        if t == UInt32.self { return cast(try exact(try uint()) as UInt32) }
        if t == UInt.self { return cast(try exact(try uint()) as UInt) }
        if t == Int16.self { return cast(try exact(try int()) as Int16) }
        if t == Int8.self { return cast(try exact(try int()) as Int8) }
        if t == UInt16.self { return cast(try exact(try uint()) as UInt16) }
        if t == UInt8.self { return cast(try exact(try uint()) as UInt8) }
        if t == Float.self {
            guard case .double(let d) = value else { throw fail }
            return cast(Float(d))
        }
        return try T(from: BinaryDecoding(value: value, codingPath: path))
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
        let writer = BinaryWriter()
        try writer.value(value)
        return Data(writer.out)
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
