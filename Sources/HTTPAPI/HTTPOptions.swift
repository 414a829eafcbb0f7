import AgentFlowCore
import Foundation
import Observability

/// Bearer tokens from the file `coordinator.httpTokens` names: one `ROLE TOKEN [tenant=NAME]` per
/// line, ROLE `read` < `submit` < `admin` (``AgentFlowCore/ClientRole``); a token with a tenant
/// sees and acts on that tenant's jobs only. Blank lines and `#` comments are ignored.
public struct TokenBook: Sendable, Equatable {
    public var tokens: [String: ClientScope]

    public init(tokens: [String: ClientScope]) {
        self.tokens = tokens
    }

    /// Loads the token file; `listed` (the cluster file's tenants, when it lists any) is every
    /// tenant a token may be bound to.
    public static func load(path: String, listed: [String] = []) throws -> TokenBook {
        let text: String
        do {
            text = try SecretFile.read(path, what: "HTTP token file")
        } catch let e as ConfigError {
            throw HTTPConfigError(e.description)
        }
        return try parse(text, file: path, listed: listed)
    }

    public static func parse(_ text: String, file: String, listed: [String] = []) throws -> TokenBook {
        var tokens: [String: ClientScope] = [:]
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard parts.count >= 2 else {
                throw HTTPConfigError("\(file):\(i + 1): expected 'ROLE TOKEN [tenant=NAME]' with ROLE read, submit or admin")
            }
            let token = parts[1]
            guard token.count >= 16, token.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0.asciiValue! >= 0x21 && $0.asciiValue! < 0x7f }) else {
                throw HTTPConfigError("\(file):\(i + 1): a token must be at least 16 printable ASCII characters")
            }
            switch ClientScope.parse(role: parts[0], options: Array(parts.dropFirst(2))) {
            case .success(let scope):
                if tokens[token] != nil { throw HTTPConfigError("\(file):\(i + 1): this token is listed twice") }
                // A token for a tenant not listed would spend outside every tenant's budget (a
                // misspelt team_a is not team-a).
                if let tenant = scope.tenant, !listed.isEmpty, !listed.contains(tenant) {
                    throw HTTPConfigError("\(file):\(i + 1): tenant '\(tenant)' is not listed under the cluster file's tenants: ("
                                          + listed.joined(separator: ", ") + "); its jobs would spend outside every tenant's budget")
                }
                tokens[token] = scope
            case .failure(let p):
                throw HTTPConfigError("\(file):\(i + 1): \(p.message) (expected 'ROLE TOKEN [tenant=NAME]')")
            }
        }
        if tokens.isEmpty { throw HTTPConfigError("\(file): no tokens in the HTTP token file") }
        return TokenBook(tokens: tokens)
    }

    /// Constant-time comparison against every token, so timing does not leak a prefix.
    public func scope(of presented: String) -> ClientScope? {
        let p = Array(presented.utf8)
        var found: ClientScope?
        for (token, scope) in tokens {
            let t = Array(token.utf8)
            var diff = UInt8(t.count == p.count ? 0 : 1)
            for i in 0..<t.count { diff |= t[i] ^ (i < p.count ? p[i] : 0) }
            if diff == 0 { found = scope }
        }
        return found
    }
}

public struct HTTPConfigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Where and how the coordinator serves HTTP.
public struct HTTPOptions: Sendable {
    public var host: String
    public var port: Int
    /// nil: no authentication (allowed on loopback addresses only).
    public var tokens: TokenBook?
    /// Model names of the cluster, to validate submitted workflows with the same messages as `agentflow validate`.
    public var knownModels: Set<String>
    /// Caps and timeouts of connections and event streams (`coordinator.httpLimits`), already
    /// fitted to the descriptor limit by ``fitToDescriptors()``.
    public var limits = HTTPLimits()
    /// Connections that may be open past `limits.connections` while they are being refused.
    public var refusing = 64
    /// Where the server's own metrics go (the coordinator's registry).
    public var metricsRegistry = MetricsRegistry.shared

    public init(host: String, port: Int, tokens: TokenBook?, knownModels: Set<String>) {
        self.host = host
        self.port = port
        self.tokens = tokens
        self.knownModels = knownModels
    }

    /// Parses `HOST:PORT` (`[::1]:8080` for IPv6).
    public static func address(_ text: String) throws -> (host: String, port: Int) {
        var host: Substring
        var port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw HTTPConfigError("bad HTTP address '\(text)': expected HOST:PORT") }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw HTTPConfigError("bad HTTP address '\(text)': expected HOST:PORT") }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let p = Int(port), (0...65535).contains(p) else {
            throw HTTPConfigError("bad HTTP address '\(text)': expected HOST:PORT with a port 0…65535")
        }
        return (String(host), p)
    }

    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Raises the process's soft descriptor limit to its hard limit and lowers `limits` to what
    /// the descriptors left after the coordinator's reserve allow (see `DescriptorBudget`).
    /// Returns the descriptor limit.
    @discardableResult
    public mutating func fitToDescriptors() -> Int {
        let available = DescriptorBudget.raiseSoftLimit()
        (limits, refusing) = DescriptorBudget.fit(limits, descriptorLimit: available)
        return available
    }

    /// Refuses to serve the API without tokens anywhere but loopback.
    public func check() throws {
        if tokens == nil && !isLoopback {
            throw HTTPConfigError(
                "refusing to serve HTTP on \(host):\(port) without authentication: a non-loopback address needs bearer tokens "
                    + "(set coordinator.httpTokens in the cluster file to a file of 'read TOKEN' / 'admin TOKEN' lines), or bind 127.0.0.1")
        }
    }
}
