import AgentFlowCore
import Coordinator
import Foundation
import HTTPAPI
import Synchronization
import Wire
import Worker
import ZeroMQ

/// `agentflow bench intake`: how fast the coordinator accepts jobs, and whether that holds as the
/// queue grows. An embedded coordinator (real ZeroMQ client socket, real SQLite file, fsynced)
/// serves one model whose only worker has one slot busy for an hour, so every accepted job stays
/// queued. At each queue depth (jobs accepted and not ended) the queue is first filled to that
/// depth, untimed, then `clients` threads, each with its own DEALER socket, submit `perDepth`
/// jobs between them as fast as they are answered; rate = jobs ÷ wall time from the first send
/// to the last answer, latency = each submission's send → `submitted` reply.
public enum IntakeBenchmark {
    /// How the clients submit.
    public enum Transport: String, Sendable, Encodable, CaseIterable {
        /// The coordinator's ZeroMQ client socket (what the CLI uses).
        case socket
        /// `POST /api/v1/jobs` on the coordinator's HTTP server, YAML body.
        case http
    }

    public struct Settings: Sendable {
        /// Concurrent in-process clients, each with its own socket and thread.
        public var clients = 8
        /// Which door the jobs come through.
        public var transport = Transport.socket
        /// Queue depths to measure at, ascending.
        public var depths = [0, 1_000, 10_000]
        /// Jobs submitted (timed) at each depth.
        public var perDepth = 1_000
        /// The jobs' planner (`mcpp` is the default a user gets).
        public var planner = "mcpp"
        /// The SQLite file (nil: a fresh temporary file, removed afterwards).
        public var database: String?

        public init() {}
    }

    public struct Point: Encodable, Sendable {
        public var depth: Int
        public var jobs: Int
        public var seconds: Double
        public var jobsPerSecond: Double
        public var p50ms: Double
        public var p99ms: Double
        /// The process's resident memory when the point ended (MiB).
        public var rssMiB: Double
        /// User + system CPU of the whole process (coordinator, HTTP server and the clients) per
        /// job while the point ran: less at the mercy of other load on the machine than the rate.
        public var cpuMsPerJob: Double
    }

    public struct Result: Encodable, Sendable {
        public var clients: Int
        public var transport: Transport
        public var planner: String
        public var points: [Point]
    }

    /// A five-subtask ETL-shaped workflow (extract → three transforms → load) with estimates,
    /// so MCPP has something to plan; its attempts take an hour on the sim backend.
    static let workflow = """
        name: intake-etl
        deadline: 24h
        budget: {usd: 5}
        subtasks:
          - {id: extract, prompt: "read the records", estimates: {bench-model: {success: 0.9, tokens: 800, seconds: 3600}}}
          - {id: clean, prompt: "drop malformed rows", needs: [extract], estimates: {bench-model: {success: 0.8, tokens: 600, seconds: 3600}}}
          - {id: dedupe, prompt: "merge duplicates", needs: [extract], estimates: {bench-model: {success: 0.8, tokens: 600, seconds: 3600}}}
          - {id: enrich, prompt: "add the region", needs: [extract], estimates: {bench-model: {success: 0.7, tokens: 900, seconds: 3600}}}
          - {id: load, prompt: "write the table", needs: [clean, dedupe, enrich], estimates: {bench-model: {success: 0.9, tokens: 500, seconds: 3600}}}
        """

