import Yams

/// How much of the coordinator the HTTP API may hold (`coordinator.httpLimits` in cluster.yaml).
/// Connections past a cap are answered `503` and closed at once; connections that do not send a
/// whole request head in `headerTimeout`, a whole body in `bodyTimeout`, or a next request in
/// `idleTimeout` are closed. The coordinator lowers `connections` further when its
/// file-descriptor limit is low, so its own sockets and database always have descriptors left.
public struct HTTPLimits: Codable, Sendable, Equatable {
    /// Concurrent HTTP connections, all sources together.
    public var connections = 512
    /// Concurrent HTTP connections from one source address (raise it behind a reverse proxy).
    public var connectionsPerSource = 64
    /// Concurrent Server-Sent Event streams, all sources together.
    public var streams = 256
    /// Concurrent Server-Sent Event streams from one source address.
    public var streamsPerSource = 32
    /// From accepting a connection to a complete request head.
    public var headerTimeout: Duration = .seconds(10)
    /// From a request head to the end of its body.
    public var bodyTimeout: Duration = .seconds(30)
    /// From the end of a response to the next request head on a kept-alive connection.
    public var idleTimeout: Duration = .seconds(60)

    public init() {}

    /// Each count 1…100,000; each duration 100 ms…1 h.
    static let countRange = 1...100_000
    static let keys: Set<String> = ["connections", "connectionsPerSource", "streams", "streamsPerSource", "headerTimeout", "bodyTimeout", "idleTimeout"]
}

extension Cluster {
    /// `httpLimits: {connections: 512, connectionsPerSource: 64, streams: 256, streamsPerSource: 32,
    /// headerTimeout: 10s, bodyTimeout: 30s, idleTimeout: 60s}` (any subset).
    static func parseHTTPLimits(_ node: Node, _ r: YAMLReader) throws -> HTTPLimits {
        let m = try r.mapping(node, "coordinator.httpLimits")
        try r.checkKeys(m, allowed: HTTPLimits.keys, in: "coordinator.httpLimits")
        var limits = HTTPLimits()
        func count(_ key: String) throws -> Int? {
            guard let n = m[key] else { return nil }
            let v = try r.int(n, "coordinator.httpLimits.\(key)")
            if let problem = Limits.count(v, HTTPLimits.countRange, "coordinator.httpLimits.\(key)") { throw r.error(n, problem) }
            return v
        }
        func duration(_ key: String) throws -> Duration? {
            guard let n = m[key] else { return nil }
            let v = try r.duration(n, "coordinator.httpLimits.\(key)", in: .milliseconds(100) ... .seconds(3_600))
            // Whole milliseconds, as before.
            return .milliseconds(Int64((v.seconds * 1000).rounded()))
        }
        if let v = try count("connections") { limits.connections = v }
        if let v = try count("connectionsPerSource") { limits.connectionsPerSource = v }
        if let v = try count("streams") { limits.streams = v }
        if let v = try count("streamsPerSource") { limits.streamsPerSource = v }
        if let v = try duration("headerTimeout") { limits.headerTimeout = v }
        if let v = try duration("bodyTimeout") { limits.bodyTimeout = v }
        if let v = try duration("idleTimeout") { limits.idleTimeout = v }
        return limits
    }
}
