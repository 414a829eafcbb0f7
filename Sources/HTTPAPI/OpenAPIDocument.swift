/// The OpenAPI 3.1 description of `/api/v1`, served at `/api/v1/openapi.yaml` and checked by
/// schemathesis in the tests (every response must match it).
enum OpenAPIDocument {
    /// A `200` answering JSON of one schema (`#/components/schemas/NAME`).
    static func json200(_ description: String, schema: String) -> String {
        """
                "200":
                  description: \(description)
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/\(schema)"}
        """
    }

    /// `codes` answered by the shared `Error` response (the problem, in words).
    static func errors(_ codes: Int...) -> String { shared("Error", codes) }

    /// `codes` of a HEAD operation, each the shared `Headers` response.
    static func headers(_ codes: Int...) -> String { shared("Headers", codes) }

    /// The HEAD operation of `GET path` that answers the usual codes, with the job id the one
    /// parameter when `jobParameter`.
    static func head(_ path: String, jobParameter: Bool = false) -> String {
        let parameters = jobParameter ? "\n" + ##"      parameters: [{$ref: "#/components/parameters/JobId"}]"## : ""
        return """
                head:
                  summary: Headers of GET \(path).\(parameters)
                  responses:
            \(headers(200, 400, 401, 403, 404, 409, 502, 503))
            """
    }

