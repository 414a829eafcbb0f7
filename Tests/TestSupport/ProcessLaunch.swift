import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Foundation's `Process.run()` is not safe to call from several threads at once on Linux: a
/// CI run crashed in its memcpy (with another launch waiting in `CFRunLoopGetCurrent`) while
/// `IntakeAcknowledgementTests` ran eight `curl`s from eight threads beside the other suites'
/// launches. Every test launches its processes through this one lock; only the launch is
/// serialized, never the wait. (The product starts its sandboxes with `posix_spawn`.)
///
/// It also cannot launch from a process with more than about 1,350 open descriptors: to close
/// them in the child it lists `/proc/self/fd` and copies each entry's whole 256-byte `d_name`
/// out of glibc's 32 KiB `readdir` buffer. Each entry there takes 24 bytes, so once the listing
/// fills the buffer the last names' copies read up to ~240 bytes past its end, which faults
/// when the buffer ends a heap mapping (a CI run crashed so, in `memmove`, at descriptor 1,361,
/// the test process holding that many while its suites ran in parallel). `launch` therefore
/// waits, under the lock, until the process holds fewer than `safeDescriptors` and fails with
/// the count, instead of crashing the whole test run, if they do not drop within two minutes.
private let launching = Mutex(())

/// Well under the ~1,352 descriptors at which the listing first overruns the buffer, leaving
/// room for the descriptors other threads open between the count and Foundation's listing.
public let safeDescriptors = 1_200

public struct TooManyDescriptors: Error, CustomStringConvertible {
    public let open: Int
    public var description: String {
        "the test process holds \(open) open descriptors (Foundation's Process.run overreads its /proc/self/fd listing above ~1,350); it did not drop below \(safeDescriptors) within 120 s"
    }
}

public func launch(_ process: Process) throws {
    try launching.withLock { _ in
        let deadline = ContinuousClock.now + .seconds(120)
        var open = openDescriptors()
        while open >= safeDescriptors {
            guard ContinuousClock.now < deadline else { throw TooManyDescriptors(open: open) }
            Thread.sleep(forTimeInterval: 0.05)
            open = openDescriptors()
        }
        try process.run()
    }
}

/// How many descriptors this process holds, listed with `readdir` reading only each name's
/// first byte (never a copy of the whole `d_name`, Foundation's overread).
public func openDescriptors() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return 0 }
    defer { closedir(dir) }
    let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
    var count = 0
    while let entry = readdir(dir) {
        if (UnsafeRawPointer(entry) + nameOffset).load(as: UInt8.self) != UInt8(ascii: ".") { count += 1 }
    }
    return max(0, count - 1)  // the listing's own descriptor
}
