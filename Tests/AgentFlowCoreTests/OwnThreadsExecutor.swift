import Foundation

/// A task executor with threads of its own, for the few async tests whose timing matters.
///
/// swift-testing runs every test on Swift's cooperative pool — one thread per core, two on CI —
/// and almost all of this project's tests are synchronous: each holds its pool thread for as long
/// as it runs, minutes for the simulator's seeds or a failover test. An async test whose tasks
/// wait for that pool waited up to nine minutes under the full suite (CI run 27: a request that
/// reached the scripted coordinator after its three-minute window and timed out). Under
/// `withTaskExecutorPreference(OwnThreadsExecutor.shared)` a test's tasks, its task groups'
/// children and every resumption run on these threads instead, so what it measures is the code
/// under test, not the pool.
final class OwnThreadsExecutor: TaskExecutor, @unchecked Sendable {
    /// Shared by the tests that use it; its threads wait on a condition while idle.
    static let shared = OwnThreadsExecutor(threads: 4)

    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var jobs: [UnownedJob] = []

    init(threads: Int) {
        for i in 0..<threads {
            let thread = Thread { [self] in run() }
            thread.name = "test-executor-\(i)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Waits `seconds` without the cooperative pool: `Task.sleep` wakes a task on the global
    /// executor whatever its preference (a sleeping test waited 40 s for a free pool thread),
    /// while a resumed continuation goes to the task's preferred executor. The timer is a serial
    /// queue's, not `DispatchQueue.global()`'s: on Linux that queue is the cooperative pool's own.
    static func sleep(seconds: Double) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            timers.asyncAfter(deadline: .now() + seconds) { c.resume() }
        }
    }

    private static let timers = DispatchQueue(label: "agentflow.test-executor.timers")

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
