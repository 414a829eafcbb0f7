import Crypto
import Foundation

/// Bytes named by their SHA-256: a packed input tree or a packed set of outputs. Equal
/// content, equal name, so a worker that has a blob never needs it sent again.
///
/// It encodes as `{"sha256": HEX, "base64": TEXT}`; decoding recomputes the hash and refuses a
/// body that does not match its name (a corrupted or forged message).
public struct Blob: Codable, Sendable, Equatable, Hashable {
    public let sha256: String
    public let data: Data

    public init(_ data: Data) {
        self.data = data
        self.sha256 = Self.hash(data)
    }

    /// Lowercase hex SHA-256 of `data`.
    public static func hash(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `s` looks like a SHA-256 name (64 lowercase hex digits).
    public static func isHash(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    enum CodingKeys: String, CodingKey { case sha256, base64 }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .sha256)
        guard let data = Data(base64Encoded: try c.decode(String.self, forKey: .base64)) else {
            throw DecodingError.dataCorruptedError(forKey: .base64, in: c, debugDescription: "not base64")
        }
        guard Self.hash(data) == name else {
            throw DecodingError.dataCorruptedError(forKey: .sha256, in: c, debugDescription: "the body's SHA-256 is not its name")
        }
        self.data = data
        self.sha256 = name
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sha256, forKey: .sha256)
        try c.encode(data.base64EncodedString(), forKey: .base64)
    }

    /// A short name for messages: the first 12 hex digits.
    public var shortName: String { String(sha256.prefix(12)) }
}
