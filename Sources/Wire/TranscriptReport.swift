import AgentFlowCore
import Foundation

/// One attempt's transcript as the CLI, the HTTP API, the dashboard and the HTML report show it
/// (`GET /api/v1/jobs/{id}/attempts/{subtask}/{n}/transcript`): the attempt, the messages sent to
/// the model (each once; requests name them by index), and what happened in order — model calls
/// with their replies, actions with their output, verifier runs, notes.
public struct TranscriptReport: Codable, Sendable, Equatable {
    /// `JOB/SUBTASK#N`.
    public var attempt: String
    public var job: String
    public var subtask: String
    public var n: Int
    public var model: String
    @ExplicitNull public var worker: String?
    /// The attempt's state (`dispatched` while it runs).
    public var state: String
    /// How it ended, as the coordinator recorded it.
    public var detail: String
    /// The worker recorded the attempt's end (its last entry arrived): nothing is missing at the end.
    public var complete: Bool
    /// Entries stored, and the bytes they count against the caps (``AgentFlowCore/TranscriptLimits``).
    public var entries: Int
    public var bytes: Int
    /// Entries a worker sent that were not stored (past the attempt's cap, or the total cap).
    public var refused: Int
    /// Sequence numbers missing between the first and the last stored entry (lost in flight).
    public var missing: Int
    /// Why there is no transcript, or why it was deleted (nil when it is all here).
    @ExplicitNull public var note: String?
    public var messages: [TranscriptMessage]
    public var events: [TranscriptItem]

    public init(attempt: String, job: String, subtask: String, n: Int, model: String, worker: String?, state: String, detail: String,
                complete: Bool, entries: Int, bytes: Int, refused: Int, missing: Int, note: String?, messages: [TranscriptMessage],
                events: [TranscriptItem]) {
        self.attempt = attempt
        self.job = job
        self.subtask = subtask
        self.n = n
        self.model = model
        self.worker = worker
        self.state = state
        self.detail = detail
        self.complete = complete
        self.entries = entries
        self.bytes = bytes
        self.refused = refused
        self.missing = missing
        self.note = note
        self.messages = messages
        self.events = events
    }
}

/// A message sent to the model, kept once per attempt.
public struct TranscriptMessage: Codable, Sendable, Equatable {
    public var index: Int
    public var role: String
    public var content: String
    /// Bytes of `content` left out under the attempt's cap.
    public var omitted: Int

    public init(index: Int, role: String, content: String, omitted: Int) {
        self.index = index
        self.role = role
        self.content = content
        self.omitted = omitted
    }
}

/// One event of a transcript: `call` (a model call: its role, request and reply), `action`,
/// `verifier` or `note`. Fields that do not belong to the type are absent.
public struct TranscriptItem: Codable, Sendable, Equatable {
    public var seq: Int
    /// ISO 8601, when it began (the worker's clock).
    public var at: String
    public var type: String
    /// `call`: its number in the attempt, role, the request's messages (indices into
    /// ``TranscriptReport/messages``), the completion tokens allowed, and the reply — absent when
    /// none was recorded (the worker stopped during the call).
    public var call: Int?
    public var role: String?
    public var request: [Int]?
    public var maxTokens: Int?
    public var reply: ModelReply?
    public var action: ActionRecord?
    public var verifier: VerifierRecord?
    /// `note`: its text.
    public var text: String?

    public init(seq: Int, at: String, type: String) {
        self.seq = seq
        self.at = at
        self.type = type
    }
}

extension TranscriptReport {
    /// The report of an attempt from its stored entries, in order: a call's reply is joined to its request.
    public init(attempt a: AttemptInfo, entries stored: [TranscriptEntry], bytes: Int, refused: Int, note: String?) {
        var messages: [TranscriptMessage] = []
        var events: [TranscriptItem] = []
        var callAt: [Int: Int] = [:]
        var complete = false
        for e in stored {
            switch e.event {
            case .message(let index, let role, let content, let omitted):
                messages.append(TranscriptMessage(index: index, role: role, content: content, omitted: omitted))
            case .request(let call, let role, let request, let maxTokens):
                var item = TranscriptItem(seq: e.seq, at: isoTime(e.at), type: "call")
                item.call = call
                item.role = role
                item.request = request
                item.maxTokens = maxTokens
                callAt[call] = events.count
                events.append(item)
            case .reply(let call, let reply):
                if let i = callAt[call], events[i].reply == nil {
                    events[i].reply = reply
                } else {
                    // A reply whose request is missing (lost in flight): shown on its own.
                    var item = TranscriptItem(seq: e.seq, at: isoTime(e.at), type: "call")
                    item.call = call
                    item.reply = reply
                    events.append(item)
                }
            case .action(let action):
                var item = TranscriptItem(seq: e.seq, at: isoTime(e.at), type: "action")
                item.action = action
                events.append(item)
            case .verifier(let v):
                var item = TranscriptItem(seq: e.seq, at: isoTime(e.at), type: "verifier")
                item.verifier = v
                events.append(item)
            case .note(let text):
                var item = TranscriptItem(seq: e.seq, at: isoTime(e.at), type: "note")
                item.text = text
                events.append(item)
                if text.hasPrefix("attempt ended ") || text.hasPrefix("the transcript ends here") { complete = true }
            }
        }
        messages.sort { $0.index < $1.index }
        let missing = stored.last.map { $0.seq + 1 - stored.count } ?? 0
        self.init(attempt: a.id, job: a.job, subtask: a.subtask, n: a.n, model: a.model, worker: a.worker, state: a.state, detail: a.detail,
                  complete: complete, entries: stored.count, bytes: bytes, refused: refused, missing: max(0, missing), note: note,
                  messages: messages, events: events)
    }
}
