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

/// CURVE settings of a worker or client, from the cluster file (`nil`: CURVE is off).
func clientCurve(_ cluster: Cluster?) throws -> (serverKey: String, keys: CurveKeyPair)? {
    guard let curve = cluster?.coordinator.curve else { return nil }
    let keys = try curve.clientKeyFile.map(readKeyFile) ?? CurveKeyPair.generate()
    return (curve.serverKey, keys)
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
}

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Make a CURVE key pair for the coordinator, a worker or a client.")

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
