import Foundation
import LLM
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
        let started = Date()
        #expect(ServerProbe.problem(baseURL: "http://127.0.0.1:\(listener.port)/v1", timeout: 0.5) == nil)
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func anErrorStatusIsAProblem() {
        // The scripted server answers chat completions only; its GET is refused with 501.
        let problem = ServerProbe.problem(baseURL: FakeServer.shared.baseURL, timeout: 3)
        #expect(problem?.contains("HTTP 501") == true, "\(problem ?? "nil")")
    }
}

/// A loopback TCP socket in the listening state that never accepts.
private struct SilentListener {
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
