import AgentFlowCore
import Foundation
import Synchronization
import Wire
import ZeroMQ

/// Runs the query service off the loop: requests are answered one at a time on a serial
/// queue (the service's read connection is used there only), the replies encoded there too;
/// they come back through a queue and a wake-up pipe, and the loop — the client socket's one
/// owner — sends them.
final class QueryThread: @unchecked Sendable {
    // `service` is used only on `queue` (serial).
    private let service: QueryService
    private let queue = DispatchQueue(label: "agentflow.queries", qos: .userInitiated)
    private let done = Mutex<[(route: [Data], reply: Data)]>([])
    let wake = WakeupPipe()

    init(service: QueryService) {
        self.service = service
    }

    func answer(_ request: ClientRequest, route: [Data]) {
        queue.async { [self] in
            let reply = WireCodec().encode(service.answer(request))
            done.withLock { $0.append((route, reply)) }
            wake.signal()
        }
    }

    func take() -> [(route: [Data], reply: Data)] {
        done.withLock { d in
            let out = d
            d.removeAll()
            return out
        }
    }
}
