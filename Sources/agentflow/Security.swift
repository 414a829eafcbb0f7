import AgentFlowCore
import ArgumentParser
import Foundation
import ZeroMQ

/// Key files hold one CURVE key pair in Z85 text:
///
///     public: <40 characters>
///     secret: <40 characters>
func readKeyFile(_ path: String) throws -> CurveKeyPair {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ConfigError(file: path, "cannot read the key file (make one with: agentflow keys --out \(path))")
    }
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

/// The worker names each key owns: `workerKeys` of the cluster file plus the enrolment file.
func workerKeyBook(_ curve: CurveSpec, clusterFile: String) throws -> WorkerKeyBook {
    var entries = curve.workerKeys
    if let path = curve.enrolment {
        // Relative to the cluster file's directory.
        let full = path.hasPrefix("/") ? path : URL(fileURLWithPath: clusterFile).deletingLastPathComponent().appendingPathComponent(path).path
        if FileManager.default.fileExists(atPath: full) {
            guard let text = try? String(contentsOfFile: full, encoding: .utf8) else { throw ConfigError(file: full, "cannot read the enrolment file") }
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
    options.authorizedKeys = curve.authorizedKeys
    options.identities = WorkerIdentities(authorizedKeys: curve.authorizedKeys, book: try workerKeyBook(curve, clusterFile: file))
}

/// SIGHUP: re-reads the cluster file's authorizedKeys and workerKeys and the enrolment file;
/// new handshakes and registrations see them, connections already up stay. A file that does
/// not parse leaves the keys as they were.
func reloadIdentitiesOnHangup(_ identities: WorkerIdentities, clusterFile: String) -> any DispatchSourceSignal {
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
            identities.replace(authorizedKeys: curve.authorizedKeys, book: book)
            printError("coordinator: SIGHUP: reloaded keys: \(curve.authorizedKeys.count) authorized, \(book.entries.count) worker name binding(s)")
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

    @Option(name: .long, help: "Write the pair to this file (mode 600) instead of printing the secret.") var out: String?

    func run() throws {
        guard zmqHasCurve else { throw CLIError(code: 1, message: "this libzmq was built without CURVE support") }
        let keys = try CurveKeyPair.generate()
        let text = "public: \(keys.publicKey)\nsecret: \(keys.secretKey)\n"
        if let out {
            guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CLIError.badInput("cannot write \(out)")
            }
            print(keys.publicKey)
        } else {
            print(text, terminator: "")
        }
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
        printError("wrote \(path): copy it to the worker's host and point coordinator.curve.clientKeyFile (or --key) at it there.")
        printError(enrolment.map { "appended to \($0); send the coordinator SIGHUP to load it:" }
                   ?? "add this line under coordinator.curve.workerKeys in cluster.yaml (or to the enrolment file), then send the coordinator SIGHUP:")
        print("  " + line)
    }
}
