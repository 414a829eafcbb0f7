/// What one credential — a CURVE client key (`coordinator.curve.clientKeys`) or an HTTP token
/// (`coordinator.httpTokens`) — may do: its role, and, when it is bound to a tenant, whose jobs
/// it sees and acts on. A credential bound to a tenant submits only as that tenant, sees only
/// that tenant's jobs and tenant row, and cancels only its jobs; one that is not (an operator's)
/// sees all within its role.
public struct ClientScope: Codable, Sendable, Equatable, CustomStringConvertible {
    public var role: ClientRole
    public var tenant: String?

    public init(role: ClientRole, tenant: String? = nil) {
        self.role = role
        self.tenant = tenant
    }

    /// Both limits at once: the lower of the two roles and the tenant either binds to; nil when
    /// they bind to different tenants.
    public func narrowed(by other: ClientScope) -> ClientScope? {
        if let a = tenant, let b = other.tenant, a != b { return nil }
        return ClientScope(role: min(role, other.role), tenant: tenant ?? other.tenant)
    }

    /// `role submit, tenant team-a` / `role admin`.
    public var description: String { "role \(role.rawValue)" + (tenant.map { ", tenant \($0)" } ?? "") }

    /// `ROLE` or `ROLE tenant=NAME` (an HTTP token file line without its token); the problem in words.
    public static func parse(role: String, options: [String]) -> Result<ClientScope, ScopeProblem> {
        guard let r = ClientRole(rawValue: role) else {
            return .failure(ScopeProblem(message: "the role must be read, submit or admin, got \(Limits.printable(role))"))
        }
        var scope = ClientScope(role: r)
        for option in options {
            guard option.hasPrefix("tenant="), scope.tenant == nil else {
                return .failure(ScopeProblem(message: "expected at most one 'tenant=NAME' after the token, got \(Limits.printable(option))"))
            }
            let name = String(option.dropFirst("tenant=".count))
            if let problem = Limits.name(name, "the tenant") { return .failure(ScopeProblem(message: problem)) }
            scope.tenant = name
        }
        return .success(scope)
    }
}

/// Why a role or scope does not parse.
public struct ScopeProblem: Error, Equatable {
    public var message: String
}