    static func shared(_ response: String, _ codes: [Int]) -> String {
        codes.map { ##"        "\##($0)": {$ref: "#/components/responses/\##(response)"}"## }.joined(separator: "\n")
    }

    static let yaml = #"""
openapi: 3.1.0
info:
  title: AgentFlow coordinator API
  version: "1.0"
  description: |
    Jobs, attempts, the spend ledger, workers and live events of an AgentFlow coordinator.
    With `coordinator.httpTokens` set, every request needs `Authorization: Bearer TOKEN`
    (`read` tokens may GET; `submit` and `admin` tokens may also submit and cancel). A token
    bound to a tenant (`submit TOKEN tenant=team-a`) sees and acts on that tenant's jobs only:
    another tenant's job, or a submission or job list for another tenant, answers 403 naming the
    right that is missing. For GET and HEAD only,
    the token may come in the `agentflow_token` cookie instead (the dashboard's events stream:
    browsers' EventSource cannot send headers); a cookie never authorizes a change, and a token
    is never read from the URL.
servers:
  - url: /
security:
  - bearer: []
components:
  securitySchemes:
    bearer:
      type: http
      scheme: bearer
    cookie:
      type: apiKey
      in: cookie
      name: agentflow_token
      description: GET and HEAD only.
  responses:
    Error:
      description: The problem, in words.
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
    Headers:
      description: "HEAD: the status and headers GET would answer, no body."
  parameters:
    JobId:
      name: id
      in: path
      required: true
      schema: {type: string}
  schemas:
    Error:
      type: object
      description: "Every error: a message and the HTTP status. A workflow refused by validation adds file, line and problem (agentflow validate's message)."
      required: [error, code]
      properties:
        error: {type: string}
        code: {type: integer}
        file: {type: string}
        line: {type: integer}
        problem: {type: string}
    Budget:
      type: object
      required: [limitTokens, limitUSD, spentTokens, spentUSD, reservedTokens, reservedUSD]
      properties:
        limitTokens: {type: [integer, "null"]}
        limitUSD: {type: [number, "null"]}
        spentTokens: {type: integer}
        spentUSD: {type: number}
        reservedTokens: {type: integer}
        reservedUSD: {type: number}
    RoleTokens:
      type: object
      required: [role, tokens]
      properties:
        role: {type: string, description: "agent, summarizer, corrector, or another role the ledger names"}
        tokens: {type: integer}
    Subtask:
      type: object
      required: [id, state, model, attempts, tokens, usd, output, roles, note, needs, outputs]
      properties:
        id: {type: string}
        state: {type: string, enum: [pending, ready, running, succeeded, failed, abandoned]}
        model: {type: [string, "null"], description: "model of the attempt that passed, else of the latest attempt"}
        attempts: {type: integer}
        tokens: {type: integer}
        usd: {type: number}
        output: {type: [string, "null"]}
        roles: {type: array, items: {$ref: "#/components/schemas/RoleTokens"}}
        note: {type: string, description: "how the latest finished attempt ended; empty before any has"}
        needs: {type: array, items: {type: string}, description: "the DAG's edges (filled for single-job requests)"}
        outputs: {type: array, description: "the files it kept (agentflow outputs gives them)", items: {$ref: "#/components/schemas/OutputFile"}}
    OutputFile:
      type: object
      required: [path, size, sha256]
      properties:
        path: {type: string, description: "relative to the subtask's workspace"}
        size: {type: integer, minimum: 0}
        sha256: {type: string, pattern: "^[0-9a-f]{64}$"}
    Outputs:
      type: object
      description: "subtask id → the files it kept"
      additionalProperties: {type: array, items: {$ref: "#/components/schemas/OutputFile"}}
    Job:
      type: object
      description: "A job, as agentflow status --json prints it. Times are ISO 8601; a time not reached yet is null."
      required: [id, workflow, state, reason, waiting, successEstimate, tenant, planner, budget, submittedAt, deadline, startedAt, endedAt, deadlineSeconds, elapsedSeconds, subtasks]
      properties:
        id: {type: string}
        workflow: {type: string}
        state: {$ref: "#/components/schemas/JobState"}
        reason: {type: string}
        waiting: {type: string, description: "while running: why it cannot go on now (empty otherwise)"}
        successEstimate: {type: [number, "null"], description: "live jobs: estimated probability of finishing within budget and deadline under the current load"}
        tenant: {type: [string, "null"], description: "whose fair share of the fleet the job counts against"}
        planner: {type: string}
        budget: {$ref: "#/components/schemas/Budget"}
        submittedAt: {type: string}
        deadline: {type: string}
        startedAt: {type: [string, "null"]}
        endedAt: {type: [string, "null"]}
        deadlineSeconds: {type: number}
        elapsedSeconds: {type: number}
        subtasks: {type: array, items: {$ref: "#/components/schemas/Subtask"}}
    JobState:
      type: string
      enum: [queued, running, succeeded, failed, cancelled, deadline_exceeded, budget_exhausted, infeasible]
    JobPage:
      type: object
      required: [jobs, total, limit, offset]
      properties:
        jobs: {type: array, items: {$ref: "#/components/schemas/Job"}}
        total: {type: integer}
        limit: {type: integer}
        offset: {type: integer}
    Attempt:
      type: object
      required: [id, job, subtask, n, model, worker, state, tokenCap, tokens, tokensIn, tokensOut, usd, reservedTokens, reservedUSD, createdAt, dispatchedAt, endedAt, detail]
      properties:
        id: {type: string, description: "JOB/SUBTASK#N"}
        job: {type: string}
        subtask: {type: string}
        n: {type: integer, minimum: 1}
        model: {type: string}
        worker: {type: [string, "null"]}
        state: {type: string, enum: [queued, dispatched, succeeded, failed, cancelled, lost]}
        tokenCap: {type: integer}
        tokens: {type: integer, description: "charged once ended; while dispatched, what the worker last reported"}
        tokensIn: {type: integer}
        tokensOut: {type: integer}
        usd: {type: number}
        reservedTokens: {type: integer}
        reservedUSD: {type: number}
        createdAt: {type: string}
        dispatchedAt: {type: [string, "null"]}
        endedAt: {type: [string, "null"]}
        detail: {type: string, description: "how it ended, in the worker's (or the coordinator's) words"}
    AttemptList:
      type: object
      required: [job, attempts]
      properties:
        job: {type: string}
        attempts: {type: array, items: {$ref: "#/components/schemas/Attempt"}}
    LedgerLine:
      type: object
      required: [seq, attempt, subtask, n, role, model, tokensIn, tokensOut, usd, kind, at]
      properties:
        seq: {type: integer}
        attempt: {type: string}
        subtask: {type: string}
        n: {type: integer}
        role: {type: string}
        model: {type: string}
        tokensIn: {type: integer}
        tokensOut: {type: integer}
        usd: {type: number}
        kind: {type: string, enum: [charge, clamped, lost]}
        at: {type: string}
    LedgerList:
      type: object
      required: [job, lines]
      properties:
        job: {type: string}
        lines: {type: array, items: {$ref: "#/components/schemas/LedgerLine"}}
    Worker:
      type: object
      required: [name, host, gpus, model, slots, busy, freeMemory, state, lastSeen, problem, gpuName]
      properties:
        name: {type: string}
        host: {type: string}
        gpus: {type: array, items: {type: integer}}
        model: {type: string}
        slots: {type: integer}
        busy: {type: integer}
        freeMemory: {type: integer, description: bytes}
        state: {type: string, enum: [alive, draining, suspended, dead], description: "draining: no new attempts (agentflow drain, or its node stopping); suspended: its model server keeps failing"}
        lastSeen: {type: string}
        problem: {type: string, description: "the model server's last failure, or empty"}
        gpuName: {type: string, description: "the GPU's name from nvidia-smi, or empty"}
        sandbox: {type: string, description: "How the worker runs model-written code (bubblewrap or none with --unsafe-no-sandbox, cgroups or 'cgroups: off', workspace); absent for a backend that runs none"}
    WorkerList:
      type: object
      required: [workers]
      properties:
        workers: {type: array, items: {$ref: "#/components/schemas/Worker"}}
    TenantPeriod:
      type: object
      description: "Spend in the tenant's current budget period (UTC; 'day' for a tenant without a budget): spent + reserved never exceeds a limit."
      required: [per, start, end, limitUSD, limitTokens, spentUSD, spentTokens, reservedUSD, reservedTokens]
      properties:
        per: {type: string, enum: [hour, day, week, month]}
        start: {type: string, description: "ISO 8601, when the period began"}
        end: {type: string, description: "ISO 8601, when it ends and the budget renews"}
        limitUSD: {type: [number, "null"]}
        limitTokens: {type: [integer, "null"]}
        spentUSD: {type: number}
        spentTokens: {type: integer}
        reservedUSD: {type: number, description: "held for attempts queued or running now"}
        reservedTokens: {type: integer}
    TenantJobs:
      type: object
      required: [queued, running, waitingForBudget]
      properties:
        queued: {type: integer}
        running: {type: integer}
        waitingForBudget: {type: integer, description: "of those, jobs whose next attempt the tenant's period budget cannot cover"}
    Tenant:
      type: object
      required: [name, weight, share, usage, usageShare, period, jobs]
      properties:
        name: {type: string}
        weight: {type: number}
        share: {type: number, description: "its weight over the weights of every tenant listed"}
        usage: {type: number, description: "fair-share usage in USD-equivalent (charges at model prices plus GPU time), halving every scheduling.fairShare.halfLife"}
        usageShare: {type: number, description: "its usage over every tenant's"}
        period: {$ref: "#/components/schemas/TenantPeriod"}
        jobs: {$ref: "#/components/schemas/TenantJobs"}
    TenantList:
      type: object
      required: [tenants]
      properties:
        tenants: {type: array, items: {$ref: "#/components/schemas/Tenant"}}
    Submission:
      type: object
      description: "A JSON submission (DESIGN.md §3). Without a workflow key the object is taken as the workflow itself."
      required: [workflow]
      additionalProperties: false
      properties:
        workflow:
          description: The workflow, as YAML text or as an object.
          oneOf:
            - {type: string}
            - {type: object}
        params: {type: [object, "null"], description: "parameter overrides, name → value"}
        inputs:
          type: [object, "null"]
          description: "input archives, name → base64 tar.gz"
          additionalProperties: {type: string}
        files:
          type: [object, "null"]
          description: "text files the workflow names (a schema file), path → content"
          additionalProperties: {type: string}
    Snapshot:
      type: object
      description: "data of the event stream's snapshot event"
      required: [job, attempts]
      properties:
        job: {$ref: "#/components/schemas/Job"}
        attempts: {type: array, items: {$ref: "#/components/schemas/Attempt"}}
    JobEvent:
      type: object
      description: "data of the attempt, budget and job events: attempt carries the attempt, budget the budget, job the state and reason"
      required: [seq, kind, at, job, state, reason, attempt, budget]
      properties:
        seq: {type: integer, minimum: 1}
        kind: {type: string, enum: [attempt, budget, job]}
        at: {type: string}
        job: {type: string}
        state: {oneOf: [{$ref: "#/components/schemas/JobState"}, {type: "null"}]}
        reason: {type: [string, "null"]}
        attempt: {oneOf: [{$ref: "#/components/schemas/Attempt"}, {type: "null"}]}
        budget: {oneOf: [{$ref: "#/components/schemas/Budget"}, {type: "null"}]}
    Transcript:
      type: object
      description: "one attempt's transcript: the messages sent to the model (each once; calls name them by index) and what happened, in order"
      required: [attempt, job, subtask, n, model, worker, state, detail, complete, entries, bytes, refused, missing, note, messages, events]
      properties:
        attempt: {type: string, description: "JOB/SUBTASK#N"}
        job: {type: string}
        subtask: {type: string}
        n: {type: integer, minimum: 1}
        model: {type: string}
        worker: {type: [string, "null"]}
        state: {type: string, enum: [queued, dispatched, succeeded, failed, cancelled, lost]}
        detail: {type: string}
        complete: {type: boolean, description: "the worker's record of the attempt's end arrived: nothing is missing at the end"}
        entries: {type: integer, minimum: 0}
        bytes: {type: integer, minimum: 0, description: "what the entries count against coordinator.transcripts"}
        refused: {type: integer, minimum: 0, description: "entries not stored: past the attempt's cap or the total cap"}
        missing: {type: integer, minimum: 0, description: "sequence numbers missing between the first and the last stored entry"}
        note: {type: [string, "null"], description: "why there is no transcript, or when and why it was deleted"}
        messages: {type: array, items: {$ref: "#/components/schemas/TranscriptMessage"}}
        events: {type: array, items: {$ref: "#/components/schemas/TranscriptEvent"}}
    TranscriptMessage:
      type: object
      required: [index, role, content, omitted]
      properties:
        index: {type: integer, minimum: 0}
        role: {type: string, description: "system, user or assistant"}
        content: {type: string}
        omitted: {type: integer, minimum: 0, description: "bytes of content left out under the attempt's cap"}
    TranscriptEvent:
      type: object
      description: "call: a model call (role, request, maxTokens, reply: absent when the worker stopped during it); action; verifier; note (text)"
      required: [seq, at, type]
      properties:
        seq: {type: integer, minimum: 0}
        at: {type: string}
        type: {type: string, enum: [call, action, verifier, note]}
        call: {type: integer, minimum: 0, description: "the call's number from 1; 0 is the token estimator's calibration call (finishReason calibration, no request messages)"}
        role: {type: string, description: "agent, summarizer, corrector or judge"}
        request: {type: array, items: {type: integer, minimum: 0}, description: "indices into messages, in order"}
        maxTokens: {type: integer}
        reply: {$ref: "#/components/schemas/ModelReply"}
        action: {$ref: "#/components/schemas/TranscriptAction"}
        verifier: {$ref: "#/components/schemas/TranscriptVerifier"}
        text: {type: string}
    ModelReply:
      type: object
      required: [text, tokensIn, tokensOut, seconds, omitted]
      properties:
        text: {type: string}
        tokensIn: {type: integer, minimum: 0}
        tokensOut: {type: integer, minimum: 0}
        seconds: {type: number, minimum: 0}
        firstTokenSeconds: {type: number, minimum: 0}
        finishReason: {type: string, description: "the server's (stop, length) or why the client stopped the stream"}
        error: {type: string}
        omitted: {type: integer, minimum: 0}
    TranscriptAction:
      type: object
      required: [kind, label, status, seconds, input, output, omitted]
      properties:
        kind: {type: string, description: "python, sh, file, answer, json, solution (a code subtask's module run), unlabeled, unknown"}
        label: {type: string}
        status: {type: string}
        exitCode: {type: integer}
        seconds: {type: number, minimum: 0}
        input: {type: string}
        output: {type: string}
        omitted: {type: integer, minimum: 0}
    TranscriptVerifier:
      type: object
      required: [passed, summary, seconds, output, omitted]
      properties:
        passed: {type: boolean}
        summary: {type: string}
        seconds: {type: number, minimum: 0}
        output: {type: string}
        omitted: {type: integer, minimum: 0}
    StreamEnd:
      type: object
      description: "data of the end event"
      required: [job]
      properties:
        job: {type: string}
paths:
  /api/v1/jobs:
    post:
      summary: "Submit a workflow: YAML text, or JSON (a workflow object, or {workflow, params, inputs}); answers the new job."
      parameters:
        - {name: budgetTokens, in: query, schema: {type: integer, minimum: 1, maximum: 1000000000000}}
        - {name: budgetUSD, in: query, schema: {type: number, minimum: 0.000000001, maximum: 1000000}}
        - {name: deadline, in: query, description: "e.g. 90s, 5m, 1h; at most 30 days", schema: {type: string}}
        - {name: planner, in: query, description: "mcpp, seq:K, seq:K:MODEL, uniform", schema: {type: string}}
        - {name: priority, in: query, schema: {type: integer, minimum: -1000000, maximum: 1000000}}
        - {name: tenant, in: query, schema: {type: string}}
        - {name: file, in: query, description: "name used in validation messages (default workflow.yaml)", schema: {type: string, minLength: 1, maxLength: 200, pattern: "^[^\\x00-\\x1f\\x7f]+$"}}
      requestBody:
        required: true
        content:
          application/yaml:
            schema: {type: string}
          application/json:
            schema:
              oneOf:
                - {$ref: "#/components/schemas/Submission"}
                - {type: object, description: "the workflow itself, as an object", not: {required: [workflow]}}
      responses:
        "201":
          description: The job, as `agentflow status --json` prints it.
          headers:
            Location: {description: "/api/v1/jobs/{id}", schema: {type: string}}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Job"}
\#(errors(400, 401, 403, 409, 413, 415, 421, 502, 503))
    get:
      summary: Jobs, newest first, filtered and paginated.
      parameters:
        - {name: state, in: query, schema: {$ref: "#/components/schemas/JobState"}}
        - {name: workflow, in: query, schema: {type: string}}
        - {name: tenant, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
        - {name: offset, in: query, schema: {type: integer, minimum: 0, maximum: 1000000000, default: 0}}
      responses:
\#(json200("One page of jobs.", schema: "JobPage"))
\#(errors(400, 401, 403, 409, 502, 503))
    head:
      summary: Headers of GET /api/v1/jobs.
      parameters:
        - {name: state, in: query, schema: {$ref: "#/components/schemas/JobState"}}
        - {name: workflow, in: query, schema: {type: string}}
        - {name: tenant, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
        - {name: offset, in: query, schema: {type: integer, minimum: 0, maximum: 1000000000, default: 0}}
      responses:
\#(headers(200, 400, 401, 403, 404, 409, 502, 503))
  /api/v1/jobs/{id}:
    get:
      summary: One job (the object of `agentflow status --json`).
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
\#(json200("The job.", schema: "Job"))
\#(errors(401, 403, 404, 409, 502, 503))
\#(head("/api/v1/jobs/{id}", jobParameter: true))
  /api/v1/jobs/{id}/attempts:
    get:
      summary: Every attempt of a job, oldest first.
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
\#(json200("The attempts.", schema: "AttemptList"))
\#(errors(401, 403, 404, 409, 502, 503))
\#(head("/api/v1/jobs/{id}/attempts", jobParameter: true))
  /api/v1/jobs/{id}/ledger:
    get:
      summary: The job's spend ledger, in order.
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
\#(json200("The ledger lines.", schema: "LedgerList"))
\#(errors(401, 403, 404, 409, 502, 503))
\#(head("/api/v1/jobs/{id}/ledger", jobParameter: true))
  /api/v1/jobs/{id}/outputs:
    get:
      summary: The files each subtask kept (path, size, SHA-256), by subtask.
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
\#(json200("The manifest.", schema: "Outputs"))
\#(errors(401, 403, 404, 409, 502, 503))
\#(head("/api/v1/jobs/{id}/outputs", jobParameter: true))
  /api/v1/jobs/{id}/outputs/{subtask}/{path}:
    get:
      summary: One kept file, checked against its SHA-256 (the path may have several segments).
      parameters:
        - {$ref: "#/components/parameters/JobId"}
        - {name: subtask, in: path, required: true, schema: {type: string}}
        - {name: path, in: path, required: true, schema: {type: string}}
      responses:
        "200":
          description: "The file's bytes: text types for .md, .json and plain-text files, bytes otherwise."
          content:
            application/octet-stream:
              schema: {type: string, format: binary}
            text/plain:
              schema: {type: string}
            text/markdown:
              schema: {type: string}
            application/json:
              schema: {}
\#(errors(400, 401, 403, 404, 409, 500, 502, 503))
    head:
      summary: Headers of GET /api/v1/jobs/{id}/outputs/{subtask}/{path}.
      parameters: 
        - {$ref: "#/components/parameters/JobId"}
        - {name: subtask, in: path, required: true, schema: {type: string}}
        - {name: path, in: path, required: true, schema: {type: string}}
      responses:
\#(headers(200, 400, 401, 403, 404, 409, 500, 502, 503))
  /api/v1/jobs/{id}/attempts/{subtask}/{n}/transcript:
    get:
      summary: "One attempt's transcript (agentflow attempts JOB --transcript SUBTASK#N): model calls, actions, verifier runs."
      parameters:
        - {$ref: "#/components/parameters/JobId"}
        - {name: subtask, in: path, required: true, description: "the subtask id, percent-encoded", schema: {type: string}}
        - {name: n, in: path, required: true, description: "the attempt number, from 1", schema: {type: integer, minimum: 1, maximum: 1000000000}}
      responses:
\#(json200("The transcript.", schema: "Transcript"))
\#(errors(400, 401, 404, 409, 502, 503))
    head:
      summary: Headers of GET /api/v1/jobs/{id}/attempts/{subtask}/{n}/transcript.
      parameters:
        - {$ref: "#/components/parameters/JobId"}
        - {name: subtask, in: path, required: true, schema: {type: string}}
        - {name: n, in: path, required: true, schema: {type: integer, minimum: 1, maximum: 1000000000}}
      responses:
\#(headers(200, 400, 401, 404, 409, 502, 503))
  /api/v1/jobs/{id}/cancel:
    post:
      summary: Cancel a job; in-flight attempts are stopped. An ended job is answered as it is.
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
\#(json200("The job after the cancel.", schema: "Job"))
\#(errors(401, 403, 404, 409, 421, 502, 503))
  /api/v1/jobs/{id}/events:
    get:
      summary: "Server-Sent Events: snapshot, then attempt, budget and job events; end when the job has ended."
      description: |
        Each event is `event: NAME`, `data: JSON` and, for attempt, budget and job events, `id: SEQ`.
        The data of each event is described by `x-event-data` (event name → schema); `: keep-alive`
        comments come every 15 s of silence. A reader that reconnects with `Last-Event-ID: SEQ`
        gets the events after SEQ (or a fresh snapshot when the coordinator no longer holds them).
      x-event-data:
        snapshot: "#/components/schemas/Snapshot"
        attempt: "#/components/schemas/JobEvent"
        budget: "#/components/schemas/JobEvent"
        job: "#/components/schemas/JobEvent"
        end: "#/components/schemas/StreamEnd"
      parameters:
        - {$ref: "#/components/parameters/JobId"}
        - {name: maxSeconds, in: query, description: "end the stream after this long (default 300); EventSource reconnects with Last-Event-ID", schema: {type: number, minimum: 0.5, maximum: 3600}}
        - {name: Last-Event-ID, in: header, description: "resume after this event", schema: {type: string}}
      responses:
        "200":
          description: An event stream.
          content:
            text/event-stream:
              schema:
                type: object
                description: "One event of the stream; its data is JSON, described by x-event-data."
                required: [event, data]
                properties:
                  event: {type: string, enum: [snapshot, attempt, budget, job, end]}
                  data: {type: string}
                  id: {type: string}
                  retry: {type: integer}
\#(errors(400, 401, 403, 404, 503))
    head:
      summary: Headers of GET /api/v1/jobs/{id}/events.
      parameters:
        - {$ref: "#/components/parameters/JobId"}
        - {name: maxSeconds, in: query, description: "end the stream after this long (default 300); EventSource reconnects with Last-Event-ID", schema: {type: number, minimum: 0.5, maximum: 3600}}
        - {name: Last-Event-ID, in: header, description: "resume after this event", schema: {type: string}}
      responses:
\#(headers(200, 400, 401, 403, 404, 409, 502, 503))
  /api/v1/workers:
    get:
      summary: Workers the coordinator knows, with their slots and breakers.
      responses:
\#(json200("The workers.", schema: "WorkerList"))
\#(errors(401, 403, 409, 502, 503))
\#(head("/api/v1/workers"))
  /api/v1/tenants:
    get:
      summary: "Tenants: fair share, usage, spend in the current budget period, jobs. A token bound to a tenant sees its own only."
      responses:
\#(json200("The tenants.", schema: "TenantList"))
\#(errors(401, 403, 409, 502, 503))
\#(head("/api/v1/tenants"))
  /api/v1/openapi.yaml:
    get:
      summary: This document.
      responses:
        "200":
          description: OpenAPI 3.1, YAML.
          content:
            application/yaml:
              schema: {type: string}
\#(errors(401, 403))
\#(head("/api/v1/openapi.yaml"))
  /metrics:
    get:
      summary: Prometheus text format (agentflow_* metrics).
      responses:
        "200":
          description: The metrics.
          content:
            text/plain:
              schema: {type: string}
\#(errors(401, 403))
\#(head("/metrics"))
"""#
}
