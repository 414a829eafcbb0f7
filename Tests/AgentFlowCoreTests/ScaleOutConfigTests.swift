import AgentFlowCore
import Foundation
import Testing
import Worker

/// The pure parts of issue 12: endpoints, bind addresses, key↔name bindings, nvidia-smi output.
struct ScaleOutConfigTests {
    @Test func loopbackEndpoints() {
        for e in ["tcp://127.0.0.1:5555", "tcp://127.5.0.9:1", "tcp://localhost:5555", "tcp://[::1]:5555", "ipc:///tmp/x", "inproc://a"] {
            #expect(Endpoint.isLoopback(e), "\(e)")
        }
        for e in ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.0.0.1:5555", "tcp://eth0:5555", "tcp://[::]:5555", "tcp://127.0.0.1.evil:1"] {
            #expect(!Endpoint.isLoopback(e), "\(e)")
        }
        #expect(Endpoint.bind(address: "tcp://0.0.0.0", portOf: "tcp://10.1.2.3:5555") == "tcp://0.0.0.0:5555")
    }

    let models = "models:\n  - {name: m}\n"

    @Test func bindIsSeparateFromWhatPeersConnectTo() throws {
        let a = try Cluster.parse(yaml: "coordinator:\n  workers: tcp://10.0.0.1:6000\n  clients: tcp://10.0.0.1:6001\n  bind: tcp://0.0.0.0\n" + models, file: "c.yaml")
        #expect(a.coordinator.workers == "tcp://10.0.0.1:6000")
        #expect(a.coordinator.workersBind == "tcp://0.0.0.0:6000" && a.coordinator.clientsBind == "tcp://0.0.0.0:6001")
        let b = try Cluster.parse(yaml: "coordinator:\n  bind: {workers: 'tcp://0.0.0.0:7000'}\n" + models, file: "c.yaml")
        #expect(b.coordinator.workersBind == "tcp://0.0.0.0:7000" && b.coordinator.clientsBind == b.coordinator.clients)
        let plain = try Cluster.parse(yaml: models, file: "c.yaml")
        #expect(plain.coordinator.workersBind == plain.coordinator.workers)
        #expect(throws: ConfigError.self) { try Cluster.parse(yaml: "coordinator:\n  bind: tcp://0.0.0.0:5555\n" + models, file: "c.yaml") }
        #expect(throws: ConfigError.self) { try Cluster.parse(yaml: "coordinator:\n  bind: {workrs: 'tcp://0.0.0.0:1'}\n" + models, file: "c.yaml") }
    }

    @Test func workersWithHostsAndServedModels() throws {
        let c = try Cluster.parse(yaml: models + """
            workers:
              - {name: a-gpu0, host: a, gpus: [0], model: m, backend: {kind: openai, serve: "vllm serve M --port {port}", port: 8300}}
              - {name: a-gpu1, host: a, gpus: [1], model: m, backend: {url: "http://127.0.0.1:9/v1"}}
            """, file: "c.yaml")
        #expect(c.workers[0].host == "a" && c.workers[0].serve == ServeSpec(command: "vllm serve M --port {port}", port: 8300))
        #expect(c.workers[0].backend == .openai(url: "http://127.0.0.1:8300/v1"))
        #expect(c.workers[1].serve == nil)
        for bad in ["{name: x, model: m, backend: {serve: 'a'}}", "{name: x, model: m, backend: {serve: 'a', port: 70000}}",
                    "{name: 'bad name', model: m, backend: {kind: sim}}", "{name: x, model: m, backend: {kind: sim, port: 1}}"] {
            #expect(throws: ConfigError.self, "\(bad)") { try Cluster.parse(yaml: self.models + "workers:\n  - \(bad)\n", file: "c.yaml") }
        }
    }

    @Test func keysOwnNamesOrPrefixes() throws {
        let k1 = String(repeating: "a", count: 40), k2 = String(repeating: "b", count: 40)
        let book = WorkerKeyBook([.init(pattern: "gpu0", key: k1), .init(pattern: "host-a-*", key: k2)])
        #expect(book.allows(key: k1, name: "gpu0"))
        #expect(!book.allows(key: k1, name: "gpu01") && !book.allows(key: k2, name: "gpu0"))
        #expect(book.allows(key: k2, name: "host-a-gpu3") && !book.allows(key: k2, name: "host-a-") && !book.allows(key: k2, name: "host-b-gpu0"))
        #expect(!book.allows(key: nil, name: "gpu0"))
        #expect(WorkerKeyBook().allows(key: nil, name: "anything"))
        let parsed = try WorkerKeyBook.parseEnrolment("# comment\n\"gpu0\": \"\(k1)\"\n\nhost-a-*: \(k2)\n", file: "e")
        #expect(parsed == book.entries)
        // Z85 keys contain '#' and ':'; they survive.
        let odd = "0123456789#:{}[]()<>abcdefghijklmnopqrst"
        #expect(try WorkerKeyBook.parseEnrolment("w: \"\(odd)\"", file: "e").first?.key == odd)
        #expect(throws: ConfigError.self) { try WorkerKeyBook.parseEnrolment("just a line", file: "e") }
        #expect(throws: ConfigError.self) { try WorkerKeyBook.parseEnrolment("w: short", file: "e") }
        #expect(throws: ConfigError.self) { try WorkerKeyBook.parseEnrolment("w\u{1}: \(k1)", file: "e") }
        let c = try Cluster.parse(yaml: """
            coordinator:
              curve:
                serverKey: "\(k1)"
                workerKeys:
                  "node-*": "\(k2)"
                enrolment: keys.yaml
            """ + "\n" + models, file: "c.yaml")
        #expect(c.coordinator.curve?.workerKeys == [.init(pattern: "node-*", key: k2)] && c.coordinator.curve?.enrolment == "keys.yaml")
    }

    @Test func nvidiaSMIAndCudaVisibleDevices() throws {
        let all = try GPUInventory.parse("0, 81037, NVIDIA H100 80GB HBM3\n1, 512, NVIDIA H100 80GB HBM3\n 3 , 0 , Tesla T4\n")
        #expect(all.map(\.index) == [0, 1, 3])
        #expect(all[0].freeMemory == 81037 * 1_048_576 && all[2].name == "Tesla T4")
        #expect(try GPUInventory.visible(all, cudaVisibleDevices: nil).count == 3)
        #expect(try GPUInventory.visible(all, cudaVisibleDevices: "3,0").map(\.index) == [3, 0])
        #expect(try GPUInventory.visible(all, cudaVisibleDevices: "").isEmpty)
        #expect(try GPUInventory.visible(all, cudaVisibleDevices: "-1").isEmpty)
        #expect(try GPUInventory.visible(all, cudaVisibleDevices: "1,-1,0").map(\.index) == [1])
        #expect(throws: GPUInventoryError.self) { try GPUInventory.visible(all, cudaVisibleDevices: "2") }
        #expect(throws: GPUInventoryError.self) { try GPUInventory.visible(all, cudaVisibleDevices: "GPU-8f3c") }
        for bad in ["0, lots, X", "x, 1, X", "0, -5, X", "0, 1", "0, 1, A\n0, 2, B", "99999999999, 1, X"] {
            #expect(throws: GPUInventoryError.self, "\(bad)") { try GPUInventory.parse(bad) }
        }
    }
}
