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
    /// `names` are the model's workers with room (a free slot, or room to hold one prefetched).
    /// A worker with a free slot goes before any that would hold the attempt queued: prefetch
    /// never leaves a slot idle to queue behind a busy one.
    func chooseWorker(_ names: [String]) -> Int? {
        if options.placement == .firstFree {
            return names.firstIndex { workers[$0].map { $0.free > 0 } ?? false } ?? (names.isEmpty ? nil : 0)
        }
        var best: (index: Int, queues: Bool, busy: Int, slots: Int, last: Int, name: String)?
        for (i, name) in names.enumerated() {
            guard let w = workers[name] else { continue }
            let queues = w.free == 0
            let busy = placementBusy(w)
            let slots = max(1, w.record.slots)
            if let b = best {
                if queues != b.queues {
                    guard !queues else { continue }
                } else {
                    // busy/slots < b.busy/b.slots, in integers (both bounded well below overflow).
                    let lhs = busy * b.slots, rhs = b.busy * slots
                    guard lhs < rhs || (lhs == rhs && (w.lastDispatch, name) < (b.last, b.name)) else { continue }
                }
            }
            best = (i, queues, busy, slots, w.lastDispatch, name)
        }
        return best?.index
    }

    /// The slots placement counts as busy on `w`: what runs there (or what its server says it
    /// serves and queues), plus what waits queued at the worker itself (prefetched), which will
    /// take its slots first.
    func placementBusy(_ w: WorkerEntry) -> Int {
        guard let load = w.serverLoad, self.now.mono - w.serverLoadAt <= deadAfter else { return w.running.count + w.queued.count }
        return max(w.running.count, load.running) + load.waiting + w.queued.count
    }
}
