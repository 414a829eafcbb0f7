import Foundation
import Yams

/// Typed, line-aware reading of a composed YAML document. Every failure is a `ConfigError`
/// that names the file and the line of the offending node.
struct YAMLReader {
    let file: String

    func error(_ node: Node?, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node?.mark?.line, message)
    }

    /// Largest workflow or cluster file accepted.
    static let maxBytes = 4 << 20
    /// Most alias references (`*name`) accepted: a few are handy, but nested aliases multiply
    /// (the "billion laughs"), and hashing such a tree would stall the parser for hours.
    static let maxAliases = 32

    func compose(_ text: String) throws -> Node {
        if text.utf8.count > Self.maxBytes {
            throw ConfigError(file: file, "the file is \(text.utf8.count) bytes; the limit is \(Self.maxBytes)")
        }
        let aliases = Self.aliasCount(text)
        if aliases > Self.maxAliases {
            throw ConfigError(file: file, "\(aliases) YAML alias references (*name); at most \(Self.maxAliases) are accepted, so nested aliases cannot blow up")
        }
        do {
            guard let node = try Yams.compose(yaml: text) else { throw ConfigError(file: file, "the file is empty") }
            return node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), "not valid YAML: \(Self.problem(of: error))")
        }
    }

    /// Counts `*name` tokens where a YAML node can start (after a space, a line start, `[`, `{`,
    /// `,` or `:`). Code inside block scalars (`f(*args)`, `**kw`) rarely matches.
    static func aliasCount(_ text: String) -> Int {
        var count = 0
        var previous: UInt8 = UInt8(ascii: "\n")
        var afterStar = false
        for b in text.utf8 {
            if afterStar {
                let isName = (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 || b == 45
                if isName { count += 1 }
                afterStar = false
            }
            if b == UInt8(ascii: "*") {
                switch previous {
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "["), UInt8(ascii: "{"),
                     UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "?"):
                    afterStar = true
                default: break
                }
            }
            previous = b
        }
        return count
    }

    static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    static func problem(of error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
             .composer(let context, let problem, _, _):
            if let context { return "\(problem) (\(context.text))" }
            return problem
        default: return String(describing: error)
        }
    }

    func mapping(_ node: Node, _ what: String) throws -> Node.Mapping {
        guard let m = node.mapping else { throw error(node, "\(what) must be a mapping") }
        return m
    }

    /// Checks that a mapping has only the given keys, so a typo is reported rather than ignored.
    func checkKeys(_ m: Node.Mapping, allowed: Set<String>, in what: String) throws {
        for (key, _) in m {
            let k = key.string ?? ""
            if !allowed.contains(k) {
                throw error(key, "unknown key '\(k)' in \(what) (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
    }

    func string(_ node: Node, _ what: String) throws -> String {
        guard let s = node.scalar?.string else { throw error(node, "\(what) must be a string") }
        return s
    }

    func int(_ node: Node, _ what: String) throws -> Int {
        guard let scalar = node.scalar, let v = Int(scalar.string.replacingOccurrences(of: "_", with: "")) else {
            throw error(node, "\(what) must be a whole number, got '\(node.scalar?.string ?? "a collection")'")
        }
        return v
    }

    func double(_ node: Node, _ what: String) throws -> Double {
        guard let scalar = node.scalar, let v = Double(scalar.string.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            throw error(node, "\(what) must be a number, got '\(node.scalar?.string ?? "a collection")'")
        }
        return v
    }

    func bool(_ node: Node, _ what: String) throws -> Bool {
        switch node.scalar?.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(node, "\(what) must be on/off or true/false")
        }
    }

    /// A duration (`30s`, `5m`, `1h30m`, plain seconds) within `range`: text that is not one is
    /// "bad duration for WHAT", one outside the range names WHAT, the range and the text.
    func duration(_ node: Node, _ what: String, in range: ClosedRange<Duration>) throws -> Duration {
        guard let s = node.scalar?.string, let d = parseDuration(s) else {
            throw error(node, "bad duration for \(what): '\(node.scalar?.string ?? "")' (expected e.g. 30s, 5m, 1h)")
        }
        if let problem = Limits.span(d, range, what, text: s) { throw error(node, problem) }
        return d
    }

    func sequence(_ node: Node, _ what: String) throws -> Node.Sequence {
        guard let s = node.sequence else { throw error(node, "\(what) must be a list") }
        return s
    }

    func strings(_ node: Node, _ what: String) throws -> [String] {
        try sequence(node, what).map { try string($0, "each entry of \(what)") }
    }
}
