/// What a dispatch carries so the worker's spans (model calls, actions, verifier runs) join the
/// job's trace as children of the attempt's span: the W3C trace context, and the model's prices
/// for the cost attribute of each model call.
public struct TraceContext: Codable, Sendable, Equatable {
    /// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>` (W3C Trace Context).
    public var traceparent: String
    /// USD per 1M input and output tokens of the attempt's model.
    public var priceInput: Double
    public var priceOutput: Double

    public init(traceparent: String, priceInput: Double, priceOutput: Double) {
        self.traceparent = traceparent
        self.priceInput = priceInput
        self.priceOutput = priceOutput
    }
}
