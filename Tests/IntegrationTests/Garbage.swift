import AgentFlowCore
import Foundation
import Store
import Wire
import ZeroMQ

/// Sends malformed frames, well-formed messages of the wrong kind or for jobs that do not
/// exist, lying lengths, deep nesting, huge and empty messages — then one well-formed message
/// that must be answered (`last`). The answer arrives only after the coordinator has read
/// everything sent before it on this connection (ZeroMQ keeps a connection's order), so a
/// returned `true` proves the garbage reached it and it kept serving.
@discardableResult
func sendGarbage(to endpoint: String, last: Data, answered: (Data) -> Bool) throws -> Bool {
    let context = ZMQContext()
    let s = try ZMQSocket(context, .dealer)
    try s.setIdentity("mallory")
    try s.connect(endpoint)
    let payloads: [[Data]] = [
        [Data()], [Data([0xff, 0xfe, 0x00])], [Data("{".utf8)], [Data("{\"register\":{}}".utf8)],
        [Data("{\"result\":{\"_0\":{\"id\":{\"job\":\"nope\",\"subtask\":\"x\",\"n\":1}}}}".utf8)],
        [Data("{\"submit\":{\"_0\":{\"yaml\":\"name: [\",\"file\":\"x\",\"priority\":0}}}".utf8)],
        [Data(repeating: 0x5b, count: 100_000)], [Data("a".utf8), Data("b".utf8), Data("c".utf8)],
        [Data("{\"heartbeat\":{}}".utf8)], [Data("{\"status\":{\"job\":\"\\u0000\"}}".utf8)],
        // A well-formed result for an attempt nobody dispatched, from a peer that never registered.
        [try BinaryCodec.encode(WorkerMessage.result(AttemptReport(id: AttemptID(job: "j-nope", subtask: "x", n: 1),
                                                                     outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 1, output: 1_000_000_000)]))))],
        [try BinaryCodec.encode(ClientRequest.cancel(job: "j-nope"))],
        [try BinaryCodec.encode(ClientRequest.status(job: String(repeating: "x", count: 10_000)))],
        // A map that claims four billion entries, and arrays nested far too deep.
        [Data([8, 0xff, 0xff, 0xff, 0xff])],
        [Data(Array(repeating: [UInt8(7), 1, 0, 0, 0], count: 200).flatMap { $0 })],
        // A truncated message.
        [try BinaryCodec.encode(ClientRequest.jobs).dropLast()],
    ]
    for p in payloads { try s.send(p) }
    try s.send([last])
    defer { s.close() }
    let end = Date().addingTimeInterval(20)
    while Date() < end {
        var poller = ZMQPoller()
        poller.add(s)
        try poller.poll(timeout: 0.2)
        while let frames = try s.receive(dontWait: true) {
            if let payload = frames.last, answered(payload) { return true }
        }
    }
    return false
}

/// Minimal read access to the SQLite file for assertions.
struct SQLiteHandle {
    let c: SQLiteConnection
    init(_ path: String) throws { c = try SQLiteConnection(path: path) }
    func double(_ sql: String) throws -> Double { try c.query(sql).first?.double(0) ?? .nan }
}
