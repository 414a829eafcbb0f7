import Foundation

/// A throw-away certificate authority and a server certificate it signed for 127.0.0.1, made
/// with the openssl command (Debian's `openssl`, installed by tools/install-deps.sh) in `dir`.
public struct TestCertificates: Sendable {
    /// PEM of the authority: what a client's CA file holds.
    public let caFile: String
    /// The server's certificate and key (PEM).
    public let certificate: String
    public let key: String

    public init(in dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let script = """
            set -e
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=AgentFlow test CA" 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        p.currentDirectoryURL = dir
        try launch(p)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw CertificateError(description: "openssl could not make the test certificates (exit \(p.terminationStatus)); install Debian's openssl (tools/install-deps.sh)")
        }
        caFile = dir.appendingPathComponent("ca.pem").path
        certificate = dir.appendingPathComponent("server.pem").path
        key = dir.appendingPathComponent("server.key").path
    }

    public struct CertificateError: Error, CustomStringConvertible {
        public var description: String
    }
}
