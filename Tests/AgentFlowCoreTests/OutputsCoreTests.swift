import AgentFlowCore
import Archive
import Foundation
import Store
import Testing
import Wire

@testable import Coordinator

/// What the coordinator does with the files subtasks keep: stores them with the subtask (in the
/// batch's transaction), hands them to dependants as inputs, keeps them across a restart, and
/// refuses a bundle that breaks the limits or names a bad path.
@Suite struct OutputsCoreTests {
    let twoSteps = """
        name: t
        models: [m-small]
        budget: {tokens: 100000}
        deadline: 1h
        subtasks:
          - {id: make, kind: files, prompt: x, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}
          - {id: use, kind: answer, needs: [make], prompt: y, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}
        """

    func bundle(_ files: [String: String]) -> OutputBundle {
        let entries = files.sorted { $0.key < $1.key }.map { TreeEntry(path: $0.key, data: Data($0.value.utf8)) }
        return OutputBundle(files: entries.map { OutputFile(path: $0.path, size: $0.data.count, sha256: Blob.hash($0.data)) },
                            blob: Blob(TarGz.pack(entries)))
    }

    func succeed(_ h: CoreHarness, _ spec: AttemptSpec, outputs: OutputBundle?) throws {
        let outcome = AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 10, output: 10)], output: "text", outputs: outputs)
        try h.iterate([.worker(.result(AttemptReport(id: spec.id, outcome: outcome)), from: Data("w0#1".utf8))])
    }

    @Test func outputsAreStoredAndHandedToDependantsAlsoAfterARestart() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        let job = try #require(CoreHarness.submitted(try h.submit(twoSteps)))
        let make = try #require(CoreHarness.dispatches(h.sent).first { $0.spec.id.subtask == "make" })
        let kept = bundle(["data/x.csv": "a,b\n", "notes.md": "n\n"])
        try succeed(h, make.spec, outputs: kept)
        #expect(try h.store.outputs(of: job) == [SubtaskOutputs(subtask: "make", n: make.spec.id.n, bundle: kept.blob.sha256, files: kept.files)])
        let use = try #require(CoreHarness.dispatches(h.sent).first { $0.spec.id.subtask == "use" })
        let work = try #require(use.spec.work)
        #expect(work.inputs.contains(AttemptInput(name: "make", sha256: kept.blob.sha256, size: kept.blob.data.count, at: "inputs/make")))
        #expect(work.blobs.contains(kept.blob))
        // A restarted coordinator reads them back: a re-dispatch of `use` carries them too.
        try h.restart()
        try h.register("w0#2")
        // The worker lost `use` with its restart: unclaimed, it is charged as lost and planned again.
        for _ in 0..<20 {
            h.clock.advance(1)
            try h.iterate([.worker(.heartbeat, from: Data("w0#2".utf8))])
        }
        let again = CoreHarness.dispatches(h.sent).filter { $0.spec.id.subtask == "use" }
        #expect(again.count >= 2, "use was not dispatched again after the restart")
        #expect(again.last?.spec.work?.blobs.contains(kept.blob) == true)
    }

    @Test(arguments: [
        ["../escape.txt": "x"], ["/etc/passwd": "x"], ["a//b": "x"],
    ])
    func aBundleNamingBadPathsIsNotStored(_ files: [String: String]) throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        let job = try #require(CoreHarness.submitted(try h.submit(twoSteps)))
        let make = try #require(CoreHarness.dispatches(h.sent).first { $0.spec.id.subtask == "make" })
        var forged = bundle(["ok.txt": "x"])
        forged.files = files.map { OutputFile(path: $0.key, size: 1, sha256: Blob.hash(Data($0.value.utf8))) }
        try succeed(h, make.spec, outputs: forged)
        // Charged and passed as usual; nothing stored, nothing handed on.
        #expect(try h.store.job(job)?.spentTokens == 20)
        #expect(try h.store.outputs(of: job).isEmpty)
        let use = try #require(CoreHarness.dispatches(h.sent).first { $0.spec.id.subtask == "use" })
        #expect(use.spec.work?.blobs.isEmpty == true)
    }

    @Test func aBundlePastTheLimitsIsNotStored() {
        var tooMany = bundle(["a": "x"])
        tooMany.files = (0...Limits.maxOutputFiles).map { OutputFile(path: "f\($0)", size: 1, sha256: String(repeating: "0", count: 64)) }
        #expect(CoordinatorCore.checkedOutputs(tooMany) == nil)
        var tooBig = bundle(["a": "x"])
        tooBig.files = [OutputFile(path: "a", size: Limits.maxOutputBytes + 1, sha256: String(repeating: "0", count: 64))]
        #expect(CoordinatorCore.checkedOutputs(tooBig) == nil)
        var twice = bundle(["a": "x"])
        twice.files += twice.files
        #expect(CoordinatorCore.checkedOutputs(twice) == nil)
        #expect(CoordinatorCore.checkedOutputs(bundle(["a/b.txt": "x"])) != nil)
    }
}

@Suite struct LargeOutputsCoreTests {
    @Test func bodiesPastOneMessageAreNamedAndServedOnRequest() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        let yaml = """
            name: big
            models: [m-small]
            budget: {tokens: 100000}
            deadline: 1h
            subtasks:
              - {id: a, kind: files, prompt: x, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}
              - {id: b, kind: files, prompt: x, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}
              - {id: c, kind: answer, needs: [a, b], prompt: y, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}
            """
        let job = try #require(CoreHarness.submitted(try h.submit(yaml)))
        var random = SystemRandomNumberGenerator()
        var bundles: [String: OutputBundle] = [:]
        for sid in ["a", "b"] {
            let data = Data((0..<(5 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) })
            let entry = TreeEntry(path: "blob.bin", data: data)
            bundles[sid] = OutputBundle(files: [OutputFile(path: "blob.bin", size: data.count, sha256: Blob.hash(data))], blob: Blob(TarGz.pack([entry])))
            let d = try #require(CoreHarness.dispatches(h.sent).first { $0.spec.id.subtask == sid })
            try h.iterate([.worker(.result(AttemptReport(id: d.spec.id, outcome: AttemptOutcome(
                end: .succeeded, usage: [TokenUsage(role: .agent, input: 1, output: 1)], outputs: bundles[sid]))), from: Data("w0#1".utf8))])
        }
        #expect(try h.store.outputs(of: job).count == 2)
        let c = try #require(CoreHarness.dispatches(h.sent).first { $0.spec.id.subtask == "c" })
        let work = try #require(c.spec.work)
        // Both named; only what fits one message carried.
        #expect(Set(work.inputs.map(\.sha256)) == Set(bundles.values.map(\.blob.sha256)))
        #expect(work.blobs.count == 1 && work.blobs.reduce(0) { $0 + $1.data.count } <= Workflow.maxCarriedBytes)
        let missing = try #require(bundles.values.map(\.blob).first { !work.blobs.contains($0) })
        // The worker asks for the other by name and gets it; another worker asking is ignored.
        let served = try h.iterate([.worker(.fetchBlobs(attempt: c.spec.id, sha256s: [missing.sha256]), from: Data("w0#1".utf8))])
        #expect(served.contains { if case .toWorker(_, .blobs(let b)) = $0 { b == [missing] } else { false } })
        try h.register("other#1")
        let refused = try h.iterate([.worker(.fetchBlobs(attempt: c.spec.id, sha256s: [missing.sha256]), from: Data("other#1".utf8))])
        #expect(!refused.contains { if case .toWorker(_, .blobs) = $0 { true } else { false } })
    }
}
