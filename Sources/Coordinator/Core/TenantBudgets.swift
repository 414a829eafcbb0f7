import AgentFlowCore
import Foundation
import Observability
import Planner
import Store
import Wire

/// One tenant as the core tracks it: its period budget as a ledger (spent in the current
/// period, reservations of its live attempts) and its decaying fair-share usage.
struct TenantAccount {
    let period: BudgetPeriod
    var periodStart: WallInstant
    var periodEnd: WallInstant
    /// `spent + reserved ≤ limit` on both axes, like a job's (a tenant without a budget has no limit).
    var ledger: BudgetLedger
    /// Fair-share usage (USD-equivalent) as it stood at `usageAt` (wall clock).
    var usage = 0.0
    var usageAt: WallInstant
    /// Usage, or the period's spend, changed since its row was last written.
    var usageDirty = false
    var spendDirty = false

    var hasLimit: Bool { ledger.limitTokens != nil || ledger.limitUSD != nil }
}

/// Why an attempt was not reserved: its tenant's period budget cannot cover it.
struct TenantShortfall: Error, CustomStringConvertible {
    var description: String
}

/// The tenants' accounts, and the jobs that wait for their tenant's period budget.
struct TenantBook {
    var accounts: [String: TenantAccount] = [:]
    /// Job id → why it waits: its tenant's period budget cannot cover its next attempt.
    var blocked: [String: String] = [:]
    /// Wall-clock time of the next tenant gauges (once a second).
    var nextGaugesAt = WallInstant(secondsSince1970: 0)
}

/// Tenants' period budgets, enforced like job budgets (issue 18): before an attempt is queued
/// its worst case is reserved against its job's budget AND its tenant's budget for the current
/// period; it is charged to both when it ends and the rest released. So however many jobs of a
/// tenant run at once, `spent + reserved ≤ limit` holds for the tenant's period at every moment.
/// When the tenant's budget cannot cover a job's next attempt the job keeps its state and waits
/// (its reason names the budget) until an attempt of the tenant ends, the period renews, or the
/// job's deadline ends it. Spend counts in the period it is charged in; reservations carry over
/// into a new period (they fitted the old one, so they fit the same limit in the new one).
///
/// Fair-share usage: every attempt that ran adds what it cost — its charge at the model's
/// prices plus its slot's share of the worker's GPUs × seconds × `fairShare.gpuHour` — and the
/// total halves every `fairShare.halfLife`. It is written to the store (`tenant_usage`) once per
/// batch it changes in, and read back on restart.
extension CoordinatorCore {
    var fairShare: FairShareSpec { cluster.scheduling?.fairShare ?? FairShareSpec() }

    /// Opens the tenant's account at the period holding now, if it has none.
    mutating func openTenant(_ name: String) {
        guard tenantBook.accounts[name] == nil else { return }
        let budget = cluster.tenant(name)?.budget
        let period = budget?.per ?? .day
        let start = period.start(containing: now.wall)
        tenantBook.accounts[name] = TenantAccount(
            period: period, periodStart: start, periodEnd: period.end(afterStart: start),
            ledger: BudgetLedger(limitTokens: budget?.tokens, limitUSD: budget?.usd.map { NanoUSD(limitUSD: $0) }),
            usageAt: now.wall)
    }

    /// Why the job's tenant cannot cover `amount` in its current period (nil: it can, or has no budget).
    mutating func tenantShortfall(_ job: JobRun, _ amount: Amount) -> String? {
        openTenant(job.tenant)
        guard let account = tenantBook.accounts[job.tenant], account.hasLimit, !account.ledger.fits(amount) else { return nil }
        let l = account.ledger
        var parts: [String] = []
        if let limit = l.limitUSD {
            parts.append(String(format: "$%.6f of $%.6f", (l.spent.usd + l.reserved.usd).usd, limit.usd)
                         + String(format: " spent or reserved, the next attempt needs up to $%.6f", amount.usd.usd))
        }
        if let limit = l.limitTokens {
            parts.append("\(l.spent.tokens.addingSaturated(l.reserved.tokens)) of \(limit) tokens spent or reserved, the next attempt needs up to \(amount.tokens)")
        }
        return "waiting for tenant \(job.tenant)'s \(account.period.adjective) budget (\(parts.joined(separator: "; "))); it renews at \(isoTime(account.periodEnd))"
    }

