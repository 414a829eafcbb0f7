import AgentFlowCore
import Testing

/// `sandbox:` in cluster.yaml: limits of every attempt's sandbox, range-checked with the line.
struct SandboxConfigTests {
    let models = "models:\n  - {name: m, price: {input: 1, output: 1}, context: 4096}\n"

    @Test func limitsParseWithUnits() throws {
        #expect(try Cluster.parse(yaml: models, file: "c.yaml").sandbox == nil)
        let c = try Cluster.parse(yaml: models + """
            sandbox: {memory: 1GiB, processes: 128, cpus: 1.5, workspace: 512MiB, wall: 30s, cpuTime: 20s, devices: [/dev/nvidia0, /dev/nvidiactl]}

            """, file: "c.yaml")
        let s = try #require(c.sandbox)
        #expect(s.memoryBytes == 1 << 30 && s.workspaceBytes == 512 << 20 && s.processes == 128 && s.cpus == 1.5)
        #expect(s.wall == .seconds(30) && s.cpuSeconds == 20 && s.devices == ["/dev/nvidia0", "/dev/nvidiactl"])
        #expect(try Cluster.parse(yaml: models + "sandbox: {memory: 2000000000}\n", file: "c.yaml").sandbox?.memoryBytes == 2_000_000_000)
        #expect(try Cluster.parse(yaml: models + "sandbox: {memory: 2GB}\n", file: "c.yaml").sandbox?.memoryBytes == 2_000_000_000)
    }

    @Test(arguments: [
        "memory: 1e300", "memory: -5MiB", "memory: nan", "memory: 1KiB", "memory: lots", "processes: 0", "processes: 9999999999999999999",
        "cpus: inf", "cpus: 0", "cpus: -1", "workspace: 0", "wall: 0s", "wall: forever", "cpuTime: 100d", "devices: [/etc/passwd]",
        "devices: [/dev/../etc/shadow]", "gpu: maybe", "network: true",
    ])
    func absurdValuesAreRefusedWithTheLine(_ entry: String) throws {
        #expect {
            try Cluster.parse(yaml: self.models + "sandbox:\n  \(entry)\n", file: "c.yaml")
        } throws: { error in
            let text = "\(error)"
            return text.contains("c.yaml:4") && text.contains("sandbox")
        }
    }
}

/// A subtask's `sandbox:`: what it asks of its attempts' sandbox.
struct SubtaskSandboxTests {
    let head = "name: w\nsubtasks:\n  - id: a\n    prompt: p\n"

    @Test func aSubtaskAsksForLimitsAndItsGPU() throws {
        let w = try Workflow.parse(yaml: head + "    sandbox: {memory: 64MiB, wall: 5s, gpu: true}\n", file: "w.yaml", knownModels: nil)
        let s = try #require(w.subtasks.first?.sandbox)
        #expect(s.memoryBytes == 64 << 20 && s.wall == .seconds(5) && s.gpu == true && s.devices == nil)
        #expect(try Workflow.parse(yaml: head, file: "w.yaml", knownModels: nil).subtasks.first?.sandbox == nil)
    }

    @Test(arguments: ["devices: [/dev/nvidia0]", "gpu: maybe", "memory: 1e300", "processes: -1", "network: true"])
    func aSubtaskCannotAskForWhatOnlyTheClusterGives(_ entry: String) throws {
        #expect {
            try Workflow.parse(yaml: self.head + "    sandbox: {\(entry)}\n", file: "w.yaml", knownModels: nil)
        } throws: { "\($0)".contains("w.yaml:5") && "\($0)".contains("sandbox") }
    }
}
