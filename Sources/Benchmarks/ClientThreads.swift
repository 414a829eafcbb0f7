import AgentFlowCore
import Foundation

/// Runs a bench's concurrent clients, each on a thread of its own.
///
/// `DispatchQueue.concurrentPerform` runs at most one iteration per core, so on a 2-core machine
/// "8 concurrent clients" that block on a request were 2 at a time: the intake and memory benches
/// measured 2 clients. Clients wait on the coordinator, not on a core, so each gets its own
/// thread, named "bench client N" for `top -H`, `perf` and the benches' CPU by thread.
enum ClientThreads {
    /// Calls `body(i)` for `i` in `0..<count`, all at once on `count` threads, and returns when
    /// every thread has ended (joined, so none holds `body` after).
    static func run(_ count: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            let shared = Body(body)
            var threads: [pthread_t] = []
            for i in 0..<max(1, count) {
                let work = Unmanaged.passRetained(Work(shared, i)).toOpaque()
                var thread = pthread_t()
                let started = pthread_create(&thread, nil, { raw in
                    let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
                    setCurrentThreadName("bench client \(work.index)")
                    work.body.call(work.index)
                    return nil
                }, work)
                if started == 0 {
                    threads.append(thread)
                } else {
                    // No thread to be had: this client runs here, after the others started.
                    let work = Unmanaged<Work>.fromOpaque(work).takeRetainedValue()
                    work.body.call(work.index)
                }
            }
            for thread in threads { pthread_join(thread, nil) }
        }
    }

    /// The clients' closure, handed to the threads; they only call it, and all have been joined
    /// before `run` returns.
    private final class Body: @unchecked Sendable {
        let call: (Int) -> Void
        init(_ call: @escaping (Int) -> Void) { self.call = call }
    }

    /// One thread's start: the closure and its client's index.
    private final class Work {
        let body: Body
        let index: Int
        init(_ body: Body, _ index: Int) {
            self.body = body
            self.index = index
        }
    }
}
