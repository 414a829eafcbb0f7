import AgentFlowCore
import Foundation
import Hummingbird
import NIOCore
import Wire

/// The `/api/v1` endpoints, `/metrics` and the dashboard. Every handler turns its HTTP input
/// into a client request, sends it over the link and maps the reply: bad input 400, unknown job
/// 404, coordinator unreachable 503.
struct APIRoutes: Sendable {
    let link: CoordinatorLink
    let options: HTTPOptions
    let metrics: @Sendable () -> String
    let limiter: ConnectionLimiter
    /// A submission may carry its inputs packed (``Submission``); the same limit as over ZeroMQ.
    static let maxBody = Submission.maxBytes

    func register(on router: Router<APIRequestContext>) {
        router.get("/") { _, _ in textResponse(DashboardPage.html, contentType: "text/html; charset=utf-8") }
        router.get("/api/v1/openapi.yaml") { _, _ in textResponse(OpenAPIDocument.yaml, contentType: "application/yaml") }
        router.get("/metrics") { _, _ in textResponse(metrics(), contentType: "text/plain; version=0.0.4; charset=utf-8") }
        router.post("/api/v1/jobs") { request, context in await submit(request, as: context.scope) }
        router.get("/api/v1/jobs") { request, context in await list(request, as: context.scope) }
        router.get("/api/v1/workers") { _, context in
            await call(.workers, as: context.scope) { reply in
                guard case .workers(let w) = reply else { return nil }
                return jsonResponse(["workers": w])
            }
        }
        router.get("/api/v1/tenants") { _, context in
            await call(.tenants, as: context.scope) { reply in
                guard case .tenants(let t) = reply else { return nil }
                return jsonResponse(["tenants": t])
            }
        }
        router.get("/api/v1/jobs/:id") { _, context in
            await call(.status(job: context.parameters.get("id") ?? ""), as: context.scope) { reply in
                guard case .job(let j) = reply else { return nil }
                return jsonResponse(j)
            }
        }
        router.get("/api/v1/jobs/:id/attempts") { _, context in
            let id = context.parameters.get("id") ?? ""
            return await call(.attempts(job: id), as: context.scope) { reply in
                guard case .attempts(let a) = reply else { return nil }
                return jsonResponse(AttemptList(job: id, attempts: a))
            }
        }
        router.get("/api/v1/jobs/:id/attempts/:subtask/:n/transcript") { _, context in
            await transcript(context.parameters, as: context.scope)
        }
        router.get("/api/v1/jobs/:id/ledger") { _, context in
            let id = context.parameters.get("id") ?? ""
            return await call(.ledger(job: id), as: context.scope) { reply in
                guard case .ledger(let l) = reply else { return nil }
                return jsonResponse(LedgerList(job: id, lines: l))
            }
        }
        router.post("/api/v1/jobs/:id/cancel") { _, context in
            await call(.cancel(job: context.parameters.get("id") ?? ""), as: context.scope) { reply in
                guard case .job(let j) = reply else { return nil }
                return jsonResponse(j)
            }
        }
        router.get("/api/v1/jobs/:id/events") { request, context in
            await EventStream(link: link.as(context.scope), limiter: limiter).response(job: context.parameters.get("id") ?? "", request: request, source: context.sourceAddress,
                                                                connection: context.channel)
        }
        router.get("/api/v1/jobs/:id/outputs") { _, context in
            await call(.outputs(job: context.parameters.get("id") ?? ""), as: context.scope) { reply in
                guard case .outputs(let kept) = reply else { return nil }
                return jsonResponse(Dictionary(kept.map { ($0.subtask, $0.files) }, uniquingKeysWith: { a, _ in a }))
            }
        }
        router.get("/api/v1/jobs/:id/outputs/:subtask/**") { _, context in
            await OutputFiles(link: link.as(context.scope)).file(job: context.parameters.get("id") ?? "", subtask: context.parameters.get("subtask") ?? "",
                                               path: context.parameters.getCatchAll().joined(separator: "/"))
        }
    }

