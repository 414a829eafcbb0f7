import Foundation
import HTTPTypes
import Hummingbird

/// Defences against web pages in a local browser (issue 15): on loopback without tokens, any
/// page the browser opens could otherwise reach the API.
///
/// - **DNS rebinding**: served on a loopback address, a request whose `Host` is neither the
///   address served nor `localhost` is refused (403): a page at `attacker.example` whose name
///   is rebound to 127.0.0.1 sends `Host: attacker.example`. Without a `Host` (HTTP/1.0 tools)
///   the request passes; browsers always send one. Bound beyond loopback, names vary (proxies,
///   DNS), so `Host` is not checked there; bearer tokens guard that case.
/// - **Cross-site writes**: a request that changes something (any method but GET, HEAD,
///   OPTIONS) with an `Origin` header is refused (403) unless that origin is the API's own
///   (`http://HOST:PORT` equal to the request's `Host`); `Origin: null` is refused. A request with
///   no `Origin` — the CLI's, curl's, the Python client's — passes: browsers add one to every
///   cross-origin write. `Sec-Fetch-Site: cross-site`/`same-site` is refused too.
/// - **Content types**: a write with a body must declare one of the API's own types
///   (`application/yaml`, `application/x-yaml`, `text/yaml`, `application/json`), else 415. An
///   HTML form can only send `application/x-www-form-urlencoded`, `multipart/form-data` or
///   `text/plain`, so a form on another site cannot post a workflow even where `Origin` is lost.
struct SameOriginMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Host names a request may name (lower case, no port); nil: any.
    let allowedHosts: Set<String>?

    init(options: HTTPOptions) {
        guard options.isLoopback else {
            allowedHosts = nil
            return
        }
        var hosts: Set<String> = ["localhost", options.host.lowercased()]
        if options.host == "localhost" { hosts.formUnion(["127.0.0.1", "::1"]) }
        allowedHosts = hosts
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let authority = request.head.authority
        if let allowedHosts, let authority {
            let host = OriginCheck.hostName(authority)
            guard allowedHosts.contains(host) else {
                return jsonError(.forbidden, "Host \(quoted(authority)) is not this server's address (\(allowedHosts.sorted().joined(separator: ", "))); refused against DNS rebinding")
            }
        }
        if [.get, .head, .options].contains(request.method) { return try await next(request, context) }
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!]?.lowercased(), site == "cross-site" || site == "same-site" {
            return jsonError(.forbidden, "a \(request.method.rawValue) from another site is refused (Sec-Fetch-Site: \(site))")
        }
        if let origin = request.headers[HTTPField.Name("Origin")!] {
            guard let authority, OriginCheck.sameOrigin(origin, host: authority) else {
                return jsonError(.forbidden, "a \(request.method.rawValue) from origin \(quoted(origin)) is refused: only this server's own pages, or clients that send no Origin, may change anything")
            }
        }
        let hasBody = request.headers[.contentLength].map { $0 != "0" } ?? (request.headers[.transferEncoding] != nil)
        if hasBody {
            let type = request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard OriginCheck.apiTypes.contains(type) else {
                return jsonError(.unsupportedMediaType, "Content-Type \(quoted(type)) is not accepted here; send \(OriginCheck.apiTypes.sorted().joined(separator: " or "))")
            }
        }
        return try await next(request, context)
    }

    func quoted(_ s: String) -> String { "'" + String(s.unicodeScalars.prefix(100).filter { $0.value >= 0x20 && $0.value != 0x7f }.map(Character.init)) + "'" }
}

/// The parts of the origin checks that need no request context.
enum OriginCheck {
    /// The API's own request body types.
    static let apiTypes: Set<String> = ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json"]

    /// `HOST` and `PORT` of `HOST:PORT`, `[::1]:PORT` or `HOST`, lower case, brackets removed.
    static func split(_ authority: String) -> (host: String, port: String?) {
        let a = authority.lowercased()
        if a.hasPrefix("["), let close = a.firstIndex(of: "]") {
            let rest = a[a.index(after: close)...]
            return (String(a[a.index(after: a.startIndex)..<close]), rest.hasPrefix(":") ? String(rest.dropFirst()) : nil)
        }
        if let colon = a.lastIndex(of: ":"), a.firstIndex(of: ":") == colon {
            return (String(a[..<colon]), String(a[a.index(after: colon)...]))
        }
        return (a, nil)
    }

    static func hostName(_ authority: String) -> String { split(authority).host }

    /// Whether an `Origin` (`http(s)://HOST[:PORT]`) is the origin of a request sent with `Host`.
    /// The port is compared when `Host` names one (the scheme's default stands in for a missing one).
    static func sameOrigin(_ origin: String, host: String) -> Bool {
        let o = origin.lowercased()
        let scheme: (prefix: String, port: String)
        if o.hasPrefix("http://") { scheme = ("http://", "80") } else if o.hasPrefix("https://") { scheme = ("https://", "443") } else { return false }
        let rest = String(o.dropFirst(scheme.prefix.count))
        guard !rest.isEmpty, !rest.contains("/") else { return false }
        let a = split(rest), b = split(host)
        guard a.host == b.host else { return false }
        guard let port = b.port else { return true }
        return (a.port ?? scheme.port) == port
    }
}
