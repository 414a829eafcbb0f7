import AgentFlowCore
import Foundation
import Planner
import Synchronization
import ZeroMQ

/// Runs planners off the coordinator's loop: MCPP decisions take milliseconds to a fraction of
/// a second, and the loop must keep answering heartbeats and results meanwhile. Requests are
/// served one at a time on a dedicated serial queue (MCPP itself spreads its rollouts over the
/// cores); decisions come back through a queue and a wake-up pipe the loop polls.
final class PlanningThread: Sendable {
    private let queue = DispatchQueue(label: "agentflow.planner", qos: .userInitiated)
    private let done = Mutex<[PlanDecision]>([])
    let wake = WakeupPipe()

    func submit(_ r: PlanRequest) {
        queue.async { [self] in
            let d = r.decide()
            done.withLock { $0.append(d) }
            wake.signal()
        }
    }

    func take() -> [PlanDecision] {
        done.withLock { d in
            let out = d
            d.removeAll()
            return out
        }
    }
}
