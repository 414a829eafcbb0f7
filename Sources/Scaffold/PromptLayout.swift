import LLM

/// Where the agent's messages go, so that every call of an attempt begins with the bytes of the
/// call before it and a server's prefix cache skips them (vLLM's automatic prefix caching;
/// llama.cpp reuses what matches of the previous prompt). docs/benchmarks.md "Prompt caching"
/// has the measurements.
///
///     system     the kind's instructions            ┐ the same in every call of every attempt
///     user/asst  the worked example                 ┘ of the kind
///     system     the budget tracker of turn 1       ┐ the same in every call of this attempt
///     user       the task (and a summary, once made)┘
///     assistant  turn 1's reply
///     system     the tracker of turn 2              (a system message of its own, just before
///     user       the observation of turn 1           the message its turn answers)
///     …
///
/// Nothing sent is rewritten, except where the loop must: the oldest turns dropped to fit the
/// context, and a summary. Until 2026-12-06 the tracker was the last line of the system message,
/// so every turn changed the prompt from its ~60th token on. A tracker after the task, or at the
/// top of the task, made SmolLM2-135M weave the numbers into its code; a tracker message before
/// the task did not (tools/prompt_probe.py, docs/benchmarks.md).
///
/// The corrector and the summarizer keep prompts of their own: a corrector that began with the
/// agent's opening fixed half as many bugs on SmolLM2 (`prompt_probe.py --role corrector`).
/// Their static instructions come first, so those are shared by every call of the role.
enum PromptLayout {
    /// The opening of every agent call of an attempt.
    static func opening(instructions: String, example: [ChatMessage], firstTracker: String, task: String) -> [ChatMessage] {
        [.system(instructions)] + example + [.system(firstTracker), .user(task)]
    }

    /// Puts a later turn's tracker just before the message the turn answers: the observation
    /// that is the history's last message.
    static func addTracker(_ tracker: String, to history: inout [ChatMessage]) {
        guard let last = history.indices.last, history[last].role == .user else { return }
        history.insert(.system(tracker), at: last)
    }

    /// The number of messages of the oldest turn: its reply, then the next turn's tracker and
    /// observation (up to and including the first user message).
    static func oldestTurn(in history: [ChatMessage]) -> Int {
        guard let user = history.firstIndex(where: { $0.role == .user }) else { return history.count }
        return user + 1
    }

    /// Replies and observations in `history`, trackers not counted.
    static func turnMessages(in history: [ChatMessage]) -> Int {
        history.reduce(0) { $0 + ($1.role == .system ? 0 : 1) }
    }

    /// The index after which `count` replies and observations remain (trackers not counted).
    static func index(keepingLast count: Int, of history: [ChatMessage]) -> Int {
        var kept = 0
        var i = history.count
        while i > 0 && kept < count {
            i -= 1
            if history[i].role != .system { kept += 1 }
        }
        return i
    }

    /// The last turn start (an assistant message) at or before `limit`; 0 when there is none.
    static func turnStart(in history: [ChatMessage], atMost limit: Int) -> Int {
        var i = min(limit, history.count - 1)
        while i > 0 && history[i].role != .assistant { i -= 1 }
        return max(i, 0)
    }

    /// For chat templates without a system role (Gemma's drops such messages): each system
    /// message goes at the top of the message after it (a last one becomes a user message).
    static func foldingSystemMessages(_ messages: [ChatMessage]) -> [ChatMessage] {
        var out: [ChatMessage] = []
        var pending: [String] = []
        for m in messages {
            if m.role == .system {
                pending.append(m.content)
            } else {
                out.append(ChatMessage(role: m.role, content: (pending + [m.content]).joined(separator: "\n\n")))
                pending = []
            }
        }
        if !pending.isEmpty { out.append(.user(pending.joined(separator: "\n\n"))) }
        return out
    }
}
