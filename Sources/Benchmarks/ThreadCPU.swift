import Foundation

/// CPU time of this process's threads by what they do, read from `/proc/self/task/*/comm`
/// (the names threads give themselves, ``AgentFlowCore/startThread(named:stackSize:_:)``) and
/// `…/schedstat` (nanoseconds on a CPU). A bench takes one reading before its timed part and
/// one after; the difference says which thread the CPU per attempt went to, without `perf`.
/// Linux only: elsewhere a reading is empty.
struct ThreadCPU {
    /// Per thread id: its name and its nanoseconds on a CPU so far.
    var threads: [Int: (name: String, nanoseconds: UInt64)] = [:]

    /// What each thread of this process has used so far.
    static func read() -> ThreadCPU {
        var reading = ThreadCPU()
        guard let tids = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return reading }
        for tid in tids {
            guard let id = Int(tid),
                  let comm = try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8),
                  let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/schedstat", encoding: .utf8),
                  let ns = stat.split(separator: " ").first.flatMap({ UInt64($0) }) else { continue }
            reading.threads[id] = (comm.trimmingCharacters(in: .whitespacesAndNewlines), ns)
        }
        return reading
    }

    /// The role a thread's name stands for in a bench's report.
    static func role(_ name: String) -> String {
        if name == "coordinator" { return "coordinator loop" }
        if name == "store writer" { return "store writer" }
        if name.hasPrefix("ZMQbg/IO") { return "ZeroMQ I/O" }
        if name.hasPrefix("worker-") { return "workers" }
        if name.hasPrefix("bench client") { return "bench clients" }
        return "other"
    }

    /// Seconds on a CPU per role between `start` and `end` (a thread started in between counts
    /// from zero; one that ended in between is lost), largest first.
    static func byRole(from start: ThreadCPU, to end: ThreadCPU) -> [Share] {
        var seconds: [String: Double] = [:]
        var count: [String: Int] = [:]
        for (tid, t) in end.threads {
            let before = start.threads[tid].flatMap { $0.name == t.name ? $0.nanoseconds : nil } ?? 0
            let role = role(t.name)
            seconds[role, default: 0] += Double(t.nanoseconds &- min(before, t.nanoseconds)) / 1e9
            count[role, default: 0] += 1
        }
        return seconds.map { Share(role: $0.key, threads: count[$0.key] ?? 0, seconds: $0.value) }
            .sorted { $0.seconds != $1.seconds ? $0.seconds > $1.seconds : $0.role < $1.role }
    }

    /// One role's CPU over a bench's timed part.
    struct Share: Encodable, Sendable {
        var role: String
        var threads: Int
        var seconds: Double
    }
}
