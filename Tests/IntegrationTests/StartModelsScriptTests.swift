import Foundation
import TestSupport
import Testing

/// Runs `bash SCRIPT ARGS` from the repository root with extra environment; exit status and
/// stdout+stderr together. Past `timeout` it records an issue and sends `stop` (SIGTERM lets a
/// script's trap remove what it made), then waits for the script to end.
func runScript(_ script: String, _ args: [String] = [], env: [String: String] = [:], timeout: Double = 60,
               stop: Int32 = SIGKILL) throws -> (code: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = [Paths.root.appendingPathComponent(script).path] + args
    p.currentDirectoryURL = Paths.root
    p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
    let log = NSTemporaryDirectory() + "af-script-\(UUID().uuidString).log"
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: log) }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    p.standardOutput = handle
    p.standardError = handle
    p.standardInput = FileHandle.nullDevice
    try launch(p)
    try? handle.close()  // the child writes through its own copy
    let end = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
    if p.isRunning {
        kill(p.processIdentifier, stop)
        p.waitUntilExit()
        Issue.record("\(script) \(args.joined(separator: " ")) timed out after \(timeout)s")
    }
    return (p.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
}

/// `tools/start-models.sh` smoke-tests each server with one real chat completion and explains a
/// server that dies or fails. The server here is the stand-in of `tools/stand-in-llama-server`
/// (a `llama_cpp.server` module on PYTHONPATH, run by python3), on a free port with its own
/// state folder: the shared model servers and their pid files are never touched.
@Suite(.serialized) struct StartModelsScriptTests {
    /// Starts the stand-in as `smollm2` in `mode`; returns the script's result and the state folder.
    func start(_ mode: String) throws -> (code: Int32, output: String, state: URL, port: Int) {
        let state = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-start-models-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let gguf = state.appendingPathComponent("model.gguf").path
        _ = FileManager.default.createFile(atPath: gguf, contents: Data())
        try "SMOLLM2_GGUF=\(gguf)\nGEMMA3_GGUF=\(gguf)\n".write(to: state.appendingPathComponent("models.env"), atomically: true, encoding: .utf8)
        let port = freePort()
        let r = try runScript("tools/start-models.sh", ["smollm2"], env: [
            "AGENTFLOW_STATE_DIR": state.path,
            "AGENTFLOW_SMOLLM2_PORT": String(port),
            "AGENTFLOW_LLAMA_PYTHON": "python3",
            "PYTHONPATH": Paths.root.appendingPathComponent("tools/stand-in-llama-server").path,
            "AGENTFLOW_STANDIN": mode,
        ])
        return (r.code, r.output, state, port)
    }

    func stop(_ state: URL) {
        _ = try? runScript("tools/start-models.sh", ["--stop"], env: ["AGENTFLOW_STATE_DIR": state.path], timeout: 20)
        try? FileManager.default.removeItem(at: state)
    }

    @Test func aServerThatAnswersItsChatCompletionIsReady() throws {
        let r = try start("ok")
        defer { stop(r.state) }
        #expect(r.code == 0, "\(r.output)")
        #expect(r.output.contains("smollm2-135m ready at http://127.0.0.1:\(r.port)/v1 (answered a chat completion)"), "\(r.output)")
        // --stop stops it, even though this test process hands its children a blocked SIGTERM.
        let stopped = try runScript("tools/start-models.sh", ["--stop"], env: ["AGENTFLOW_STATE_DIR": r.state.path], timeout: 30)
        #expect(stopped.output.contains("stopped smollm2-135m"), "\(stopped.output)")
        #expect(!listening(on: UInt16(r.port)))
    }

    @Test func aServerKilledBySIGILLOnItsFirstRequestIsExplainedWithItsLog() throws {
        let r = try start("sigill")
        defer { stop(r.state) }
        #expect(r.code == 1, "\(r.output)")
        #expect(r.output.contains("FAILED smollm2-135m: illegal instruction: the llama.cpp build uses CPU instructions this machine cannot run"), "\(r.output)")
        #expect(r.output.contains("it died on its first chat completion"), "\(r.output)")
        // The tail of the server's log: its own last words and Python's fault handler.
        #expect(r.output.contains("last lines of \(r.state.path)/llama-smollm2-135m.log"), "\(r.output)")
        #expect(r.output.contains("stand-in: first chat completion, raising SIGILL"), "\(r.output)")
        #expect(r.output.contains("Fatal Python error: Illegal instruction"), "\(r.output)")
    }

    @Test func aServerThatAnswersWithAnErrorFailsTheScriptAndIsStopped() throws {
        let r = try start("http500")
        defer { stop(r.state) }
        #expect(r.code == 1, "\(r.output)")
        #expect(r.output.contains("FAILED smollm2-135m: a chat completion answered HTTP 500"), "\(r.output)")
        #expect(r.output.contains("stand-in failure"), "\(r.output)")
        // Nothing is left running on the port.
        #expect(!FileManager.default.fileExists(atPath: r.state.appendingPathComponent("llama-smollm2-135m.pid").path))
    }

    @Test func aServerThatExitsWhileLoadingIsReportedWithItsStatus() throws {
        let r = try start("exit3")
        defer { stop(r.state) }
        #expect(r.code == 1, "\(r.output)")
        #expect(r.output.contains("FAILED smollm2-135m: the server exited with status 3"), "\(r.output)")
        #expect(r.output.contains("stand-in: exiting with status 3 before listening"), "\(r.output)")
    }
}
