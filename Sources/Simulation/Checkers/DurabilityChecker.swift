import AgentFlowCore
import Store

/// Nothing acknowledged is lost and nothing hostile is kept: every submission a client saw
/// acknowledged is in the store (it was acknowledged only after its commit), after every crash
/// and restart and at the end; workers are stored only with names and slots in range.
struct DurabilityChecker {
    /// Jobs whose submission a client saw acknowledged.
    private var acknowledged: Set<String> = []

    mutating func acknowledged(_ job: String) { acknowledged.insert(job) }

    func checkAcknowledged(_ store: Store, _ when: String) -> String? {
        for id in acknowledged.sorted() where ((try? store.job(id)) ?? nil) == nil {
            return "job \(id) was acknowledged to its client but is not in the store \(when)"
        }
        return nil
    }

    func checkWorkers(_ store: Store) throws -> String? {
        for w in try store.connection.query("SELECT name, slots FROM workers") {
            if Limits.name(w.string(0), "name") != nil || !(1...Limits.maxSlots).contains(w.int(1)) {
                return "a worker was stored with name \(Limits.printable(w.string(0))) and \(w.int(1)) slots"
            }
        }
        return nil
    }
}
