import AgentFlowCore
import Foundation
import Testing

/// Issue 15 items 1–2: every number from outside is range-checked where it enters, with the file
/// and line; the arithmetic on amounts saturates instead of trapping.
@Suite struct RangeCheckTests {
    static let models: Set<String> = ["smollm2-135m", "gemma3-270m"]

    func workflowError(_ subtaskFields: String, top: String = "budget: {tokens: 1000}\ndeadline: 1m") -> ConfigError? {
        let yaml = "name: w\n\(top)\nsubtasks:\n  - id: a\n    prompt: x\n\(subtaskFields)"
        do {
            _ = try Workflow.parse(yaml: yaml, file: "w.yaml", knownModels: Self.models)
            return nil
        } catch {
            return error as? ConfigError
        }
    }

    /// The poison values of the issue and their kin: each refused on its own line, naming the field.
    @Test(arguments: [
        ("    maxTokens: 200000000000000000\n", 7, "maxTokens"),
        ("    maxTokens: 9223372036854775807\n", 7, "maxTokens"),
        ("    maxTokens: 99999999999999999999999\n", 7, "maxTokens"),
        ("    maxTokens: -1\n", 7, "maxTokens"),
        ("    maxTokens: 1e300\n", 7, "maxTokens"),
        ("    maxTokens: .nan\n", 7, "maxTokens"),
        ("    maxTokens: many\n", 7, "maxTokens"),
        ("    maxAttempts: 9223372036854775807\n", 7, "maxAttempts"),
        ("    maxAttempts: 0\n", 7, "maxAttempts"),
        ("    estimates:\n      smollm2-135m: {tokens: 1e300}\n", 8, "tokens"),
        ("    estimates:\n      smollm2-135m: {tokens: .inf}\n", 8, "tokens"),
        ("    estimates:\n      smollm2-135m: {tokens: -0.0}\n", 8, "tokens"),
        ("    estimates:\n      smollm2-135m: {tokens: [1]}\n", 8, "tokens"),
        ("    estimates:\n      smollm2-135m: {seconds: 1e300}\n", 8, "seconds"),
        ("    estimates:\n      smollm2-135m: {seconds: .nan}\n", 8, "seconds"),
        ("    estimates:\n      smollm2-135m: {success: 1.0000001}\n", 8, "success"),
        ("    estimates:\n      smollm2-135m: {success: .NaN}\n", 8, "success"),
    ])
    func absurdSubtaskNumbersAreRefusedWithTheirLine(fields: String, line: Int, name: String) {
        let e = workflowError(fields)
        #expect(e?.file == "w.yaml" && e?.line == line && e?.message.contains(name) == true, "\(String(describing: e))")
    }

    @Test(arguments: [
        ("budget: {usd: 5e-324}\ndeadline: 1m", 2), ("budget: {usd: 1e300}\ndeadline: 1m", 2), ("budget: {tokens: 0}\ndeadline: 1m", 2),
        ("budget: {usd: -0.0}\ndeadline: 1m", 2), ("budget: {tokens: 1000}\ndeadline: 100000d", 3), ("budget: {tokens: 1000}\ndeadline: 0s", 3),
        ("budget: {tokens: 1000}\ndeadline: 1m\nscaffold: {maxTurns: 9223372036854775807}", 4),
    ])
    func absurdJobNumbersAreRefusedWithTheirLine(top: String, line: Int) {
        let e = workflowError("", top: top)
        #expect(e?.line == line, "\(String(describing: e))")
    }

    /// Values at the edges of the ranges are accepted (±0, subnormals where a positive number is enough).
    @Test func edgesOfTheRangesAreAccepted() throws {
        #expect(workflowError("    maxTokens: 1000000000\n    maxAttempts: 1000000\n") == nil)
        #expect(workflowError("    estimates:\n      smollm2-135m: {success: -0.0, tokens: 5e-324, seconds: 0}\n") == nil)
        #expect(workflowError("", top: "budget: {usd: 0.000000001, tokens: 1000000000000}\ndeadline: 30d") == nil)
    }

    func clusterError(_ yaml: String) -> ConfigError? {
        do {
            _ = try Cluster.parse(yaml: yaml, file: "c.yaml")
            return nil
        } catch {
            return error as? ConfigError
        }
    }