    public static func run(_ settings: Settings, progress: (String) -> Void = { _ in }) throws -> Result {
        // One worker with one slot, taken for an hour by the first job's first attempt: the rest queue.
        // The HTTP server reaches the coordinator as `agentflow coordinator --http` does: through
        // an in-process endpoint, no TCP or CURVE between them.
        let inProcess = "inproc://agentflow-bench-http-clients"
        let bench = try EmbeddedBenchCluster(name: "intake", workers: 1, slots: 1, database: settings.database, timeScale: 1, modelContext: 65_536,
                                             internalClients: settings.transport == .http ? inProcess : nil)
        defer { bench.removeDatabase() }
        defer { _ = bench.coordinator.shutdown() }
        let (context, endpoints) = (bench.context, bench.endpoints)
        let threads = bench.startWorkers()
        defer { for t in threads { t.shutdown() } }
        let request = SubmitRequest(yaml: workflow, file: "intake-etl.yaml", planner: settings.planner, seed: 1)
        // Over HTTP: the coordinator's HTTP server, in process, linked to the coordinator as
        // `agentflow coordinator --http` links it.
        var http: HTTPServer?
        defer { http?.stop() }
        var submit: Submitter = .socket(endpoints.clients, request)
        if settings.transport == .http {
            let server = HTTPServer(options: HTTPOptions(host: "127.0.0.1", port: 0, tokens: nil, knownModels: [EmbeddedBenchCluster.modelName]),
                                    link: CoordinatorLink(endpoint: inProcess, context: context), metrics: { "" })
            let port = try server.start()
            http = server
            let planner = settings.planner.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "mcpp"
            submit = .http(port: port, path: "/api/v1/jobs?file=intake-etl.yaml&planner=\(planner)", body: Array(workflow.utf8))
        }
        var accepted = 0
        var points: [Point] = []
        for depth in settings.depths.sorted() {
            if depth > accepted {
                progress("filling the queue to \(depth) jobs")
                _ = try submitConcurrently(depth - accepted, clients: settings.clients, submit: submit, context: context)
                accepted = depth
            }
            progress("submitting \(settings.perDepth) jobs at queue depth \(depth)")
            let cpuAtStart = DispatchBenchmark.processCPUSeconds()
            let (seconds, latencies) = try submitConcurrently(settings.perDepth, clients: settings.clients, submit: submit, context: context)
            let cpu = DispatchBenchmark.processCPUSeconds() - cpuAtStart
            accepted += settings.perDepth
            let sorted = latencies.sorted()
            func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(p * Double(sorted.count)))] * 1000 }
            points.append(Point(depth: depth, jobs: settings.perDepth, seconds: seconds, jobsPerSecond: Double(settings.perDepth) / max(seconds, 1e-9),
                                p50ms: pct(0.5), p99ms: pct(0.99), rssMiB: ResidentMemory.mebibytes(),
                                cpuMsPerJob: cpu * 1000 / Double(max(settings.perDepth, 1))))
        }
        // Every job is still queued: none ended, so the depths above are what the loop carried.
        let client = try BenchClient(endpoint: endpoints.clients, context: context)
        if case let unended = try client.unendedJobs(), unended != accepted {
            throw BenchmarkFailure(description: "\(accepted - unended) of the \(accepted) jobs ended during the run; the queue depths are not what they claim")
        }
        return Result(clients: settings.clients, transport: settings.transport, planner: settings.planner, points: points)
    }

    /// One way to submit the workflow.
    enum Submitter: Sendable {
        case socket(String, SubmitRequest)
        case http(port: Int, path: String, body: [UInt8])
    }

    /// Submits `count` jobs from `clients` threads; returns the wall time and each submission's latency.
    static func submitConcurrently(_ count: Int, clients: Int, submit: Submitter, context: ZMQContext) throws -> (seconds: Double, latencies: [Double]) {
        let next = Atomic<Int>(0)
        let results = Mutex<(latencies: [Double], failure: String?)>(([], nil))
        let start = DispatchTime.now().uptimeNanoseconds
        ClientThreads.run(clients) { _ in
            do {
                let one: () throws -> Void
                switch submit {
                case .socket(let endpoint, let request):
                    let client = try BenchClient(endpoint: endpoint, context: context)
                    one = { _ = try client.submit(request) }
                case .http(let port, let path, let body):
                    let client = try BenchHTTPClient(port: port)
                    one = {
                        let answer = try client.send(method: "POST", path: path, contentType: "application/yaml", body: body)
                        guard (200..<300).contains(answer.status) else {
                            throw BenchmarkFailure(description: "POST /api/v1/jobs answered \(answer.status): \(String(decoding: answer.body.prefix(300), as: UTF8.self))")
                        }
                    }
                }
                var mine: [Double] = []
                while next.add(1, ordering: .relaxed).oldValue < count {
                    let sent = DispatchTime.now().uptimeNanoseconds
                    try one()
                    mine.append(Double(DispatchTime.now().uptimeNanoseconds - sent) / 1e9)
                }
                results.withLock { $0.latencies += mine }
            } catch {
                results.withLock { $0.failure = $0.failure ?? "\(error)" }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let (latencies, failure) = results.withLock { ($0.latencies, $0.failure) }
        if let failure { throw BenchmarkFailure(description: failure) }
        return (seconds, latencies)
    }

    /// The result as lines for a person.
    public static func render(_ r: Result) -> String {
        let door = r.transport == .http ? "POST /api/v1/jobs" : "the client socket"
        var lines = ["intake: \(r.clients) concurrent clients over \(door), planner \(r.planner), 5-subtask workflow, every job stays queued",
                     "queue depth  jobs  seconds   jobs/s   p50 ms   p99 ms   RSS MiB  CPU ms/job"]
        for p in r.points {
            lines.append(String(format: "%11d %5d %8.2f %8.0f %8.2f %8.2f %9.1f %11.3f", p.depth, p.jobs, p.seconds, p.jobsPerSecond, p.p50ms, p.p99ms,
                                p.rssMiB, p.cpuMsPerJob))
        }
        return lines.joined(separator: "\n")
    }
}

/// The process's resident set, from `/proc/self/statm` (0 where there is none).
public enum ResidentMemory {
    public static func bytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    public static func mebibytes() -> Double { Double(bytes()) / 1_048_576 }
}
