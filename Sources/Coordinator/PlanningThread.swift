import AgentFlowCore
import Foundation
import Planner
import Synchronization
import Wire
import ZeroMQ

/// Runs planners off the coordinator's loop: MCPP decisions take milliseconds to a fraction of
/// a second, and the loop must keep answering heartbeats and results meanwhile. Requests are
/// served one at a time on a dedicated serial queue (MCPP itself spreads its rollouts over the
/// cores); decisions come back through a queue and a wake-up pipe the loop polls.
final class PlanningThread: Sendable {
    struct Decision: Sendable {
        var job: String
        var version: Int
        var launches: [Launch]
        var completion: Double?
        var milliseconds: Double
    }

    private let queue = DispatchQueue(label: "agentflow.planner", qos: .userInitiated)
    private let done = Mutex<[Decision]>([])
    let wake = WakeupPipe()

    func submit(job: String, version: Int, planner: any LivePlanner, state: PlanState, wantCompletion: Bool) {
        queue.async { [self] in
            let start = DispatchTime.now().uptimeNanoseconds
            let completion = wantCompletion ? planner.completionProbability(state) : nil
            let launches = planner.decide(state)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            done.withLock { $0.append(Decision(job: job, version: version, launches: launches, completion: completion, milliseconds: ms)) }
            wake.signal()
        }
    }

    func take() -> [Decision] {
        done.withLock { d in
            let out = d
            d.removeAll()
            return out
        }
    }
}

/// Parses submitted workflows off the coordinator's loop: a large workflow takes Yams a while,
/// and the loop must keep answering heartbeats meanwhile. Parsed submissions come back through
/// a queue and a wake-up pipe, and the loop creates the job and answers the client then.
final class IntakeThread: Sendable {
    struct Parsed: Sendable {
        var frames: [Data]
        var request: SubmitRequest
        var received: Double
        var workflow: Result<Workflow, ConfigError>
    }

    private let queue = DispatchQueue(label: "agentflow.intake", qos: .userInitiated)
    private let done = Mutex<[Parsed]>([])
    let wake = WakeupPipe()

    func parse(_ request: SubmitRequest, frames: [Data], received: Double, knownModels: Set<String>) {
        queue.async { [self] in
            let workflow = Result { () throws(ConfigError) -> Workflow in
                do {
                    return try Workflow.parse(yaml: request.yaml, file: request.file, knownModels: knownModels)
                } catch let e as ConfigError {
                    throw e
                } catch {
                    throw ConfigError(file: request.file, "\(error)")
                }
            }
            done.withLock { $0.append(Parsed(frames: frames, request: request, received: received, workflow: workflow)) }
            wake.signal()
        }
    }

    func take() -> [Parsed] {
        done.withLock { d in
            let out = d
            d.removeAll()
            return out
        }
    }
}
