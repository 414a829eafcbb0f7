import CZeroMQ
import Foundation

/// What a socket's monitor reports about its connections (zmq_socket_monitor): used by workers
/// and the CLI to tell "nobody answers" from "the CURVE handshake failed" (a key problem).
public enum ConnectionEvent: Equatable, Sendable {
    case connected
    case connectRetried
    case disconnected
    case handshakeSucceeded
    /// The server's ZAP handler refused this peer's key (status code, e.g. 400).
    case handshakeRefused(status: Int32)
    /// The handshake broke off: with CURVE, nearly always the wrong server key.
    case handshakeFailed
    case other(Int32)
}

/// A PAIR socket receiving another socket's monitor events, on the same thread as that socket.
public final class ZMQMonitor {
    public let socket: ZMQSocket

    /// Starts monitoring `target` (connect, disconnect and handshake events).
    public init(_ target: ZMQSocket) throws(ZMQError) {
        let address = "inproc://monitor-\(UUID().uuidString)"
        let events: Int32 = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        try zmqCall("zmq_socket_monitor") { zmq_socket_monitor(target.handle, address, events) }
        socket = try ZMQSocket(target.context, .pair)
        try socket.connect(address)
    }

    /// Every event waiting, oldest first.
    public func take() -> [ConnectionEvent] {
        var out: [ConnectionEvent] = []
        while let frames = try? socket.receive(dontWait: true) {
            guard let first = frames.first, first.count >= 6 else { continue }
            let event = Int32(UInt16(first[first.startIndex]) | UInt16(first[first.startIndex + 1]) << 8)
            let value = first.dropFirst(2).prefix(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            switch event {
            case ZMQ_EVENT_CONNECTED: out.append(.connected)
            case ZMQ_EVENT_CONNECT_RETRIED: out.append(.connectRetried)
            case ZMQ_EVENT_DISCONNECTED: out.append(.disconnected)
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: out.append(.handshakeSucceeded)
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: out.append(.handshakeRefused(status: Int32(bitPattern: value)))
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: out.append(.handshakeFailed)
            default: out.append(.other(event))
            }
        }
        return out
    }

    public func close() { socket.close() }
}

/// What a client knows about its link to the coordinator, from monitor events; it turns them
/// into the sentence a user needs ("a key problem" rather than "is it running?").
public struct LinkState: Sendable, Equatable {
    public var connectedOnce = false
    public var handshakeOK = false
    public var refused: Int32?
    public var failedHandshakes = 0
    public var retries = 0

    public init() {}

    public mutating func note(_ events: [ConnectionEvent]) {
        for e in events {
            switch e {
            case .connected: connectedOnce = true
            case .connectRetried: retries += 1
            case .handshakeSucceeded:
                handshakeOK = true
                refused = nil
                failedHandshakes = 0
            case .handshakeRefused(let status):
                refused = status
                handshakeOK = false
            case .handshakeFailed:
                failedHandshakes += 1
                handshakeOK = false
            case .disconnected, .other: break
            }
        }
    }

    /// Why the coordinator at `endpoint` does not answer, in words; nil when the link looks fine.
    public func problem(_ endpoint: String, curve: Bool) -> String? {
        if let refused {
            return "the coordinator at \(endpoint) refused this key in the CURVE handshake (ZAP status \(refused)): a key problem — this host's public key is not in the coordinator's authorizedKeys/workerKeys (agentflow keys enroll NAME prints the line to add)"
        }
        if failedHandshakes > 0 && curve {
            return "the CURVE handshake with \(endpoint) failed: a key problem — the serverKey in the cluster file does not match the coordinator's key, or the coordinator does not use CURVE"
        }
        if failedHandshakes > 0 || (connectedOnce && !handshakeOK && !curve) {
            // Without CURVE a failed handshake is no key problem: the peer does not speak ZeroMQ
            // (a wrong port), or it is a coordinator that requires CURVE.
            return "connected to \(endpoint), but it did not complete a ZeroMQ handshake: is that the coordinator's clients port? "
                + "(or the coordinator uses CURVE and this cluster file has no coordinator.curve)"
        }
        if connectedOnce && !handshakeOK && curve {
            return "connected to \(endpoint) but the CURVE handshake did not complete: a key problem (wrong serverKey, or the coordinator does not use CURVE)"
        }
        if !connectedOnce {
            return "cannot reach the coordinator at \(endpoint): no TCP connection; is it running, and are the address and port right and open?"
        }
        return nil
    }
}
