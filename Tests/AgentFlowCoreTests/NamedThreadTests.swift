import AgentFlowCore
import Foundation
import Synchronization
import Testing

/// Threads carry their names where the system shows them (`/proc/…/comm`, `top -H`, `perf`):
/// what `bench dispatch` reads to split its CPU by thread (NamedThread.swift).
@Suite struct NamedThreadTests {
    /// Starts a thread named `name` and returns what `/proc/thread-self/comm` says inside it.
    static func nameSeenBySystem(_ name: String) throws -> String {
        let seen = Mutex<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        startThread(named: name) {
            let comm = try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)
            seen.withLock { $0 = comm ?? "<unreadable>" }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 30) == .success, "the thread did not run")
        return try #require(seen.withLock { $0 }).trimmingCharacters(in: .newlines)
    }

    @Test func theSystemSeesTheThreadsName() throws {
        #expect(try Self.nameSeenBySystem("coordinator") == "coordinator")
        #expect(try Self.nameSeenBySystem("store writer") == "store writer")
    }

    @Test func aLongNameIsCutToFifteenBytesAtACharacterBoundary() throws {
        #expect(try Self.nameSeenBySystem("worker-gpu-host-17-slot-3") == "worker-gpu-host")
        // "é" is two bytes: after 14 ASCII bytes it does not fit, and is not split.
        #expect(try Self.nameSeenBySystem("abcdefghijklmné") == "abcdefghijklmn")
        #expect(try Self.nameSeenBySystem("") == "")
    }

    @Test func namingOneThreadLeavesTheCallerAlone() throws {
        let before = try String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)
        _ = try Self.nameSeenBySystem("other thread")
        #expect(try String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8) == before)
    }
}
