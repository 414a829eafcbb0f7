import AgentFlowCore
import Foundation
import Wire
import ZeroMQ

/// The benchmarks' client of a coordinator's client socket: one DEALER, request/reply, on the
/// thread that made it.
final class BenchClient {
    let socket: ZMQSocket
    let codec = WireCodec()

    init(endpoint: String, context: ZMQContext) throws {
        socket = try ZMQSocket(context, .dealer)
        try socket.connect(endpoint)
    }

    deinit { socket.close() }

    func request(_ r: ClientRequest, timeout: Double = 30) throws -> ClientReply {
        guard let answer = try socket.request(codec.encode(r), timeout: timeout) else {
            throw BenchmarkFailure(description: "the coordinator did not answer within \(Int(timeout)) s")
        }
        return try codec.decode(ClientReply.self, from: answer)
    }

    func submit(_ s: SubmitRequest) throws -> String {
        switch try request(.submit(s), timeout: 300) {
        case .submitted(let id): return id
        case let other: throw BenchmarkFailure(description: "submission refused: \(other)")
        }
    }

    func job(_ id: String) throws -> JobReport {
        switch try request(.status(job: id)) {
        case .job(let j): return j
        case let other: throw BenchmarkFailure(description: "status of \(id): \(other)")
        }
    }

    /// Whether a job is still live (not ended, or an attempt of it still in flight), asked with
    /// its event window past the last event: an answer that costs the coordinator next to
    /// nothing, unlike a status report, which reads and encodes every subtask.
    func isLive(_ id: String) throws -> Bool {
        switch try request(.events(job: id, after: Int.max / 2)) {
        case .events(let batch): return batch.live
        case let other: throw BenchmarkFailure(description: "events of \(id): \(other)")
        }
    }

    /// How many jobs have not ended (queued or running), counted by the store over every job
    /// (`.jobs` lists only the newest 100).
    func unendedJobs() throws -> Int {
        try [JobState.queued, .running].reduce(0) { sum, state in
            switch try request(.queryJobs(JobQuery(state: state.rawValue, limit: 1)), timeout: 300) {
            case .jobPage(let page): return sum + page.total
            case let other: throw BenchmarkFailure(description: "jobs \(state.rawValue): \(other)")
            }
        }
    }
}