    /// Sends `r` with the rights of `scope` (the token's: a tenant-bound token sees its tenant's
    /// jobs only) and maps the reply: refused 403, unknown 404, bad input 400; `map` returns nil
    /// for a reply of the wrong kind.
    func call(_ r: ClientRequest, as scope: ClientScope?, map: (ClientReply) -> Response?) async -> Response {
        let reply: ClientReply
        do {
            reply = try await link.as(scope).request(r)
        } catch {
            return jsonError(.serviceUnavailable, "\(error)")
        }
        if case .error(let code, let message) = reply {
            return jsonError(Self.status(code), message)
        }
        return map(reply) ?? jsonError(.badGateway, "unexpected reply from the coordinator")
    }

    /// The HTTP status of a coordinator's error code.
    static func status(_ code: Int) -> HTTPResponse.Status {
        switch code {
        case ClientReply.notAuthorized: .forbidden
        // A standby coordinator (PostgreSQL HA) takes no writes: the client sends them to the
        // leader (a redirect by status, not a forward; the message names the leader's endpoint).
        case ClientReply.notLeader: .misdirectedRequest
        case 4: .notFound
        case 2: .badRequest
        default: .conflict
        }
    }

    func submit(_ request: Request, as scope: ClientScope?) async -> Response {
        var request = request
        let q = request.uri.queryParameters
        func value(_ key: String) -> String? { q[Substring(key)].map(String.init) }
        var s = SubmitRequest(yaml: "", file: "workflow.yaml")
        // Every number is range-checked here with the same limits as the CLI and the workflow
        // file (`Limits`), so a bad value is a 400 naming the parameter, never a stored job.
        if let v = value("file") {
            if let problem = Limits.fileName(v, "file") { return jsonError(.badRequest, problem) }
            s.file = v
        }
        if let v = value("budgetTokens") {
            guard let t = Int(v) else { return jsonError(.badRequest, "budgetTokens must be a whole number, got \(Limits.printable(v, limit: 40))") }
            if let problem = Limits.budgetTokens(t) { return jsonError(.badRequest, "budgetTokens: \(problem)") }
            s.budgetTokens = t
        }
        if let v = value("budgetUSD") {
            guard let u = Double(v) else { return jsonError(.badRequest, "budgetUSD must be a number, got \(Limits.printable(v, limit: 40))") }
            if let problem = Limits.budgetUSD(u) { return jsonError(.badRequest, "budgetUSD: \(problem)") }
            s.budgetUSD = u
        }
        if let v = value("deadline") {
            guard let d = parseDuration(v) else {
                return jsonError(.badRequest, "bad deadline \(Limits.printable(v, limit: 40)): expected e.g. 90s, 5m, 1h")
            }
            if let problem = Limits.span(d, Limits.spanRange, "deadline", text: v) { return jsonError(.badRequest, problem) }
            s.deadline = d.seconds
        }
        if let v = value("planner") {
            guard !v.isEmpty, v.count <= 100 else { return jsonError(.badRequest, "planner must be 1–100 characters") }
            s.planner = v
        }
        if let v = value("priority") {
            guard let p = Int(v), Limits.priority(p) == nil else { return jsonError(.badRequest, "priority must be an integer in -1000000…1000000, got \(Limits.printable(v, limit: 40))") }
            s.priority = p
        }
        if let v = value("tenant") {
            guard (1...64).contains(v.count), v.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                return jsonError(.badRequest, "tenant must be 1–64 characters of letters, digits, '-', '_' or '.'")
            }
            s.tenant = v
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maxBody)
        } catch {
            return jsonError(.contentTooLarge, "the workflow is larger than \(Self.maxBody) bytes")
        }
        let submission: SubmissionBody
        switch SubmissionBody.parse(body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? [], contentType: request.headers[.contentType], file: s.file) {
        case .success(let b): submission = b
        case .failure(let problem): return jsonError(.badRequest, problem.message)
        }
        // Parameters, inputs and files travel in the JSON envelope (DESIGN §3): the body goes on
        // as it is, a ``Submission`` the coordinator reads (and stores) whole.
        let yaml = submission.carriesMore ? String(decoding: body.readableBytesView, as: UTF8.self) : submission.yaml
        s.yaml = yaml
        // The coordinator answers with the job's report, so the 201 needs no second request.
        s.answerWithReport = true
        // The workflow is parsed once, by the coordinator's intake (not here as well: a second
        // parse per request was a tenth of the coordinator process's time at intake).
        let id: String
        do {
            switch try await link.as(scope).request(.submit(s), timeout: 120) {
            case .job(let j): return Self.created(j)
            case .submitted(let j): id = j
            case .error(let code, let message):
                // A refused workflow is answered as `agentflow validate` names its problem (file,
                // line, problem): parsed again here, on this rare path only.
                if code == 2, let refused = Self.workflowProblem(yaml, file: s.file, knownModels: options.knownModels) { return refused }
                return jsonError(Self.status(code), message)
            default: return jsonError(.badGateway, "unexpected reply from the coordinator")
            }
        } catch {
            return jsonError(.serviceUnavailable, "\(error)")
        }
        // A coordinator that answers `submitted` (one that predates `answerWithReport`): ask.
        return await call(.status(job: id), as: scope) { reply in
            guard case .job(let j) = reply else { return nil }
            return Self.created(j)
        }
    }

    /// `201 Created` with the new job's report and its address.
    static func created(_ job: JobReport) -> Response {
        var r = jsonResponse(job, status: .created)
        r.headers[.location] = "/api/v1/jobs/\(job.id)"
        return r
    }

    /// The 400 for a workflow that does not parse or validate, with its file, line and problem
    /// (nil when it is valid: the coordinator refused the job for another reason).
    static func workflowProblem(_ yaml: String, file: String, knownModels: Set<String>) -> Response? {
        do {
            _ = try Workflow.parse(yaml: yaml, file: file, knownModels: knownModels)
            return nil
        } catch let e as ConfigError {
            var extra: [String: any Sendable] = ["file": e.file, "problem": e.message]
            if let line = e.line { extra["line"] = line }
            return jsonError(.badRequest, e.description, extra: extra)
        } catch {
            return jsonError(.badRequest, "\(file): \(error)", extra: ["file": file, "problem": "\(error)"])
        }
    }

    /// `GET /api/v1/jobs/{id}/attempts/{subtask}/{n}/transcript`: the subtask id comes
    /// percent-encoded (`extract%5B0%5D`), the attempt number from 1.
    func transcript(_ parameters: Parameters, as scope: ClientScope?) async -> Response {
        let id = parameters.get("id") ?? ""
        let raw = parameters.get("subtask") ?? ""
        guard let subtask = raw.removingPercentEncoding, !subtask.isEmpty else {
            return jsonError(.badRequest, "the subtask id \(Limits.printable(raw, limit: 80)) is not valid percent-encoded text")
        }
        let text = parameters.get("n") ?? ""
        guard let n = Int(text), (1...1_000_000_000).contains(n) else {
            return jsonError(.badRequest, "the attempt number must be an integer from 1, got \(Limits.printable(text, limit: 40))")
        }
        return await call(.transcript(job: id, subtask: subtask, n: n), as: scope) { reply in
            guard case .transcript(let t) = reply else { return nil }
            return jsonResponse(t)
        }
    }

    func list(_ request: Request, as scope: ClientScope?) async -> Response {
        let q = request.uri.queryParameters
        func value(_ key: String) -> String? { q[Substring(key)].map(String.init) }
        var query = JobQuery()
        if let v = value("limit") {
            guard let n = Int(v), (1...500).contains(n) else { return jsonError(.badRequest, "limit must be an integer 1…500") }
            query.limit = n
        }
        if let v = value("offset") {
            guard let n = Int(v), n >= 0, n <= 1_000_000_000 else { return jsonError(.badRequest, "offset must be a non-negative integer") }
            query.offset = n
        }
        if let v = value("state") {
            guard JobState(rawValue: v) != nil else {
                return jsonError(.badRequest, "unknown state '\(v.prefix(40))' (expected one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            query.state = v
        }
        if let v = value("workflow") { query.workflow = v }
        if let v = value("tenant") { query.tenant = v }
        return await call(.queryJobs(query), as: scope) { reply in
            guard case .jobPage(let page) = reply else { return nil }
            return jsonResponse(page)
        }
    }
}

struct AttemptList: Encodable {
    var job: String
    var attempts: [AttemptInfo]
}

struct LedgerList: Encodable {
    var job: String
    var lines: [LedgerLine]
}
