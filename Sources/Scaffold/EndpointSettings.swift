import AgentFlowCore
import Foundation
import LLM

/// A backend's settings that cannot be used as written: a key's variable is not set, its file
/// cannot be read, or what was read cannot go into a header. The message names the source,
/// never what it holds.
public struct EndpointSettingsError: Error, CustomStringConvertible {
    public var description: String
}

extension ChatClient.Configuration {
    /// The client's settings for an `openai` backend: its URL, headers and CA file, the key read
    /// from the worker's environment or file (here, on the worker: it never travels and is never
    /// in the cluster file), and its timeout.
    public init(_ endpoint: OpenAIEndpoint, environment: [String: String] = ProcessInfo.processInfo.environment) throws(EndpointSettingsError) {
        self.init(baseURL: endpoint.url)
        if let source = endpoint.apiKey { apiKey = try Self.read(source, for: "the API key", environment: environment) }
        for header in endpoint.headers {
            switch header.value {
            case .literal(let value):
                headers.append(Header(name: header.name, value: value))
            case .secret(let source):
                headers.append(Header(name: header.name, value: try Self.read(source, for: "header \(header.name)", environment: environment), secret: true))
            }
        }
        if let caFile = endpoint.caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw EndpointSettingsError(description: "backend.caFile \(caFile) cannot be read")
            }
            self.caFile = caFile
        }
        if let timeout = endpoint.timeout {
            requestTimeout = timeout
            firstByteTimeout = min(firstByteTimeout, requestTimeout)
        }
        sendPriority = endpoint.priority
        responseFormatStyle = ResponseFormat.Style(rawValue: endpoint.responseFormat.rawValue) ?? .jsonSchema
    }

    /// A secret from the environment or a file: surrounding whitespace (a file's final newline)
    /// dropped; empty, over 16 KiB, or holding a line break or control character is refused.
    static func read(_ source: OpenAIEndpoint.SecretSource, for what: String, environment: [String: String]) throws(EndpointSettingsError) -> String {
        let raw: String
        switch source {
        case .environment(let name):
            guard let value = environment[name] else {
                throw EndpointSettingsError(description: "\(what) comes from the environment variable \(name), which is not set for this worker")
            }
            raw = value
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw EndpointSettingsError(description: "\(what) comes from the file \(path), which cannot be read")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw EndpointSettingsError(description: "\(what): the file \(path) is not UTF-8 text")
            }
            raw = text
        }
        let value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { throw EndpointSettingsError(description: "\(what): the \(source) is empty") }
        guard value.utf8.count <= 16384 else { throw EndpointSettingsError(description: "\(what): the \(source) holds more than 16 KiB") }
        guard value.unicodeScalars.allSatisfy({ $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7f) }) else {
            throw EndpointSettingsError(description: "\(what): the \(source) holds a line break or control character, which cannot go into an HTTP header")
        }
        return value
    }
}
