import AgentFlowCore
import LLM

/// What the scaffold needs from a model: one blocking chat completion inside an allowance, ended
/// at `deadline` (an instant on the clock the scaffold was given, ``AgentFlowCore/TimeSource``).
/// ``ChatClient`` is the real one; tests script replies.
public protocol ChatModel: Sendable {
    func complete(
        _ request: ChatRequest, allowance: Int, deadline: MonotonicInstant?, cancel: CancellationFlag?,
        onProgress: ((ChatProgress) -> Void)?
    ) throws(LLMError) -> ChatCompletion
}

extension ChatClient: ChatModel {}
