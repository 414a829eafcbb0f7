import Foundation
import Store
import ZeroMQ

/// Sends malformed frames, valid JSON of the wrong shape, huge and empty messages.
func sendGarbage(to endpoint: String) throws {
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
    ]
    for p in payloads { try s.send(p) }
    Thread.sleep(forTimeInterval: 0.3)
    s.close()
}

/// Minimal read access to the SQLite file for assertions.
struct SQLiteHandle {
    let c: SQLiteConnection
    init(_ path: String) throws { c = try SQLiteConnection(path: path) }
    func double(_ sql: String) throws -> Double { try c.query(sql).first?.double(0) ?? .nan }
}
