import AgentFlowCore
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Observability
import Synchronization
import Wire

/// The coordinator's HTTP surface (Hummingbird): `/api/v1`, `/metrics` and the dashboard at `/`.
/// It runs on its own threads beside the coordinator's ZeroMQ loop and reaches the loop only
/// through client requests (`CoordinatorLink`).
public final class HTTPServer: Sendable {
    let options: HTTPOptions
    let link: CoordinatorLink
    let metrics: @Sendable () -> String
    let task = Mutex<Task<Void, any Error>?>(nil)
    let bound = Mutex<Int?>(nil)
    let failure = Mutex<String?>(nil)

    /// `metrics` renders the Prometheus text of the coordinator's registry.
    public init(options: HTTPOptions, link: CoordinatorLink, metrics: @escaping @Sendable () -> String) {
        self.options = options
        self.link = link
        self.metrics = metrics
    }

    /// Starts serving in the background; returns the port bound (resolved when 0 was asked),
    /// or throws why the server could not start.
    public func start(timeout: Double = 30) throws -> Int {
        try options.check()
        // HEAD is answered wherever GET is: the GET handler's status and headers, no body.
        let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: SameOriginMiddleware(options: options))
        router.add(middleware: MethodCheckMiddleware())
        router.add(middleware: AuthMiddleware(tokens: options.tokens, refusals: RefusalMetrics(registry: options.metricsRegistry)))
        let limiter = ConnectionLimiter(limits: options.limits, metrics: HTTPMetrics(registry: options.metricsRegistry), onQuiet: MemoryRelease.soon)
        APIRoutes(link: link, options: options, metrics: metrics, limiter: limiter).register(on: router)
        var logger = Logger(label: "agentflow.http")
        logger.logLevel = .warning
        let limits = options.limits
        // Past the caps each connection is still accepted, answered 503 and closed at once; this
        // backstop stops accepting altogether (the kernel's backlog holds the rest) should
        // refusals ever pile up faster than they close.
        let backstop = MaximumAvailableConnections(limits.connections + options.refusing, logger: logger)
        let app = Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuardHandler(limiter: limiter)],
                                                idleTimeout: TimeAmount(limits.idleTimeout))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "agentflow",
                                 availableConnectionsDelegate: backstop),
            onServerRunning: { [self] channel in self.bound.withLock { $0 = channel.localAddress?.port ?? -1 } },
            logger: logger)
        let t = Task { [self] in
            do {
                try await app.runService(gracefulShutdownSignals: [])
            } catch {
                self.failure.withLock { $0 = "\(error)" }
                throw error
            }
        }
        task.withLock { $0 = t }
        // Monotonic: a wall-clock step must neither cut the wait short nor stretch it.
        let deadline = ContinuousClock.now + .clampedSeconds(timeout)
        while ContinuousClock.now < deadline {
            if let port = bound.withLock({ $0 }) { return port }
            if let f = failure.withLock({ $0 }) { throw HTTPConfigError("cannot serve HTTP on \(options.host):\(options.port): \(f)") }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw HTTPConfigError("the HTTP server did not start within \(Int(timeout)) s")
    }

    /// Stops serving (open event streams end).
    public func stop() {
        task.withLock { $0?.cancel() }
    }
}

/// The request context of every route: Hummingbird's, plus the peer's address (caps per source).
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    /// The connection, so a long response (an event stream) stops once its client has gone.
    let channel: any Channel
    /// What the request's token may do (``AuthMiddleware``); nil without tokens (loopback).
    var scope: ClientScope?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    /// The peer's IP address, as the caps per source count it.
    var sourceAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}

