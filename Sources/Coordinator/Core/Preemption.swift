import AgentFlowCore
import Foundation
import Planner
import Wire

/// Preemption (`scheduling.preemption`, `agentflow coordinator --preemption on`): after each
/// dispatch round, a job whose deadline is at risk may take the slot of a lower-ranked job's
/// running attempt. The decision is the Planner module's (`FleetPolicy.preemptions`, the same
/// one `agentflow bench fleet` measures). The victim is sent a cancel; it stays reserved until its
/// worker reports what it used, is charged exactly that (`record`), its subtask is planned again,
/// and it does not count against the subtask's `maxAttempts`. Its slot then goes to the queued
/// attempts in the policy's order, the job at risk first.
extension CoordinatorCore {
    /// How a preempted attempt's detail starts (`Resume` finds them by it after a restart).
    static let preemptedDetail = "preempted for job "

    mutating func preemptForJobsAtRisk(now: WallInstant) {
        guard let rules = options.preemption else { return }
        let waitingJobs = jobsWithQueuedAttempts()
        guard !waitingJobs.isEmpty else { return }
        var modelIndex: [String: Int] = [:]
        for (i, m) in cluster.models.enumerated() { modelIndex[m.name] = i }
        // Slots that are free, or about to be (an attempt already told to stop for preemption).
        var free: [Int: Int] = [:]
        for w in workers.values where w.alive && w.breaker.suspendedUntil == nil && !drainedNames.contains(w.record.name) {
            if let m = modelIndex[w.record.model] { free[m, default: 0] += w.free }
        }
        var involved = waitingJobs
        var local: [String: Int] = [:]
        for (i, job) in waitingJobs.enumerated() { local[job.record.id] = i }
        var running: [RunningAttemptView] = []
        var runningIDs: [(job: JobRun, id: AttemptID)] = []
        for job in jobs.values.sorted(by: { $0.record.id < $1.record.id }) where !job.isTerminal && !job.dispatchedIDs.isEmpty {
            for id in job.dispatchedIDs.sorted(by: { ($0.subtask, $0.n) < ($1.subtask, $1.n) }) {
                // Only running attempts hold slots; one queued at its worker (prefetched) is none.
                guard let a = job.live[id], a.startedAt != nil, let m = modelIndex[a.spec.model] else { continue }
                if a.preemptedBy != nil {
                    free[m, default: 0] += 1
                    continue
                }
                if local[job.record.id] == nil {
                    local[job.record.id] = involved.count
                    involved.append(job)
                }
                let expected = job.planNodes[a.node].estimates[a.model]?.seconds ?? attemptSeconds(a.spec.model)
                running.append(RunningAttemptView(job: local[job.record.id]!, model: m, startedAt: (a.startedAt ?? now).secondsSince1970,
                                                  expectedSeconds: expected,
                                                  preemptible: a.claimBy == nil && !job.preemptedSubtasks.contains(id.subtask)))
                runningIDs.append((job, id))
            }
        }
        guard !running.isEmpty else { return }
        let views = involved.map { fleetView($0, now: now, outlook: true) }
        var ahead: [Int: Int] = [:]
        var waiting: [WaitingJobView] = []
        for i in options.policy.rank(views, now: now.secondsSince1970) where i < waitingJobs.count {
            for (name, n) in waitingJobs[i].queuedByModel.sorted(by: { $0.key < $1.key }) {
                guard let m = modelIndex[name] else { continue }
                waiting.append(WaitingJobView(job: i, model: m, queuedAhead: ahead[m] ?? 0))
                ahead[m, default: 0] += n
            }
        }
        var preemptedAt: [Int: Double] = [:]
        for (i, job) in involved.enumerated() { if let at = job.preemptedAt { preemptedAt[i] = at.secondsSince1970 } }
        let decisions = options.policy.preemptions(jobs: views, waiting: waiting, running: running, freeSlots: free, now: now.secondsSince1970,
                                                   rules: rules, preemptedAt: preemptedAt)
        for d in decisions {
            let (victim, id) = runningIDs[d.victim]
            guard var a = victim.live[id], let name = a.record.worker, let worker = workers[name], worker.alive else { continue }
            let urgent = involved[d.job]
            a.preemptedBy = urgent.record.id
            victim.live[id] = a
            victim.preemptedAt = now
            victim.preemptedSubtasks.insert(id.subtask)
            send(.cancel(id: id), to: worker.identity)
            stats.preemptions += 1
            note(.preempted(model: a.spec.model))
            // The victim's slot would go to what its worker holds queued (prefetched): those are
            // withdrawn too (they never started, so they are reported cancelled with nothing
            // used and planned again, not counted against maxAttempts), and the slot goes to the
            // policy's order, the job at risk first.
            for queuedID in worker.queued where queuedID.job != urgent.record.id {
                guard let owner = jobs[queuedID.job], var q = owner.live[queuedID], q.preemptedBy == nil else { continue }
                q.preemptedBy = urgent.record.id
                owner.live[queuedID] = q
                send(.cancel(id: queuedID), to: worker.identity)
            }
        }
    }
}
