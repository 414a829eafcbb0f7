import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Attempt accounting: charging results, losing attempts, cancelling, the estimate books.
extension CoordinatorCore {
    // MARK: - Attempt accounting

    /// Records a finished attempt: charges its actual usage (never more than was reserved),
    /// releases the rest, and advances its subtask. A result for an attempt that is not live is
    /// ignored — it was already charged as lost, or cancelled and released — and so is a result
    /// from any worker but the one the attempt was dispatched to (it is bound to that dispatch).
    mutating func record(_ report: AttemptReport, from workerName: String, now: WallInstant) {
        let id = report.id
        guard let job = jobs[id.job], let a = job.live[id], a.record.state == .dispatched else {
            leaveWorker(id, workerName)
            stats.ignoredResults += 1
            return
        }
        // A crash from here on is this job's (CrashGuard): the next start quarantines it.
        let guarded = CrashGuard.enter(id.job)
        defer { CrashGuard.leave(restoring: guarded) }
        CrashGuard.faultPoint(workflow: job.workflow.name)
        guard a.record.worker == workerName else {
            // Another worker's attempt: not this peer's to settle.
            stats.ignoredResults += 1
            stats.refusedRequests += 1
            return
        }
        leaveWorker(id, workerName)
        slotsFreed += 1
        stats.results += 1
        if options.recordRoundTrips, let sent = dispatchTimes.removeValue(forKey: id) { stats.roundTrips.record((self.now.mono - sent).seconds) }
        let model = job.models[a.model]
        let outcome = report.outcome
        noteBackend(workerName, outcome, now: now)
        // Per role, negative counts (a broken or hostile worker) read as zero; the charge is the
        // sum of the per-role prices, so the ledger adds up to it to the nano-dollar.
        // Each count is also clamped to the attempt's cap (a report past it is charged the
        // reservation anyway), so no sum or price below can overflow, whatever was sent.
        let cap = a.record.tokenCap
        let roles = outcome.usage.prefix(16).map {
            TokenUsage(role: $0.role, input: min(max(0, $0.input), cap), output: min(max(0, $0.output), cap))
        }.filter { $0.total > 0 }
        let prices = roles.map { NanoUSD(usd: model.usd(input: $0.input, output: $0.output)) }
        let tokensIn = roles.reduce(0) { $0 + $1.input }
        let tokensOut = roles.reduce(0) { $0 + $1.output }
        let usage = Amount(tokens: tokensIn + tokensOut, usd: prices.reduce(.zero, +))
        let charged = job.ledger.charge(usage, for: id)
        if charged == usage {
            for (u, price) in zip(roles, prices) {
                persist(.ledger(LedgerEntry(attempt: id, role: u.role.rawValue, model: model.name, tokensIn: u.input, tokensOut: u.output,
                                             usd: price, kind: "charge", at: now)))
            }
        } else {
            // The worker reported more than its cap allowed: charge the reservation, no more.
            persist(.ledger(LedgerEntry(attempt: id, role: "agent", model: model.name, tokensIn: 0, tokensOut: charged.tokens,
                                         usd: charged.usd, kind: "clamped", at: now)))
        }
        var rec = a.record
        rec.state = outcome.end == .succeeded ? .succeeded : (outcome.end == .cancelled ? .cancelled : .failed)
        rec.tokensIn = tokensIn
        rec.tokensOut = tokensOut
        rec.usd = charged.usd
        rec.endedAt = now
        rec.detail = outcome.detail.isEmpty ? outcome.end.rawValue : "\(outcome.end.rawValue): \(outcome.detail)"
        if outcome.end == .cancelled, let by = a.preemptedBy {
            // Charged what it used (above); its subtask is planned again and this attempt does not
            // count against its maxAttempts.
            rec.detail = "\(Self.preemptedDetail)\(by): charged the \(tokensIn + tokensOut) tokens it used"
            job.preemptedAttempts[id.subtask, default: 0] += 1
        }
        // Dispatched, so its row exists: only what the end changes is written.
        persist(.attemptEnded(rec))
        // Telemetry sees the range-checked usage, never the raw counts a worker sent.
        noteResult(rec, worker: workerName, outcome: AttemptOutcome(end: outcome.end, usage: roles, output: outcome.output,
                                                                    detail: outcome.detail, seconds: outcome.seconds), now: now)
        // Its time counts from its start at the worker, not from its dispatch: an attempt
        // prefetched behind a busy slot waited there first (nil: it never started).
        let started = a.startedAt ?? now
        noteSlotUse(job, model: model.name, seconds: now.seconds(since: started))
        let judged = job.judging.isEmpty ? nil : job.judging[id]
        job.remove(id)
        if let judged {
            // A judge's result: its verdict decides the judged attempt's subtask.
            finishJudge(job, a, judged, record: rec, charged: charged, outcome: outcome, now: now)
            return
        }
        if Self.isJudgeAttempt(rec) || Self.isJudgeAttempt(a.record) {
            // A judge attempt whose judged result this process never held (it was restarted).
            finishAttempt(job, a, record: rec, charged: charged, success: false, output: nil, now: now)
            return
        }
        let seconds = now.seconds(since: started)
        if outcome.end == .succeeded, let judge = job.workflow.subtasks[a.node].judge {
            // Passed its own checks; the subtask passes only when the judge agrees.
            startJudge(job, a, judge, record: rec, charged: charged, outcome: outcome, tokens: tokensIn + tokensOut, seconds: seconds, now: now)
            return
        }
        if outcome.end != .cancelled && outcome.end != .error {
            observe(job, subtask: id.subtask, model: model.name, passed: outcome.end == .succeeded,
                        tokens: tokensIn + tokensOut, seconds: seconds)
        }
        finishAttempt(job, a, record: rec, charged: charged, success: outcome.end == .succeeded, output: outcome.output, now: now,
                      outputs: outcome.end == .succeeded ? Self.checkedOutputs(outcome.outputs) : nil)
    }