    @Test(arguments: [
        ("models:\n  - {name: m, price: {input: 1e300}}\n", 2),
        ("models:\n  - {name: m, price: {output: 10001}}\n", 2),
        ("models:\n  - {name: m, context: 9223372036854775807}\n", 2),
        ("models:\n  - {name: m}\nworkers:\n  - {name: w, model: m, slots: 1000000, backend: {kind: sim}}\n", 4),
        ("models:\n  - {name: m}\nworkers:\n  - {name: w, model: m, gpus: [-1], backend: {kind: sim}}\n", 4),
        ("models:\n  - {name: m}\nworkers:\n  - {name: w, model: m, backend: {kind: sim, timeScale: 1e300}}\n", 4),
        ("coordinator:\n  heartbeat: 0.001s\nmodels:\n  - {name: m}\n", 2),
        ("coordinator:\n  liveness: 9223372036854775807\nmodels:\n  - {name: m}\n", 2),
        ("coordinator:\n  httpLimits: {connections: 0}\nmodels:\n  - {name: m}\n", 2),
        ("coordinator:\n  httpLimits: {headerTimeout: 0.001s}\nmodels:\n  - {name: m}\n", 2),
        ("models:\n  - {name: m}\nscheduling:\n  tenants: {a: 5e-324}\n", 4),
    ])
    func absurdClusterNumbersAreRefusedWithTheirLine(yaml: String, line: Int) {
        let e = clusterError(yaml)
        #expect(e?.line == line, "\(String(describing: e))")
    }

    @Test func httpLimitsParse() throws {
        let c = try Cluster.parse(yaml: "coordinator:\n  httpLimits: {connections: 100, streamsPerSource: 3, idleTimeout: 2m}\nmodels:\n  - {name: m}\n", file: "c.yaml")
        #expect(c.coordinator.httpLimits.connections == 100 && c.coordinator.httpLimits.streamsPerSource == 3)
        #expect(c.coordinator.httpLimits.idleTimeout == .seconds(120) && c.coordinator.httpLimits.headerTimeout == .seconds(10))
    }

    /// `coordinator.lease` is a span: 2.5s reads as 2.5 s exactly; zero, below 1 s, above 300 s,
    /// NaN, infinity and words are refused on their line with what was wrong.
    @Test func leaseParsesAsASpanAndAbsurdOnesAreRefused() throws {
        let yaml = { (lease: String) in "coordinator:\n  lease: \(lease)\nmodels:\n  - {name: m}\n" }
        #expect(try Cluster.parse(yaml: yaml("2.5s"), file: "c.yaml").coordinator.lease == .milliseconds(2_500))
        #expect(try Cluster.parse(yaml: "models:\n  - {name: m}\n", file: "c.yaml").coordinator.lease == .seconds(5))
        for bad in ["0.5s", "301s", "1e300", "99999999999999999999h"] {
            let e = clusterError(yaml(bad))
            #expect(e?.line == 2 && "\(e.map { "\($0)" } ?? "")".contains("coordinator.lease must be between 1s and 300s"), "\(bad): \(String(describing: e))")
        }
        for bad in ["nan", "inf", "-5s", "soon", "0", "1e300s"] {
            let e = clusterError(yaml(bad))
            #expect(e?.line == 2 && "\(e.map { "\($0)" } ?? "")".contains("bad duration for coordinator.lease"), "\(bad): \(String(describing: e))")
        }
    }

    @Test func amountsSaturateInsteadOfTrapping() {
        #expect(NanoUSD(usd: .nan).value == Int64.max)
        #expect(NanoUSD(usd: .infinity).value == Int64.max)
        #expect(NanoUSD(usd: -.infinity).value == Int64.min)
        #expect(NanoUSD(usd: 1e300).value == Int64.max)
        #expect(NanoUSD(usd: 0.000000001).value == 1)
        #expect((NanoUSD(Int64.max) + NanoUSD(1)).value == Int64.max)
        #expect((NanoUSD(Int64.min) - NanoUSD(1)).value == Int64.min)
        #expect(Int.max.addingSaturated(1) == Int.max && Int.min.subtractingSaturated(1) == Int.min)
        #expect(Int(saturating: 1e300) == Int.max && Int(saturating: -1e300) == Int.min && Int(saturating: .nan) == 0)
        // An unlimited ledger holding reservations near Int.max neither traps nor loses track.
        var ledger = BudgetLedger(limitTokens: nil, limitUSD: nil)
        let huge = Amount(tokens: Int.max - 1, usd: NanoUSD(Int64.max - 1))
        for n in 1...3 { try? ledger.reserve(huge, for: AttemptID(job: "j", subtask: "s", n: n)) }
        #expect(ledger.reserved.tokens == Int.max)
        ledger.chargeInFull(AttemptID(job: "j", subtask: "s", n: 1))
        #expect(ledger.spent.tokens == Int.max - 1)
    }

    /// A subtask built in code (past the parser) with an absurd estimate still gets a sane cap.
    @Test func tokenCapSaturates() {
        let model = ModelSpec(name: "m", priceInput: 1, priceOutput: 1, context: 4096)
        for tokens in [1e300, .infinity, .nan, -5] {
            let s = Subtask(id: "a", prompt: "x", estimates: ["m": Estimate(success: 0.5, tokens: tokens, seconds: 1)])
            #expect((256...4096).contains(s.tokenCap(on: model)), "\(tokens)")
        }
        #expect(NanoUSD(usd: model.worstCaseUSD(tokens: Int.max)).value > 0)
    }
}
