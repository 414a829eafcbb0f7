import Synchronization

/// A flag that any thread can raise to stop a running call; the transfer checks it from
/// libcurl's progress callback (several times a second) and aborts mid-stream.
///
/// A flag made with a `parent` is also raised whenever the parent is: one call can be stopped on
/// its own (the caller has what it needs) while the attempt's cancel still reaches it.
public final class CancellationFlag: Sendable {
    private let raised = Atomic<Bool>(false)
    private let parent: CancellationFlag?

    public init(parent: CancellationFlag? = nil) {
        self.parent = parent
    }

    public func cancel() { raised.store(true, ordering: .releasing) }

    public var isCancelled: Bool { raised.load(ordering: .acquiring) || parent?.isCancelled == true }
}
