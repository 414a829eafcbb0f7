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
