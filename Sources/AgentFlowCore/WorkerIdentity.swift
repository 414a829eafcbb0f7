import Foundation

/// Which CURVE public key may register which worker names (issue 12): an entry binds a key to
/// one name (`gpu0`) or to every name under a prefix (`host-a-*`, for a node's `host-a-gpuN`).
/// Entries come from `coordinator.curve.workerKeys` in cluster.yaml and from the enrolment file
/// (`coordinator.curve.enrolment`), whose lines have the same `NAME: KEY` form (`#` starts a
/// comment line). When the book is
/// empty names are not checked (CURVE off, or no identities configured).
public struct WorkerKeyBook: Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        /// A worker name, or a prefix ending in `*`.
        public var pattern: String
        /// The Z85 public key that owns it.
        public var key: String

        public init(pattern: String, key: String) {
            self.pattern = pattern
            self.key = key
        }

        public func matches(_ name: String) -> Bool {
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) && name.count > pattern.count - 1 : name == pattern
        }
    }

    public var entries: [Entry]

    public init(_ entries: [Entry] = []) { self.entries = entries }

    public var isEmpty: Bool { entries.isEmpty }
    public var keys: Set<String> { Set(entries.map(\.key)) }

    /// Whether `key` may register a worker named `name` (always, when the book is empty).
    public func allows(key: String?, name: String) -> Bool {
        if entries.isEmpty { return true }
        guard let key else { return false }
        return entries.contains { $0.key == key && $0.matches(name) }
    }

    /// The names or prefixes `key` owns, for error messages.
    public func patterns(of key: String) -> [String] { entries.filter { $0.key == key }.map(\.pattern) }

    /// Parses an enrolment file: `NAME: KEY` lines (a YAML mapping), `#` comments and blank lines.
    public static func parseEnrolment(_ text: String, file: String) throws -> [Entry] {
        var out: [Entry] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // Whole-line comments only: Z85 keys may contain '#'.
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let colon = trimmed.firstIndex(of: ":") else {
                throw ConfigError(file: file, line: i + 1, "expected 'NAME: KEY' (from agentflow keys enroll), got '\(trimmed)'")
            }
            let name = unquote(trimmed[..<colon].trimmingCharacters(in: .whitespaces))
            let key = unquote(trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            try check(name: name, key: key, file: file, line: i + 1)
            out.append(Entry(pattern: name, key: key))
        }
        return out
    }

    /// A name or prefix and a key, checked: what an enrolment line or a `workerKeys` entry may hold.
    public static func check(name: String, key: String, file: String, line: Int?) throws {
        if !isValidWorkerName(name.hasSuffix("*") ? String(name.dropLast()) : name) {
            throw ConfigError(file: file, line: line, "'\(name)' is not a worker name or prefix (letters, digits, '.', '_', '-', at most 128; a prefix ends in '*')")
        }
        if key.utf8.count != 40 || !key.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) {
            throw ConfigError(file: file, line: line, "the key of '\(name)' must be a 40-character Z85 public key")
        }
    }

    static func unquote(_ s: String) -> String {
        if s.count >= 2, let f = s.first, f == s.last, f == "\"" || f == "'" { return String(s.dropFirst().dropLast()) }
        return s
    }
}

/// Worker names: 1–128 of letters, digits, '.', '_', '-' (they become ZeroMQ routing ids, log
/// fields and `P-gpuN` prefixes).
public func isValidWorkerName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= 128
        && name.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "._-".unicodeScalars.contains($0) }
}
