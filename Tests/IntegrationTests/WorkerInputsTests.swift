import AgentFlowCore
import Foundation
import Testing
import Wire
import ZeroMQ

/// The worker's half of content-addressed inputs, against a scripted coordinator (a ROUTER
/// socket in this test) and a real worker process: a dispatch that names a blob it does not
/// carry makes the worker ask for it (`fetchBlobs`) and start once it arrives; a blob it has
/// is not asked for again; one that never comes ends the attempt at its deadline; a body that
/// is not its name is dropped.
@Suite(.serialized) struct WorkerInputsTests {
    final class ScriptedCoordinator {
        let context = ZMQContext()
        let socket: ZMQSocket
        let codec = WireCodec()
        let port = freePort()
        var worker = Data()

        init() throws {
            socket = try ZMQSocket(context, .router)
            try socket.setMaxMessageSize(16 << 20)
            try socket.bind("tcp://127.0.0.1:\(port)")
        }

        deinit { socket.close() }

        /// The next message from the worker other than a heartbeat or progress.
        func next(timeout: Double = 15) throws -> WorkerMessage {
            let end = Date().addingTimeInterval(timeout)
            while Date() < end {
                var poller = ZMQPoller()
                poller.add(socket)
                try poller.poll(timeout: 0.1)
                guard poller.isReadable(0), let frames = try socket.receive(dontWait: true), frames.count == 2 else { continue }
                worker = frames[0]
                let message = try codec.decode(WorkerMessage.self, from: frames[1])
                switch message {
                case .heartbeat, .progress: _ = try socket.send([worker, codec.encode(CoordinatorMessage.heartbeat)])
                default: return message
                }
            }
            throw WaitTimeout(what: "a message from the worker")
        }

        func send(_ message: CoordinatorMessage) throws {
            _ = try socket.send([worker, codec.encode(message)])
        }

        func sendRaw(_ data: Data) throws {
            _ = try socket.send([worker, data])
        }
    }

    func spec(_ n: Int, _ blob: Blob, carried: Bool, ttl: Double = 20) -> AttemptSpec {
        var s = AttemptSpec(id: AttemptID(job: "j1", subtask: "report", n: n), model: "smollm2-135m", prompt: "p", verify: nil, inputs: [:],
                            tokenCap: 1000, ttl: .seconds(ttl), scaffold: ScaffoldOptions(),
                            simulated: Estimate(success: 1, tokens: 100, seconds: 0.1), seed: UInt64(n))
        s.work = AttemptWork(kind: .answer, inputs: [AttemptInput(name: "notes", sha256: blob.sha256, size: blob.data.count, at: "inputs/notes")],
                             blobs: carried ? [blob] : [])
        return s
    }

    @Test func aWorkerFetchesMissingInputsOnceAndCachesThem() throws {
        let coordinator = try ScriptedCoordinator()
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-inputs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cluster = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator: {workers: "tcp://127.0.0.1:\(coordinator.port)", clients: "tcp://127.0.0.1:\(freePort())", database: "\(dir.path)/db"}
        models: [{name: smollm2-135m, price: {input: 0.02, output: 0.05}}]
        workers: [{name: w0, gpus: [], model: smollm2-135m, slots: 4, backend: {kind: sim, timeScale: 0.01, seed: 1}}]
        """.write(toFile: cluster, atomically: true, encoding: .utf8)
        let worker = try Proc(["worker", "--name", "w0", "--cluster", cluster], log: dir.appendingPathComponent("w0.log").path)
        defer {
            worker.terminate()
            if worker.wait(timeout: 5) == nil { worker.kill9() }
        }
        guard case .register = try coordinator.next() else { Issue.record("no registration"); return }
        try coordinator.send(.welcome(heartbeat: 1, liveness: 30))

        let blob = Blob(Data("the notes".utf8))
        // 1. Named but not carried: the worker asks for exactly that blob, then runs.
        try coordinator.send(.dispatch(spec(1, blob, carried: false)))
        guard case .fetchBlobs(let id, let hashes) = try coordinator.next() else { Issue.record("no fetch: \(worker.output)"); return }
        #expect(id == AttemptID(job: "j1", subtask: "report", n: 1))
        #expect(hashes == [blob.sha256])
        // A body that is not its name is dropped whole (the worker keeps waiting)…
        var bytes = [UInt8](coordinator.codec.encode(CoordinatorMessage.blobs([blob])))
        let body = Array(Data("the notes".utf8).base64EncodedString().utf8)
        if let at = (0...(bytes.count - body.count)).first(where: { Array(bytes[$0..<($0 + body.count)]) == body }) { bytes[at] ^= 0x01 }
        try coordinator.sendRaw(Data(bytes))
        // …and the real one starts the attempt.
        try coordinator.send(.blobs([blob]))
        guard case .result(let first) = try coordinator.next() else { Issue.record("no result: \(worker.output)"); return }
        #expect(first.id.n == 1)
        #expect(first.outcome.end == .succeeded, "\(first.outcome.detail)")
        #expect(first.outcome.outputs?.files.map(\.path) == ["answer.md"])

        // 2. The same blob again, not carried: the worker has it and does not ask.
        try coordinator.send(.dispatch(spec(2, blob, carried: false)))
        guard case .result(let second) = try coordinator.next() else { Issue.record("asked again: \(worker.output)"); return }
        #expect(second.id.n == 2 && second.outcome.end == .succeeded)

        // 3. A blob that never comes: the attempt ends at its deadline, saying why.
        let missing = Blob(Data("never sent".utf8))
        try coordinator.send(.dispatch(spec(3, missing, carried: false, ttl: 2)))
        guard case .fetchBlobs = try coordinator.next() else { Issue.record("no fetch for the missing blob"); return }
        guard case .result(let third) = try coordinator.next(timeout: 10) else { Issue.record("no result for the missing blob"); return }
        #expect(third.outcome.end == .deadline)
        #expect(third.outcome.detail == "deadline reached while waiting for inputs")
        #expect(third.outcome.totalTokens == 0)
    }
}
