import AgentFlowCore
import Foundation

/// Placement: which of a model's workers with a free slot takes the next attempt. The one with
/// the lowest fraction of busy slots — its running attempts, or what its model server says it
/// serves when that is more (a server shared with other clients), plus the requests waiting at
/// the server — so a fan-out spreads over GPUs instead of filling the first worker's slots;
/// ties go to the worker whose last dispatch is oldest, then by name. The server's report
/// counts only while fresh (within the liveness window); workers whose servers say nothing are
/// placed on their running attempts alone.
public enum Placement: String, Sendable, CaseIterable {
    /// The lowest fraction of busy slots, ties to the oldest last dispatch (the default).
    case leastLoaded = "least-loaded"
    /// The first worker by name with a free slot: what placement was before issue 20; it piles
    /// a fan-out onto one GPU. Kept so `bench fleet` can measure the difference.
    case firstFree = "first-free"
}

extension CoordinatorCore {
    /// The index in `names` of the worker the next attempt goes to (nil: `names` is empty).
    /// `names` are the model's workers with a free slot, by name.
    func chooseWorker(_ names: [String]) -> Int? {
        if options.placement == .firstFree { return names.isEmpty ? nil : 0 }
        var best: (index: Int, busy: Int, slots: Int, last: Int, name: String)?
        for (i, name) in names.enumerated() {
            guard let w = workers[name] else { continue }
            let busy = placementBusy(w)
            let slots = max(1, w.record.slots)
            if let b = best {
                // busy/slots < b.busy/b.slots, in integers (both bounded well below overflow).
                let lhs = busy * b.slots, rhs = b.busy * slots
                guard lhs < rhs || (lhs == rhs && (w.lastDispatch, name) < (b.last, b.name)) else { continue }
            }
            best = (i, busy, slots, w.lastDispatch, name)
        }
        return best?.index
    }

    /// The slots placement counts as busy on `w`.
    func placementBusy(_ w: WorkerEntry) -> Int {
        guard let load = w.serverLoad, self.now.mono - w.serverLoadAt <= deadAfter else { return w.running.count }
        return max(w.running.count, load.running) + load.waiting
    }
}
