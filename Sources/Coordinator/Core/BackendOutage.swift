import AgentFlowCore
import Foundation
import Wire

/// Jobs whose model servers are all failing: what their reports say while they wait, and — in
/// embedded mode (`Options.failAfterSuspensions`) — ending them instead of waiting for servers
/// that will not come back by themselves.
extension CoordinatorCore {
    /// Workers serving one of the job's models, by name.
    func candidateWorkers(for job: JobRun) -> [(name: String, entry: WorkerEntry)] {
        let models = Set(job.models.map(\.name))
        return workers.filter { models.contains($0.value.record.model) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Whether the worker's breaker is open: cooling down, or in the single retry round after a
    /// cooldown (which has not reached the model yet).
    func backendFailing(_ w: WorkerEntry) -> Bool {
        w.breaker.suspendedUntil != nil || w.breaker.failuresInARow >= BackendBreaker.threshold
    }

    /// Why a running job cannot go on now — "gpu0, gpu1 suspended — model server refuses
    /// connections" — when no worker it could use can take its attempts; empty otherwise.
    func waitingNote(for job: JobRun) -> String {
        guard !job.isTerminal else { return "" }
        // The usual answer first, without copying and sorting the workers (every job's view, at
        // every loop iteration that changed it): some worker of its models can take its attempts.
        if workers.values.contains(where: { w in
            w.alive && !w.draining && !backendFailing(w) && job.models.contains { $0.name == w.record.model }
        }) { return "" }
        let candidates = candidateWorkers(for: job)
        if candidates.isEmpty { return "no worker serves " + job.models.map(\.name).joined(separator: ", ") }
        guard candidates.allSatisfy({ !$0.entry.alive || $0.entry.draining || backendFailing($0.entry) }) else { return "" }
        return BackendProblem.describe(candidates.map { c in
            let state = !c.entry.alive ? "dead" : backendFailing(c.entry) ? "suspended" : "draining"
            return UnavailableWorker(name: c.name, state: state, problem: state == "suspended" ? c.entry.breaker.problem ?? "" : "")
        })
    }

    /// Embedded mode: ends `failed` every job whose workers have all been suspended by their
    /// breakers `failAfterSuspensions` times in a row (dead workers count as failing), naming
    /// each server and its error.
    mutating func endJobsWhoseBackendsAreDown(now: WallInstant) {
        guard let rounds = options.failAfterSuspensions,
              workers.values.contains(where: { $0.breaker.trips >= rounds }) else { return }
        for job in jobs.values where !job.isTerminal {
            let candidates = candidateWorkers(for: job)
            guard candidates.contains(where: { $0.entry.alive && $0.entry.breaker.trips >= rounds }),
                  candidates.allSatisfy({ !$0.entry.alive || $0.entry.breaker.trips >= rounds }) else { continue }
            let servers = candidates.map { c -> String in
                var server = "worker \(c.name)"
                if case .openai(let url) = cluster.workers.first(where: { $0.name == c.name })?.backend { server += " (\(url))" }
                guard c.entry.alive else { return server + ": worker dead" }
                let problem = c.entry.breaker.problem ?? "no detail"
                return server + ": \(BackendProblem.summary(problem)) (\(problem))"
            }
            end(job, .failed,
                    reason: "every model server the job could use kept failing (suspended \(rounds) times in a row): " + servers.joined(separator: "; "),
                    now: now)
        }
    }
}
