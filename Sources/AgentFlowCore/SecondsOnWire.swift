/// A span that is encoded as seconds (one `Double`, what the wire and stored rows have always
/// carried) and decoded through ``Swift/Duration/clampedSeconds(_:)``: a hostile or broken peer's
/// NaN, infinity or negative becomes a span in 0…30 days, never a trap.
@propertyWrapper
public struct SecondsOnWire: Codable, Sendable, Hashable {
    public var wrappedValue: Duration

    public init(wrappedValue: Duration) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        wrappedValue = .clampedSeconds(try decoder.singleValueContainer().decode(Double.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(wrappedValue.seconds)
    }
}

/// An optional span encoded like ``SecondsOnWire``, its key left out when nil (what the
/// synthesized coder does with an optional field); an absent key reads as nil.
@propertyWrapper
public struct SecondsOnWireIfPresent: Codable, Sendable, Hashable {
    public var wrappedValue: Duration?

    public init(wrappedValue: Duration?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : .clampedSeconds(try c.decode(Double.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue.seconds) } else { try c.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// An absent key is nil (the synthesized decoder would call this for the wrapper and throw).
    public func decode(_ type: SecondsOnWireIfPresent.Type, forKey key: Key) throws -> SecondsOnWireIfPresent {
        try decodeIfPresent(type, forKey: key) ?? SecondsOnWireIfPresent(wrappedValue: nil)
    }
}

extension KeyedEncodingContainer {
    /// Nil leaves the key out, as an optional field does.
    public mutating func encode(_ value: SecondsOnWireIfPresent, forKey key: Key) throws {
        guard value.wrappedValue != nil else { return }
        try encodeIfPresent(value, forKey: key)
    }
}
