import AgentFlowCore
import Foundation
import Observability
import Synchronization
import Wire
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Who may use the client socket (issues 15 and 18). A request from a CURVE key that owns worker
/// names is refused: a node's key registers its workers and does nothing else. With
/// `coordinator.curve.clientKeys`, a request is answered only when its key is listed with a role
/// that allows it, and a key bound to a tenant acts as that tenant only: its submissions are the
/// tenant's, and every other request it makes travels on as ``Wire/ClientRequest/scoped(_:_:)``
/// so the query service and the core show and touch only that tenant's jobs. A request may
/// itself carry a scope (the HTTP server sends each with its token's); it only ever narrows the
/// key's. An `ipc://` client socket is a Unix socket whose file mode (0660) leaves it to the
/// coordinator's user and group; a request there, or on the in-process endpoint (the HTTP
/// server's link), carries no key.
extension Coordinator {
    /// What to do with a client request.
    enum Admission {
        /// Serve this (the request as the rights allow it: a submission's tenant set, a scope added).
        case admit(ClientRequest)
        /// Refuse it for want of `right`, saying why.
        case refuse(RefusalMetrics.Right, String)
    }

    func admit(_ request: ClientRequest, key: String?) -> Admission {
        var inner = request
        var scope: ClientScope?
        if case .scoped(let claimed, let r) = request {
            if case .scoped = r { return .refuse(Self.right(r.requiredRole), "a request carries at most one scope") }
            inner = r
            scope = claimed
        }
        var who = "this credential"
        if let key {
            who = "client key \(key)"
            if let patterns = options.identities?.current.patterns(of: key), !patterns.isEmpty {
                return .refuse(.client, "key \(key) is a worker key (it registers \(patterns.joined(separator: ", "))); worker keys cannot make client "
                               + "requests. Use a client key (--key, $AGENTFLOW_CLIENT_KEY or ~/.config/agentflow/client.key) listed in coordinator.curve.clientKeys")
            }
            if let book = options.clientKeys {
                guard let own = book.scope(of: key) else {
                    return .refuse(Self.right(inner.requiredRole), "client key \(key) is not listed in coordinator.curve.clientKeys; "
                                   + "ask the operator to add it with a role (read, submit or admin)")
                }
                guard let narrowed = scope.map({ own.narrowed(by: $0) }) ?? own else {
                    return .refuse(.tenant, "client key \(key) belongs to tenant \(own.tenant ?? "")")
                }
                scope = narrowed
            }
        }
        guard let scope else { return .admit(inner) }
        let needed = inner.requiredRole
        guard scope.role >= needed else { return .refuse(Self.right(needed), "\(who) has role \(scope.role.rawValue); this request needs \(needed.rawValue)") }
        guard let tenant = scope.tenant else { return .admit(inner) }
        switch inner {
        case .submit(var s):
            if let asked = s.tenant, asked != tenant {
                return .refuse(.tenant, "\(who) belongs to tenant \(tenant) and cannot submit jobs for tenant \(Limits.printable(asked))")
            }
            s.tenant = tenant
            return .admit(.submit(s))
        case .queryJobs(var q):
            if let asked = q.tenant, asked != tenant {
                return .refuse(.tenant, "\(who) belongs to tenant \(tenant) and cannot list tenant \(Limits.printable(asked))'s jobs")
            }
            q.tenant = tenant
            return .admit(.scoped(scope, .queryJobs(q)))
        default:
            return .admit(.scoped(scope, inner))
        }
    }

    static func right(_ role: ClientRole) -> RefusalMetrics.Right {
        switch role {
        case .read: .read
        case .submit: .submit
        case .admin: .admin
        }
    }

    /// Why a registration from `key` is refused: a client's key never registers a worker.
    func registrationRefusal(key: String?) -> String? {
        guard let key, options.clientKeys?.scope(of: key) != nil else { return nil }
        return "key \(key) is a client key (coordinator.curve.clientKeys); client keys cannot register workers. "
            + "Give the node a key of its own, bound to its worker names (agentflow keys enroll; docs/deploy.md, Keys)"
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

/// The client keys of `coordinator.curve.clientKeys` and what each may do; re-read on SIGHUP
/// like the worker keys (a reload changes what the next request sees).
public final class ClientKeyBook: Sendable {
    private let keys: Mutex<[String: ClientScope]>

    public init(_ keys: [String: ClientScope]) {
        self.keys = Mutex(keys)
    }

    public func replace(_ new: [String: ClientScope]) {
        keys.withLock { $0 = new }
    }

    /// What `key` may do; nil when it is not listed.
    public func scope(of key: String) -> ClientScope? {
        keys.withLock { $0[key] }
    }

    public var count: Int { keys.withLock { $0.count } }
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
