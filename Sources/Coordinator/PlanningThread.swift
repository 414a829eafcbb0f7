import AgentFlowCore
import Foundation
import Planner
import Synchronization
import Wire
import ZeroMQ

/// A planning request the core decided: the job's state as the planner should see it, the
/// version it was taken at (a decision for an older version is applied only where still valid).
public struct PlanRequest: Sendable {
    public var job: String
    public var version: Int
    public var planner: any LivePlanner
    public var state: PlanState
    public var wantCompletion: Bool
}

/// Runs planners off the coordinator's loop: MCPP decisions take milliseconds to a fraction of
/// a second, and the loop must keep answering heartbeats and results meanwhile. Requests are
/// served one at a time on a dedicated serial queue (MCPP itself spreads its rollouts over the
/// cores); decisions come back through a queue and a wake-up pipe the loop polls.
public final class PlanningThread: Sendable {
    /// A planner's answer to a `PlanRequest`.
    public struct Decision: Sendable {
        public var job: String
        public var version: Int
        public var launches: [Launch]
        public var completion: Double?
        public var milliseconds: Double
    }

    /// Answers a request on the caller's thread (the simulator: deterministic, no threads).
    public static func decide(_ r: PlanRequest) -> Decision {
        let start = DispatchTime.now().uptimeNanoseconds
        let completion = r.wantCompletion ? r.planner.completionProbability(r.state) : nil
        let launches = r.planner.decide(r.state)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return Decision(job: r.job, version: r.version, launches: launches, completion: completion, milliseconds: ms)
    }

    func submit(_ r: PlanRequest) {
        queue.async { [self] in
            let d = Self.decide(r)
            done.withLock { $0.append(d) }
            wake.signal()
        }
    }

    private let queue = DispatchQueue(label: "agentflow.planner", qos: .userInitiated)
    private let done = Mutex<[Decision]>([])
    let wake = WakeupPipe()

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
