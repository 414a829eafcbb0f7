import AgentFlowCore
import ArgumentParser

/// `--api-key-env`, `--api-key-file` and `--served`: an ad hoc worker's (`worker --backend URL`,
/// `node --backend URL`) key source and served model name, as a cluster file's backend gives them.
struct EndpointOptions: ParsableArguments {
    @Option(name: .long, help: "Ad hoc openai backend: the environment variable holding its API key (sent as a bearer token).")
    var apiKeyEnv: String?
    @Option(name: .long, help: "Ad hoc openai backend: a file holding its API key.")
    var apiKeyFile: String?
    @Option(name: .long, help: "Ad hoc openai backend: the model name the server serves, when not --model.")
    var served: String?

    func validate() throws {
        if apiKeyEnv != nil && apiKeyFile != nil { throw ValidationError("give --api-key-env or --api-key-file, not both") }
        if let apiKeyEnv, apiKeyEnv.range(of: #"^[A-Za-z_][A-Za-z0-9_]{0,127}$"#, options: .regularExpression) == nil {
            throw ValidationError("--api-key-env must name an environment variable (letters, digits, '_'); the key itself never goes on the command line")
        }
        if let served, served.isEmpty || served.utf8.count > 512 || served.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw ValidationError("--served must be 1 to 512 characters without control characters")
        }
    }

    /// An openai backend at `url` with these options.
    func endpoint(url: String) -> OpenAIEndpoint {
        OpenAIEndpoint(url: url, apiKey: apiKeyEnv.map { .environment($0) } ?? apiKeyFile.map { .file($0) }, served: served)
    }
}
