/// ZeroMQ endpoint text helpers: which addresses are loopback-only, and how a bind address
/// combines with the port of the endpoint peers connect to.
public enum Endpoint {
    /// The host part of `tcp://HOST:PORT` (brackets of an IPv6 address removed); nil for other transports.
    public static func tcpHost(_ endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        var rest = Substring(endpoint.dropFirst("tcp://".count))
        if let semi = rest.firstIndex(of: ";") { rest = rest[rest.index(after: semi)...] }  // tcp://source;dest
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return String(rest) }
            return String(rest[rest.index(after: rest.startIndex)..<close])
        }
        if let colon = rest.lastIndex(of: ":") { return String(rest[..<colon]) }
        return String(rest)
    }

    /// The port part of `tcp://HOST:PORT`, as written (a number or `*`).
    public static func tcpPort(_ endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        let rest = endpoint.dropFirst("tcp://".count)
        let afterHost = rest.lastIndex(of: "]").map { rest[rest.index(after: $0)...] } ?? rest
        guard let colon = afterHost.lastIndex(of: ":") else { return nil }
        let port = String(afterHost[afterHost.index(after: colon)...])
        return port.isEmpty ? nil : port
    }

    /// Whether only this machine can reach an endpoint bound there: ipc and inproc always,
    /// tcp on 127.0.0.0/8, ::1 or localhost. Anything else (0.0.0.0, `*`, an interface name or
    /// address) is reachable from the network.
    public static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard let host = tcpHost(endpoint) else { return false }
        if host == "localhost" || host == "::1" || host == "lo" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// `tcp://ADDRESS` (no port) combined with the port of `connect`: what to bind so that
    /// peers connecting to `connect` reach it.
    public static func bind(address: String, portOf connect: String) -> String? {
        guard let port = tcpPort(connect) else { return nil }
        return "\(address):\(port)"
    }
}