    /// Reserves an attempt's worst case against its tenant's period budget (after
    /// ``tenantShortfall(_:_:)`` said it fits, and its job's ledger took it).
    mutating func reserveForTenant(_ job: JobRun, _ amount: Amount, _ id: AttemptID) {
        openTenant(job.tenant)
        try? tenantBook.accounts[job.tenant]!.ledger.reserve(amount, for: id)
    }

    /// An attempt of `job` ended with `charged` charged to its job (zero for one cancelled before
    /// dispatch): the same is charged to its tenant's period and the rest released; what it ran
    /// adds to the tenant's usage; jobs waiting for the tenant's budget plan again.
    mutating func tenantAttemptEnded(_ job: JobRun, _ a: LiveAttempt, charged: Amount, now: WallInstant) {
        let name = job.tenant
        openTenant(name)
        if tenantBook.accounts[name]!.ledger.charge(charged, for: a.record.id) != .zero { tenantBook.accounts[name]!.spendDirty = true }
        if a.record.state == .dispatched, let model = cluster.model(a.spec.model) {
            let seconds = max(0, now.seconds(since: a.record.dispatchedAt ?? now))
            addUsage(name, charged.usd.usd + seconds * slotRate(worker: a.record.worker, model: model), now: now)
        }
        wakeBlocked(tenant: name)
    }

    /// USD-equivalent per second of one slot: its share of the worker's GPUs at `gpuHour`. A
    /// worker without GPUs serving a free model counts as one device (it is still a machine's
    /// time); one serving a priced model (a hosted API) counts its price only.
    func slotRate(worker name: String?, model: ModelSpec) -> Double {
        // Two numbers read in place: `workers[name]` would copy the whole entry (its sets and
        // strings), for every running attempt at every dispatch round (fairShareUsage).
        guard let name, let i = workers.index(forKey: name) else { return 0 }
        let slots = Double(max(1, workers.values[i].record.slots))
        let gpus = workers.values[i].record.gpus.count
        let devices = gpus > 0 ? Double(gpus) : (model.priceInput == 0 && model.priceOutput == 0 ? 1 : 0)
        return devices / slots * fairShare.gpuHour / 3600
    }

    /// What dispatching `a` to `worker` is expected to add to its tenant's usage: the model's mean
    /// attempt time at the slot's rate, plus the subtask's expected tokens at the dearer price.
    func expectedUsage(_ job: JobRun, _ a: LiveAttempt, worker: String) -> Double {
        guard let model = cluster.model(a.spec.model) else { return 0 }
        let estimate = job.planNodes[a.node].estimates.indices.contains(a.model) ? job.planNodes[a.node].estimates[a.model] : nil
        let tokens = min(Double(a.record.tokenCap), estimate?.tokens ?? Double(a.record.tokenCap))
        return attemptSeconds(a.spec.model) * slotRate(worker: worker, model: model) + tokens * max(model.priceInput, model.priceOutput) / 1_000_000
    }

    mutating func addUsage(_ name: String, _ amount: Double, now: WallInstant) {
        guard amount.isFinite, amount > 0 else { return }
        var account = tenantBook.accounts[name]!
        account.usage = fairShare.decayed(account.usage, from: account.usageAt, to: now) + amount
        account.usageAt = max(account.usageAt, now)
        account.usageDirty = true
        tenantBook.accounts[name] = account
    }

    /// Usage per tenant now: stored usage decayed to now, plus what running attempts have run
    /// so far (GPU time, and tokens reported at the dearer price). What the fleet policy divides
    /// by the tenants' weights.
    func fairShareUsage(now: WallInstant) -> [String: Double] {
        var usage: [String: Double] = [:]
        for (name, a) in tenantBook.accounts { usage[name] = fairShare.decayed(a.usage, from: a.usageAt, to: now) }
        for job in holding.byID.values {
            for id in job.dispatchedIDs {
                guard let a = job.live[id], let model = cluster.model(a.spec.model) else { continue }
                let seconds = max(0, now.seconds(since: a.record.dispatchedAt ?? now))
                usage[job.tenant, default: 0] += seconds * slotRate(worker: a.record.worker, model: model)
                    + model.worstCaseUSD(tokens: a.progressTokens)
            }
        }
        return usage
    }

    /// The job waits for its tenant's period budget: it keeps its state, says why, and plans
    /// again when the tenant's budget frees or renews.
    mutating func blockOnTenantBudget(_ job: JobRun, _ reason: String) {
        tenantBook.blocked[job.record.id] = reason
        setWaitReason(job, reason)
    }