    /// Feeds a finished attempt to the workflow's estimates and persists them.
    mutating func observe(_ job: JobRun, subtask: String, model: String, passed: Bool, tokens: Int, seconds: Double) {
        // Nothing extra is persisted: the attempts table holds the same facts.
        books.record(workflow: job.workflow.name, subtask: subtask, model: model, passed: passed, tokens: tokens, seconds: seconds)
    }

    /// `id` no longer holds anything at worker `name` (it ended, or was lost or reclaimed). The
    /// slot it held goes to that worker's oldest queued attempt, which the worker starts the
    /// moment the slot frees: that attempt's time (and silence) counts from now.
    mutating func leaveWorker(_ id: AttemptID, _ name: String) {
        guard let next = workers[name]?.release(id) ?? nil, let job = jobs[next.job], var a = job.live[next] else { return }
        a.startedAt = self.now.wall
        a.heardAt = self.now.mono
        job.live[next] = a
    }

    /// An attempt whose worker died or never claimed it: its reservation is charged in full.
    /// So is one its worker held queued, not started, when the worker was lost: it may have
    /// started after the worker's last message, and only the worker's own report (cancelled,
    /// nothing used) releases one unstarted.
    mutating func loseAttempt(_ id: AttemptID, reason: String, now: WallInstant) {
        guard let job = jobs[id.job], let a = job.live[id], a.record.state == .dispatched else { return }
        let model = job.models[a.model]
        let charged = job.ledger.chargeInFull(id)
        let role = job.judging[id] != nil || Self.isJudgeAttempt(a.record) ? Role.judge.rawValue : Role.agent.rawValue
        persist(.ledger(LedgerEntry(attempt: id, role: role, model: model.name, tokensIn: 0, tokensOut: charged.tokens,
                                     usd: charged.usd, kind: "lost", at: now)))
        var rec = a.record
        rec.state = .lost
        rec.tokensOut = charged.tokens
        rec.usd = charged.usd
        rec.endedAt = now
        rec.detail = "lost: \(reason)"
        persist(.attempt(rec))
        noteLoss(rec, reason: reason)
        job.remove(id)
        dispatchTimes[id] = nil
        finishAttempt(job, a, record: rec, charged: charged, success: false, output: nil, now: now)
    }

