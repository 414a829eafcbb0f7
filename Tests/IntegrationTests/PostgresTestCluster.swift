import Foundation
import Store

/// A throw-away PostgreSQL 15 for the tests (tools/pg-test-cluster.sh): started once per test
/// process, on a free port under a directory of its own, stopped and removed when the process
/// ends (the script's reaper watches this pid, so even a killed test run leaves nothing).
/// Each test takes a fresh database of its own (``database()``).
final class PostgresTestCluster: Sendable {
    let dir: String
    /// postgres://agentflow@127.0.0.1:PORT/agentflow?passfile=…
    let url: String
    let passfile: String
    let port: Int
    /// The CA that signed the server's certificate (clusters started with `tls: true`).
    let ca: String?

    /// The shared primary (no standby), started by the first test that asks (not in a static
    /// initializer: Foundation's Process does not see its child end inside one).
    nonisolated(unsafe) private static var shared: Result<PostgresTestCluster, TestClusterError>?
    private static let lock = NSLock()

    struct TestClusterError: Error, CustomStringConvertible { var description: String }

    static func start(standby: Bool, tls: Bool = false) -> Result<PostgresTestCluster, TestClusterError> {
        let dir = NSTemporaryDirectory() + "af-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let (exitCode, printed, problem) = runLeavingServers(["tools/pg-test-cluster.sh", "start", dir, "--owner", "\(getpid())"]
            + (standby ? ["--standby"] : []) + (tls ? ["--tls"] : []))
        let env = keyValues(printed)
        guard exitCode == 0, let url = env["PGURL"], let passfile = env["PGPASSFILE"], let port = env["PG_PRIMARY_PORT"].flatMap({ Int($0) }) else {
            return .failure(TestClusterError(description: "tools/pg-test-cluster.sh failed (exit \(exitCode)): \(problem)"))
        }
        // The password file travels in the URL (libpq's passfile parameter): tests with clusters of
        // their own run side by side, and the URL never holds the password itself.
        return .success(PostgresTestCluster(dir: dir, url: url + "?passfile=" + passfile, passfile: passfile, port: port, ca: env["PG_CA"]))
    }

    private init(dir: String, url: String, passfile: String, port: Int, ca: String?) {
        self.ca = ca
        self.dir = dir
        self.url = url
        self.passfile = passfile
        self.port = port
    }

    /// A fresh, empty database; returns its URL.
    func database() throws -> String {
        let name = "t_\(UInt64.random(in: 0...UInt64.max))"
        let admin = try PostgresConnection(url: url, timeout: .seconds(30))
        try admin.execute("CREATE DATABASE \(name)", timeout: .seconds(60))
        return "postgres://agentflow@127.0.0.1:\(port)/\(name)?passfile=\(passfile)"
    }

    /// The shared cluster, or a thrown error saying why it is missing.
    static func get() throws -> PostgresTestCluster {
        try lock.withLock {
            if shared == nil { shared = start(standby: false) }
            return try shared!.get()
        }
    }
}

/// Runs `script ARGS` (a path under the repository) with bash to its end; returns its exit
/// status (-1: it could not run, or died of a signal), stdout and stderr. posix_spawn and
/// waitpid, not Foundation's Process: that takes a child for running until every process
/// holding its status socket ends, and servers a script starts live on.
func runLeavingServers(_ scriptAndArgs: [String]) -> (Int32, String, String) {
    let base = NSTemporaryDirectory() + "af-spawn-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let outFile = base + ".out", errFile = base + ".err"
    defer {
        try? FileManager.default.removeItem(atPath: outFile)
        try? FileManager.default.removeItem(atPath: errFile)
    }
    let args = ["/bin/bash", Paths.root.appendingPathComponent(scriptAndArgs[0]).path] + scriptAndArgs.dropFirst()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var cArgs = args.map { strdup($0) } + [nil]
    defer { for a in cArgs { free(a) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, "/bin/bash", &actions, nil, &cArgs, environ) == 0 else {
        return (-1, "", "cannot run \(scriptAndArgs[0]): \(String(cString: strerror(errno)))")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let printed = (try? String(contentsOfFile: outFile, encoding: .utf8)) ?? ""
    let problem = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
    return (status & 0x7f == 0 ? (status >> 8) & 0xff : -1, printed, problem)
}

/// The `KEY=VALUE` lines of a script's output.
func keyValues(_ printed: String) -> [String: String] {
    var env: [String: String] = [:]
    for line in printed.split(separator: "\n") {
        let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
        if parts.count == 2 { env[parts[0]] = parts[1] }
    }
    return env
}
