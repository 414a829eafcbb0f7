import AgentFlowCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Observability
import Synchronization

/// How many HTTP connections and event streams are open, per source address and in total, and
/// whether one more may open (``AgentFlowCore/HTTPLimits``). Shared by every connection's
/// ``ConnectionGuardHandler`` and the events route; safe from any thread.
final class ConnectionLimiter: Sendable {
    /// Open connections (or streams), in all and per source address.
    struct Tally {
        var open = 0
        var bySource: [String: Int] = [:]

        /// Counts one more from `source`, or says which cap it would pass.
        mutating func admit(_ source: String, total: Int, perSource: Int) -> Cap? {
            if open >= total { return .total }
            if bySource[source, default: 0] >= perSource { return .perSource }
            open += 1
            bySource[source, default: 0] += 1
            return nil
        }

        mutating func release(_ source: String) {
            open -= 1
            let n = bySource[source, default: 1] - 1
            bySource[source] = n > 0 ? n : nil
        }

        enum Cap { case total, perSource }
    }

    struct Counts {
        var connections = Tally()
        var streams = Tally()
        /// Most connections and streams open at once since memory was last given back.
        var peak = 0

        /// A crowd (64+ connections and streams) has mostly left: the memory its buffers and
        /// tasks held can go back to the system (once per crowd: the peak starts again here).
        mutating func crowdLeft() -> Bool {
            let load = connections.open + streams.open
            peak = max(peak, load)
            guard peak >= 64 && load <= peak / 8 else { return false }
            peak = load
            return true
        }
    }

    let limits: HTTPLimits
    let metrics: HTTPMetrics
    private let counts = Mutex(Counts())
    /// Called (off the event loops) after a crowd of connections has gone: give memory back.
    let onQuiet: @Sendable () -> Void

    init(limits: HTTPLimits, metrics: HTTPMetrics, onQuiet: @escaping @Sendable () -> Void = {}) {
        self.limits = limits
        self.metrics = metrics
        self.onQuiet = onQuiet
    }

    /// Admits a connection from `source`, or says which cap it hits (the connection is then
    /// answered 503 and closed; nothing is counted for it).
    func admitConnection(_ source: String) -> HTTPMetrics.Limit? {
        admit(source, stream: false)
    }

    func releaseConnection(_ source: String) { release(source, stream: false) }

    /// Admits an event stream from `source`, or says which cap it hits (answered 503).
    func admitStream(_ source: String) -> HTTPMetrics.Limit? {
        admit(source, stream: true)
    }

    func releaseStream(_ source: String) { release(source, stream: true) }

    private func admit(_ source: String, stream: Bool) -> HTTPMetrics.Limit? {
        let cap = counts.withLock { c -> Tally.Cap? in
            let cap = stream ? c.streams.admit(source, total: limits.streams, perSource: limits.streamsPerSource)
                : c.connections.admit(source, total: limits.connections, perSource: limits.connectionsPerSource)
            c.peak = max(c.peak, c.connections.open + c.streams.open)
            return cap
        }
        let refusal: HTTPMetrics.Limit? = switch (cap, stream) {
        case (nil, _): nil
        case (.total, false): .connections
        case (.perSource, false): .connectionsPerSource
        case (.total, true): .streams
        case (.perSource, true): .streamsPerSource
        }
        if let refusal { metrics.refused(refusal) }
        publish()
        return refusal
    }

    private func release(_ source: String, stream: Bool) {
        let quiet = counts.withLock { c -> Bool in
            if stream { c.streams.release(source) } else { c.connections.release(source) }
            return c.crowdLeft()
        }
        publish()
        if quiet { onQuiet() }
    }

    var open: (connections: Int, streams: Int) { counts.withLock { ($0.connections.open, $0.streams.open) } }

    private func publish() {
        let (c, s) = open
        metrics.open(connections: c, streams: s)
    }

    /// The 503 body for a refusal.
    static func message(_ limit: HTTPMetrics.Limit, _ limits: HTTPLimits) -> String {
        switch limit {
        case .connections: return "the server holds its maximum of \(limits.connections) HTTP connections; retry shortly"
        case .connectionsPerSource: return "your address holds its maximum of \(limits.connectionsPerSource) HTTP connections; close some or retry shortly"
        case .streams: return "the server holds its maximum of \(limits.streams) event streams; retry shortly"
        case .streamsPerSource: return "your address holds its maximum of \(limits.streamsPerSource) event streams; close some or retry shortly"
        }
    }
}

