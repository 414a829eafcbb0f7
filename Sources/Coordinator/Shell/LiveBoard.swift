import AgentFlowCore
import Foundation
import Synchronization

/// The live views of the jobs the core holds in memory, as of the last commit. The loop
/// publishes into it after each commit; the query service reads it from its own thread.
public final class LiveBoard: Sendable {
    private let views = Mutex<[String: LiveJobView]>([:])

    public init() {}

    func publish(_ changed: [LiveJobView], forgetting gone: [String]) {
        guard !changed.isEmpty || !gone.isEmpty else { return }
        views.withLock { v in
            for view in changed { v[view.id] = view }
            for id in gone { v[id] = nil }
        }
    }

    /// The job's live view; nil when the core does not hold it (its store rows are all there is).
    public func view(_ job: String) -> LiveJobView? {
        views.withLock { $0[job] }
    }

    public func views(_ jobs: [String]) -> [String: LiveJobView] {
        views.withLock { v in
            var out: [String: LiveJobView] = [:]
            for id in jobs { if let view = v[id] { out[id] = view } }
            return out
        }
    }
}
