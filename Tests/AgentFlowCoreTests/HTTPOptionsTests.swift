import AgentFlowCore
import Foundation
import HTTPAPI
import Testing

@Suite struct HTTPOptionsTests {
    @Test func addressesParseOrSayWhy() throws {
        #expect(try HTTPOptions.address("127.0.0.1:8080") == ("127.0.0.1", 8080))
        #expect(try HTTPOptions.address("[::1]:0") == ("::1", 0))
        #expect(try HTTPOptions.address("0.0.0.0:65535") == ("0.0.0.0", 65535))
        for bad in ["localhost", ":80", "h:", "h:65536", "h:-1", "h:8o", "[::1]80", ""] {
            #expect(throws: HTTPConfigError.self, "\(bad)") { try HTTPOptions.address(bad) }
        }
    }

    @Test func onlyLoopbackMayGoWithoutTokens() throws {
        let tokens = TokenBook(tokens: ["0123456789abcdef": ClientScope(role: .admin)])
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] {
            try HTTPOptions(host: host, port: 0, tokens: nil, knownModels: []).check()
        }
        for host in ["0.0.0.0", "::", "10.0.0.5", "example.com"] {
            #expect(throws: HTTPConfigError.self) { try HTTPOptions(host: host, port: 0, tokens: nil, knownModels: []).check() }
            try HTTPOptions(host: host, port: 0, tokens: tokens, knownModels: []).check()
        }
    }

    @Test func tokenFilesAreStrict() throws {
        let book = try TokenBook.parse("""
            # comment

            admin  0123456789abcdef
            read\tfedcba9876543210
            submit 0000000000000000aaaa tenant=team-a
            read   1111111111111111bbbb\ttenant=team.b_2
            """, file: "t")
        #expect(book.scope(of: "0123456789abcdef") == ClientScope(role: .admin))
        #expect(book.scope(of: "fedcba9876543210") == ClientScope(role: .read))
        #expect(book.scope(of: "0000000000000000aaaa") == ClientScope(role: .submit, tenant: "team-a"))
        #expect(book.scope(of: "1111111111111111bbbb") == ClientScope(role: .read, tenant: "team.b_2"))
        #expect(book.scope(of: "0123456789abcde") == nil)
        #expect(book.scope(of: "0123456789abcdef0") == nil)
        #expect(book.scope(of: "") == nil)
        let bad = [("root 0123456789abcdef", "read, submit or admin"), ("admin short", "16 printable"),
                   ("admin 0123456789abcdef extra", "tenant=NAME"), ("", "no tokens"), ("# only comments", "no tokens"),
                   ("submit 0123456789abcdef tenant=", "tenant"), ("submit 0123456789abcdef tenant=a\u{7}b", "\\x07"),
                   ("submit 0123456789abcdef tenant=a tenant=b", "at most one"), ("admin\n", "expected 'ROLE TOKEN"),
                   ("read 0123456789abcdef\nadmin 0123456789abcdef", "listed twice"),
                   ("submit 0123456789abcdef tenant=\(String(repeating: "x", count: 65))", "64")]
        for (text, problem) in bad {
            do {
                _ = try TokenBook.parse(text, file: "t")
                Issue.record("accepted: \(text)")
            } catch let e as HTTPConfigError {
                #expect(e.description.contains(problem), "\(text): \(e.description)")
            }
        }
        #expect(ClientRole.read < .submit && ClientRole.submit < .admin)
    }

    /// With tenants listed in the cluster file, a token bound to one that is not (a typo) is
    /// refused at its line: its jobs would spend outside every tenant's budget.
    @Test func aTokenForAnUnlistedTenantIsRefused() throws {
        let text = "admin 0123456789abcdef\nsubmit 0000000000000000aaaa tenant=team-a\nread 1111111111111111bbbb tenant=team_b\n"
        do {
            _ = try TokenBook.parse(text, file: "t", listed: ["team-a", "team-b"])
            Issue.record("a token for the unlisted tenant team_b was accepted")
        } catch let e as HTTPConfigError {
            #expect(e.description.hasPrefix("t:3:") && e.description.contains("'team_b'") && e.description.contains("team-a, team-b"), "\(e.description)")
        }
        // Listed, or no tenants listed at all: accepted.
        #expect(try TokenBook.parse(text, file: "t", listed: ["team-a", "team_b"]).scope(of: "1111111111111111bbbb")?.tenant == "team_b")
        #expect(try TokenBook.parse(text, file: "t").scope(of: "1111111111111111bbbb")?.tenant == "team_b")
    }

    /// A scope narrowed by another: the lower role, and one tenant or none at all.
    @Test func scopesNarrow() {
        let admin = ClientScope(role: .admin), a = ClientScope(role: .submit, tenant: "a")
        #expect(admin.narrowed(by: a) == a)
        #expect(a.narrowed(by: admin) == a)
        #expect(a.narrowed(by: ClientScope(role: .read)) == ClientScope(role: .read, tenant: "a"))
        #expect(a.narrowed(by: ClientScope(role: .admin, tenant: "b")) == nil)
    }

    /// A missing token file says so (an unreadable one: KeyFileTests, as an unprivileged user).
    @Test func aMissingTokenFileSaysSo() throws {
        let dir = NSTemporaryDirectory() + "af-secret-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            _ = try TokenBook.load(path: dir + "/missing")
            Issue.record("a missing file was read")
        } catch let e as HTTPConfigError {
            #expect(e.description.contains("no such file"), "\(e.description)")
        }
    }
}
