/// Takes secrets out of text that is kept (transcripts): the secrets this process knows — the
/// configured backend keys and secret headers, HTTP tokens — wherever they appear, and strings in
/// two well-known key formats:
///
/// - `sk-` starting a word, followed by at least 20 characters of `A–Z a–z 0–9 _ -` (OpenAI,
///   Anthropic and LiteLLM keys): becomes `sk-[redacted]`;
/// - `Bearer` and a space, followed by a token of at least 8 characters of the RFC 6750 alphabet
///   (`A–Z a–z 0–9 - . _ ~ + / =`) holding a digit, or of at least 24 characters: becomes
///   `Bearer [redacted]`.
///
/// Nothing broader: the model's own text stays verbatim (`sk-learn`, `task-1`, "Bearer of bad
/// news" are left alone).
///
/// ```swift
/// let r = SecretRedactor(secrets: ["hunter2-key"])
/// r.redact("key=hunter2-key, Authorization: Bearer abc123def456")
/// // "key=[redacted], Authorization: Bearer [redacted]"
/// ```
public struct SecretRedactor: Sendable {
    /// Known secrets, longest first (a secret inside a longer one must not leave a tail behind).
    public let secrets: [String]

    /// `secrets` shorter than ``minimumSecretLength`` are ignored: they would cut ordinary words.
    public init(secrets: [String] = []) {
        self.secrets = Array(Set(secrets.filter { $0.utf8.count >= Self.minimumSecretLength })).sorted { $0.utf8.count > $1.utf8.count }
    }

    public static let minimumSecretLength = 6
    public static let marker = "[redacted]"

    /// A redactor that also knows `more`.
    public func adding(_ more: [String]) -> SecretRedactor { SecretRedactor(secrets: secrets + more) }

    public func redact(_ text: String) -> String {
        var out = text
        for secret in secrets where out.contains(secret) {
            out = out.replacingOccurrences(of: secret, with: Self.marker)
        }
        guard out.utf8.contains(UInt8(ascii: "s")) || out.utf8.contains(UInt8(ascii: "B")) else { return out }
        return Self.redactFormats(out)
    }

    // MARK: - The two formats, by a scan over the UTF-8 bytes (no regex: transcripts are long)

    static func isKeyByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2D
    }

    static func isTokenByte(_ b: UInt8) -> Bool {
        isKeyByte(b) || b == 0x2E || b == 0x7E || b == 0x2B || b == 0x2F || b == 0x3D
    }

    static let sk = Array("sk-".utf8)
    static let bearer = Array("Bearer".utf8)

    static func redactFormats(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var changed = false
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            // sk-KEY at the start of a word.
            if b == 0x73, i + 3 <= n, bytes[i + 1] == 0x6B, bytes[i + 2] == 0x2D, i == 0 || !isKeyByte(bytes[i - 1]) {
                var j = i + 3
                while j < n && isKeyByte(bytes[j]) { j += 1 }
                if j - (i + 3) >= 20 {
                    out += sk + Array(marker.utf8)
                    changed = true
                    i = j
                    continue
                }
            }
            // Bearer TOKEN.
            if b == 0x42, i + 7 <= n, Array(bytes[i..<(i + 6)]) == bearer, i == 0 || !isKeyByte(bytes[i - 1]) {
                var j = i + 6
                var spaces = 0
                while j < n && (bytes[j] == 0x20 || bytes[j] == 0x09) && spaces < 8 {
                    j += 1
                    spaces += 1
                }
                let start = j
                var digit = false
                while j < n && isTokenByte(bytes[j]) {
                    if bytes[j] >= 0x30 && bytes[j] <= 0x39 { digit = true }
                    j += 1
                }
                let length = j - start
                if spaces > 0, length >= 24 || (length >= 8 && digit) {
                    out += bytes[i..<start] + Array(marker.utf8)
                    changed = true
                    i = j
                    continue
                }
            }
            out.append(b)
            i += 1
        }
        return changed ? String(decoding: out, as: UTF8.self) : text
    }
}
