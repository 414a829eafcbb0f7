import AgentFlowCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starting one sandboxed process tree and reading it to its end.
enum SandboxProcess {
    /// The environment of the launcher chain (shell, setpriv, bwrap): nothing of the worker's,
    /// since bubblewrap's own process, visible as pid 1 in the sandbox, keeps it.
    static let minimalEnvironment = ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"]

    /// Spawns `argv` (an absolute path first) in its own session with `environment`, reads its
    /// output until it exits, and kills its process group (and `cgroup`) on the wall-time or
    /// output limit or a cancel; at the end, whatever of it is left (a daemon) is killed too.
    /// `wall` and the run's measured `seconds` are on `time`'s monotonic clock (the
    /// worker's); the one-second drain of the pipe after a kill is real time, whatever `time` says.
    static func execute(
        _ argv: [String], environment: [String: String], wall: Duration, limits: SandboxLimits,
        cancel: (@Sendable () -> Bool)?, cgroup: SandboxCgroup? = nil, time: any TimeSource = SystemTime()
    ) -> ExecutionResult {
        let start = time.instant
        let oomBefore = cgroup?.oomKills ?? 0
        // Both ends close on exec: a process another thread spawns meanwhile must not hold this
        // run's pipe open (its EOF would wait for that process). The child's dup2 copies are kept.
        var fds: [Int32] = [0, 0]
        guard systemPipe2(&fds, O_CLOEXEC) == 0 else { return .sandboxFailure("sandbox: pipe failed: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own session and process group, so one kill(-pid) reaches every descendant that
        // did not leave it; default signal handling (the worker ignores SIGPIPE).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(0x80 | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))  // 0x80: POSIX_SPAWN_SETSID (glibc)

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let cEnv: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }

        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            return .sandboxFailure("sandbox: cannot start \(argv[0]): \(String(cString: strerror(spawned)))")
        }

        var output = OutputBuffer(kept: limits.keptOutputBytes)
        var timedOut = false
        var overflow = false
        var status: Int32 = 0
        var exited = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        var readOpen = true
        var killedAt: ContinuousClock.Instant?
        // Once the output is closed the process is usually exiting: poll its status at a short,
        // growing interval rather than a fixed 5 ms (start-up cost of every action).
        var exitPoll: useconds_t = 100
        func killAll() {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            cgroup?.killAll(seconds: 0.5)
        }
        while readOpen || !exited {
            let now = ContinuousClock.now
            if !exited {
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid {
                    exited = true
                    // Stragglers (daemonised children) still hold the pipe: end them too.
                    kill(-pid, SIGKILL)
                    cgroup?.killAll(seconds: 0.5)
                    killedAt = killedAt ?? now
                }
            }
            if killedAt == nil && (time.instant - start >= wall || cancel?() == true) {
                timedOut = true
                killAll()
                killedAt = now
            }
            if !readOpen {
                if !exited {
                    usleep(exitPoll)
                    exitPoll = min(exitPoll * 2, 5000)
                }
                continue
            }
            // After a kill, give the pipe a moment to drain, then stop reading.
            if let killedAt, now - killedAt > .seconds(1) {
                readOpen = false
                continue
            }
            var pfd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 20)
            if ready > 0 {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
                if n > 0 {
                    output.append(buffer[0..<n])
                    if output.total > limits.maxOutputBytes && killedAt == nil {
                        overflow = true
                        killAll()
                        killedAt = now
                    }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    readOpen = false
                }
            }
        }
        close(readEnd)
        // Children forked while the group was being killed can outlive one kill: repeat until
        // the group is empty (ESRCH), and empty the cgroup.
        for _ in 0..<200 where kill(-pid, SIGKILL) == 0 { usleep(10000) }
        cgroup?.killAll()
        // The launcher chain reports a signal as 128 + its number, like a shell.
        var exitCode: Int32? = (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
        var signal: Int32? = (status & 0x7f) != 0 ? status & 0x7f : nil
        if let code = exitCode, code > 128, code < 128 + 65 {
            signal = code - 128
            exitCode = nil
        }
        return ExecutionResult(
            exitCode: exitCode, signal: signal, output: output.text, timedOut: timedOut, outputLimitExceeded: overflow,
            seconds: (time.instant - start).seconds, memoryLimitHit: (cgroup?.oomKills ?? 0) > oomBefore)
    }
}

/// glibc's `pipe2`, which the Glibc module does not import (it is behind `_GNU_SOURCE`).
@_silgen_name("pipe2")
private func systemPipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

extension ExecutionResult {
    /// A run that never started because the sandbox could not be set up.
    static func sandboxFailure(_ message: String) -> ExecutionResult {
        ExecutionResult(exitCode: 126, signal: nil, output: message, timedOut: false, outputLimitExceeded: false, seconds: 0)
    }
}

/// Keeps the head and the tail of a long output, counting everything.
struct OutputBuffer {
    let kept: Int
    private var head: [UInt8] = []
    private var tail: [UInt8] = []
    private(set) var total = 0

    init(kept: Int) { self.kept = kept }

    mutating func append(_ bytes: ArraySlice<UInt8>) {
        total += bytes.count
        let half = kept / 2
        var rest = bytes[...]
        if head.count < half {
            let take = min(half - head.count, rest.count)
            head.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
        }
        tail.append(contentsOf: rest)
        if tail.count > 2 * half { tail.removeFirst(tail.count - half) }
    }

    var text: String {
        let half = kept / 2
        let shownTail = tail.suffix(half)
        let omitted = total - head.count - shownTail.count
        if omitted <= 0 { return String(decoding: head + tail, as: UTF8.self) }
        return String(decoding: head, as: UTF8.self) + "\n… [\(omitted) bytes omitted] …\n"
            + String(decoding: shownTail, as: UTF8.self)
    }
}