    /// Common bookkeeping after an attempt ends, however it ended.
    mutating func finishAttempt(_ job: JobRun, _ a: LiveAttempt, record rec: AttemptRecord, charged: Amount, success: Bool, output: String?, now: WallInstant,
                                outputs: OutputBundle? = nil, model: String? = nil) {
        rememberOwner(a)
        tenantAttemptEnded(job, a, charged: charged, now: now)
        let sid = a.record.id.subtask
        var sub = job.subtasks[sid]!
        sub.tokens += charged.tokens
        sub.usd = sub.usd + charged.usd
        if sub.state != .succeeded { sub.model = model ?? a.spec.model }
        if success && sub.state != .succeeded {
            sub.state = .succeeded
            sub.output = output
            sub.model = model ?? a.spec.model
            if let outputs {
                // Kept with the subtask (durable), and handed to dependants under inputs/<id>/.
                persist(.outputs(outputs, job: job.record.id, subtask: sid, n: a.record.id.n))
                job.outputBundles[sid] = outputs.blob
            }
            job.markDone(a.node)
            // One sample passed: stop its siblings (saves budget and time).
            for other in job.liveBySubtask[sid] ?? [] {
                cancelAttempt(job, other, reason: "a sibling passed", now: now)
            }
            job.subtasks[sid] = sub
            for d in job.dependents[sid] ?? [] where job.subtasks[d]!.state == .pending {
                if job.workflow.subtasks[job.nodeIndex[d]!].needs.allSatisfy({ job.subtasks[$0]!.state == .succeeded }) {
                    job.subtasks[d]!.state = .ready
                    persist(.subtask(job.subtasks[d]!))
                }
            }
        } else if sub.state != .succeeded && job.inFlight[a.node] == nil {
            sub.state = job.isTerminal ? .abandoned : .ready
        }
        job.subtasks[sid] = sub
        persist(.subtask(sub))
        job.record.spentTokens = job.ledger.spent.tokens
        job.record.spentUSD = job.ledger.spent.usd
        touch(job)
        if let max = job.workflow.subtasks[a.node].maxAttempts, !job.isTerminal, sub.state == .ready, job.attemptsCounted(sub) >= max {
            end(job, .failed, reason: "subtask '\(sid)' failed all \(max) attempts it was allowed", now: now)
        }
        if !job.rowDirty {
            job.rowDirty = true
            dirtyJobRows.append(job)
        }
    }

    /// A result's outputs when they are within the limits and name sane paths, else nil (a
    /// broken or hostile worker's bundle is not stored; the attempt is charged as usual).
    static func checkedOutputs(_ outputs: OutputBundle?) -> OutputBundle? {
        guard let outputs, outputs.files.count <= Limits.maxOutputFiles,
              outputs.blob.data.count <= Limits.maxOutputBytes + (Limits.maxOutputFiles + 4) * 1024 else { return nil }
        var total = 0
        var seen = Set<String>()
        for f in outputs.files {
            guard f.size >= 0, f.size <= Limits.maxOutputBytes, Blob.isHash(f.sha256), WorkspacePath.normalized(f.path) == f.path,
                  seen.insert(f.path).inserted else { return nil }
            total += f.size
        }
        return total <= Limits.maxOutputBytes ? outputs : nil
    }

    /// Writes the jobs rows whose spend changed this iteration (see `JobRun.rowDirty`).
    mutating func writeDirtyJobRows() {
        for job in dirtyJobRows where job.rowDirty && jobs[job.record.id] === job {
            job.rowDirty = false
            persist(.updateJob(job.record))
        }
        dirtyJobRows.removeAll(keepingCapacity: true)
    }

    /// Stops a live attempt: a queued one is dropped and its reservation released; a dispatched
    /// one is told to stop and stays reserved until its worker reports what it used.
    mutating func cancelAttempt(_ job: JobRun, _ id: AttemptID, reason: String, now: WallInstant) {
        guard let a = job.live[id] else { return }
        switch a.record.state {
        case .queued:
            job.ledger.charge(.zero, for: id)
            tenantAttemptEnded(job, a, charged: .zero, now: now)
            var rec = a.record
            rec.state = .cancelled
            rec.endedAt = now
            rec.detail = "cancelled before dispatch: \(reason)"
            persist(.attempt(rec))
            job.remove(id)
            noteCancelledQueued(rec, now: now)
        case .dispatched:
            if let w = a.record.worker, let worker = workers[w], worker.alive {
                send(.cancel(id: id), to: worker.identity)
            }
        default: break
        }
    }
}
