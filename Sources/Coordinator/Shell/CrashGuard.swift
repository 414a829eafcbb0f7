import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Remembers which job the coordinator's loop thread is working on, and when the process dies
/// of a signal (a Swift trap is SIGILL; also SIGTRAP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE) while it
/// is, writes that job's id to a marker file next to the database before dying. The next
/// coordinator on the database quarantines that job instead of resuming it, so a job that makes
/// the coordinator crash costs one crash, not a crash loop ("a restart never replays a crash").
///
/// Only the loop thread's work is attributed: a crash on another thread (HTTP, planning) names
/// no job. The handler does only async-signal-safe work (open, write, fsync, close on buffers
/// filled beforehand), then hands the signal to whatever handler was installed before (Swift's
/// backtracer, which installs `SA_SIGINFO` handlers), or to the default action, so the process still dies of the same signal.
public enum CrashGuard {
    static let signals = [SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE]
    static let capacity = 256
    nonisolated(unsafe) static let markerPath = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
    nonisolated(unsafe) static let job = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    nonisolated(unsafe) static let line = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
    nonisolated(unsafe) static let previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 32)
    static let jobLength = Atomic<Int>(0)
    static let owner = Atomic<UInt>(0)
    static let installed = Atomic<Bool>(false)

    /// The marker file of a database.
    /// The marker file of a database: beside the file itself (symlinks and `..` resolved), so
    /// every path to the database finds the same marker, as every path meets the same lock.
    public static func markerPath(database: String) -> String {
        guard let real = realpath(database, nil) else { return database + ".crashed-job" }
        defer { free(real) }
        return String(cString: real) + ".crashed-job"
    }

    /// Installs the handlers (once per process) and arms the marker file for `database`.
    public static func install(database: String) {
        let path = Array(markerPath(database: database).utf8CString.prefix(4095)) + [0]
        path.withUnsafeBufferPointer { markerPath.update(from: $0.baseAddress!, count: $0.count) }
        guard !installed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for sig in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { sig, info, context in CrashGuard.died(sig, info, context) }
            action.sa_flags = SA_SIGINFO | SA_ONSTACK
            sigemptyset(&action.sa_mask)
            sigaction(sig, &action, previous + Int(sig))
        }
    }

    /// Marks the calling thread as working on `job` until `leave(restoring:)`; returns what to
    /// restore (calls nest: a job's handling may end another's attempt).
    public static func enter(_ jobID: String) -> String? {
        let before = current
        set(jobID)
        return before
    }

    public static func leave(restoring before: String?) {
        if let before { set(before) } else { jobLength.store(0, ordering: .releasing) }
    }

    /// Runs `body` with the calling thread marked as working on `jobID`.
    public static func working<T>(on jobID: String, _ body: () throws -> T) rethrows -> T {
        let before = enter(jobID)
        defer { leave(restoring: before) }
        return try body()
    }

    static var current: String? {
        let n = jobLength.load(ordering: .acquiring)
        return n == 0 ? nil : String(decoding: UnsafeBufferPointer(start: job, count: n), as: UTF8.self)
    }

    static func set(_ jobID: String) {
        jobLength.store(0, ordering: .releasing)
        var id = jobID
        let n = id.withUTF8 { b -> Int in
            let n = min(b.count, capacity)
            if n > 0, let base = b.baseAddress { job.update(from: base, count: n) }
            return n
        }
        owner.store(UInt(pthread_self()), ordering: .releasing)
        jobLength.store(n, ordering: .releasing)
    }

    /// The job a previous coordinator on `database` crashed on, and how (`nil`: none).
    public static func suspect(database: String) -> (job: String, signal: Int32)? {
        guard let text = try? String(contentsOfFile: markerPath(database: database), encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").map(String.init)
        guard let job = lines.first, !job.isEmpty else { return nil }
        return (job, lines.count > 1 ? Int32(lines[1]) ?? 0 : 0)
    }

    /// Forgets the marker once the suspect job's quarantine is committed.
    public static func clear(database: String) {
        unlink(markerPath(database: database))
    }

    /// The signal handler: async-signal-safe calls only.
    static func died(_ sig: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _ context: UnsafeMutableRawPointer?) {
        let n = jobLength.load(ordering: .acquiring)
        if n > 0 && pthread_equal(pthread_self(), pthread_t(owner.load(ordering: .acquiring))) != 0 {
            let fd = open(markerPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd >= 0 {
                _ = write(fd, job, n)
                // "\n<signal>\n", digits written by hand (no formatting in a signal handler).
                var k = 0
                line[k] = 10; k += 1
                var value = Int(sig)
                let start = k
                repeat { line[k] = UInt8(48 + value % 10); value /= 10; k += 1 } while value > 0 && k < 60
                var a = start, b = k - 1
                while a < b { let t = line[a]; line[a] = line[b]; line[b] = t; a += 1; b -= 1 }
                line[k] = 10; k += 1
                _ = write(fd, line, k)
                _ = fsync(fd)
                _ = close(fd)
            }
        }
        // Hand over to the handler installed before ours (Swift's backtracer), else die the default way.
        var old = previous[Int(sig)]
        if old.sa_flags & SA_SIGINFO != 0, let handler = old.__sigaction_handler.sa_sigaction {
            sigaction(sig, &old, nil)
            handler(sig, info, context)
            return
        }
        signal(sig, SIG_DFL)
        raise(sig)
    }
}
