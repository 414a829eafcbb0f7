import Foundation

/// The JSON Schema subset a `json` subtask's `schema:` may use (DESIGN.md §3): `type`,
/// `properties`, `required`, `items`, `enum`, `minimum`/`maximum`, `minLength`/`maxLength`,
/// `additionalProperties`. Any other keyword is refused when the workflow is read, so a schema
/// never silently checks less than its author meant.
///
/// ```swift
/// let schema = try JSONSchema(.object(["type": .string("object"), "required": .array([.string("city")])]))
/// schema.problems(in: try JSONValue.parse(#"{"town": "Oslo"}"#))   // ["$: missing required property 'city'"]
/// ```
public struct JSONSchema: Sendable, Equatable {
    /// The schema as written (it travels to workers as JSON text and is shown to the model).
    public let source: JSONValue

    public static let keywords: Set<String> = [
        "type", "properties", "required", "items", "enum", "minimum", "maximum", "minLength", "maxLength", "additionalProperties",
    ]
    static let types: Set<String> = ["null", "boolean", "integer", "number", "string", "array", "object"]

    /// Checks the schema itself; the error names the JSON path of the problem (`$.properties.city`).
    public init(_ source: JSONValue) throws(SchemaError) {
        try Self.check(source, path: "$")
        self.source = source
    }

