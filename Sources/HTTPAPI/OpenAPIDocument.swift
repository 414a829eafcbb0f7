/// The OpenAPI 3.1 description of `/api/v1`, served at `/api/v1/openapi.yaml` and checked by
/// schemathesis in the tests (every response must match it).
enum OpenAPIDocument {
    static let yaml = #"""
openapi: 3.1.0
info:
  title: AgentFlow coordinator API
  version: "1.0"
  description: |
    Jobs, attempts, the spend ledger, workers and live events of an AgentFlow coordinator.
    With `coordinator.httpTokens` set, every request needs `Authorization: Bearer TOKEN`
    (`read` tokens may GET; `admin` tokens may also submit and cancel). For GET and HEAD only,
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
  parameters:
    JobId:
      name: id
      in: path
      required: true
      schema: {type: string}
  schemas:
    Error:
      type: object
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
        role: {type: string}
        tokens: {type: integer}
    Subtask:
      type: object
      required: [id, state, model, attempts, tokens, usd, output, roles, note, needs]
      properties:
        id: {type: string}
        state: {type: string, enum: [pending, ready, running, succeeded, failed, abandoned]}
        model: {type: [string, "null"]}
        attempts: {type: integer}
        tokens: {type: integer}
        usd: {type: number}
        output: {type: [string, "null"]}
        roles: {type: array, items: {$ref: "#/components/schemas/RoleTokens"}}
        note: {type: string}
        needs: {type: array, items: {type: string}}
    Job:
      type: object
      required: [id, workflow, state, reason, waiting, planner, budget, submittedAt, deadline, startedAt, endedAt, deadlineSeconds, elapsedSeconds, subtasks]
      properties:
        id: {type: string}
        workflow: {type: string}
        state: {type: string, enum: [queued, running, succeeded, failed, cancelled, deadline_exceeded, budget_exhausted, infeasible]}
        reason: {type: string}
        waiting: {type: string, description: "while running: why no worker the job could use takes attempts (empty otherwise)"}
        successEstimate: {type: [number, "null"], description: "estimated probability of finishing within budget and deadline under the current load"}
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
        id: {type: string}
        job: {type: string}
        subtask: {type: string}
        n: {type: integer}
        model: {type: string}
        worker: {type: [string, "null"]}
        state: {type: string, enum: [queued, dispatched, succeeded, failed, cancelled, lost]}
        tokenCap: {type: integer}
        tokens: {type: integer}
        tokensIn: {type: integer}
        tokensOut: {type: integer}
        usd: {type: number}
        reservedTokens: {type: integer}
        reservedUSD: {type: number}
        createdAt: {type: string}
        dispatchedAt: {type: [string, "null"]}
        endedAt: {type: [string, "null"]}
        detail: {type: string}
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
      required: [name, host, gpus, model, slots, busy, freeMemory, state, lastSeen, problem]
      properties:
        name: {type: string}
        host: {type: string}
        gpus: {type: array, items: {type: integer}}
        model: {type: string}
        slots: {type: integer}
        busy: {type: integer}
        freeMemory: {type: integer}
        state: {type: string, enum: [alive, suspended, dead]}
        lastSeen: {type: string}
        problem: {type: string}
    WorkerList:
      type: object
      required: [workers]
      properties:
        workers: {type: array, items: {$ref: "#/components/schemas/Worker"}}
paths:
  /api/v1/jobs:
    post:
      summary: Submit a workflow (YAML body); answers the new job.
      parameters:
        - {name: budgetTokens, in: query, schema: {type: integer, minimum: 1}}
        - {name: budgetUSD, in: query, schema: {type: number, exclusiveMinimum: 0}}
        - {name: deadline, in: query, description: "e.g. 90s, 5m, 1h", schema: {type: string}}
        - {name: planner, in: query, description: "mcpp, seq:K, seq:K:MODEL, uniform", schema: {type: string}}
        - {name: priority, in: query, schema: {type: integer}}
        - {name: tenant, in: query, schema: {type: string}}
        - {name: file, in: query, description: "name used in validation messages (default workflow.yaml)", schema: {type: string, minLength: 1, maxLength: 200, pattern: "^[^\\x00-\\x1f\\x7f]+$"}}
      requestBody:
        required: true
        content:
          application/yaml:
            schema: {type: string}
      responses:
        "201":
          description: The job, as `agentflow status --json` prints it.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Job"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
        "413": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
    get:
      summary: Jobs, newest first, filtered and paginated.
      parameters:
        - {name: state, in: query, schema: {type: string, enum: [queued, running, succeeded, failed, cancelled, deadline_exceeded, budget_exhausted, infeasible]}}
        - {name: workflow, in: query, schema: {type: string}}
        - {name: tenant, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
        - {name: offset, in: query, schema: {type: integer, minimum: 0, maximum: 1000000000, default: 0}}
      responses:
        "200":
          description: One page of jobs.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/JobPage"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
  /api/v1/jobs/{id}:
    get:
      summary: One job (the object of `agentflow status --json`).
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
        "200":
          description: The job.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Job"}
        "401": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
  /api/v1/jobs/{id}/attempts:
    get:
      summary: Every attempt of a job, oldest first.
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
        "200":
          description: The attempts.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/AttemptList"}
        "401": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
  /api/v1/jobs/{id}/ledger:
    get:
      summary: The job's spend ledger, in order.
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
        "200":
          description: The ledger lines.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/LedgerList"}
        "401": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
  /api/v1/jobs/{id}/cancel:
    post:
      summary: Cancel a job; in-flight attempts are stopped. An ended job is answered as it is.
      parameters: [{$ref: "#/components/parameters/JobId"}]
      responses:
        "200":
          description: The job after the cancel.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Job"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
  /api/v1/jobs/{id}/events:
    get:
      summary: "Server-Sent Events: snapshot, then attempt, budget and job events; end when the job has ended."
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
                description: "One event: snapshot ({job, attempts}), attempt, budget or job (a JobEvent), end."
                required: [event, data]
                properties:
                  event: {type: string, enum: [snapshot, attempt, budget, job, end]}
                  data: {type: string}
                  id: {type: string}
                  retry: {type: integer}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
  /api/v1/workers:
    get:
      summary: Workers the coordinator knows, with their slots and breakers.
      responses:
        "200":
          description: The workers.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/WorkerList"}
        "401": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
"""#
}
