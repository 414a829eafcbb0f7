import Synchronization

/// A flag that any thread can raise to stop a running call; the transfer checks it from
/// libcurl's progress callback (several times a second) and aborts mid-stream.
public final class CancellationFlag: Sendable {
    private let raised = Atomic<Bool>(false)

    public init() {}

    public func cancel() { raised.store(true, ordering: .releasing) }

    public var isCancelled: Bool { raised.load(ordering: .acquiring) }
}