    mutating func unblockTenantBudget(_ job: JobRun) {
        guard tenantBook.blocked.removeValue(forKey: job.record.id) != nil else { return }
        if job.waitReason?.hasPrefix("waiting for tenant ") == true { setWaitReason(job, nil) }
    }

    /// Jobs of `tenant` waiting for its budget plan again (an attempt ended, the period renewed).
    mutating func wakeBlocked(tenant: String) {
        guard !tenantBook.blocked.isEmpty else { return }
        for id in tenantBook.blocked.keys.sorted() {
            guard let job = jobs[id] else {
                tenantBook.blocked[id] = nil
                continue
            }
            if job.isTerminal { tenantBook.blocked[id] = nil } else if job.tenant == tenant { touch(job) }
        }
    }

    /// At each tick: periods that ended renew (spend starts again from zero; reservations carry
    /// over), and their tenants' waiting jobs plan again; once a second, the tenants' gauges.
    mutating func tenantTick() {
        let now = self.now.wall
        for name in tenantBook.accounts.keys.sorted() {
            var a = tenantBook.accounts[name]!
            guard now >= a.periodEnd else { continue }
            // What was charged in the ending period since its last write goes on record under
            // that period before the spend starts again from zero (written after the renewal, it
            // would be lost: the row would carry the new period's start and zero).
            if a.spendDirty { persist(.tenantSpend(tenant: name, TenantSpend(periodStart: a.periodStart, spent: a.ledger.spent))) }
            a.periodStart = a.period.start(containing: now)
            a.periodEnd = a.period.end(afterStart: a.periodStart)
            a.ledger = BudgetLedger(limitTokens: a.ledger.limitTokens, limitUSD: a.ledger.limitUSD, spent: .zero, reservations: a.ledger.reservations)
            tenantBook.accounts[name] = a
            wakeBlocked(tenant: name)
        }
        guard now >= tenantBook.nextGaugesAt else { return }
        tenantBook.nextGaugesAt = now.adding(seconds: 1)
        note(.tenants(tenantReports().map { t in
            CoordinatorMetrics.TenantState(name: t.name, spentUSD: t.period.spentUSD, spentTokens: t.period.spentTokens, reservedUSD: t.period.reservedUSD,
                                           limitUSD: t.period.limitUSD, limitTokens: t.period.limitTokens, usage: t.usage, share: t.share,
                                           queued: t.jobs.queued, running: t.jobs.running, waitingForBudget: t.jobs.waitingForBudget)
        }))
    }

    /// At the end of each tick: the rows that changed, in the batch that charged the ledger.
    mutating func writeTenantUsage() {
        for name in tenantBook.accounts.keys.sorted() {
            let a = tenantBook.accounts[name]!
            guard a.usageDirty || a.spendDirty else { continue }
            if a.usageDirty { persist(.tenantUsage(tenant: name, usage: a.usage, at: a.usageAt)) }
            if a.spendDirty { persist(.tenantSpend(tenant: name, TenantSpend(periodStart: a.periodStart, spent: a.ledger.spent))) }
            tenantBook.accounts[name]!.usageDirty = false
            tenantBook.accounts[name]!.spendDirty = false
        }
    }

    /// After a restart: each tenant's spend in its period as last committed, its usage, and the
    /// reservations of the resumed jobs' live attempts. A period never goes back: if the wall
    /// clock now reads earlier than the stored period's start, that period goes on. A tenant whose
    /// budget was lowered below what is held loses its queued attempts (newest first; released,
    /// planned again later) until the rest fits; what runs is left to finish.
    mutating func restoreTenants(_ rows: TenantRows) {
        var held: [String: [AttemptID: Amount]] = [:]
        for job in jobs.values {
            for id in job.live.keys { if let r = job.ledger.reservations[id] { held[job.tenant, default: [:]][id] = r } }
        }
        let names = Set(rows.spend.keys).union(rows.usage.keys).union(held.keys).union(cluster.tenants.map(\.name))
        for name in names.sorted() {
            openTenant(name)
            var a = tenantBook.accounts[name]!
            var spent = Amount.zero
            // A stored period of another length (the cluster file changed `per`) is not carried on.
            if let s = rows.spend[name], a.period.start(containing: s.periodStart) == s.periodStart, s.periodStart >= a.periodStart {
                a.periodStart = s.periodStart
                a.periodEnd = a.period.end(afterStart: s.periodStart)
                spent = s.spent
            }
            a.ledger = BudgetLedger(limitTokens: a.ledger.limitTokens, limitUSD: a.ledger.limitUSD, spent: spent, reservations: held[name] ?? [:])
            if let u = rows.usage[name] {
                a.usage = u.usage
                a.usageAt = u.at
            }
            tenantBook.accounts[name] = a
            guard !a.ledger.isConsistent else { continue }
            let queued = jobs.values.filter { $0.tenant == name }
                .flatMap { job in job.live.values.filter { $0.record.state == .queued }.map { (job, $0.record) } }
                .sorted { ($0.1.createdAt, $0.1.id.description) > ($1.1.createdAt, $1.1.id.description) }
            for (job, rec) in queued where !tenantBook.accounts[name]!.ledger.isConsistent {
                cancelAttempt(job, rec.id, reason: "tenant \(name)'s budget no longer covers it", now: now.wall)
                touch(job)
            }
        }
    }

