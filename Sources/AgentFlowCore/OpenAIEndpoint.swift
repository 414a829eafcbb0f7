import Foundation
import Yams

/// An OpenAI-compatible model server as a worker's `backend:` describes it: where it is, how
/// to authenticate (the key's source, never the key), extra headers, the name it serves the
/// model under, TLS trust, the request timeout, and which serving features it accepts.
///
/// ```yaml
/// backend:
///   kind: openai
///   url: https://vllm.internal:8000/v1
///   apiKeyEnv: VLLM_API_KEY              # or apiKeyFile: /etc/agentflow/vllm.key
///   served: Qwen/Qwen2.5-7B-Instruct     # the server's model name, when not the cluster's
///   headers: {X-Team: search}            # a value may be {env: NAME} or {file: PATH}
///   caFile: /etc/ssl/internal-ca.pem     # else the system trust store
///   timeout: 10m                         # longest one request may take
///   priority: true                       # send the job's priority (vLLM --scheduling-policy priority)
///   responseFormat: json_schema          # json_schema | json_object | off
/// ```
///
/// Its `description` is the URL alone, so printing a backend never prints more.
public struct OpenAIEndpoint: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Where a secret comes from. The worker reads it when it starts; cluster.yaml holds only
    /// the variable's name or the file's path.
    public enum SecretSource: Codable, Sendable, Equatable, CustomStringConvertible {
        case environment(String)
        case file(String)

        public var description: String {
            switch self {
            case .environment(let name): "environment variable \(name)"
            case .file(let path): "file \(path)"
            }
        }
    }

    /// A header value: as written, or read from a secret source.
    public enum HeaderValue: Codable, Sendable, Equatable {
        case literal(String)
        case secret(SecretSource)
    }

    public struct Header: Codable, Sendable, Equatable {
        public var name: String
        public var value: HeaderValue

        public init(name: String, value: HeaderValue) {
            self.name = name
            self.value = value
        }
    }

    /// How a JSON schema is sent as `response_format`.
    public enum ResponseFormatStyle: String, Codable, Sendable, CaseIterable {
        /// `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`: OpenAI, vLLM,
        /// SGLang, llama.cpp's own server.
        case jsonSchema = "json_schema"
        /// `{"type": "json_object", "schema": {...}}`: llama-cpp-python's server.
        case jsonObject = "json_object"
        /// Never sent (servers that refuse the field).
        case off
    }

    /// Base URL ending in `/v1`.
    public var url: String
    /// The bearer key's source (`apiKeyEnv` or `apiKeyFile`); nil: no Authorization header.
    public var apiKey: SecretSource?
    public var headers: [Header]
    /// The model name sent to the server; nil: the cluster's model name.
    public var served: String?
    /// PEM file of the certificate authorities to trust; nil: the system trust store.
    public var caFile: String?
    /// How long one HTTP request may take; nil: the client's default.
    public var timeout: Duration?
    /// Send the job's priority as vLLM's `priority` field.
    public var priority: Bool
    public var responseFormat: ResponseFormatStyle

    public init(url: String, apiKey: SecretSource? = nil, headers: [Header] = [], served: String? = nil, caFile: String? = nil,
                timeout: Duration? = nil, priority: Bool = false, responseFormat: ResponseFormatStyle = .jsonSchema) {
        self.url = url
        self.apiKey = apiKey
        self.headers = headers
        self.served = served
        self.caFile = caFile
        self.timeout = timeout
        self.priority = priority
        self.responseFormat = responseFormat
    }

    public var description: String { url }

    /// Keys of `backend:` that belong to an openai backend beyond `kind`, `url`, `serve`, `port`.
    static let keys: Set<String> = ["apiKey", "apiKeyEnv", "apiKeyFile", "headers", "served", "caFile", "timeout", "priority", "responseFormat"]
    /// Headers the client sets itself (or that would corrupt the request).
    static let reservedHeaders: Set<String> = ["authorization", "content-type", "content-length", "transfer-encoding", "accept", "connection", "expect"]
    static let maxHeaders = 32

    /// Reads the openai-only keys of a `backend:` mapping.
    static func parse(url: String, _ m: Node.Mapping, _ r: YAMLReader, worker name: String) throws -> OpenAIEndpoint {
        var e = OpenAIEndpoint(url: url)
        if let n = m["apiKey"] {
            throw r.error(n, "backend of '\(name)': never put the key itself in the cluster file; give apiKeyEnv: NAME (an environment variable of the worker) or apiKeyFile: PATH")
        }
        switch (m["apiKeyEnv"], m["apiKeyFile"]) {
        case (let env?, let file?):
            throw r.error(file, "backend of '\(name)': give apiKeyEnv or apiKeyFile, not both (env at line \((env.mark?.line).map(String.init) ?? "?"))")
        case (let env?, nil):
            e.apiKey = .environment(try secretSource(env, r, "backend.apiKeyEnv", environment: true))
        case (nil, let file?):
            e.apiKey = .file(try secretSource(file, r, "backend.apiKeyFile", environment: false))
        case (nil, nil):
            break
        }
        if let n = m["headers"] {
            let hm = try r.mapping(n, "backend.headers")
            if hm.count > maxHeaders { throw r.error(n, "backend.headers: at most \(maxHeaders) headers") }
            for (k, v) in hm {
                let header = try r.string(k, "a header name")
                guard isToken(header) else { throw r.error(k, "backend.headers: \(Limits.printable(header)) is not a valid HTTP header name") }
                if header.lowercased() == "authorization" {
                    throw r.error(k, "backend.headers: the Authorization header comes from apiKeyEnv or apiKeyFile, never from the cluster file")
                }
                if reservedHeaders.contains(header.lowercased()) {
                    throw r.error(k, "backend.headers: \(header) is set by AgentFlow itself")
                }
                let value: HeaderValue
                if v.scalar != nil {
                    let text = try r.string(v, "the value of header \(header)")
                    guard isHeaderValue(text) else { throw r.error(v, "backend.headers: the value of \(header) holds a line break or control character") }
                    value = .literal(text)
                } else {
                    let vm = try r.mapping(v, "the value of header \(header)")
                    try r.checkKeys(vm, allowed: ["env", "file"], in: "the value of header \(header)")
                    if let env = vm["env"], vm["file"] == nil {
                        value = .secret(.environment(try secretSource(env, r, "headers.\(header).env", environment: true)))
                    } else if let file = vm["file"], vm["env"] == nil {
                        value = .secret(.file(try secretSource(file, r, "headers.\(header).file", environment: false)))
                    } else {
                        throw r.error(v, "backend.headers: the value of \(header) is a string, {env: NAME} or {file: PATH}")
                    }
                }
                e.headers.append(Header(name: header, value: value))
            }
        }
        if let n = m["served"] {
            let served = try r.string(n, "backend.served")
            guard !served.isEmpty, served.utf8.count <= 512, served.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f }) else {
                throw r.error(n, "backend.served must be the server's model name: 1 to 512 characters without control characters")
            }
            e.served = served
        }
        if let n = m["caFile"] {
            let path = try r.string(n, "backend.caFile")
            if path.isEmpty { throw r.error(n, "backend.caFile must be a path to a PEM file of certificate authorities") }
            if !url.hasPrefix("https://") { throw r.error(n, "backend.caFile is for https:// URLs; '\(url)' is not one") }
            e.caFile = path
        }
        if let n = m["timeout"] {
            e.timeout = try r.duration(n, "backend.timeout", in: Limits.spanRange)
        }
        if let n = m["priority"] { e.priority = try r.bool(n, "backend.priority") }
        if let n = m["responseFormat"] {
            let style = try r.string(n, "backend.responseFormat")
            guard let s = ResponseFormatStyle(rawValue: style) else {
                throw r.error(n, "backend.responseFormat must be one of \(ResponseFormatStyle.allCases.map(\.rawValue).joined(separator: ", ")), got \(Limits.printable(style))")
            }
            e.responseFormat = s
        }
        return e
    }

    private static func secretSource(_ node: Node, _ r: YAMLReader, _ what: String, environment: Bool) throws -> String {
        let s = try r.string(node, what)
        if environment {
            guard s.range(of: #"^[A-Za-z_][A-Za-z0-9_]{0,127}$"#, options: .regularExpression) != nil else {
                throw r.error(node, "\(what) must name an environment variable (letters, digits, '_'), got \(Limits.printable(s)); the key itself never goes in the cluster file")
            }
        } else if s.isEmpty || s.contains("\0") {
            throw r.error(node, "\(what) must be a file path")
        }
        return s
    }

    /// RFC 9110 token characters.
    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 128
            && s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "!#$%&'*+-.^_`|~".unicodeScalars.contains($0)) }
    }

    /// No line breaks or other control characters (tab allowed): a value cannot start a new header.
    static func isHeaderValue(_ s: String) -> Bool {
        s.utf8.count <= 8192 && s.unicodeScalars.allSatisfy { $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7f) }
    }
}
