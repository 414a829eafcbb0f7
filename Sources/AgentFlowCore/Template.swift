import Foundation

/// `{{ name }}` substitution in workflow text (prompts, verifiers, schemas, input paths, rubrics,
/// output globs). A placeholder is `{{`, optional spaces, a parameter name — `item` inside a
/// `foreach` subtask — with optional `.key` steps into objects, optional spaces, `}}`.
/// `{{ '…' }}` (or `"…"`) gives its text literally, so `{{ '{{' }}` writes `{{`. Other text with
/// braces (`{{{x}}}` in a Python f-string) is left as it is.
public struct TemplateScope: Sendable {
    public var params: [String: JSONValue]
    /// The current `foreach` item, bound as `item`.
    public var item: JSONValue?

    public init(params: [String: JSONValue], item: JSONValue? = nil) {
        self.params = params
        self.item = item
    }
}

/// A placeholder that cannot be filled: `offset` is the character offset of its `{{` in the text.
public struct TemplateError: Error, Equatable, Sendable {
    public var offset: Int
    public var message: String
}

public enum Template {
    struct Placeholder {
        var range: Range<String.Index>
        /// A parameter path (`docs`, `item.city`), or nil for a literal.
        var path: [String]?
        var literal: String
    }

    /// Placeholders of `text`, in order.
    static func placeholders(in text: String) -> [Placeholder] {
        var found: [Placeholder] = []
        var search = text.startIndex
        while let open = text.range(of: "{{", range: search..<text.endIndex) {
            // `{{{x}}}` (a Python f-string's literal braces around a field) is not a placeholder.
            if open.lowerBound > text.startIndex && text[text.index(before: open.lowerBound)] == "{" {
                search = open.upperBound
                continue
            }
            guard let close = text.range(of: "}}", range: open.upperBound..<text.endIndex) else { break }
            let inner = text[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if let literal = quoted(inner) {
                found.append(Placeholder(range: open.lowerBound..<close.upperBound, path: nil, literal: literal))
                search = close.upperBound
            } else if isPath(inner) {
                found.append(Placeholder(range: open.lowerBound..<close.upperBound, path: inner.split(separator: ".").map(String.init), literal: ""))
                search = close.upperBound
            } else {
                search = text.index(after: open.lowerBound)
            }
        }
        return found
    }

    static func quoted(_ s: String) -> String? {
        guard s.count >= 2, let first = s.first, first == "'" || first == "\"", s.last == first else { return nil }
        let body = s.dropFirst().dropLast()
        return body.contains(first) ? nil : String(body)
    }

    /// `name` or `name.key.key`: letters, digits and `_`, not starting with a digit.
    static func isPath(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard let head = parts.first, isName(head) else { return false }
        return parts.dropFirst().allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } }
    }

    /// A parameter name: ASCII letters, digits and `_`, not starting with a digit.
    public static func isName<S: StringProtocol>(_ s: S) -> Bool {
        guard let first = s.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    static func lookup(_ p: Placeholder, in text: String, scope: TemplateScope) throws(TemplateError) -> JSONValue {
        guard let path = p.path else { return .string(p.literal) }
        let offset = text.distance(from: text.startIndex, to: p.range.lowerBound)
        let root: JSONValue
        if path[0] == "item" {
            guard let item = scope.item else {
                throw TemplateError(offset: offset, message: "{{ item }} is only bound in a subtask with 'foreach'")
            }
            root = item
        } else {
            guard let value = scope.params[path[0]] else {
                let known = scope.params.keys.sorted()
                throw TemplateError(offset: offset, message: "unknown parameter '\(path[0])'"
                    + (known.isEmpty ? " (the workflow declares no 'params')" : " (declared: \(known.joined(separator: ", ")))"))
            }
            root = value
        }
        guard let value = root.value(at: Array(path.dropFirst())) else {
            throw TemplateError(offset: offset, message: "'\(path.joined(separator: "."))' has no value: '\(path[0])' is \(Self.excerpt(root))")
        }
        return value
    }

    static func excerpt(_ v: JSONValue) -> String {
        let t = v.text
        return t.count > 60 ? String(t.prefix(60)) + "…" : t
    }

    /// `text` with every placeholder replaced: strings as themselves, other values as JSON.
    public static func render(_ text: String, scope: TemplateScope) throws(TemplateError) -> String {
        let found = placeholders(in: text)
        guard !found.isEmpty else { return text }
        var out = ""
        var last = text.startIndex
        for p in found {
            out += text[last..<p.range.lowerBound]
            out += try lookup(p, in: text, scope: scope).plainText
            last = p.range.upperBound
        }
        out += text[last...]
        return out
    }

    /// When `text` is exactly one placeholder (spaces around it allowed), the value it names —
    /// a list stays a list (`foreach: "{{ docs }}"`, `enum: "{{ cities }}"`). Otherwise nil.
    public static func wholeValue(_ text: String, scope: TemplateScope) throws(TemplateError) -> JSONValue? {
        let found = placeholders(in: text)
        guard found.count == 1, let p = found.first, p.path != nil,
              text[..<p.range.lowerBound].allSatisfy(\.isWhitespace), text[p.range.upperBound...].allSatisfy(\.isWhitespace)
        else { return nil }
        return try lookup(p, in: text, scope: scope)
    }
}
