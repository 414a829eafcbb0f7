import AgentFlowCore
import ArgumentParser
import Foundation
import LLM
import Scaffold
import Synchronization

/// `agentflow bench prompt-cache`: what a byte-identical prompt prefix saves on a real server.
///
/// It runs the real scaffold (prompts, sandbox, verifier) on one subtask with scripted replies,
/// so every run makes the same calls with the same prompts; each call also goes to the server
/// with `max_tokens: 1`, which times the prompt's processing: the time to first token. Runs
/// alternate between the prompts as the scaffold builds them and the same prompts with a
/// different first line per call, which no prefix cache can reuse. Where the server reports
/// cached prompt tokens (vLLM, SGLang) they are summed too; llama-cpp-python reports none but
/// reuses the longest common prefix of the previous request.
///
/// Give it a server of its own (`tools/start-models.sh` with `AGENTFLOW_SMOLLM2_PORT`): other
/// clients' requests evict the cache and queue in front of the timed ones.
struct BenchPromptCacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prompt-cache",
        abstract: "Time to first token of the scaffold's calls with and without a byte-identical prompt prefix, on a real server.")

    @Option(help: "The server's base URL.") var url = "http://127.0.0.1:8198/v1"
    @Option(help: "The model name the server serves.") var model = "smollm2-135m"
    @Option(help: "Runs of each layout (they alternate).") var runs = 4
    @Option(help: "The model's context length.") var context = 4096
    @Option(help: "Roles: full (agent, corrector and summarizer; the corrector's calls come between the agent's) or agent-only.") var scaffold = "full"
    @Option(help: "The llama-cpp-python server's log (started with --verbose true): its 'N prefix-match hit' lines count the prompt tokens it reused.")
    var serverLog: String?
    @OptionGroup var endpoint: EndpointOptions
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (1...100).contains(runs) else { throw ValidationError("--runs must be 1-100") }
        guard ["full", "agent-only"].contains(scaffold) else { throw ValidationError("--scaffold must be full or agent-only") }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw ValidationError("--url must start with http:// or https://") }
    }

    /// One layout's measurements over its runs.
    struct LayoutResult: Codable {
        var layout: String
        var calls: Int
        /// Seconds to first token, each call in order of every run.
        var seconds: [Double]
        var promptTokensEstimated: Int
        var cachedPromptTokens: Int?
        /// Prompt tokens the server reused, from its log (`--server-log`).
        var reusedTokens: Int?
        var meanSeconds: Double { seconds.isEmpty ? 0 : seconds.reduce(0, +) / Double(seconds.count) }
        var median: Double { seconds.isEmpty ? 0 : seconds.sorted()[seconds.count / 2] }
    }

    func run() throws {
        var settings = try clientSettings(endpoint.endpoint(url: url), worker: "bench")
        settings.requireServerUsage = false
        settings.maxRetries = 1
        settings.minCompletionTokens = 1
        let client = ChatClient(settings)
        if let problem = ServerProbe.problem(settings) { throw CLIError.unreachable("\(problem)") }
        let workspace = FileManager.default.temporaryDirectory.appendingPathComponent("af-bench-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: workspace) }
        var shared = LayoutResult(layout: "byte-identical prefix", calls: 0, seconds: [], promptTokensEstimated: 0)
        var broken = LayoutResult(layout: "prefix broken per call", calls: 0, seconds: [], promptTokensEstimated: 0)
        for run in 0..<runs {
            // Alternate, so drift on a busy machine falls on both alike.
            for breakPrefix in run % 2 == 0 ? [false, true] : [true, false] {
                let chat = TimedReplay(client: client, breakPrefix: breakPrefix, run: run, serverLog: serverLog)
                var configuration = ScaffoldConfiguration(workspaceRoot: workspace, calibrationFile: nil)
                configuration.contextTokens = context
                let backend = ScaffoldBackend(chat: chat, model: endpoint.served ?? model, estimator: client.estimator, configuration: configuration)
                _ = backend.run(Self.spec(seed: UInt64(run), corrector: scaffold == "full"))
                let calls = chat.calls.withLock { $0 }
                if calls.contains(where: { $0.error != nil }) {
                    throw CLIError(code: 1, message: "a timed call failed: \(calls.compactMap(\.error).first ?? "")")
                }
                var result = breakPrefix ? broken : shared
                result.calls += calls.count
                result.seconds += calls.map(\.seconds)
                result.promptTokensEstimated += calls.map(\.promptTokens).reduce(0, +)
                if let cached = calls.compactMap(\.cached).reduce(nil, { ($0 ?? 0) + $1 }) { result.cachedPromptTokens = (result.cachedPromptTokens ?? 0) + cached }
                if serverLog != nil { result.reusedTokens = (result.reusedTokens ?? 0) + calls.map { $0.reused ?? 0 }.reduce(0, +) }
                if breakPrefix { broken = result } else { shared = result }
            }
        }
        if json {
            printJSON(["url": url, "model": model, "scaffold": scaffold, "runs": "\(runs)", "shared": Self.summary(shared), "broken": Self.summary(broken),
                       "ratio": String(format: "%.3f", shared.meanSeconds / max(broken.meanSeconds, 1e-9))])
            return
        }
        print("prompt-cache: \(model) at \(url), \(scaffold) scaffold, \(runs) runs per layout, \(shared.calls / max(runs, 1)) calls per run (scripted replies)")
        for r in [shared, broken] {
            print(String(format: "  %-24@ calls %3d  time to first token mean %.3f s  median %.3f s  prompt tokens (est.) %d", r.layout as NSString,
                         r.calls, r.meanSeconds, r.median, r.promptTokensEstimated) + (r.cachedPromptTokens.map { "  cached (server) \($0)" } ?? "")
                  + (r.reusedTokens.map { "  reused (server log) \($0)" } ?? ""))
        }
        print(String(format: "  byte-identical / broken: %.2f", shared.meanSeconds / max(broken.meanSeconds, 1e-9)))
    }

    static func summary(_ r: LayoutResult) -> String {
        String(format: "calls %d mean %.4f median %.4f prompt_tokens_est %d cached %@ reused %@", r.calls, r.meanSeconds, r.median,
               r.promptTokensEstimated, r.cachedPromptTokens.map(String.init) ?? "n/a", r.reusedTokens.map(String.init) ?? "n/a")
    }

    /// `sum_of_squares` of the demo, with `add` and `square` as the modules of its needs.
    static func spec(seed: UInt64, corrector: Bool) -> AttemptSpec {
        var spec = AttemptSpec(
            id: AttemptID(job: "j-bench", subtask: "sum_of_squares", n: 1), model: "bench",
            prompt: "Write a Python function sum_of_squares(a, b) that returns a * a + b * b.\nYou may use add (from add import add) and square (from square import square).",
            verify: .python("from solution import sum_of_squares\nassert sum_of_squares(3, 4) == 25\nassert sum_of_squares(-1, 2) == 5"),
            inputs: ["add": "def add(a, b):\n    return a + b\n", "square": "def square(x):\n    return x * x\n"],
            tokenCap: 100_000, ttl: .seconds(600), scaffold: ScaffoldOptions(summarizer: corrector, corrector: corrector, maxTurns: 6),
            simulated: nil, seed: seed)
        spec.arrived(at: SystemTime().instant)
        return spec
    }
}