/// One per HTTP connection, after the HTTP codec: admits the connection under the caps (or
/// answers `503` and closes it at once, before reading anything), and closes a connection that
/// is too slow — no whole request head within `headerTimeout` of opening (slowloris), no whole
/// body within `bodyTimeout` of its head, no next request within `idleTimeout` of the last
/// response. While a response is being written (an event stream) no timer runs: the stream has
/// its own end (`maxSeconds`).
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limiter: ConnectionLimiter
    private var source = "unknown"
    private var started = false
    private var admitted = false
    /// Request heads read, request ends read, response ends written.
    private var heads = 0, ends = 0, responses = 0
    private var closeAfterResponse = false
    private var timer: Scheduled<Void>?

    init(limiter: ConnectionLimiter) { self.limiter = limiter }

    /// How long a refused connection stays half-closed: long enough for the client's request to
    /// arrive and be dropped on loopback or a LAN, short enough that refusals never pile up.
    static let linger = TimeAmount.milliseconds(250)

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if admitted {
            admitted = false
            limiter.releaseConnection(source)
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        source = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if let limit = limiter.admitConnection(source) {
            refuse(context, ConnectionLimiter.message(limit, limiter.limits))
            return
        }
        admitted = true
        rearm(context)
    }

    /// 503 with a JSON error, then a lingering close: the write side is shut (the client reads
    /// the answer and an end of stream), what the client sends is read and dropped, and the
    /// connection closes when the client closes it or `linger` later. Closing at once with the
    /// client's request unread would make the kernel send a reset, and a client's kernel drops
    /// what it had not yet read — the 503 — when a reset arrives.
    private func refuse(_ context: ChannelHandlerContext, _ message: String) {
        let body = ByteBuffer(string: "{\"code\":503,\"error\":\(jsonQuote(message))}")
        var head = HTTPResponse(status: .serviceUnavailable)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.readableBytes)
        head.headerFields[.retryAfter] = "1"
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(mode: .output, promise: nil) }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.linger) { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard admitted else { return }  // a refused connection: read and dropped until it closes
        switch unwrapInboundIn(data) {
        case .head: heads += 1
        case .body: break
        case .end: ends += 1
        }
        rearm(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard admitted else { return context.write(data, promise: promise) }
        switch unwrapOutboundIn(data) {
        case .head(let head):
            // A response that says `Connection: close` (a refused event stream) ends the connection.
            if head.headerFields[.connection]?.lowercased() == "close" { closeAfterResponse = true }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            responses += 1
            rearm(context)
            guard closeAfterResponse else { return context.write(data, promise: promise) }
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            context.write(data, promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(mode: .output, promise: nil) }
            timer?.cancel()
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.linger) { context.close(promise: nil) }
        }
    }

    /// The timer for where the connection is now: reading a body, waiting for a (first or next)
    /// request head, or none while a response is produced.
    private func rearm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        let phase: HTTPMetrics.Phase
        let limit: Duration
        if heads > ends {
            (phase, limit) = (.body, limiter.limits.bodyTimeout)
        } else if responses < heads {
            return
        } else if heads == 0 {
            (phase, limit) = (.header, limiter.limits.headerTimeout)
        } else {
            (phase, limit) = (.idle, limiter.limits.idleTimeout)
        }
        let metrics = limiter.metrics
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(limit)) {
            metrics.timedOut(phase)
            context.close(promise: nil)
        }
    }
}

/// The file descriptors the HTTP server may hold. The soft limit is raised to the hard one (as
/// servers do), then a quarter of it, at least 256, stays with the coordinator's own sockets
/// (workers and clients over ZeroMQ, the link's sockets), its database and its pipes; HTTP
/// connections are capped to what is left, so a crowd of connections can never starve the
/// coordinator of descriptors.
enum DescriptorBudget {
    static func raiseSoftLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = min(limit.rlim_max, 1 << 20)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(min(limit.rlim_cur, 1 << 20))
    }

    /// `limits` with `connections` (and `streams`) lowered to fit the descriptor limit, and how
    /// many more connections may be open while they are being refused (answered 503 and closed):
    /// what is left of the descriptors, 32 to 256.
    static func fit(_ limits: HTTPLimits, descriptorLimit: Int) -> (limits: HTTPLimits, refusing: Int) {
        var l = limits
        let reserve = max(256, descriptorLimit / 4)
        let forHTTP = max(8, descriptorLimit - reserve - LinkGate.width * 3)
        l.connections = min(l.connections, forHTTP)
        l.streams = min(l.streams, l.connections)
        return (l, max(32, min(256, forHTTP - l.connections)))
    }
}
