import Foundation

/// What a worker's model server says it is doing: requests it is serving and requests waiting
/// for a slot (vLLM's `vllm:num_requests_running`/`vllm:num_requests_waiting`, llama.cpp's
/// `/slots` or its `requests_processing`/`requests_deferred` metrics). The worker reports it
/// with its heartbeat; placement counts it as busy slots (a shared or saturated server is a
/// busy GPU, whoever sent the requests).
public struct ServerLoad: Codable, Sendable, Equatable {
    public var running: Int
    public var waiting: Int

    /// The largest count kept: a server saying more is as busy as can be (and a hostile or
    /// broken one cannot overflow anything).
    public static let maxCount = 1 << 20

    public init(running: Int, waiting: Int) {
        self.running = running
        self.waiting = waiting
    }

    /// Both counts within 0...``maxCount``.
    public var clamped: ServerLoad {
        ServerLoad(running: min(max(0, running), Self.maxCount), waiting: min(max(0, waiting), Self.maxCount))
    }
}
