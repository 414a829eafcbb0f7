import AgentFlowCore
import Testing

/// `scheduling:` in cluster.yaml: the policy, aging, tenants and preemption switch.
struct SchedulingConfigTests {
    let models = "models:\n  - {name: m, price: {input: 1, output: 1}, context: 4096}\n"

    @Test func preemptionIsOffByDefaultAndParsesAsASwitch() throws {
        #expect(try Cluster.parse(yaml: models, file: "c.yaml").scheduling == nil)
        #expect(SchedulingSpec().preemption == false)
        let on = try Cluster.parse(yaml: models + "scheduling: {policy: edf, preemption: true}\n", file: "c.yaml")
        #expect(on.scheduling?.preemption == true && on.scheduling?.policy == "edf")
        let off = try Cluster.parse(yaml: models + "scheduling: {preemption: off}\n", file: "c.yaml")
        #expect(off.scheduling?.preemption == false)
        #expect(throws: ConfigError.self) { try Cluster.parse(yaml: self.models + "scheduling: {preemption: sometimes}\n", file: "c.yaml") }
        #expect(throws: ConfigError.self) { try Cluster.parse(yaml: self.models + "scheduling: {preempt: true}\n", file: "c.yaml") }
    }
}
