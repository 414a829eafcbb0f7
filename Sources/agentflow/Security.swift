import AgentFlowCore
import ArgumentParser
import Foundation
import ZeroMQ

/// Key files hold one CURVE key pair in Z85 text:
///
///     public: <40 characters>
///     secret: <40 characters>
func readKeyFile(_ path: String) throws -> CurveKeyPair {
    // "permission denied" names the user and the file's owner and mode (SecretFile).
    let text = try SecretFile.read(path, what: "key file", hint: "make one with: agentflow keys --out \(path)")
    var pub: String?, sec: String?
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { continue }
        if parts[0] == "public" { pub = parts[1] }
        if parts[0] == "secret" { sec = parts[1] }
    }
    guard let pub, let sec, CurveKeyPair.isValid(pub), CurveKeyPair.isValid(sec) else {
        throw ConfigError(file: path, "not a key file: expected 'public: KEY' and 'secret: KEY' lines with 40-character Z85 keys")
    }
    return CurveKeyPair(publicKey: pub, secretKey: sec)
}

/// CURVE settings of a worker or client, from the cluster file (`nil`: CURVE is off);
/// `keyFile` (`--key`) overrides `clientKeyFile`.
func clientCurve(_ cluster: Cluster?, keyFile: String? = nil) throws -> (serverKey: String, keys: CurveKeyPair)? {
    guard let curve = cluster?.coordinator.curve else { return nil }
    let keys = try (keyFile ?? curve.clientKeyFile).map(readKeyFile) ?? CurveKeyPair.generate()
    return (curve.serverKey, keys)
}

/// The key file a client command (`agentflow submit`, `status`, …) uses, first found: `--key`,
/// `$AGENTFLOW_CLIENT_KEY`, the cluster file's `clientKeyFile`, `~/.config/agentflow/client.key`
/// (`agentflow keys --out ~/.config/agentflow/client.key` makes it). Nil: a fresh pair per run,
/// which a coordinator with `clientKeys` refuses.
func clientKeyFile(_ cluster: Cluster?, flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    if let flag { return flag }
    if let env = environment["AGENTFLOW_CLIENT_KEY"], !env.isEmpty { return env }
    if let file = cluster?.coordinator.curve?.clientKeyFile { return file }
    guard let home = environment["HOME"], !home.isEmpty else { return nil }
    let path = home + "/.config/agentflow/client.key"
    return FileManager.default.fileExists(atPath: path) ? path : nil
}

/// The worker names each key owns: `workerKeys` of the cluster file plus the enrolment file.
func workerKeyBook(_ curve: CurveSpec, clusterFile: String) throws -> WorkerKeyBook {
    var entries = curve.workerKeys
    if let path = curve.enrolment {
        // Relative to the cluster file's directory.
        let full = path.hasPrefix("/") ? path : URL(fileURLWithPath: clusterFile).deletingLastPathComponent().appendingPathComponent(path).path
        // Not there yet (agentflow keys enroll makes it): no entries. Unreadable, or behind a
        // closed directory: an error naming the user — never read as "no names bound", which
        // would let any key register any name and act as a client.
        if let text = try SecretFile.readIfPresent(full, what: "enrolment file") {
            entries += try WorkerKeyBook.parseEnrolment(text, file: full)
        }
    }
    return WorkerKeyBook(entries)
}

/// Applies the cluster's CURVE settings to the coordinator's options.
func applyServerCurve(_ cluster: Cluster, to options: inout Coordinator.Options, file: String) throws {
    guard let curve = cluster.coordinator.curve else { return }
    guard let path = curve.serverKeyFile else {
        throw ConfigError(file: file, "coordinator.curve needs 'serverKeyFile' (the coordinator's key pair) to run the coordinator")
    }
    let keys = try readKeyFile(path)
    guard keys.publicKey == curve.serverKey else {
        throw ConfigError(file: file, "coordinator.curve.serverKey does not match the public key in \(path)")
    }
    options.curveSecretKey = keys.secretKey
    options.authorizedKeys = admitted(curve)
    options.identities = WorkerIdentities(authorizedKeys: admitted(curve), book: try workerKeyBook(curve, clusterFile: file))
}

/// The keys the CURVE handshake lets in besides the worker keys: authorizedKeys and the client
/// keys — or, with authorizedKeys empty, every key that knows the server key.
func admitted(_ curve: CurveSpec) -> [String] {
    curve.authorizedKeys.isEmpty ? [] : curve.authorizedKeys + curve.clientKeys.keys.sorted()
}

