import ArgumentParser
import Foundation
import Scaffold

/// Start-up cost of one sandboxed action (issue 18: under 30 ms): the same trivial programs
/// started bare (`posix_spawn` and `waitpid`), through the sandbox without namespaces
/// (`--unsafe-no-sandbox`: the launcher, cgroup and rlimits only) and under bubblewrap,
/// interleaved round by round so that the machine's load falls on all three alike.
struct BenchSandboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox", abstract: "Benchmark the start-up cost of a sandboxed action (bare vs launcher vs bubblewrap).")

    @Option(name: .long, help: "Rounds (each runs every program once per way).") var rounds = 50
    @Option(name: .long, help: "Workspace root (default: .agentflow/bench-sandbox).") var root = ".agentflow/bench-sandbox"
    @Flag(name: .long, help: "Print JSON.") var json = false

    func validate() throws {
        if !(1...100_000).contains(rounds) { throw ValidationError("--rounds must be 1-100000") }
    }

    struct Output: Encodable {
        var sandbox: String
        var rounds: Int
        var rows: [Row]
    }

    struct Row: Encodable {
        var program: String
        var way: String
        var p50ms: Double
        var p90ms: Double
        var meanms: Double
    }

    func run() throws {
        let host = Sandbox.host
        guard host.bubblewrap != nil else {
            throw CLIError(code: 1, message: host.refusal(.bubblewrap) ?? "bubblewrap is unavailable")
        }
        let rootURL = URL(fileURLWithPath: root)
        let sandboxed = try Sandbox(root: rootURL, name: "bwrap-\(getpid())")
        let launcher = try Sandbox(root: rootURL, name: "plain-\(getpid())", mode: .unsafeNoSandbox)
        defer {
            sandboxed.remove()
            launcher.remove()
        }
        let python = host.python.executable
        let programs: [(name: String, argv: [String])] = [("true", ["/bin/true"]), ("python3 -c pass", [python, "-c", "pass"])]
        let ways: [(name: String, run: ([String]) -> Bool)] = [
            ("bare", Self.spawnAndWait),
            ("launcher", { launcher.run($0).exitCode == 0 }),
            ("bubblewrap", { sandboxed.run($0).exitCode == 0 }),
        ]
        var samples: [String: [Double]] = [:]
        // Round 0 warms the page cache and the runtimes; it is not counted.
        for round in 0...rounds {
            for program in programs {
                for way in ways {
                    let start = DispatchTime.now().uptimeNanoseconds
                    guard way.run(program.argv) else { throw CLIError(code: 1, message: "\(program.name) failed (\(way.name))") }
                    if round > 0 {
                        samples["\(program.name)|\(way.name)", default: []].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                    }
                }
            }
        }
        var rows: [Row] = []
        for program in programs {
            for way in ways.map(\.name) {
                let values = (samples["\(program.name)|\(way)"] ?? []).sorted()
                guard !values.isEmpty else { continue }
                rows.append(Row(
                    program: program.name, way: way, p50ms: values[values.count / 2], p90ms: values[min(values.count - 1, values.count * 9 / 10)],
                    meanms: values.reduce(0, +) / Double(values.count)))
            }
        }
        if json {
            printJSON(Output(sandbox: host.summary(.bubblewrap), rounds: rounds, rows: rows))
            return
        }
        print("sandbox: \(host.summary(.bubblewrap)); \(rounds) rounds")
        var table = [["program", "way", "p50 ms", "p90 ms", "mean ms"]]
        for row in rows {
            table.append([row.program, row.way, String(format: "%.1f", row.p50ms), String(format: "%.1f", row.p90ms), String(format: "%.1f", row.meanms)])
        }
        print(agentflow.table(table))
        for program in programs {
            let p50 = { (way: String) in rows.first { $0.program == program.name && $0.way == way }?.p50ms ?? 0 }
            print(String(format: "%@: bubblewrap adds %.1f ms over bare (p50), %.1f ms over the launcher alone", program.name,
                         p50("bubblewrap") - p50("bare"), p50("bubblewrap") - p50("launcher")))
        }
    }

    /// `posix_spawn` and `waitpid`, output to /dev/null: what any sandbox adds to.
    static func spawnAndWait(_ argv: [String]) -> Bool {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let cEnv: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { for p in cEnv { free(p) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv) == 0 else { return false }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status == 0
    }
}
