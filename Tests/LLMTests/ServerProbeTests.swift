import Foundation
import LLM
import TestSupport
import Testing

/// `agentflow run` and `agentflow worker` ask each model server `GET /v1/models` before work is
/// sent there: a server that is down must be told apart from one that is up but busy.
@Suite struct ServerProbeTests {
    @Test func aPortNobodyListensOnIsDownAndTheURLIsNamed() {
        let problem = ServerProbe.problem(baseURL: "http://127.0.0.1:9/v1", timeout: 1)
        #expect(problem?.hasPrefix("http://127.0.0.1:9/v1/models: ") == true, "\(problem ?? "nil")")
    }

    @Test func aServerThatAcceptsButIsTooBusyToAnswerIsUp() throws {
        // A listening socket whose connections are never served: the kernel completes the
        // handshake, nothing answers (a one-thread model server in the middle of a generation).
        let listener = try SilentListener()
        defer { listener.close() }
        let started = ContinuousClock.now  // intervals on the monotonic clock: a wall-clock step is no timeout
        #expect(ServerProbe.problem(baseURL: "http://127.0.0.1:\(listener.port)/v1", timeout: 0.5) == nil)
        #expect(ContinuousClock.now - started < .seconds(5), "took \(ContinuousClock.now - started)")
    }

    @Test func aServerThatAcceptsAndThenDiesIsDown() throws {
        // The connection is accepted, the request read, then the server goes away without a
        // word (a llama.cpp server killed by SIGILL on its first request): not "busy", down.
        let listener = try SilentListener()
        let url = "http://127.0.0.1:\(listener.port)/v1"
        let server = Thread {
            let connection = accept(listener.fd, nil, nil)
            var buffer = [UInt8](repeating: 0, count: 4096)
            if connection >= 0 {
                _ = read(connection, &buffer, buffer.count)
                Glibc.close(connection)
            }
            listener.close()
        }
        server.start()
        let started = ContinuousClock.now  // intervals on the monotonic clock: a wall-clock step is no timeout
        let problem = ServerProbe.problem(baseURL: url, timeout: 5)
        #expect(problem?.hasPrefix("\(url)/models: ") == true, "\(problem ?? "nil")")
        #expect(problem?.contains("Server returned nothing") == true, "\(problem ?? "nil")")
        #expect(ContinuousClock.now - started < .seconds(4), "told apart from a busy server without waiting for the timeout (took \(ContinuousClock.now - started))")
        // Once it is gone, nothing listens there any more.
        var after: String?
        for _ in 0..<100 {
            after = ServerProbe.problem(baseURL: url, timeout: 1)
            if after?.contains("Couldn't connect") == true { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(after?.contains("Couldn't connect to server") == true, "\(after ?? "nil")")
    }

    @Test func anErrorStatusIsAProblem() {
        // The scripted server lists its models under /v1 only: another path is not found.
        let base = FakeServer.shared.baseURL.replacingOccurrences(of: "/v1", with: "/v2")
        let problem = ServerProbe.problem(baseURL: base, timeout: 3)
        #expect(problem == "\(base)/models: HTTP 404", "\(problem ?? "nil")")
        #expect(ServerProbe.problem(baseURL: FakeServer.shared.baseURL, timeout: 3) == nil)
    }
}

/// A loopback TCP socket in the listening state that never accepts.
struct SilentListener: Sendable {
    let fd: Int32
    let port: UInt16

    struct Failed: Error { var call: String }

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failed(call: "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 8) == 0 else { Glibc.close(fd); throw Failed(call: "bind/listen") }
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    func close() { Glibc.close(fd) }
}
