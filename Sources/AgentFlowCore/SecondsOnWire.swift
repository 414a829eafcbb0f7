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
