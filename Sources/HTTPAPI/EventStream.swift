import AgentFlowCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import Wire

/// `GET /api/v1/jobs/{id}/events`: Server-Sent Events for one job. It opens with a `snapshot`
/// (the job as `status --json` shows it, with its attempts), then sends every event the
/// coordinator records — `attempt` (queued, dispatched, ended), `budget` (after each
/// reservation, charge and release) and `job` (state changes) — each with `id:` its sequence
/// number, and ends with `end` once the job has ended and settled. It polls the coordinator
/// over the link four times a second; a reader that fell behind the coordinator's window gets a
/// fresh snapshot. `Last-Event-ID` resumes after that event.
struct EventStream: Sendable {
    /// The link with the stream's token's rights.
    let link: ScopedLink
    let limiter: ConnectionLimiter
    static let interval: UInt64 = 250_000_000
    static let keepAlive = 15.0
    static let defaultMaxSeconds = 300.0

    func response(job: String, request: Request, source: String, connection: (any Channel)? = nil) async -> Response {
        // Streams are capped per source and in total (`coordinator.httpLimits`); past a cap, 503.
        if let limit = limiter.admitStream(source) {
            var r = jsonError(.serviceUnavailable, ConnectionLimiter.message(limit, limiter.limits))
            r.headers[.retryAfter] = "1"
            // The connection goes too: a refused stream client should not keep a connection slot.
            r.headers[.connection] = "close"
            return r
        }
        let ticket = StreamTicket(limiter: limiter, source: source)
        let response = await stream(job: job, request: request, ticket: ticket, connection: connection)
        return response
    }

    func stream(job: String, request: Request, ticket: StreamTicket, connection: (any Channel)?) async -> Response {
        // Answer 404 (not an empty stream) for a job that does not exist.
        let first: ClientReply
        do {
            first = try await link.request(.status(job: job))
        } catch {
            return jsonError(.serviceUnavailable, "\(error)")
        }
        if case .error(let code, let message) = first { return jsonError(code == 2 ? .badRequest : APIRoutes.status(code), message) }
        let resumeAfter = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int($0) }
        // A stream lasts at most `maxSeconds` (default 5 minutes); browsers reconnect on their own
        // with Last-Event-ID, so nothing is missed, and no connection is held forever.
        var maxSeconds = Self.defaultMaxSeconds
        if let v = request.uri.queryParameters["maxSeconds"] {
            guard let m = Double(String(v)), m.isFinite, m >= 0.5, m <= 3600 else {
                return jsonError(.badRequest, "maxSeconds must be a number of seconds from 0.5 to 3600")
            }
            maxSeconds = m
        }
        let body = ResponseBody { [link, maxSeconds, connection] writer in
            // The stream counts against the caps until this closure ends, however it ends.
            defer { ticket.release() }
            // Monotonic: a wall-clock step must not end a stream early or keep it past its limit.
            let started = ContinuousClock.now
            try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            func frame(_ event: String, id: Int?, _ data: Data) -> ByteBuffer {
                var s = ""
                if let id { s += "id: \(id)\n" }
                s += "event: \(event)\ndata: " + String(decoding: data, as: UTF8.self) + "\n\n"
                return ByteBuffer(string: s)
            }
            func snapshot() async throws -> (ByteBuffer, Bool) {
                let status = try await link.request(.status(job: job))
                let attempts = try await link.request(.attempts(job: job))
                guard case .job(let report) = status else { return (ByteBuffer(), false) }
                var list: [AttemptInfo] = []
                if case .attempts(let a) = attempts { list = a }
                let data = try encoder.encode(Snapshot(job: report, attempts: list))
                return (frame("snapshot", id: nil, data), report.state.isTerminal)
            }
            var after = resumeAfter ?? 0
            if resumeAfter == nil {
                // Events before the snapshot are in it; go on from the latest one at that time.
                if case .events(let b) = try await link.request(.events(job: job, after: Int.max - 1)) { after = max(0, b.next - 1) }
                let (buffer, _) = try await snapshot()
                try await writer.write(buffer)
            }
            var lastWrite = ContinuousClock.now
            // A client that has gone is noticed within one poll (not at the next keep-alive), so
            // its place under the stream caps comes back at once.
            while !Task.isCancelled && connection?.isActive != false && ContinuousClock.now - started < .clampedSeconds(maxSeconds) {
                guard case .events(let batch) = try await link.request(.events(job: job, after: after)) else { break }
                if batch.first > after + 1 && after > 0 {
                    let (buffer, _) = try await snapshot()
                    try await writer.write(buffer)
                    lastWrite = ContinuousClock.now
                }
                for e in batch.events {
                    try await writer.write(frame(e.kind, id: e.seq, try encoder.encode(e)))
                    after = e.seq
                    lastWrite = ContinuousClock.now
                }
                if !batch.live && batch.events.isEmpty {
                    try await writer.write(frame("end", id: nil, Data("{\"job\":\(jsonQuote(job))}".utf8)))
                    break
                }
                if ContinuousClock.now - lastWrite > .clampedSeconds(Self.keepAlive) {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    lastWrite = ContinuousClock.now
                }
                try await Task.sleep(nanoseconds: Self.interval)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}

/// One admitted stream's place under the caps; released once (when its body ends, or when the
/// request ended before a body was made).
final class StreamTicket: Sendable {
    let limiter: ConnectionLimiter
    let source: String
    private let held = Atomic<Bool>(true)

    init(limiter: ConnectionLimiter, source: String) {
        self.limiter = limiter
        self.source = source
    }

    func release() {
        if held.exchange(false, ordering: .acquiringAndReleasing) { limiter.releaseStream(source) }
    }

    deinit { release() }
}

struct Snapshot: Encodable {
    var job: JobReport
    var attempts: [AttemptInfo]
}

func jsonQuote(_ s: String) -> String {
    let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
    return String(decoding: data, as: UTF8.self)
}