/// SIGHUP: re-reads the cluster file's authorizedKeys and workerKeys and the enrolment file;
/// new handshakes and registrations see them, connections already up stay. A file that does
/// not parse leaves the keys as they were.
func reloadIdentitiesOnHangup(_ identities: WorkerIdentities, clients: ClientKeyBook?, clusterFile: String) -> any DispatchSourceSignal {
    signal(SIGHUP, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    source.setEventHandler {
        do {
            let cluster = try Cluster.load(path: clusterFile)
            guard let curve = cluster.coordinator.curve else {
                printError("coordinator: SIGHUP: \(clusterFile) no longer has coordinator.curve; keys unchanged (restart to turn CURVE off)")
                return
            }
            let book = try workerKeyBook(curve, clusterFile: clusterFile)
            identities.replace(authorizedKeys: admitted(curve), book: book)
            // Client keys listed at start can be changed or revoked; listing the first ones needs a restart.
            clients?.replace(curve.clientKeys)
            printError("coordinator: SIGHUP: reloaded keys: \(curve.authorizedKeys.count) authorized, \(book.entries.count) worker name binding(s), "
                       + "\(clients == nil ? 0 : curve.clientKeys.count) client key(s)")
        } catch {
            printError("coordinator: SIGHUP: keys unchanged: \(error)")
        }
    }
    source.resume()
    return source
}

/// `agentflow keys [--out FILE]` (a key pair) and `agentflow keys enroll NAME`.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "CURVE keys: a key pair (default), or enroll a worker.",
        subcommands: [KeyPairCommand.self, EnrollCommand.self], defaultSubcommand: KeyPairCommand.self)
}

struct KeyPairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pair", abstract: "Make a CURVE key pair for the coordinator, a worker or a client.")

    @Option(name: .long, help: "Write the pair to this file (mode 600; its directory is made, mode 700, if missing) instead of printing the secret.") var out: String?
    @Option(name: .long, help: "With --out: let this group read the file (mode 640), e.g. the group a service runs as (agentflow).") var group: String?

    func validate() throws {
        if group != nil && out == nil { throw ValidationError("--group needs --out FILE") }
    }

    func run() throws {
        guard zmqHasCurve else { throw CLIError(code: 1, message: "this libzmq was built without CURVE support") }
        let keys = try CurveKeyPair.generate()
        let text = "public: \(keys.publicKey)\nsecret: \(keys.secretKey)\n"
        guard let out else { return print(text, terminator: "") }
        let dir = (out as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CLIError.badInput("cannot write \(out)")
        }
        if let group {
            // Readable by the service's group, never by everyone: the secret key is in it.
            guard let g = getgrnam(group) else { throw CLIError.badInput("--group: no group named '\(Limits.printable(group))' (make it first: useradd --system --user-group agentflow)") }
            guard chown(out, uid_t.max, g.pointee.gr_gid) == 0, chmod(out, 0o640) == 0 else {
                throw CLIError(code: 1, message: "cannot give \(out) to group \(group): \(String(cString: strerror(errno)))")
            }
        }
        print(keys.publicKey)
    }
}

import Coordinator

/// `agentflow keys enroll NAME`: a key pair for a worker (or, with --prefix, a node's workers
/// `NAME-*`), and the `NAME: KEY` line that binds the name to the key.
struct EnrollCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Make a worker's key pair and print the line binding its name (or NAME-* with --prefix) to the key.")

    @Argument(help: "Worker name, or the name prefix of a node's workers with --prefix.") var name: String
    @Flag(name: .long, help: "Bind every worker name NAME-… (a node's NAME-gpuN) to the key.") var prefix = false
    @Option(name: .long, help: "Key file to write (default: NAME.key).") var out: String?
    @Option(name: .long, help: "Append the line to this enrolment file too (coordinator.curve.enrolment).") var enrolment: String?

    func validate() throws {
        if !isValidWorkerName(name) { throw ValidationError("'\(name)' is not a worker name (1-128 letters, digits, '.', '_', '-')") }
    }

    func run() throws {
        guard zmqHasCurve else { throw CLIError(code: 1, message: "this libzmq was built without CURVE support") }
        let path = out ?? "\(name).key"
        if FileManager.default.fileExists(atPath: path) { throw CLIError.badInput("\(path) exists; pass --out FILE (keys are never overwritten)") }
        let keys = try CurveKeyPair.generate()
        guard FileManager.default.createFile(atPath: path, contents: Data("public: \(keys.publicKey)\nsecret: \(keys.secretKey)\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw CLIError.badInput("cannot write \(path)")
        }
        let line = "\"\(name)\(prefix ? "-*" : "")\": \"\(keys.publicKey)\""
        if let enrolment {
            let handle = FileHandle(forWritingAtPath: enrolment) ?? {
                _ = FileManager.default.createFile(atPath: enrolment, contents: nil, attributes: [.posixPermissions: 0o644])
                return FileHandle(forWritingAtPath: enrolment)
            }()
            guard let handle else { throw CLIError.badInput("cannot write \(enrolment)") }
            handle.seekToEndOfFile()
            handle.write(Data((line + "\n").utf8))
            try? handle.close()
        }
        printError("wrote \(path): install it on the worker's host, readable by the node's user only "
                   + "(install -m 0640 -o root -g agentflow \(path) /etc/agentflow/node.key), and start the node with --key /etc/agentflow/node.key.")
        printError(enrolment.map { "appended to \($0); send the coordinator SIGHUP to load it:" }
                   ?? "add this line under coordinator.curve.workerKeys in cluster.yaml (or to the enrolment file), then send the coordinator SIGHUP:")
        print("  " + line)
    }
}
