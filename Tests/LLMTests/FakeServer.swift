import Foundation

/// The scripted OpenAI server of `tools/fake_openai_server.py`, started once per test process on
/// a free loopback port. It exits when this process does (its standard input closes).
/// `@unchecked Sendable`: every stored property is set in `init` and never mutated; the process
/// and pipe objects are only kept alive, not used, after that.
final class FakeServer: @unchecked Sendable {
    static let shared = FakeServer()

    let baseURL: String
    private let process: Process
    /// Kept open: the server exits when it closes.
    private let stdin: Pipe

    private init() {
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/fake_openai_server.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", script.path]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        do { try process.run() } catch { fatalError("cannot start the fake server: \(error)") }
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
        self.baseURL = "http://127.0.0.1:\(port)/v1"
        self.process = process
        self.stdin = stdin
    }
}