/// Bearer tokens (``TokenBook``): GET and HEAD need a `read` token, a submission or a cancel a
/// `submit` one (or `admin`); a token bound to a tenant travels on with every request as its
/// scope (``APIRequestContext/scope``), so the coordinator shows and touches only that tenant's
/// jobs, and `/metrics` (every tenant's series) is refused to it. A refusal is a 403 naming the
/// right the token lacks, counted in `agentflow_refused_requests_total`. Browsers' EventSource
/// cannot send headers, so for GET and HEAD only the token may come in the `agentflow_token`
/// cookie instead, which the dashboard sets (`SameSite=Strict`, path `/api/v1/`); a token is
/// never taken from the URL, where proxies, access logs and browser history would keep it. A
/// cookie never authorizes a change, so a page on another site cannot make a browser cancel a
/// job. Without a token book (loopback only) every request is allowed. The dashboard page itself
/// carries no data and is served to anyone; its requests need the token like any other.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let tokens: TokenBook?
    let refusals: RefusalMetrics
    let tokenCookie = "agentflow_token"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let tokens, request.uri.path != "/", request.uri.path != "/favicon.ico" else { return try await next(request, context) }
        var presented: String?
        if let h = request.headers[.authorization], h.lowercased().hasPrefix("bearer ") {
            presented = String(h.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        } else if request.method == .get || request.method == .head, let c = request.cookies[tokenCookie]?.value {
            presented = c.removingPercentEncoding ?? c
        }
        guard let presented, let scope = tokens.scope(of: presented) else {
            var r = jsonError(.unauthorized, "a bearer token is required (Authorization: Bearer TOKEN)")
            r.headers[.wwwAuthenticate] = "Bearer realm=\"agentflow\""
            return r
        }
        let needed: ClientRole = request.method == .get || request.method == .head ? .read : .submit
        guard scope.role >= needed else {
            refusals.refused(needed == .read ? .read : .submit)
            return jsonError(.forbidden, "this token has role \(scope.role.rawValue); \(request.method.rawValue) \(Limits.printable(String(request.uri.path.prefix(100)), limit: 100)) needs \(needed.rawValue) (or admin)")
        }
        // By path components, as the router matches them: "/metrics/" and "//metrics" are /metrics too.
        if let tenant = scope.tenant, request.uri.path.split(separator: "/") == ["metrics"] {
            refusals.refused(.tenant)
            return jsonError(.forbidden, "this token belongs to tenant \(tenant); /metrics shows every tenant's series, so it needs a token without a tenant")
        }
        var scoped = context
        scoped.scope = scope
        return try await next(request, scoped)
    }
}

/// `{"error": "...", "code": N}` with the status.
func jsonError(_ status: HTTPResponse.Status, _ message: String, extra: [String: any Sendable] = [:]) -> Response {
    var object: [String: Any] = ["error": message, "code": Int(status.code)]
    for (k, v) in extra { object[k] = v }
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{\"error\":\"error\"}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? e.encode(value) else { return jsonError(.internalServerError, "cannot encode the response") }
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func textResponse(_ text: String, contentType: String) -> Response {
    Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// Methods the API does not offer on a path it serves answer 405 with `Allow` (not 404).
struct MethodCheckMiddleware<Context: RequestContext>: RouterMiddleware {
    static func allowed(_ path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        switch parts.count {
        case 0: return [.get, .head]
        case 1 where parts[0] == "metrics": return [.get, .head]
        case 3 where parts[0] == "api" && parts[1] == "v1":
            switch parts[2] {
            case "jobs": return [.get, .head, .post]
            case "workers", "tenants", "openapi.yaml": return [.get, .head]
            default: return nil
            }
        case 4 where parts[0] == "api" && parts[1] == "v1" && parts[2] == "jobs": return [.get, .head]
        case 5 where parts[0] == "api" && parts[1] == "v1" && parts[2] == "jobs":
            switch parts[4] {
            case "attempts", "ledger", "events", "outputs": return [.get, .head]
            case "cancel": return [.post]
            default: return nil
            }
        default:
            if parts.count >= 7 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "jobs" && parts[4] == "outputs" { return [.get, .head] }
            return nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let allowed = Self.allowed(request.uri.path), !allowed.contains(request.method) {
            var r = jsonError(.methodNotAllowed, "\(request.method.rawValue) is not allowed here; use \(allowed.map(\.rawValue).joined(separator: " or "))")
            r.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return r
        }
        return try await next(request, context)
    }
}

/// Every error the router or Hummingbird raises (an unknown path's 404, a malformed request)
/// answers `{"error": "...", "code": N}` like the API's own errors, never an empty body.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            var response = jsonError(error.status, message(error.status, error.body, request))
            for header in error.headers where header.name != .contentType && header.name != .contentLength {
                response.headers.append(header)
            }
            return response
        } catch let error as any HTTPResponseError {
            return jsonError(error.status, message(error.status, nil, request))
        } catch {
            return jsonError(.internalServerError, "internal error")
        }
    }

    func message(_ status: HTTPResponse.Status, _ body: String?, _ request: Request) -> String {
        if let body, !body.isEmpty { return body }
        if status == .notFound { return "no such path: \(Limits.printable(String(request.uri.path.prefix(200))))" }
        return status.reasonPhrase.isEmpty ? "HTTP \(status.code)" : status.reasonPhrase
    }
}
