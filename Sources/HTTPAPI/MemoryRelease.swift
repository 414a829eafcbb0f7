import CMalloc
import Foundation
import Synchronization

/// Gives the heap memory a crowd of connections left behind back to the system. glibc keeps
/// freed memory in its arenas (one per thread that allocated it, and NIO's event loop threads
/// each have one), so after thousands of slow connections or event streams have gone, the
/// process would otherwise keep their buffers' pages for good. `malloc_trim` walks every arena
/// and returns free pages; it runs on a utility queue, 1 s and again 5 s after a crowd has gone
/// (streams and their tasks finish a little after their connections close), never more often.
enum MemoryRelease {
    private static let queue = DispatchQueue(label: "agentflow.http.memory", qos: .utility)
    private static let pending = Atomic<Bool>(false)

    @Sendable static func soon() {
        guard !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.asyncAfter(deadline: .now() + 1) { _ = CMalloc_trim() }
        queue.asyncAfter(deadline: .now() + 5) {
            pending.store(false, ordering: .releasing)
            _ = CMalloc_trim()
        }
    }
}
