import Foundation
import TestSupport
import Testing

@testable import LLM

/// What a worker learns of its model server's load (placement counts it): vLLM's and
/// llama.cpp's `/metrics`, llama.cpp's `/slots`, nothing from a server with neither; every
/// request bounded in time and size.
@Suite struct ServerLoadProbeTests {
    /// A load as an Equatable value, nil staying nil.
    struct L: Equatable {
        var running: Int, waiting: Int
        init(_ running: Int, _ waiting: Int) { (self.running, self.waiting) = (running, waiting) }
        init?(_ load: ServerLoadProbe.Load?) {
            guard let load else { return nil }
            self.init(load.running, load.waiting)
        }
    }

    static let vllm = """
        # HELP vllm:num_requests_running Number of requests currently running on GPU.
        # TYPE vllm:num_requests_running gauge
        vllm:num_requests_running{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 3.0
        vllm:num_requests_running{engine="1",model_name="Qwen/Qwen2.5-7B-Instruct"} 1.0
        # HELP vllm:num_requests_waiting Number of requests waiting to be processed.
        # TYPE vllm:num_requests_waiting gauge
        vllm:num_requests_waiting{engine="0",model_name="a {weird} name"} 5.0
        vllm:num_requests_waiting{engine="1",model_name="Qwen/Qwen2.5-7B-Instruct"} 2.0 1712345678000
        vllm:num_requests_waiting_by_priority{engine="0"} 99
        vllm:gpu_cache_usage_perc{engine="0"} 0.5
        """

    @Test func vllmMetricsAreSummedOverEngines() {
        #expect(L(ServerLoadProbe.parseMetrics(Self.vllm)) == L(4, 7))
    }

    @Test func llamaCppMetricsGiveProcessingAndDeferred() {
        let text = "# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 2\nllamacpp:requests_deferred 3\nllamacpp:kv_cache_usage_ratio 0.1\n"
        #expect(L(ServerLoadProbe.parseMetrics(text)) == L(2, 3))
    }

    @Test func pagesWithoutTheCountsOrWithAbsurdValuesSayNothingHarmful() {
        #expect(ServerLoadProbe.parseMetrics("") == nil)
        #expect(ServerLoadProbe.parseMetrics("process_cpu_seconds_total 12\n# vllm:num_requests_waiting 3\n") == nil)
        #expect(ServerLoadProbe.parseMetrics("vllm:num_requests_waiting{a=\"1\" 3\n") == nil)
        #expect(L(ServerLoadProbe.parseMetrics("vllm:num_requests_waiting NaN\nvllm:num_requests_running -4\n")) == L(0, 0))
        #expect(L(ServerLoadProbe.parseMetrics("vllm:num_requests_waiting +Inf\nvllm:num_requests_running 1e300\n"))
            == L(ServerLoadProbe.maxCount, ServerLoadProbe.maxCount))
        #expect(ServerLoadProbe.parseMetrics("vllm:num_requests_waiting \u{0}\u{7}\n") == nil)
    }

    @Test func llamaCppSlotsCountTheProcessingOnes() {
        let slots = #"[{"id": 0, "n_ctx": 2048, "is_processing": true}, {"id": 1, "is_processing": false}, {"id": 2, "is_processing": true}]"#
        #expect(L(ServerLoadProbe.parseSlots(Data(slots.utf8))) == L(2, 0))
        #expect(L(ServerLoadProbe.parseSlots(Data(#"[{"id": 0, "state": 1}, {"id": 1, "state": 0}]"#.utf8))) == L(1, 0))
        for garbage in ["{}", "[]", "[1, 2]", #"[{"id": 0}]"#, "not json", #"{"error": "slots endpoint disabled"}"#] {
            #expect(ServerLoadProbe.parseSlots(Data(garbage.utf8)) == nil, "\(garbage)")
        }
    }

    @Test func theServerRootIsBesideV1() {
        #expect(ServerLoadProbe.serverRoot("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000")
        #expect(ServerLoadProbe.serverRoot("https://h/api/v1/") == "https://h/api")
        #expect(ServerLoadProbe.serverRoot("http://h:1") == "http://h:1")
    }

    func file(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "af-load-\(UUID().uuidString)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Through HTTP: a vLLM-like page (changing between polls), a llama.cpp-like slot list, and
    /// a server with neither (the shared fake, like llama-cpp-python's server) saying nothing.
    @Test func aLiveServerIsAskedAtItsRoot() throws {
        let metrics = try file(Self.vllm)
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        let vllm = FakeServer(arguments: ["--metrics-file", metrics])
        let config = ChatClient.Configuration(baseURL: vllm.baseURL)
        #expect(L(ServerLoadProbe.load(config)) == L(4, 7))
        try "vllm:num_requests_waiting 0\nvllm:num_requests_running 0\n".write(toFile: metrics, atomically: true, encoding: .utf8)
        #expect(L(ServerLoadProbe.load(config)) == L(0, 0))

        let slots = try file(#"[{"id": 0, "is_processing": true}, {"id": 1, "is_processing": true}]"#)
        defer { try? FileManager.default.removeItem(atPath: slots) }
        let llama = FakeServer(arguments: ["--slots-file", slots])
        #expect(L(ServerLoadProbe.load(ChatClient.Configuration(baseURL: llama.baseURL))) == L(2, 0))

        #expect(ServerLoadProbe.load(ChatClient.Configuration(baseURL: FakeServer.shared.baseURL)) == nil)
        #expect(ServerLoadProbe.load(ChatClient.Configuration(baseURL: "http://127.0.0.1:9/v1"), timeout: 0.5) == nil)
    }

    /// A page past the size bound is not read; a server that never answers costs the timeout.
    @Test func requestsAreBoundedInSizeAndTime() throws {
        let huge = try file(String(repeating: "# padding padding padding padding\n", count: 40_000) + "vllm:num_requests_waiting 3\n")
        defer { try? FileManager.default.removeItem(atPath: huge) }
        let server = FakeServer(arguments: ["--metrics-file", huge])
        #expect(ServerLoadProbe.load(ChatClient.Configuration(baseURL: server.baseURL)) == nil)

        let listener = try SilentListener()
        defer { listener.close() }
        let started = ContinuousClock.now  // intervals on the monotonic clock: a wall-clock step is no timeout
        #expect(ServerLoadProbe.load(ChatClient.Configuration(baseURL: "http://127.0.0.1:\(listener.port)/v1"), timeout: 0.3) == nil)
        #expect(ContinuousClock.now - started < .seconds(3), "took \(ContinuousClock.now - started)")
    }
}
