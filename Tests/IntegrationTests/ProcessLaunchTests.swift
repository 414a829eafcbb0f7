import Foundation
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The test suites' one way to start a process (`TestSupport.launch`): it counts this process's
/// descriptors itself and holds a launch back while there are too many for Foundation's
/// `Process.run()` to list safely, instead of letting that listing crash the whole test run.
@Suite(.serialized) struct ProcessLaunchTests {
    final class Stamp: Sendable { let at = Mutex<ContinuousClock.Instant?>(nil) }

    private func pipes(_ n: Int) -> [Int32] {
        var fds: [Int32] = []
        for _ in 0..<n {
            var pair: [Int32] = [0, 0]
            guard pipe(&pair) == 0 else { break }
            fds += pair
        }
        return fds
    }

    @Test func descriptorsAreCountedAsTheyOpenAndClose() {
        // Other suites open and close descriptors meanwhile: count the same pipes three times
        // and take the change that matches, so a neighbour's burst cannot fake it.
        var matched = false
        for _ in 0..<3 where !matched {
            let before = openDescriptors()
            let fds = pipes(100)
            let during = openDescriptors()
            for fd in fds { close(fd) }
            let after = openDescriptors()
            #expect(fds.count == 200)
            matched = abs(during - before - 200) <= 10 && abs(during - after - 200) <= 10
        }
        #expect(matched, "200 pipe ends did not show in /proc/self/fd")
    }

    @Test func aLaunchWaitsUntilTheDescriptorsDropBelowTheSafeCount() throws {
        let extra = max(0, safeDescriptors + 50 - openDescriptors())
        let held = pipes((extra + 1) / 2)
        #expect(openDescriptors() >= safeDescriptors, "could not open enough descriptors to test the hold")
        let closedAt = Stamp()
        let closer = Thread {
            Thread.sleep(forTimeInterval: 0.5)
            closedAt.at.withLock { $0 = ContinuousClock.now }
            for fd in held { close(fd) }
        }
        closer.start()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try launch(p)
        let launchedAt = ContinuousClock.now
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let closed = try #require(closedAt.at.withLock { $0 }, "the launch went ahead while \(safeDescriptors)+ descriptors were open")
        #expect(launchedAt >= closed)
    }
}