    /// Why a schema is not one this subset accepts.
    public struct SchemaError: Error, Equatable, Sendable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { "schema \(path): \(message)" }
    }

    private static func check(_ schema: JSONValue, path: String) throws(SchemaError) {
        if case .bool = schema { return }  // true: anything, false: nothing (as in JSON Schema)
        guard case .object(let m) = schema else { throw SchemaError(path: path, message: "a schema must be an object, got \(schema.typeName)") }
        for key in m.keys.sorted() where !keywords.contains(key) {
            throw SchemaError(path: path, message: "unsupported keyword '\(key)' (supported: \(keywords.sorted().joined(separator: ", ")))")
        }
        if let t = m["type"] {
            let names: [JSONValue]
            if case .array(let list) = t { names = list } else { names = [t] }
            if names.isEmpty { throw SchemaError(path: path + ".type", message: "an empty list of types") }
            for n in names {
                guard case .string(let s) = n, types.contains(s) else {
                    throw SchemaError(path: path + ".type", message: "unknown type \(n.text) (one of: \(types.sorted().joined(separator: ", ")))")
                }
            }
        }
        if let p = m["properties"] {
            guard case .object(let props) = p else { throw SchemaError(path: path + ".properties", message: "must be an object of schemas") }
            for (name, sub) in props { try check(sub, path: path + ".properties." + name) }
        }
        if let r = m["required"] {
            guard case .array(let names) = r, names.allSatisfy({ if case .string = $0 { true } else { false } }) else {
                throw SchemaError(path: path + ".required", message: "must be a list of property names")
            }
        }
        if let i = m["items"] { try check(i, path: path + ".items") }
        if let a = m["additionalProperties"] { try check(a, path: path + ".additionalProperties") }
        if let e = m["enum"] {
            guard case .array(let values) = e, !values.isEmpty else { throw SchemaError(path: path + ".enum", message: "must be a non-empty list") }
        }
        for key in ["minimum", "maximum"] {
            if let v = m[key], case .number = v {} else if m[key] != nil { throw SchemaError(path: path + "." + key, message: "must be a number") }
        }
        for key in ["minLength", "maxLength"] {
            if let v = m[key] {
                guard case .number(let n) = v, n >= 0, n.rounded() == n else { throw SchemaError(path: path + "." + key, message: "must be a whole number ≥ 0") }
            }
        }
    }

    /// Every way `value` breaks the schema, each prefixed with its JSON path (`$.records[2].city`);
    /// empty when it conforms. At most `limit` problems are listed.
    public func problems(in value: JSONValue, limit: Int = 20) -> [String] {
        var found: [String] = []
        Self.validate(value, against: source, path: "$", into: &found, limit: limit)
        return found
    }

    private static func validate(_ value: JSONValue, against schema: JSONValue, path: String, into found: inout [String], limit: Int) {
        guard found.count < limit else { return }
        if case .bool(let allowed) = schema {
            if !allowed { found.append("\(path): no value is allowed here") }
            return
        }
        guard case .object(let m) = schema else { return }
        if let t = m["type"] {
            let names: [String]
            if case .array(let list) = t { names = list.compactMap { if case .string(let s) = $0 { s } else { nil } } } else if case .string(let s) = t { names = [s] } else { names = [] }
            let actual = value.typeName
            let ok = names.contains(actual) || (actual == "integer" && names.contains("number"))
            if !ok {
                found.append("\(path): expected \(names.joined(separator: " or ")), got \(actual) \(excerpt(value))")
                return
            }
        }
        if case .array(let options) = m["enum"], !options.contains(value) {
            found.append("\(path): \(excerpt(value)) is not one of \(excerpt(.array(options)))")
        }
        switch value {
        case .number(let n):
            if case .number(let lo) = m["minimum"], n < lo { found.append("\(path): \(JSONValue.render(n)) is below the minimum \(JSONValue.render(lo))") }
            if case .number(let hi) = m["maximum"], n > hi { found.append("\(path): \(JSONValue.render(n)) is above the maximum \(JSONValue.render(hi))") }
        case .string(let s):
            let length = s.unicodeScalars.count
            if case .number(let lo) = m["minLength"], Double(length) < lo { found.append("\(path): \(length) characters, fewer than minLength \(JSONValue.render(lo))") }
            if case .number(let hi) = m["maxLength"], Double(length) > hi { found.append("\(path): \(length) characters, more than maxLength \(JSONValue.render(hi))") }
        case .array(let items):
            if let itemSchema = m["items"] {
                for (i, item) in items.enumerated() { validate(item, against: itemSchema, path: "\(path)[\(i)]", into: &found, limit: limit) }
            }
        case .object(let members):
            if case .array(let required) = m["required"] {
                for case .string(let name) in required where members[name] == nil {
                    found.append("\(path): missing required property '\(name)'")
                }
            }
            var props: [String: JSONValue] = [:]
            if case .object(let p) = m["properties"] { props = p }
            for key in members.keys.sorted() {
                guard found.count < limit else { return }
                let member = members[key]!
                let sub = path + (key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } ? "." + key : "[\(JSONValue.string(key).text)]")
                if let p = props[key] {
                    validate(member, against: p, path: sub, into: &found, limit: limit)
                } else if let extra = m["additionalProperties"] {
                    if case .bool(false) = extra {
                        found.append("\(path): property '\(key)' is not allowed (additionalProperties is false)")
                    } else {
                        validate(member, against: extra, path: sub, into: &found, limit: limit)
                    }
                }
            }
        default: break
        }
    }

    static func excerpt(_ v: JSONValue) -> String {
        let t = v.text
        return t.count > 60 ? String(t.prefix(60)) + "…" : t
    }

    /// A small value that conforms (the `sim` backend's `answer.json`): each required property
    /// with a value of its type, the minimum where one is set, the first `enum` entry.
    public var example: JSONValue { Self.example(for: source, depth: 0) }

    private static func example(for schema: JSONValue, depth: Int) -> JSONValue {
        guard depth < 16, case .object(let m) = schema else { return .null }
        if case .array(let options) = m["enum"], let first = options.first { return first }
        var type = "null"
        if case .string(let t) = m["type"] { type = t } else if case .array(let list) = m["type"], case .string(let t) = list.first { type = t }
        switch type {
        case "boolean": return .bool(true)
        case "integer", "number":
            var n = 0.0
            if case .number(let lo) = m["minimum"] { n = type == "integer" ? lo.rounded(.up) : lo }
            if case .number(let hi) = m["maximum"], n > hi { n = type == "integer" ? hi.rounded(.down) : hi }
            return .number(n)
        case "string":
            var length = 1
            if case .number(let lo) = m["minLength"] { length = max(length, Int(lo)) }
            if case .number(let hi) = m["maxLength"] { length = min(length, Int(hi)) }
            return .string(String(repeating: "x", count: min(length, 4096)))
        case "array": return .array([])
        case "object":
            var members: [String: JSONValue] = [:]
            if case .array(let required) = m["required"] {
                var props: [String: JSONValue] = [:]
                if case .object(let p) = m["properties"] { props = p }
                for case .string(let name) in required {
                    members[name] = props[name].map { example(for: $0, depth: depth + 1) } ?? .string("x")
                }
            }
            return .object(members)
        default: return .null
        }
    }
}

extension JSONSchema: Codable {
    /// Encodes as the schema's JSON text; decoding checks it again.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(try JSONValue.parse(text))
        } catch {
            throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(source.text)
    }
}
