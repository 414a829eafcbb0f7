import AgentFlowCore
import Foundation
import Store
import Testing
import Wire

/// The worker's one record and its projections: the registration frame, the `workers` reply and
/// the API's JSON encode byte for byte as they did before the record existed (the bytes below
/// were written by the old flat types), and the store's row keeps what the schema holds.
@Suite struct WorkerRecordTests {
    static let full = WorkerRecord(name: "w-1", host: "h", gpus: [0, 3], model: "m", slots: 2, freeMemory: 1 << 40, gpuName: "NVIDIA H100",
                                   sandbox: "bubblewrap, cgroups: off")
    static let bare = WorkerRecord(name: "w", host: "h", gpus: [], model: "m", slots: 1, freeMemory: 0)
    static let seen = "2026-12-06T13:00:00.000Z"

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    static func bytes(_ hex: String) -> Data {
        var data = Data()
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            data.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return data
    }

    static let registrationFull =
        "0801000000080000007265676973746572080300000004000000696e666f0809000000040000006e616d650603000000772d3104000000686f737406" +
        "010000006804000000677075730702000000030000000000000000030300000000000000050000006d6f64656c06010000006d05000000736c6f7473" +
        "0302000000000000000a000000667265654d656d6f72790300000000000100000700000076657273696f6e030100000000000000070000006770754e" +
        "616d65060b0000004e564944494120483130300700000073616e64626f780618000000627562626c65777261702c206367726f7570733a206f666607" +
        "00000072756e6e696e6707000000000800000066696e69736865640700000000"
    static let registrationBare =
        "0801000000080000007265676973746572080300000004000000696e666f0807000000040000006e616d6506010000007704000000686f7374060100" +
        "00006804000000677075730700000000050000006d6f64656c06010000006d05000000736c6f74730301000000000000000a000000667265654d656d" +
        "6f72790300000000000000000700000076657273696f6e0301000000000000000700000072756e6e696e6707000000000800000066696e6973686564" +
        "0700000000"
    static let workersReply =
        "080100000007000000776f726b6572730801000000020000005f300702000000080c000000040000006e616d650603000000772d3104000000686f73" +
        "7406010000006804000000677075730702000000030000000000000000030300000000000000050000006d6f64656c06010000006d05000000736c6f" +
        "747303020000000000000004000000627573790301000000000000000a000000667265654d656d6f7279030000000000010000050000007374617465" +
        "060900000073757370656e646564080000006c6173745365656e0618000000323032362d31322d30365431333a30303a30302e3030305a0700000070" +
        "726f626c656d060700000072656675736564070000006770754e616d65060b0000004e564944494120483130300700000073616e64626f7806060000" +
        "00627772617078080b000000040000006e616d6506010000007704000000686f737406010000006804000000677075730700000000050000006d6f64" +
        "656c06010000006d05000000736c6f747303010000000000000004000000627573790300000000000000000a000000667265654d656d6f7279030000" +
        "000000000000050000007374617465060400000064656164080000006c6173745365656e0618000000323032362d31322d30365431333a30303a3030" +
        "2e3030305a0700000070726f626c656d0600000000070000006770754e616d650600000000"
    static let workersJSON = #"{"workers":[{"busy":1,"freeMemory":1099511627776,"gpuName":"NVIDIA H100","gpus":[0,3],"host":"h","lastSeen":"2026-12-06T13:00:00.000Z","model":"m","name":"w-1","problem":"refused","sandbox":"bwrapx","slots":2,"state":"suspended"},{"busy":0,"freeMemory":0,"gpuName":"","gpus":[],"host":"h","lastSeen":"2026-12-06T13:00:00.000Z","model":"m","name":"w","problem":"","slots":1,"state":"dead"}]}"#

    var reports: [WorkerReport] {
        var suspended = Self.full
        suspended.sandbox = "bwrap\u{1b}x"
        return [WorkerReport(suspended, busy: 1, state: .suspended, lastSeen: Self.seen, problem: "refused"),
                WorkerReport(Self.bare, busy: 0, state: .dead, lastSeen: Self.seen)]
    }

    @Test func projectionsEncodeAsBefore() throws {
        let codec = WireCodec()
        #expect(Self.hex(codec.encode(WorkerMessage.register(info: WorkerInfo(Self.full), running: [], finished: []))) == Self.registrationFull)
        #expect(Self.hex(codec.encode(WorkerMessage.register(info: WorkerInfo(Self.bare), running: [], finished: []))) == Self.registrationBare)
        #expect(Self.hex(codec.encode(ClientReply.workers(reports))) == Self.workersReply)
        let json = JSONEncoder()
        json.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(String(decoding: try json.encode(["workers": reports]), as: UTF8.self) == Self.workersJSON)
    }

    @Test func projectionsDecodeToTheRecord() throws {
        let codec = WireCodec()
        for (hex, record) in [(Self.registrationFull, Self.full), (Self.registrationBare, Self.bare)] {
            guard case .register(let info, _, _, _) = try codec.decode(WorkerMessage.self, from: Self.bytes(hex)) else {
                Issue.record("not a registration")
                continue
            }
            #expect(info == WorkerInfo(record))
        }
        guard case .workers(let back) = try codec.decode(ClientReply.self, from: Self.bytes(Self.workersReply)) else {
            Issue.record("not a workers reply")
            return
        }
        #expect(back == reports)
        #expect(try JSONDecoder().decode([String: [WorkerReport]].self, from: Data(Self.workersJSON.utf8))["workers"] == reports)
        // Another version's registration is decoded, and refused by the coordinator, not the codec.
        let other = WorkerMessage.register(info: WorkerInfo(Self.bare, version: wireVersion + 1), running: [], finished: [])
        guard case .register(let info, _, _, _) = try codec.decode(WorkerMessage.self, from: codec.encode(other)) else {
            Issue.record("not a registration")
            return
        }
        #expect(info.version == wireVersion + 1 && info.worker == Self.bare)
    }

    /// What a worker registered is shown as is, but cut to 200 characters without control characters.
    @Test func theReportCleansTheSandboxLine() {
        var hostile = Self.bare
        hostile.sandbox = "\u{1b}[2J" + String(repeating: "x\u{7f}\u{0}", count: 500)
        let report = WorkerReport(hostile, busy: 0, state: .alive, lastSeen: Self.seen)
        #expect(report.worker.sandbox == "[2J" + String(repeating: "x", count: 197))
        #expect(WorkerReport(Self.bare, busy: 0, state: .alive, lastSeen: Self.seen).worker.sandbox == nil)
    }

    @Test func theStoreKeepsTheRowItsSchemaHolds() throws {
        let store = try Store(path: ":memory:")
        try store.begin()
        try store.apply([.worker(Self.full, state: .suspended, lastSeen: 1_700_000_000.5), .worker(Self.bare, state: .alive, lastSeen: 7)])
        // A second write of a name replaces its row.
        try store.apply([.worker(Self.bare, state: .dead, lastSeen: 9)])
        try store.commit()
        var stored = Self.full
        (stored.gpuName, stored.sandbox) = (nil, nil)
        let rows = try store.workers()
        #expect(rows.map(\.worker) == [Self.bare, stored])
        #expect(rows.map(\.state) == [.dead, .suspended])
        #expect(rows.map(\.lastSeen) == [9, 1_700_000_000.5])
        // A state another version wrote reads as dead, not as a crash.
        try store.connection.execute("UPDATE workers SET state = 'retired' WHERE name = 'w'")
        #expect(try store.workers().first?.state == .dead)
    }
}
