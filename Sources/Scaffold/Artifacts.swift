import Foundation

/// Pulls artifacts out of agent history mechanically — access tokens, credentials, ids, URLs,
/// file names, JSON API outputs — so a weak summarizer cannot lose them (DESIGN.md §1).
public enum ArtifactExtractor {
    /// Patterns, most specific first. Each match is kept verbatim.
    static let patterns: [NSRegularExpression] = [
        // key = value credentials and ids: token=..., "api_key": "...", password: ..., user_id=42
        #"(?i)\b[\w-]*(?:token|key|secret|password|passwd|credential|auth|session|cookie|_id|id)\b["']?\s*[:=]\s*["']?[^\s"',;)}\]]+"#,
        // bearer tokens
        #"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"#,
        // UUIDs
        #"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"#,
        // URLs
        #"\bhttps?://[^\s"'<>)\]]+"#,
        // long opaque strings with letters and digits (API keys, hashes, JWT parts)
        #"\b(?=[A-Za-z0-9_\-]*[0-9])(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{20,}\b"#,
        // file names
        #"(?<![\w/.-])(?:[\w.-]+/)*[\w-]+\.(?:py|txt|json|csv|tsv|md|yaml|yml|log|db|sqlite|html|xml|cfg|ini|toml|sh)\b"#,
        // single-line JSON objects (API outputs)
        #"(?m)^\s*\{\s*"[^\n]{2,400}\}\s*$"#,
    ].map { try! NSRegularExpression(pattern: $0) }

    /// Distinct artifacts in order of first appearance, at most `limit` of them; a match
    /// contained in an earlier one is dropped.
    public static func extract(from text: String, limit: Int = 40) -> [String] {
        var found: [(offset: Int, text: String)] = []
        let range = NSRange(text.startIndex..., in: text)
        for pattern in patterns {
            for match in pattern.matches(in: text, range: range) {
                guard let r = Range(match.range, in: text) else { continue }
                let value = text[r].trimmingCharacters(in: .whitespaces)
                if value.isEmpty { continue }
                found.append((match.range.location, value))
            }
        }
        found.sort { $0.offset < $1.offset }
        var result: [String] = []
        for item in found {
            if result.contains(where: { $0.contains(item.text) }) { continue }
            result.removeAll { item.text.contains($0) }
            result.append(item.text)
            if result.count >= limit { break }
        }
        return result
    }
}
