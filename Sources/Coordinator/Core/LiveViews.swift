import AgentFlowCore
import Foundation
import Planner
import Wire

/// The live views: after each batch, the memory-only part of every job that changed, for the
/// shell's read-only queries (``LiveJobView``).
extension CoordinatorCore {
    /// How old a job's published success estimate may get before a change recomputes it (it
    /// walks the job's nodes; reports read it, decisions never do).
    static let estimateMaxAge: Duration = .seconds(1)

    mutating func publishViews() {
        guard !dirtyViews.isEmpty else { return }
        for id in dirtyViews.sorted() {
            guard let job = jobs[id] else { continue }
            out.views.append(view(of: job))
        }
        dirtyViews.removeAll(keepingCapacity: true)
    }

    mutating func view(of job: JobRun) -> LiveJobView {
        let id = job.record.id
        var estimate: Double?
        if !job.isTerminal {
            if let e = publishedEstimates[id], now.mono - e.at < Self.estimateMaxAge {
                estimate = e.value
            } else {
                estimate = successEstimate(job, now: now.wall)
                publishedEstimates[id] = (now.mono, estimate)
            }
        }
        var progress: [AttemptID: Int] = [:]
        for a in job.dispatchedIDs {
            // Read in place: `live[a]` would copy the whole attempt for one number.
            if let i = job.live.index(forKey: a), case let p = job.live.values[i].progressTokens, p > 0 { progress[a] = p }
        }
        let outage = waitingNote(for: job)
        return LiveJobView(
            id: id, state: job.record.state,
            reason: !job.isTerminal ? job.waitReason ?? job.record.reason : job.record.reason,
            budget: budgetReport(job),
            waiting: outage.isEmpty && !job.isTerminal ? job.waitReason ?? "" : outage,
            successEstimate: estimate, progress: progress, live: !(job.isTerminal && job.live.isEmpty))
    }
}
