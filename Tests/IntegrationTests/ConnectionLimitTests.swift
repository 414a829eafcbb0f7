import Foundation
import TestSupport
import Synchronization
import Testing

/// The value of an unlabelled gauge in Prometheus text (0 when absent).
func gaugeValue(_ text: String, _ name: String) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.split(separator: " ").last ?? "") ?? 0
    }
    return 0
}

/// The resident memory of a process, in MiB (`VmRSS` of /proc/PID/status).
func residentMiB(_ pid: Int32) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return .nan }
    return kb / 1024
}

/// Open descriptors of a process.
func openDescriptors(_ pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
}

/// Issue 15 item 3: a crowd of slow and streaming HTTP clients cannot exhaust the coordinator's
/// descriptors, stop dispatch, or keep its memory after they leave.
@Suite(.serialized) struct ConnectionLimitTests {
    /// The coordinator runs under a 1,024-descriptor limit (hard and soft, `prlimit`). From 100
    /// loopback source addresses, 2,000 Server-Sent Event clients and 3,000 slowloris
    /// connections (half a request head, one more header line a second) arrive at once and stay
    /// 15 s. Meanwhile jobs are submitted over ZeroMQ and must succeed, and the API must answer a
    /// fresh client (200, or 503 at a cap — never a hang). Over the caps the clients get 503
    /// (counted in `agentflow_http_refused_total`), slowloris connections are closed at the
    /// header timeout (`agentflow_http_timed_out_total`), the coordinator never holds more
    /// descriptors than its limit, and after the crowd leaves its memory comes back down.
    @Test func slowlorisAndTwoThousandStreamsAtA1024DescriptorLimit() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 4), ("w1", "gemma3-270m", 4)], timeScale: 0.01)
        defer { cluster.stop() }
        let yaml = try String(contentsOfFile: cluster.clusterFile, encoding: .utf8)
        try yaml.replacingOccurrences(of: "  liveness: 3\n", with: "  liveness: 3\n  httpLimits: {headerTimeout: 3s}\n")
            .write(toFile: cluster.clusterFile, atomically: true, encoding: .utf8)
        let port = freePort()
        cluster.coordinator = try Proc(["coordinator", "--cluster", cluster.clusterFile, "--http", "127.0.0.1:\(port)"],
                                       log: cluster.dir.appendingPathComponent("coordinator-http.log").path,
                                       launcher: ["/usr/bin/prlimit", "--nofile=1024:1024", "--"])
        for n in cluster.workerNames { try cluster.startWorker(n) }
        try waitUntil(timeout: 30, "all workers registered") { (try? cluster.aliveWorkers().count) == 2 }
        let base = "http://127.0.0.1:\(port)"
        try waitUntil(timeout: 20, "the HTTP server to answer") { ((try? http("GET", base + "/api/v1/jobs").status) ?? 0) == 200 }
        let pid = cluster.coordinator!.pid
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        #expect(limits.contains("Max open files            1024                 1024"), "\(limits)")

        // A job for the streams to follow that outlasts the flood (each attempt takes 30 s).
        let slow = cluster.dir.appendingPathComponent("slow.yaml").path
        try "name: slow\nbudget: {tokens: 100000}\ndeadline: 3m\nsubtasks:\n  - id: a\n    prompt: x\n    estimates:\n      smollm2-135m: {success: 0.9, tokens: 100, seconds: 3000}\n"
            .write(toFile: slow, atomically: true, encoding: .utf8)
        let followed = try cluster.cli(["submit", slow, "--planner", "seq:1:smollm2-135m"], timeout: 30)
        #expect(followed.code == 0, "\(followed.err)")
        let job = followed.out.trimmingCharacters(in: .whitespacesAndNewlines)
        for _ in 0..<20 { _ = try http("GET", base + "/api/v1/jobs/\(job)") }
        Thread.sleep(forTimeInterval: 1)
        let before = residentMiB(pid)

        let flood = Process()
        let out = Pipe()
        flood.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        flood.arguments = ["python3", Paths.root.appendingPathComponent("tools/http_flood.py").path, "--port", String(port), "--job", job,
                           "--sse", "2000", "--slowloris", "3000", "--sources", "100", "--hold", "15"]
        flood.standardOutput = out
        flood.standardError = FileHandle.nullDevice
        try launch(flood)
        // Sampled every 50 ms while the crowd is there: memory, descriptors, and the server's own
        // gauges of open connections and streams, which must stay within their caps.
        let samples = Mutex<(rss: Double, fds: Int, connections: Double, streams: Double)>((before, 0, 0, 0))
        let sampling = Atomic<Bool>(true)
        let sampler = Thread {
            while sampling.load(ordering: .acquiring) {
                let rss = residentMiB(pid), fds = openDescriptors(pid)
                let text = (try? http("GET", base + "/metrics", maxTime: 2).body) ?? ""
                let c = gaugeValue(text, "agentflow_http_connections"), st = gaugeValue(text, "agentflow_http_streams")
                samples.withLock { $0 = (max($0.rss, rss), max($0.fds, fds), max($0.connections, c), max($0.streams, st)) }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        sampler.start()
        // While the crowd is there: jobs dispatch and finish, and the API answers.
        var finished = 0, answered = 0
        let started = Date()
        while flood.isRunning && Date().timeIntervalSince(started) < 60 {
            let r = try cluster.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1", "--wait", "--json"], timeout: 60)
            #expect(r.code == 0, "a job under the flood: \(r.err)")
            if r.code == 0 { finished += 1 }
            let probe = try http("GET", base + "/api/v1/workers", maxTime: 10)
            #expect(probe.status == 200 || probe.status == 503, "the API under the flood: \(probe.status) \(probe.body)")
            if probe.status == 200 { answered += 1 }
            #expect(cluster.coordinator!.process.isRunning, "the coordinator died under the flood\n\(cluster.logs.suffix(3000))")
            if !cluster.coordinator!.process.isRunning { return }
        }
        flood.waitUntilExit()
        sampling.store(false, ordering: .releasing)
        let peak = samples.withLock { $0 }
        let peakRSS = peak.rss, peakFDs = peak.fds
        let report = try #require(try JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile()) as? [String: Int])
        print("flood: \(report); \(finished) jobs finished under it, API answered \(answered) times; coordinator RSS \(String(format: "%.1f", before)) MiB before, \(String(format: "%.1f", peakRSS)) peak, \(peakFDs) descriptors, \(Int(peak.connections)) HTTP connections and \(Int(peak.streams)) streams at most")
        #expect(finished >= 2 && answered >= 1)
        #expect(peakFDs < 1024)
        #expect(report["connect_errors"] == 0, "\(report)")
        // At most 512 connections and 256 streams at once (the defaults); the rest were answered 503.
        #expect(peak.connections <= 512 && peak.streams <= 256 && peak.streams >= 100, "\(peak)")
        #expect((report["sse_streaming"] ?? 0) >= 100 && (report["sse_refused"] ?? 0) >= 1_000, "\(report)")
        // Slowloris connections were refused at once (503, or a reset that overtook it when the
        // client wrote on), or closed at the 3 s header timeout, or are still open at the end:
        // let in during the last 3 s as earlier ones timed out, or never accepted — past the caps
        // the server stops accepting and the kernel's listen backlog holds them, costing the
        // coordinator no descriptor (how many sit there depends on the machine's load, so the
        // bound on what the server holds is its own gauge and descriptor count above).
        let slowloris = ["slow_refused", "slow_closed", "slow_reset", "slow_open"].map { report[$0] ?? 0 }
        #expect(slowloris.reduce(0, +) == 3_000 && slowloris[1] > 0 && slowloris[0] + slowloris[2] > 0, "\(report)")
        let metrics = try http("GET", base + "/metrics").body
        #expect(metrics.contains(#"agentflow_http_refused_total{limit="connections"}"#) && !metrics.contains(#"agentflow_http_refused_total{limit="connections"} 0"#), "\(metrics)")
        #expect(metrics.contains(#"agentflow_http_refused_total{limit="streams"}"#) && !metrics.contains(#"agentflow_http_refused_total{limit="streams"} 0"#), "\(metrics)")
        #expect(!metrics.contains(#"agentflow_http_timed_out_total{phase="header"} 0"#))
        // The crowd has gone: every connection and stream is given back, and memory comes back
        // down (glibc's arenas are trimmed 1 s and 5 s after the crowd leaves).
        try waitUntil(timeout: 20, "the connections and streams to close") {
            let m = (try? http("GET", base + "/metrics").body) ?? ""
            return gaugeValue(m, "agentflow_http_connections") <= 1 && gaugeValue(m, "agentflow_http_streams") == 0 && !m.isEmpty
        }
        Thread.sleep(forTimeInterval: 6)
        let after = residentMiB(pid)
        print("coordinator RSS after the flood: \(String(format: "%.1f", after)) MiB")
        #expect(after - before <= max(10, (peakRSS - before) / 2), "RSS \(before) MiB before, \(peakRSS) peak, \(after) after")
        #expect(cluster.coordinator!.process.isRunning)
        let last = try cluster.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1", "--wait", "--json"], timeout: 60)
        #expect(last.code == 0, "\(last.err)")
    }
}
