import Foundation
import Synchronization

/// Foundation's `Process.run()` is not safe to call from several threads at once on Linux: a
/// CI run crashed in its memcpy (with another launch waiting in `CFRunLoopGetCurrent`) while
/// `IntakeAcknowledgementTests` ran eight `curl`s from eight threads beside the other suites'
/// launches. Every test launches its processes through this one lock; only the launch is
/// serialized, never the wait. (The product starts its sandboxes with `posix_spawn`.)
private let launching = Mutex(())

public func launch(_ process: Process) throws {
    try launching.withLock { _ in try process.run() }
}
