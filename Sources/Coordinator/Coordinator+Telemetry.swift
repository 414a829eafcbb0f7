import AgentFlowCore
import Foundation
import Logging
import Planner
import Store
import Wire

/// What the coordinator tells operators: one log line per dispatch, result, loss, breaker
/// change, planner decision and job end, with the job, attempt and worker as metadata.
/// The scheduling code calls these at the points where those things happen and nothing else.
extension Coordinator {
    static let logger = Logger(label: "agentflow.coordinator")
    var log: Logger { Self.logger }

    func noteDispatch(_ a: LiveAttempt, worker: String, now: Double) {
        log.info("dispatch", metadata: [
            "job": "\(a.record.id.job)", "attempt": "\(a.record.id)", "worker": "\(worker)", "model": "\(a.spec.model)",
            "cap": "\(a.record.tokenCap)",
        ])
    }

    func noteResult(_ rec: AttemptRecord, worker: String, outcome: AttemptOutcome, now: Double) {
        log.info("result", metadata: [
            "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(worker)", "model": "\(rec.model)",
            "outcome": "\(outcome.end.rawValue)", "tokens": "\(rec.tokensIn + rec.tokensOut)",
            "usd": "\(String(format: "%.9f", rec.usd.usd))",
            "seconds": "\(String(format: "%.3f", now - (rec.dispatchedAt ?? now)))",
        ])
    }

    func noteLoss(_ rec: AttemptRecord, reason: String) {
        log.warning("lost", metadata: [
            "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(rec.worker ?? "")", "model": "\(rec.model)",
            "charged_tokens": "\(rec.tokensOut)", "reason": "\(reason)",
        ])
    }

    func noteBreaker(_ worker: String, opened: Bool, breaker: BackendBreaker) {
        if opened {
            log.warning("breaker open", metadata: [
                "worker": "\(worker)", "trips": "\(breaker.trips)", "problem": "\(breaker.problem ?? "")",
                "until": "\(breaker.suspendedUntil.map { isoTime(time.now + $0 - monotonicNow) } ?? "")",
            ])
        } else {
            log.notice("breaker half-open", metadata: ["worker": "\(worker)", "trips": "\(breaker.trips)"])
        }
    }

    func noteDecision(_ job: JobRun, launches: [Launch], milliseconds: Double?) {
        let samples = launches.reduce(0) { $0 + $1.samples }
        // Decisions that launch nothing (most seq:K re-plans after a result) are debug detail.
        log.log(level: launches.isEmpty ? .debug : .info, "planner decision", metadata: [
            "job": "\(job.record.id)", "planner": "\(job.planner.name)", "launches": "\(launches.count)", "samples": "\(samples)",
            "ms": "\(milliseconds.map { String(format: "%.2f", $0) } ?? "0")",
        ])
    }

    func noteJobEnd(_ job: JobRun) {
        let level: Logger.Level = job.record.state == .succeeded ? .info : .notice
        log.log(level: level, "job end", metadata: [
            "job": "\(job.record.id)", "workflow": "\(job.workflow.name)", "state": "\(job.record.state.rawValue)",
            "reason": "\(job.record.reason)", "tokens": "\(job.record.spentTokens)",
            "usd": "\(String(format: "%.9f", job.record.spentUSD.usd))",
            "seconds": "\(String(format: "%.3f", (job.record.endedAt ?? 0) - job.record.submittedAt))",
        ])
    }
}
