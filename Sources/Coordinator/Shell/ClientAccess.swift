import AgentFlowCore
import Foundation
import Wire
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Who may use the client socket (issue 15): with `coordinator.curve.clientKeys`, a request is
/// answered only when the CURVE key it came with is listed with a role that allows it; an
/// `ipc://` client socket is a Unix socket whose file mode (0660) leaves it to the coordinator's
/// user and group. A request on the in-process endpoint (the HTTP server's link, which checks
/// bearer tokens itself) carries no key and is let through: CURVE peers always carry one.
extension Coordinator {
    /// Why `request` is refused for a client with `key`, or nil.
    func clientAccessProblem(_ request: ClientRequest, key: String?) -> String? {
        guard let roles = options.clientRoles, let key else { return nil }
        guard let role = roles[key] else {
            return "client key \(key) is not listed in coordinator.curve.clientKeys; ask the operator to add it with a role (read, submit or admin)"
        }
        let needed = request.requiredRole
        return role >= needed ? nil : "client key \(key) has role \(role.rawValue); this request needs \(needed.rawValue)"
    }

    /// Binds the client socket; an `ipc://` socket file is made with mode 0660 (the umask is
    /// narrowed around the bind, so it never exists with wider rights) and given to `group`.
    static func bindClients(_ socket: ZMQSocket, _ endpoint: String, group: String?) throws {
        guard endpoint.hasPrefix("ipc://") else { return try socket.bind(endpoint) }
        let path = String(endpoint.dropFirst("ipc://".count))
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let old = umask(0o117)
        defer { umask(old) }
        try socket.bind(endpoint)
        if let group {
            guard let g = getgrnam(group) else { throw ClientSocketError(message: "coordinator.clientsGroup: no group named '\(group)'") }
            guard chown(path, uid_t.max, g.pointee.gr_gid) == 0 else {
                throw ClientSocketError(message: "cannot give \(path) to group \(group): \(String(cString: strerror(errno)))")
            }
        }
        chmod(path, 0o660)
    }
}

extension Coordinator {
    /// Without CURVE nothing proves who a worker is, so only this host's processes are trusted
    /// (README): a registration from a non-loopback address is refused unless the operator
    /// started the coordinator with `--insecure`.
    func remoteRefusal(_ address: String?) -> String? {
        guard options.curveSecretKey == nil, !options.remoteWorkersWithoutCurve, let address, !isLoopbackAddress(address) else { return nil }
        return "a worker registering from \(Limits.printable(address)) (not this host's loopback) needs CURVE: configure coordinator.curve "
            + "(docs/deploy.md), or start the coordinator with --insecure to trust every host that reaches it"
    }
}

/// The client socket could not be set up as configured.
public struct ClientSocketError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Whether a peer address (`Peer-Address`) is this host's loopback.
func isLoopbackAddress(_ address: String) -> Bool {
    let a = address.lowercased()
    return a.hasPrefix("127.") || a == "::1" || a.hasPrefix("::ffff:127.")
}
