import AgentFlowCore
import Coordinator
import Foundation
import Observability
import Testing
import Wire

/// Many queued jobs at once: the loop ends each at its own deadline (kept in a heap, not found by
/// walking every job), wakes for the soonest one, and exports per-job gauges for a bounded set.
@Suite struct QueueDepthCoreTests {
    /// Runs the core alone (no store): each submission, then the planner's decisions, then ticks.
    struct Driver: ~Copyable {
        let h: CoreHarness
        var core: CoordinatorCore
        var ended: [String: (state: JobState, at: WallInstant)] = [:]
        var gauges: [[CoordinatorMetrics.RunningJob]] = []

        init() throws {
            // Admission counts jobs with an attempt on a slot: without prefetch, one per slot.
            h = try CoreHarness(prefetch: 0)
            core = CoreHarness.core(h.cluster)
        }

        @discardableResult
        mutating func step(_ event: CoreEvent) -> CoreActions {
            var a = core.handle(event, at: CoreTime(h.clock))
            // Plans decided at once, as the planner thread would.
            while !a.plans.isEmpty {
                let plans = a.plans
                a.plans = []
                for p in plans { absorb(core.handle(.planned(p.decide()), at: CoreTime(h.clock))) }
            }
            absorb(a)
            return a
        }

        mutating func absorb(_ a: CoreActions) {
            for n in a.notes {
                if case .jobEnded(let job, _, _, let state, _, _, _, _, let at, _) = n { ended[job] = (state, at) }
                if case .gauges(let jobs, _) = n { gauges.append(jobs) }
            }
        }
    }

    @Test func manyQueuedJobsEndAtTheirOwnDeadlinesAndNoSooner() throws {
        var d = try Driver()
        // No worker: every job stays queued. Deadlines 5 s to 104.5 s, submitted out of order.
        var deadlineOf: [String: Double] = [:]
        let start = d.h.clock.now
        for i in 0..<200 {
            let relative = 5 + Double((i * 7919) % 200) * 0.5
            let a = d.step(d.h.submission(oneTask, deadline: relative))
            let id = try #require(CoreHarness.submitted(a.messages))
            deadlineOf[id] = start + relative
        }
        let step = 0.5
        while d.h.clock.now < start + 110 {
            d.h.clock.advance(step)
            let a = d.step(.tick)
            let wall = d.h.clock.now
            let due = Set(deadlineOf.filter { $0.value <= wall }.keys)
            #expect(Set(d.ended.keys) == due, "at +\(wall - start) s")
            // The loop asks to wake by the soonest deadline still to come (or the heartbeat, 1 s).
            if let next = deadlineOf.values.filter({ $0 > wall }).min(), let wake = a.wakeAt {
                #expect((wake - d.h.clock.instant).seconds <= min(1, next - wall) + 1e-9, "at +\(wall - start) s")
            }
        }
        #expect(d.ended.count == 200)
        for (id, e) in d.ended {
            #expect(e.state == .deadlineExceeded)
            #expect(e.at.secondsSince1970 >= deadlineOf[id]! && e.at.secondsSince1970 < deadlineOf[id]! + step, "\(id) ended at \(e.at), deadline \(deadlineOf[id]!)")
        }
    }

    @Test func perJobGaugesAreBoundedAndAdmittedJobsKeepTheirs() throws {
        var d = try Driver()
        d.step(.worker(.register(info: CoreHarness.info("w0", slots: 2), running: [], finished: []), from: Data("w0#1".utf8)))
        // Later jobs have nearer deadlines.
        var ids: [String] = []
        for i in 0..<(CoordinatorCore.jobGaugeLimit + 200) {
            let a = d.step(d.h.submission(oneTask, deadline: Double(100_000 - i)))
            ids.append(try #require(CoreHarness.submitted(a.messages)))
        }
        d.h.clock.advance(2)
        d.step(.tick)
        let running = Set(d.core.jobSnapshots.filter { $0.state == .running }.map(\.id))
        #expect(running.count == 2)
        let last = try #require(d.gauges.last)
        #expect(last.count == CoordinatorCore.jobGaugeLimit)
        #expect(Set(last.prefix(2).map(\.id)) == running, "admitted jobs first")
        // Then the queued jobs with the nearest deadlines: the last submitted.
        let nearest = Set(ids.reversed().filter { !running.contains($0) }.prefix(CoordinatorCore.jobGaugeLimit - 2))
        let listed = Set(last.dropFirst(2).map(\.id))
        #expect(listed == nearest, "\(listed.subtracting(nearest).count) listed beyond the nearest deadlines")
        #expect(zip(last.dropFirst(2), last.dropFirst(3)).allSatisfy { $0.deadlineRemainingSeconds <= $1.deadlineRemainingSeconds })
        #expect(last.prefix(100).allSatisfy { $0.successEstimate != nil } && last.dropFirst(100).allSatisfy { $0.successEstimate == nil })
    }
}