/// The scripted model the bench runs the scaffold against: each call is also sent to the real
/// server with `max_tokens: 1` and timed, and answered with the next scripted reply — a
/// NameError, a wrong fix, a wrong answer, then the right one (with the corrector on: agent,
/// corrector, agent, corrector) — so every run makes the same calls whatever the server would
/// have written.
final class TimedReplay: ChatModel {
    struct Call: Sendable {
        var seconds: Double
        var promptTokens: Int
        var cached: Int?
        /// Prompt tokens the server's log says it reused for this call.
        var reused: Int?
        var error: String?
    }

    static let replies = [
        "```python\nfrom add import add\nfrom square import square\n\ndef sum_of_squares(a, b):\n    return add(squre(a), square(b))\n```",
        "```python\nfrom add import add\nfrom square import square\n\ndef sum_of_squares(a, b):\n    return add(square(a), b)\n```",
        "```python\ndef sum_of_squares(a, b):\n    return a * a - b * b\n```",
        "```python\nfrom add import add\nfrom square import square\n\ndef sum_of_squares(a, b):\n    return add(square(a), square(b))\n```",
    ]

    let client: ChatClient
    let breakPrefix: Bool
    let run: Int
    let serverLog: String?
    let calls = Mutex<[Call]>([])

    init(client: ChatClient, breakPrefix: Bool, run: Int, serverLog: String?) {
        self.client = client
        self.breakPrefix = breakPrefix
        self.run = run
        self.serverLog = serverLog
    }

    /// The bytes of the server's log, or 0.
    func logSize() -> UInt64 {
        guard let serverLog else { return 0 }
        return ((try? FileManager.default.attributesOfItem(atPath: serverLog))?[.size] as? UInt64) ?? 0
    }

    /// Prompt tokens reused per the log lines written since `offset` ("Llama.generate: N prefix-match hit").
    func reusedSince(_ offset: UInt64) -> Int? {
        guard let serverLog, let handle = FileHandle(forReadingAtPath: serverLog) else { return nil }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        var reused = 0
        for line in text.split(separator: "\n") where line.contains("prefix-match hit") {
            if let n = line.split(separator: " ").first(where: { Int($0) != nil }).flatMap({ Int($0) }) { reused += n }
        }
        return reused
    }

    func complete(
        _ request: ChatRequest, allowance: Int, deadline: MonotonicInstant?, cancel: CancellationFlag?, onProgress: ((ChatProgress) -> Void)?
    ) throws(LLMError) -> ChatCompletion {
        let index = calls.withLock { $0.count }
        var timed = request
        timed.maxCompletionTokens = 1
        timed.temperature = 0
        if breakPrefix, !timed.messages.isEmpty {
            timed.messages[0].content = "[request \(run)-\(index)]\n" + timed.messages[0].content
        }
        let logged = logSize()
        let started = Date()
        var call = Call(seconds: 0, promptTokens: client.estimator.estimate(timed.messages))
        do {
            let reply = try client.complete(timed, allowance: 1_000_000, deadline: deadline, cancel: cancel)
            call.seconds = reply.firstTokenSeconds ?? Date().timeIntervalSince(started)
            call.cached = reply.cachedPromptTokens
            call.reused = reusedSince(logged)
        } catch {
            call.error = "\(error)"
        }
        calls.withLock { $0.append(call) }
        let text = Self.replies[min(index, Self.replies.count - 1)]
        let usage = ChatUsage(promptTokens: call.promptTokens, completionTokens: text.utf8.count / 4)
        onProgress?(ChatProgress(delta: text, completionTokens: usage.completionTokens, tokensSoFar: usage.total))
        return ChatCompletion(text: text, usage: usage, usageSource: .estimated, finishReason: "stop", tries: 1)
    }
}
