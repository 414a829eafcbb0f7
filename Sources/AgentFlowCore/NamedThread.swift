import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts a thread that carries `name` where the system shows threads (`top -H`, `perf`,
/// `/proc/PID/task/TID/comm`, a debugger's thread list). On Linux, Foundation keeps a
/// `Thread`'s `name` to itself: the system thread keeps the name of the thread that created
/// it (for most of ours a libdispatch pool thread, "…-qos.overcommit"), so every thread of the
/// process looked alike. The name is cut to the system's 15 bytes at a character boundary.
///
/// ```swift
/// startThread(named: "coordinator", stackSize: 8 << 20) { runLoop() }
/// ```
public func startThread(named name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        setCurrentThreadName(name)
        body()
    }
    thread.name = name
    if let stackSize { thread.stackSize = stackSize }
    thread.start()
}

/// Names the calling thread for the system (at most 15 bytes of `name`, cut at a character
/// boundary), by writing its `/proc/thread-self/comm` (what `pthread_setname_np` does; Swift's
/// Glibc module does not import it, nor the variadic `prctl`). Best effort: without `/proc`
/// the thread keeps the name it had.
public func setCurrentThreadName(_ name: String) {
    #if os(Linux)
    var cut = ""
    for c in name {
        guard cut.utf8.count + String(c).utf8.count <= 15 else { break }
        cut.append(c)
    }
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    defer { close(fd) }
    _ = cut.withCString { write(fd, $0, strlen($0)) }
    #endif
}
