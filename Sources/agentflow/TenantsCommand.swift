import AgentFlowCore
import ArgumentParser
import Foundation
import Wire

struct TenantsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants",
        abstract: "Each tenant's fair share and usage, its spend in the current budget period, and its jobs.")

    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        guard case .tenants(let tenants) = try cluster.makeClient().request(.tenants) else { throw CLIError.unexpectedReply }
        if json {
            printJSON(tenants)
            return
        }
        print(tenants.isEmpty ? "no tenants yet (list them under tenants: in the cluster file, or submit with --tenant)" : Self.render(tenants))
    }

    static func render(_ tenants: [TenantReport]) -> String {
        var rows = [["tenant", "weight", "share", "usage", "used", "period", "spent", "reserved", "limit", "renews", "queued", "running", "waiting"]]
        for t in tenants {
            let p = t.period
            var spent = [usd(p.spentUSD)], reserved = [usd(p.reservedUSD)], limit: [String] = []
            if let l = p.limitUSD { limit.append(usd(l)) }
            if let l = p.limitTokens {
                limit.append("\(l) tok")
                spent.append("\(p.spentTokens) tok")
                reserved.append("\(p.reservedTokens) tok")
            }
            rows.append([t.name, Self.number(t.weight), percent(t.share), usd(t.usage), percent(t.usageShare), p.per,
                         spent.joined(separator: " "), reserved.joined(separator: " "), limit.isEmpty ? "none" : limit.joined(separator: " "),
                         p.end, String(t.jobs.queued), String(t.jobs.running), String(t.jobs.waitingForBudget)])
        }
        return table(rows)
    }

    static func percent(_ x: Double) -> String { String(format: "%.0f%%", x * 100) }
    static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : String(format: "%g", x) }
}
