import AgentFlowCore
import Foundation
import TestSupport
import Store
import Testing

/// TLS to PostgreSQL (issue 21 item 1), against a real PostgreSQL 15 with `ssl = on` and a
/// certificate from a throw-away CA (tools/pg-test-cluster.sh --tls): the store opens with
/// `sslmode=verify-full` and the CA, and its session is encrypted by the server's own account
/// (pg_stat_ssl); a CA that did not sign the server's certificate, or a host name the
/// certificate does not name, is refused before any query, with libpq's reason and no password.
@Suite(.serialized) struct PostgresTLSTests {
    @Test(.timeLimit(.minutes(3))) func theStoreVerifiesTheServerAndEncrypts() throws {
        let cluster = try PostgresTestCluster.start(standby: false, tls: true).get()
        let ca = try #require(cluster.ca)
        let base = "postgres://agentflow@127.0.0.1:\(cluster.port)/agentflow?passfile=\(cluster.passfile)"
        let verified = base + "&sslmode=verify-full&sslrootcert=\(ca)"

        // The coordinator's store migrates and writes over TLS.
        let store = try Store(postgres: verified)
        try PostgresStoreTests.commit(store, PostgresStoreTests.writes(job: "over-tls"))
        #expect(try store.job("over-tls") != nil)

        // The server says the session is encrypted (TLS 1.2 or later).
        let session = try PostgresConnection(url: verified, timeout: .seconds(30))
        let rows = try session.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", timeout: .seconds(10))
        #expect(rows.count == 1)
        #expect(rows.first?.int(0) == 1, "pg_stat_ssl.ssl for our session: \(rows.map(\.values))")
        #expect(rows.first.map { $0.string(1).hasPrefix("TLSv1.") } == true, "\(rows.map(\.values))")
        // The server takes both (pg_hba "host"): sslmode=disable is honoured, in the clear.
        let plain = try PostgresConnection(url: base + "&sslmode=disable", timeout: .seconds(30))
        #expect(try plain.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", timeout: .seconds(10)).first?.int(0) == 0)

        // A CA that did not sign the server's certificate (another throw-away CA): refused, with
        // OpenSSL's reason and without the password.
        let passwords = try String(contentsOfFile: cluster.passfile, encoding: .utf8).split(separator: "\n").compactMap { $0.split(separator: ":").last.map(String.init) }
        #expect(!passwords.isEmpty)
        let wrongCA = cluster.dir + "/other-ca.crt"
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cluster.dir + "/other-ca.key", "-out", wrongCA,
                             "-days", "1", "-subj", "/CN=another CA"]
        openssl.standardError = FileHandle.nullDevice
        try launch(openssl)
        openssl.waitUntilExit()
        #expect(openssl.terminationStatus == 0)
        #expect {
            _ = try Store(postgres: base + "&sslmode=verify-full&sslrootcert=\(wrongCA)")
        } throws: { error in
            let text = "\(error)"
            return text.contains("certificate verify failed") && !passwords.contains { text.contains($0) }
        }
        // The certificate names 127.0.0.1 and localhost: the same server reached as another name
        // (hostaddr keeps the address) is refused by verify-full even with the right CA.
        #expect {
            _ = try PostgresConnection(url: "postgres://agentflow@db.wrong.example:\(cluster.port)/agentflow?hostaddr=127.0.0.1&passfile=\(cluster.passfile)&sslmode=verify-full&sslrootcert=\(ca)", timeout: .seconds(30))
        } throws: { error in
            "\(error)".contains("does not match host name")
        }
    }
}
