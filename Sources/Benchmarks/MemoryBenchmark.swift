import AgentFlowCore
import Coordinator
import Foundation
import Synchronization
import Wire
import Worker
import ZeroMQ

/// `agentflow bench memory`: whether the coordinator gives memory back once jobs have ended. An
/// embedded coordinator (real sockets, real SQLite file) and sim workers with zero latency run a
/// warm-up of short jobs, then `jobs` more submitted by concurrent clients; the process's
/// resident memory is read after the warm-up (before) and once every job has ended and the
/// coordinator has had `settle` seconds to drop them (after). Target: after ≤ 1.5 × before.
public enum MemoryBenchmark {
    public struct Result: Encodable, Sendable {
        public var jobs: Int
        public var seconds: Double
        public var rssBeforeMiB: Double
        public var rssPeakMiB: Double
        public var rssAfterMiB: Double
        public var ratio: Double
    }

    /// A short job: three subtasks, two in parallel then one, each one attempt that passes.
    static let workflow = """
        name: short
        deadline: 1h
        budget: {usd: 1}
        subtasks:
          - {id: a, prompt: "first half", estimates: {bench-model: {success: 1, tokens: 100, seconds: 0}}}
          - {id: b, prompt: "second half", estimates: {bench-model: {success: 1, tokens: 100, seconds: 0}}}
          - {id: c, prompt: "join them", needs: [a, b], estimates: {bench-model: {success: 1, tokens: 100, seconds: 0}}}
        """

    /// Runs `warmup` jobs, reads RSS, runs `settings.jobs` more submitted by `clients` concurrent
    /// clients, and reads RSS again `settle` after the last one ended (ended jobs leave memory on
    /// the loop's ticks).
    public static func run(_ settings: EmbeddedBenchSettings, warmup: Int, clients: Int, settle: Duration,
                           progress: (String) -> Void = { _ in }) throws -> Result {
        let bench = try EmbeddedBenchCluster(name: "memory", workers: settings.workers, slots: settings.slots, database: settings.database)
        defer { bench.removeDatabase() }
        defer { _ = bench.coordinator.shutdown() }
        let (context, endpoints) = (bench.context, bench.endpoints)
        let threads = bench.startWorkers()
        defer { for t in threads { t.shutdown() } }
        let request = SubmitRequest(yaml: workflow, file: "short.yaml", planner: "seq:1", seed: 1)
        let client = try BenchClient(endpoint: endpoints.clients, context: context)

        progress("warm-up: \(warmup) jobs")
        try runJobs(warmup, clients: clients, endpoint: endpoints.clients, context: context, request: request, client: client)
        Thread.sleep(forTimeInterval: settle.seconds)
        let before = ResidentMemory.mebibytes()
        progress(String(format: "RSS before: %.1f MiB; running %d jobs", before, settings.jobs))
        let started = DispatchTime.now().uptimeNanoseconds
        let peak = try runJobs(settings.jobs, clients: clients, endpoint: endpoints.clients, context: context, request: request, client: client)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        Thread.sleep(forTimeInterval: settle.seconds)
        let after = ResidentMemory.mebibytes()
        return Result(jobs: settings.jobs, seconds: seconds, rssBeforeMiB: before, rssPeakMiB: max(peak, after), rssAfterMiB: after,
                      ratio: after / max(before, 1e-9))
    }

    /// Submits `count` jobs concurrently and waits until each has ended `succeeded`; returns the
    /// highest resident memory seen while waiting (MiB).
    @discardableResult
    static func runJobs(_ count: Int, clients: Int, endpoint: String, context: ZMQContext, request: SubmitRequest,
                        client: BenchClient) throws -> Double {
        let ids = Mutex<[String]>([])
        let next = Atomic<Int>(0)
        let failure = Mutex<String?>(nil)
        ClientThreads.run(clients) { _ in
            do {
                let c = try BenchClient(endpoint: endpoint, context: context)
                while next.add(1, ordering: .relaxed).oldValue < count {
                    let id = try c.submit(request)
                    ids.withLock { $0.append(id) }
                }
            } catch {
                failure.withLock { $0 = $0 ?? "\(error)" }
            }
        }
        if let f = failure.withLock({ $0 }) { throw BenchmarkFailure(description: f) }
        var peak = ResidentMemory.mebibytes()
        for id in ids.withLock({ $0 }) {
            var r = try client.job(id)
            while !r.state.isTerminal {
                peak = max(peak, ResidentMemory.mebibytes())
                Thread.sleep(forTimeInterval: 0.05)
                r = try client.job(id)
            }
            guard r.state == .succeeded else { throw BenchmarkFailure(description: "job \(id) ended \(r.state.rawValue): \(r.reason)") }
        }
        return peak
    }

    public static func render(_ r: Result) -> String {
        String(format: "memory: %d short jobs (3 subtasks, sim backend, zero latency) in %.1f s\n  RSS before %.1f MiB, peak %.1f MiB, after %.1f MiB: %.2f × before (target ≤ 1.5 ×)",
               r.jobs, r.seconds, r.rssBeforeMiB, r.rssPeakMiB, r.rssAfterMiB, r.ratio)
    }
}
