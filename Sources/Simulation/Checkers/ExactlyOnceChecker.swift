import AgentFlowCore
import Foundation
import Store

/// No attempt runs twice, and only the process an attempt was dispatched to settles it: an
/// attempt id is started by one worker process only (the processes report every start), and a
/// subtask's output comes from a passing attempt reported by the very process that ran it (the
/// simulated model writes `sim:<routing id>:<attempt>`, a forger `ROGUE:<attempt>`, legitimate
/// only for an attempt dispatched to the rogue itself).
struct ExactlyOnceChecker {
    /// Attempt id → the worker process (routing id) that started it.
    private var startedBy: [AttemptID: Data] = [:]

    mutating func started(_ id: AttemptID, by identity: Data) -> String? {
        if let other = startedBy[id], other != identity {
            return "attempt \(id) executed twice: by \(String(decoding: other, as: UTF8.self)) and \(String(decoding: identity, as: UTF8.self))"
        }
        startedBy[id] = identity
        return nil
    }

    func checkOutputs(_ store: Store) throws -> String? {
        let passed = try store.connection.query("""
            SELECT s.job, s.id, s.output, a.n, a.worker FROM subtasks s JOIN attempts a ON a.job = s.job AND a.subtask = s.id
            WHERE s.state = 'succeeded' AND a.state = 'succeeded' ORDER BY s.job, s.id
            """)
        var ok: [String: Bool] = [:]
        for r in passed {
            let key = r.string(0) + "/" + r.string(1), out = r.optionalString(2) ?? ""
            let id = AttemptID(job: r.string(0), subtask: r.string(1), n: r.int(3))
            let worker = r.optionalString(4) ?? ""
            let byWorker = out.hasPrefix("sim:\(worker)#")
                && startedBy[id].map { out == "sim:\(String(decoding: $0, as: UTF8.self)):\(id)" } == true
            let byRogueItself = worker == "rogue" && out == "ROGUE:\(id)"
            ok[key] = (ok[key] ?? false) || byWorker || byRogueItself
        }
        for o in try store.connection.query("SELECT job, id, output FROM subtasks WHERE state = 'succeeded'") where ok[o.string(0) + "/" + o.string(1)] != true {
            return "subtask \(o.string(0))/\(o.string(1)) has output \(Limits.printable(o.optionalString(2) ?? "")) that no passing attempt's own worker produced"
        }
        return nil
    }
}
