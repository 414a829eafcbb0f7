import Foundation

/// Paths inside an attempt's workspace as they come from outside (a model's ```` ```file:PATH ````
/// block, an output manifest, an archive entry): relative, normalised, never leaving the root.
public enum WorkspacePath {
    /// The path split into components when it is acceptable, else why not. `a/./b` and `a//b`
    /// read as `a/b`; `..`, a leading `/`, control characters and overlong names are refused.
    public static func components(_ path: String) -> Result<[String], PathProblem> {
        if path.isEmpty { return .failure(PathProblem("the path is empty")) }
        if path.utf8.count > Limits.maxPathBytes { return .failure(PathProblem("the path is longer than \(Limits.maxPathBytes) bytes")) }
        if path.hasPrefix("/") || path.hasPrefix("~") { return .failure(PathProblem("the path must be relative to the workspace, not absolute")) }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return .failure(PathProblem("the path contains a control character"))
        }
        var parts: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { return .failure(PathProblem("the path must stay inside the workspace ('..' is not allowed)")) }
            if part.utf8.count > Limits.maxPathComponentBytes {
                return .failure(PathProblem("a path component is longer than \(Limits.maxPathComponentBytes) bytes"))
            }
            parts.append(String(part))
        }
        if parts.isEmpty { return .failure(PathProblem("the path names the workspace itself, not a file in it")) }
        return .success(parts)
    }

    /// The normalised form of an acceptable path (`a/b`), or nil.
    public static func normalized(_ path: String) -> String? {
        guard case .success(let parts) = components(path) else { return nil }
        return parts.joined(separator: "/")
    }

    /// Why a path is refused, in words.
    public struct PathProblem: Error, Equatable, Sendable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }
}

/// Glob patterns of `outputs:`, matched against workspace-relative paths as `.gitignore`
/// does: `*` and `?` stay within one path component, `**` spans any number of them, and a
/// pattern without `/` matches a file's name at any depth (`*.py` keeps `calc/core.py` too).
public enum OutputGlob {
    public static func matches(_ pattern: String, _ path: String) -> Bool {
        var p = pattern
        while p.hasPrefix("./") { p.removeFirst(2) }
        let pathParts = path.split(separator: "/").map(String.init)
        if !p.contains("/") { return pathParts.last.map { component(Array(p), Array($0)) } ?? false }
        if p.hasPrefix("/") { p.removeFirst() }
        let patternParts = p.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        return parts(patternParts[...], pathParts[...])
    }

    private static func parts(_ pattern: ArraySlice<String>, _ path: ArraySlice<String>) -> Bool {
        guard let head = pattern.first else { return path.isEmpty }
        if head == "**" {
            // Zero or more components.
            var rest = path
            while true {
                if parts(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        }
        guard let first = path.first, component(Array(head), Array(first)) else { return false }
        return parts(pattern.dropFirst(), path.dropFirst())
    }

    /// `*`, `?` and literal characters within one component (iterative, no backtracking blow-up).
    private static func component(_ p: [Character], _ s: [Character]) -> Bool {
        var (pi, si) = (0, 0)
        var star: Int?
        var mark = 0
        while si < s.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == s[si]) {
                pi += 1
                si += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi
                mark = si
                pi += 1
            } else if let st = star {
                pi = st + 1
                mark += 1
                si = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// Why a pattern is refused, or nil: relative, and never reaching out with `..`.
    public static func problem(_ pattern: String) -> String? {
        if pattern.isEmpty { return "an empty pattern" }
        if pattern.hasPrefix("/") { return "'\(pattern)' must be relative to the workspace" }
        if pattern.split(separator: "/").contains("..") { return "'\(pattern)' must stay inside the workspace ('..' is not allowed)" }
        if pattern.unicodeScalars.contains(where: { $0.value < 0x20 }) { return "a pattern contains a control character" }
        return nil
    }
}
