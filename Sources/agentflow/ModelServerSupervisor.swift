import AgentFlowCore
import Foundation
import LLM
import Synchronization

/// Keeps one worker's model server running for `agentflow node` (issue 12): starts the
/// `serve` command (`{gpu}` and `{port}` substituted, `CUDA_VISIBLE_DEVICES` set to the
/// worker's GPUs) as its own process group, waits until it answers a real one-token chat
/// completion, and restarts it with backoff (1 s doubling to 60 s; back to 1 s after a run of
/// a minute) whenever it exits. Meanwhile the worker keeps serving: attempts fail without
/// tokens and the coordinator's breaker takes the worker out of dispatch until the server is back.
final class ModelServerSupervisor: Sendable {
    let name: String
    let command: String
    let gpus: [Int]
    let client: ChatClient.Configuration
    let model: String
    let logFile: String?
    private let stopping = Atomic<Bool>(false)
    private let child = Mutex<Int32>(0)
    private let done = Atomic<Bool>(false)
    /// Times the server was started, and times it answered a completion.
    let starts = Atomic<Int>(0)
    let readies = Atomic<Int>(0)

    /// `command` with `{gpu}` (the first GPU, or the comma list) and `{port}` substituted.
    static func substitute(_ command: String, gpus: [Int], port: Int) -> String {
        command.replacingOccurrences(of: "{gpu}", with: gpus.map(String.init).joined(separator: ","))
            .replacingOccurrences(of: "{port}", with: String(port))
    }

    /// `client`: the worker's settings for the server (URL, key, headers); `model`: the name the server serves.
    init(name: String, command: String, port: Int, gpus: [Int], client: ChatClient.Configuration, model: String, logFile: String?) {
        self.name = name
        self.command = Self.substitute(command, gpus: gpus, port: port)
        self.gpus = gpus
        self.client = client
        self.model = model
        self.logFile = logFile
    }

    func log(_ line: String) { printError("node: model server of \(name): \(line)") }

    func start() {
        startThread(named: "serve-\(name)") { [self] in
            supervise()
            done.store(true, ordering: .releasing)
        }
    }

    private func supervise() {
        var backoff = 1.0
        while !stopping.load(ordering: .acquiring) {
            let began = ContinuousClock.now
            guard let process = launch() else {
                sleep(backoff)
                backoff = min(backoff * 2, 60)
                continue
            }
            starts.add(1, ordering: .relaxed)
            var ready = false
            while process.isRunning && !stopping.load(ordering: .acquiring) {
                if !ready && answersCompletion() {
                    ready = true
                    readies.add(1, ordering: .relaxed)
                    log("ready at \(client.baseURL) (answered a completion after \(Int((ContinuousClock.now - began).seconds))s)")
                }
                Thread.sleep(forTimeInterval: ready ? 0.2 : 0.5)
            }
            process.waitUntilExit()
            if stopping.load(ordering: .acquiring) { break }
            if ContinuousClock.now - began > .seconds(60) { backoff = 1 }
            log("exited (status \(process.terminationStatus)); restarting in \(Int(backoff))s")
            sleep(backoff)
            backoff = min(backoff * 2, 60)
        }
    }

    private func sleep(_ seconds: Double) {
        let end = ContinuousClock.now + .clampedSeconds(seconds)
        while ContinuousClock.now < end && !stopping.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.1) }
    }

    private func launch() -> Process? {
        let p = Process()
        // Foundation starts the child as the leader of a new process group: the server and
        // anything the shell starts are stopped together through it.
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        var env = ProcessInfo.processInfo.environment
        env["CUDA_VISIBLE_DEVICES"] = gpus.map(String.init).joined(separator: ",")
        p.environment = env
        p.standardInput = FileHandle.nullDevice
        var logHandle: FileHandle?
        if let logFile {
            if !FileManager.default.fileExists(atPath: logFile) { _ = FileManager.default.createFile(atPath: logFile, contents: nil) }
            if let h = FileHandle(forWritingAtPath: logFile) {
                h.seekToEndOfFile()
                logHandle = h
                p.standardOutput = h
                p.standardError = h
            }
        } else {
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
        }
        // The child writes through its own copy: the node's closes whatever happens, so a server
        // restarted all day never leaves a descriptor per start behind.
        defer { try? logHandle?.close() }
        do {
            try p.run()
        } catch {
            log("cannot start '\(command)': \(error)")
            return nil
        }
        child.withLock { $0 = p.processIdentifier }
        log("started (pid \(p.processIdentifier), CUDA_VISIBLE_DEVICES=\(env["CUDA_VISIBLE_DEVICES"] ?? "")): \(command)")
        return p
    }

    /// Whether the server completes a one-token chat request (a listening port is not enough:
    /// vLLM and llama.cpp answer HTTP well before the model is loaded).
    private func answersCompletion() -> Bool {
        var settings = client
        settings.connectTimeout = .seconds(1)
        settings.requestTimeout = .seconds(10)
        settings.stallTimeout = .seconds(10)
        settings.firstByteTimeout = .seconds(10)
        settings.maxRetries = 0
        settings.minCompletionTokens = 1
        settings.requireServerUsage = false
        let request = ChatRequest(model: model, messages: [.user("Say OK.")], maxCompletionTokens: 1)
        return (try? ChatClient(settings).complete(request, allowance: 4096)) != nil
    }

    /// Stops the server (SIGTERM to its process group, SIGKILL after `grace` seconds) and the supervision.
    func stop(grace: Double = 10) {
        stopping.store(true, ordering: .releasing)
        let pid = child.withLock { $0 }
        if pid > 0 { kill(-pid, SIGTERM) }
        let end = ContinuousClock.now + .clampedSeconds(grace)
        while !done.load(ordering: .acquiring) && ContinuousClock.now < end { Thread.sleep(forTimeInterval: 0.02) }
        if !done.load(ordering: .acquiring), pid > 0 { kill(-pid, SIGKILL) }
        while !done.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.02) }
    }
}
