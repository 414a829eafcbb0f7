import AgentFlowCore
import HTTPAPI
import LLM
import Scaffold

/// What a coordinator takes out of the transcripts it stores, besides the well-known key
/// formats (``AgentFlowCore/SecretRedactor``): its HTTP bearer tokens, and the backend keys and
/// secret headers of the cluster's workers that this process can read (its environment, its
/// files). Each worker takes its own key out before it sends anything; this is the second line.
func transcriptSecrets(_ cluster: Cluster, tokens: TokenBook?) -> [String] {
    var secrets = tokens.map { Array($0.tokens.keys) } ?? []
    for worker in cluster.workers {
        guard case .openai(let endpoint) = worker.backend, let settings = try? ChatClient.Configuration(endpoint) else { continue }
        secrets += [settings.apiKey].compactMap { $0 } + settings.headers.filter(\.secret).map(\.value)
    }
    return secrets
}
