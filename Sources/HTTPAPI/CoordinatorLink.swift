import AgentFlowCore
import Foundation
import Synchronization
import Wire
import ZeroMQ

/// Errors the HTTP layer maps onto status codes.
public struct LinkError: Error, CustomStringConvertible {
    public var description: String
}

/// The HTTP server's way to the coordinator: the same client requests the CLI sends, over
/// DEALER sockets to the coordinator's client endpoint, so the coordinator's loop stays the one
/// owner of its sockets and its database. Requests block a thread of the link's own (never an
/// HTTP event loop); idle sockets are kept in a small pool and a socket whose request timed out
/// is closed, so a late reply never answers the next request.
public final class CoordinatorLink: Sendable {
    let endpoint: String
    let context: ZMQContext
    let curve: (serverKey: String, keys: CurveKeyPair)?
    private let idle = Mutex<[SocketBox]>([])
    /// One serial queue per gate slot: a request admitted to slot i blocks a thread of
    /// `lanes[i]` while it waits for the coordinator. Not one concurrent queue: on Linux
    /// libdispatch runs a concurrent queue's blocks on at most one thread per core and adds a
    /// thread for blocked ones once a second, so on two cores two requests were in flight at
    /// once for the first seconds after start (the rest queued behind them, each commit carried
    /// two submissions); a serial queue gets its thread when it has work.
    private let lanes = (0..<LinkGate.width).map { DispatchQueue(label: "agentflow.http.link.\($0)") }
    private let gate = LinkGate()
    static let poolSize = 8

    /// A socket handed between threads only through the pool's lock (a full memory barrier, as
    /// ZeroMQ asks of sockets that move between threads).
    final class SocketBox: @unchecked Sendable {
        let socket: ZMQSocket
        init(_ socket: ZMQSocket) { self.socket = socket }
    }

    public init(endpoint: String, context: ZMQContext, curve: (serverKey: String, keys: CurveKeyPair)? = nil) {
        self.endpoint = endpoint
        self.context = context
        self.curve = curve
    }

    deinit {
        for box in idle.withLock({ $0 }) { box.socket.close() }
    }

    public func request(_ r: ClientRequest, timeout: Double = 10) async throws -> ClientReply {
        // At most `LinkGate.width` requests block a thread and hold a socket at once, however
        // many HTTP connections and event streams ask: the rest wait here, costing neither.
        let lane = await gate.enter()
        defer { gate.leave(lane) }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ClientReply, any Error>) in
            lanes[lane].async {
                continuation.resume(with: Result { try self.blockingRequest(r, timeout: timeout) })
            }
        }
    }

    func blockingRequest(_ r: ClientRequest, timeout: Double) throws -> ClientReply {
        let box = try idle.withLock { $0.popLast() } ?? makeSocket()
        let codec = WireCodec()
        do {
            if let answer = try box.socket.request(codec.encode(r), timeout: timeout) {
                let reply = try codec.decode(ClientReply.self, from: answer)
                let kept = idle.withLock { pool -> Bool in
                    guard pool.count < Self.poolSize else { return false }
                    pool.append(box)
                    return true
                }
                if !kept { box.socket.close() }
                return reply
            }
        } catch {
            box.socket.close()
            throw LinkError(description: "coordinator link: \(error)")
        }
        box.socket.close()
        throw LinkError(description: "the coordinator did not answer within \(Int(timeout)) s")
    }

    func makeSocket() throws -> SocketBox {
        let s = try ZMQSocket(context, .dealer)
        if let curve { try s.setCurveClient(serverKey: curve.serverKey, keys: curve.keys) }
        try s.connect(endpoint)
        return SocketBox(s)
    }
}

extension CoordinatorLink {
    /// The link as one credential: every request it sends carries `scope` (none: as is).
    public func `as`(_ scope: ClientScope?) -> ScopedLink { ScopedLink(link: self, scope: scope) }
}

/// Requests sent with one credential's rights (``Wire/ClientRequest/scoped(_:_:)``): the
/// coordinator shows and touches only what that credential may see.
public struct ScopedLink: Sendable {
    let link: CoordinatorLink
    let scope: ClientScope?

    public func request(_ r: ClientRequest, timeout: Double = 10) async throws -> ClientReply {
        try await link.request(scope.map { .scoped($0, r) } ?? r, timeout: timeout)
    }
}

/// A gate of `width` lanes for async callers: `enter()` hands out a free lane, or waits
/// (suspended, holding no thread) while every lane is taken; `leave(_:)` gives the lane to the
/// longest waiter, or frees it.
final class LinkGate: Sendable {
    /// Requests the HTTP server sends the coordinator at once.
    static let width = 16
    private let state = Mutex<(free: [Int], waiters: [CheckedContinuation<Int, Never>])>((Array((0..<LinkGate.width).reversed()), []))

    func enter() async -> Int {
        await withCheckedContinuation { (c: CheckedContinuation<Int, Never>) in
            let lane = state.withLock { s -> Int? in
                if let lane = s.free.popLast() { return lane }
                s.waiters.append(c)
                return nil
            }
            if let lane { c.resume(returning: lane) }
        }
    }

    func leave(_ lane: Int) {
        let next = state.withLock { s -> CheckedContinuation<Int, Never>? in
            if s.waiters.isEmpty {
                s.free.append(lane)
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume(returning: lane)
    }
}
