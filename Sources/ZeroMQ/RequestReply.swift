import Foundation

extension ZMQSocket {
    /// One request/reply on a DEALER socket: sends `payload` as one frame and waits up to
    /// `timeout` seconds for an answer. Returns the answer's last frame (a ROUTER peer may add
    /// routing frames), or nil when none came in time. `whileWaiting`, when given, is called
    /// with the seconds waited so far every `slice` seconds until the answer comes; it may throw
    /// to give up early. The socket belongs to the calling thread, as always.
    ///
    /// The send never blocks: a DEALER whose connection the peer's ZAP handler refused before
    /// the send has no pipe to queue on, and a blocking `zmq_send` then waits forever (it did,
    /// under load: a refused `agentflow jobs` hung instead of saying "key problem"). Until the
    /// message is queued it is retried every few milliseconds within the same timeout.
    public func request(_ payload: Data, timeout: Double, slice: Double? = nil, whileWaiting: ((Double) throws -> Void)? = nil) throws -> Data? {
        var poller = ZMQPoller()
        poller.add(self)
        let start = DispatchTime.now().uptimeNanoseconds
        var sent = false
        while true {
            let waited = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let left = timeout - waited
            if !sent { sent = try send([payload], dontWait: true) }
            if left <= 0 { return nil }
            if let whileWaiting { try whileWaiting(waited) }
            let wait = slice.map { min(left, $0) } ?? left
            // Nothing can be answered before the request is queued: poll only as a short pause.
            try poller.poll(timeout: sent ? wait : min(wait, Self.requeueInterval))
            if sent, poller.isReadable(0), let frames = try receive(dontWait: true), let last = frames.last { return last }
        }
    }

    /// How often an unqueued request is offered again.
    static let requeueInterval = 0.005
}
