import AgentFlowCore
@testable import Coordinator
import Observability
import Store
import Testing

/// The coordinator's per-job event windows: bounded, in order, resumable, safe with hostile cursors.
@Suite struct TelemetryWindowTests {
    @Test func windowKeepsTheLastEventsInOrderAndResumes() {
        let t = Telemetry(metrics: MetricsRegistry())
        for i in 0..<(Telemetry.windowSize + 100) { t.append("j-1", kind: "job", at: WallInstant(secondsSince1970: Double(i)), state: "running", reason: "\(i)") }
        #expect(t.windows["j-1"]?.events.count == Telemetry.windowSize)
        let all = t.batch("j-1", after: 0, live: true)
        #expect(all.first == 101, "the 100 oldest are gone")
        #expect(all.next == Telemetry.windowSize + 101)
        #expect(all.events.count == 512, "one batch carries at most 512")
        #expect(all.events.map(\.seq) == Array(101..<613))
        #expect(all.events.allSatisfy { $0.job == "j-1" && $0.reason == "\($0.seq - 1)" })
        let tail = t.batch("j-1", after: Telemetry.windowSize + 95, live: true)
        #expect(tail.events.map(\.seq) == Array((Telemetry.windowSize + 96)...(Telemetry.windowSize + 100)))
        for hostile in [Int.max, Int.min, -1, Int.max - 1] {
            let b = t.batch("j-1", after: hostile, live: false)
            #expect(b.events.count <= 512)
        }
        #expect(t.batch("nope", after: 0, live: false).events.isEmpty)
    }

    @Test func oldestJobsWindowsGo() {
        let t = Telemetry(metrics: MetricsRegistry())
        for j in 0...Telemetry.maxJobs { t.append("j-\(j)", kind: "job", at: 0) }
        #expect(t.windows.count == Telemetry.maxJobs)
        #expect(t.windows["j-0"] == nil && t.windows["j-\(Telemetry.maxJobs)"] != nil)
    }
}
