import Foundation

/// The scripted OpenAI server of `tools/fake_openai_server.py` on a free loopback port. `shared`
/// is started once per test process; tests of keys, headers and TLS start their own with options.
/// It exits when this process does (its standard input closes) or when the instance goes.
/// `@unchecked Sendable`: every stored property is set in `init` and never mutated; the process
/// and pipe objects are only kept alive, not used, after that.
public final class FakeServer: @unchecked Sendable {
    public static let shared = FakeServer()

    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/fake_openai_server.py")

    public let baseURL: String
    private let process: Process
    /// Kept open: the server exits when it closes.
    private let stdin: Pipe

    /// `arguments`: the script's options (`--tls CERT KEY`, `--require-header N=V`, ...);
    /// `environment`: added to this process's (`FAKE_OPENAI_API_KEY`); `https`: the base URL's scheme.
    public init(arguments: [String] = [], environment: [String: String] = [:], https: Bool = false) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", Self.script.path] + arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        do { try launch(process) } catch { fatalError("cannot start the fake server: \(error)") }
        // The first line is "PORT <n>".
        var line = Data()
        while true {
            let byte = stdout.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) else {
            fatalError("the fake server said \(text)")
        }
        self.baseURL = "\(https ? "https" : "http")://127.0.0.1:\(port)/v1"
        self.process = process
        self.stdin = stdin
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}