    /// `agentflow tenants`: every tenant listed in the cluster file, with jobs in memory, or with
    /// spend or usage on record.
    func tenantReports() -> [TenantReport] {
        let now = self.now.wall
        let usage = fairShareUsage(now: now)
        var counts: [String: TenantJobCounts] = [:]
        for job in jobs.values where !job.isTerminal {
            var c = counts[job.tenant] ?? TenantJobCounts(queued: 0, running: 0, waitingForBudget: 0)
            if job.record.state == .queued { c.queued += 1 } else { c.running += 1 }
            if tenantBook.blocked[job.record.id] != nil { c.waitingForBudget += 1 }
            counts[job.tenant] = c
        }
        let names = Set(tenantBook.accounts.keys).union(counts.keys).union(cluster.tenants.map(\.name)).sorted()
        let weights = cluster.tenantWeights
        let totalWeight = names.reduce(0.0) { $0 + (weights[$1] ?? 1) }
        let totalUsage = names.reduce(0.0) { $0 + (usage[$1] ?? 0) }
        return names.map { name in
            let weight = weights[name] ?? 1
            let budget = cluster.tenant(name)?.budget
            let period: TenantPeriodReport
            if let a = tenantBook.accounts[name] {
                let l = a.ledger
                period = TenantPeriodReport(per: a.period.rawValue, start: isoTime(a.periodStart), end: isoTime(a.periodEnd),
                                            limitUSD: l.limitUSD?.usd, limitTokens: l.limitTokens, spentUSD: l.spent.usd.usd,
                                            spentTokens: l.spent.tokens, reservedUSD: l.reserved.usd.usd, reservedTokens: l.reserved.tokens)
            } else {
                let per = budget?.per ?? .day
                let start = per.start(containing: now)
                period = TenantPeriodReport(per: per.rawValue, start: isoTime(start), end: isoTime(per.end(afterStart: start)),
                                            limitUSD: budget?.usd.map { NanoUSD(limitUSD: $0).usd }, limitTokens: budget?.tokens,
                                            spentUSD: 0, spentTokens: 0, reservedUSD: 0, reservedTokens: 0)
            }
            let u = usage[name] ?? 0
            return TenantReport(name: name, weight: weight, share: totalWeight > 0 ? weight / totalWeight : 0, usage: u,
                                usageShare: totalUsage > 0 ? u / totalUsage : 0, period: period,
                                jobs: counts[name] ?? TenantJobCounts(queued: 0, running: 0, waitingForBudget: 0))
        }
    }
}

/// What the simulator's tenant checker reads from a running core (no mutation).
public struct TenantSnapshot: Sendable {
    public var name: String
    public var periodStart: WallInstant
    public var limitTokens: Int?
    public var limitUSD: NanoUSD?
    public var spent: Amount
    public var reserved: Amount
    /// The ledger's own check: reservations sum to `reserved`, and spent + reserved ≤ limit.
    public var consistent: Bool
}

extension CoordinatorCore {
    /// The tenants' period ledgers, by name.
    public var tenantSnapshots: [TenantSnapshot] {
        tenantBook.accounts.sorted { $0.key < $1.key }.map { name, a in
            TenantSnapshot(name: name, periodStart: a.periodStart, limitTokens: a.ledger.limitTokens, limitUSD: a.ledger.limitUSD,
                           spent: a.ledger.spent, reserved: a.ledger.reserved, consistent: a.ledger.isConsistent)
        }
    }
}
