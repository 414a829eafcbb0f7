import Foundation
import Synchronization
import Testing
import ZeroMQ

/// A request on a connection whose key the server's ZAP handler refused must time out, not
/// block. libzmq ends a refused connection for good (no reconnect), so a DEALER that sends after
/// the refusal has no pipe to queue on and a blocking `zmq_send` never returns: that is how a
/// refused `agentflow jobs` hung past 30 s under load instead of saying "key problem" in 5 s.
/// Real sockets over TCP with CURVE, a real ZAP handler; the refusal is waited for before the
/// request, so the test takes the path the load race took every time.
@Suite struct RefusedKeyRequestTests {
    @Test func aRequestAfterTheRefusalTimesOutInsteadOfBlocking() throws {
        guard zmqHasCurve else { Issue.record("libzmq without CURVE"); return }
        let serverKeys = try CurveKeyPair.generate(), admitted = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let endpoint = "tcp://127.0.0.1:\(freePort())"
        let stop = Mutex(false)
        let serving = DispatchSemaphore(value: 0), served = DispatchSemaphore(value: 0)
        // The server: a CURVE ROUTER and its ZAP handler, on their own thread (they belong to it).
        let server = Thread {
            defer { served.signal() }
            do {
                let context = ZMQContext()
                let zap = try ZAPHandler(context, allowed: [admitted.publicKey])
                let router = try ZMQSocket(context, .router)
                try router.setCurveServer(secretKey: serverKeys.secretKey)
                try router.bind(endpoint)
                serving.signal()
                var poller = ZMQPoller()
                poller.add(zap.socket)
                while !stop.withLock({ $0 }) {
                    try poller.poll(timeout: 0.05)
                    try zap.serve()
                }
                router.close()
                zap.socket.close()
            } catch {
                Issue.record("server: \(error)")
                serving.signal()
            }
        }
        server.start()
        defer {
            stop.withLock { $0 = true }
            _ = served.wait(timeout: .now() + 5)
        }
        #expect(serving.wait(timeout: .now() + 5) == .success)

        let returned = DispatchSemaphore(value: 0)
        let outcome = Mutex<(answer: Data?, seconds: Double, refused: Bool)?>(nil)
        let client = Thread {
            do {
                let context = ZMQContext()
                let socket = try ZMQSocket(context, .dealer)
                try socket.setCurveClient(serverKey: serverKeys.publicKey, keys: stranger)
                let monitor = try ZMQMonitor(socket)
                try socket.connect(endpoint)
                var refused = false
                let until = Date().addingTimeInterval(10)
                while !refused && Date() < until {
                    refused = monitor.take().contains { if case .handshakeRefused = $0 { true } else { false } }
                    if !refused { Thread.sleep(forTimeInterval: 0.01) }
                }
                Thread.sleep(forTimeInterval: 0.2)  // let libzmq finish ending the refused connection
                let start = Date()
                let answer = try socket.request(Data("hello".utf8), timeout: 1)
                outcome.withLock { $0 = (answer, Date().timeIntervalSince(start), refused) }
                monitor.close()
                socket.close()
            } catch {
                Issue.record("client: \(error)")
            }
            returned.signal()
        }
        client.start()
        // Without the fix the client thread never returns; the test fails here instead of hanging.
        #expect(returned.wait(timeout: .now() + 20) == .success, "the request blocked after the key was refused")
        let result = try #require(outcome.withLock { $0 })
        #expect(result.refused, "the ZAP handler's refusal reached the client's monitor")
        #expect(result.answer == nil)
        #expect(result.seconds >= 0.9 && result.seconds < 5, "timed out after \(result.seconds) s, asked for 1 s")
    }
}
