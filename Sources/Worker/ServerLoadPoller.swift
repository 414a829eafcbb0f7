import AgentFlowCore
import Foundation
import Synchronization

/// Asks the backend's model server for its load (``AgentFlowCore/AttemptBackend/serverLoad()``)
/// on a thread of its own, so a slow or silent server never holds up the worker's loop: the
/// loop reads the latest answer, which is nil while the server says nothing or its last answer
/// is older than `staleAfter`. A server that says nothing is asked again only every
/// `retryQuiet`.
final class ServerLoadPoller: Sendable {
    private let latest = Mutex<(load: ServerLoad, at: MonotonicInstant)?>(nil)
    private let stopped = Atomic<Bool>(false)
    private let interval: Duration
    private let retryQuiet: Duration
    private let staleAfter: Duration
    private let time: any TimeSource

    init(backend: any AttemptBackend, interval: Duration, retryQuiet: Duration = .seconds(30), time: any TimeSource) {
        self.interval = min(max(.milliseconds(100), interval), .seconds(60))
        self.retryQuiet = retryQuiet
        self.staleAfter = self.interval * 3 + .seconds(1)
        self.time = time
        startThread(named: "server-load") { [self] in poll(backend) }
    }

    /// The server's load, if it said within `staleAfter`.
    var load: ServerLoad? {
        latest.withLock { l in l.flatMap { time.instant - $0.at <= staleAfter ? $0.load : nil } }
    }

    /// Ends the thread within 0.1 s (it may finish a request first, bounded by the probe's timeout).
    func stop() { stopped.store(true, ordering: .relaxed) }

    private func poll(_ backend: any AttemptBackend) {
        while !stopped.load(ordering: .relaxed) {
            let answer = backend.serverLoad()
            let now = time.instant
            if let answer { latest.withLock { $0 = (answer, now) } }
            let until = now + (answer == nil ? retryQuiet : interval)
            while !stopped.load(ordering: .relaxed) && time.instant < until { Thread.sleep(forTimeInterval: 0.1) }
        }
    }
}
