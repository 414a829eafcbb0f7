import Foundation

extension ZMQSocket {
    /// One request/reply on a DEALER socket: sends `payload` as one frame and waits up to
    /// `timeout` seconds for an answer. Returns the answer's last frame (a ROUTER peer may add
    /// routing frames), or nil when none came in time. `whileWaiting`, when given, is called
    /// with the seconds waited so far every `slice` seconds until the answer comes; it may throw
    /// to give up early. The socket belongs to the calling thread, as always.
    public func request(_ payload: Data, timeout: Double, slice: Double? = nil, whileWaiting: ((Double) throws -> Void)? = nil) throws -> Data? {
        _ = try send([payload])
        var poller = ZMQPoller()
        poller.add(self)
        let start = DispatchTime.now().uptimeNanoseconds
        while true {
            let waited = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let left = timeout - waited
            if left <= 0 { return nil }
            if let whileWaiting { try whileWaiting(waited) }
            try poller.poll(timeout: slice.map { min(left, $0) } ?? left)
            if poller.isReadable(0), let frames = try receive(dontWait: true), let last = frames.last { return last }
        }
    }
}
