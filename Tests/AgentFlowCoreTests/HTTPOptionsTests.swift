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
        let tokens = TokenBook(tokens: ["0123456789abcdef": .admin])
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] {
            try HTTPOptions(host: host, port: 0, tokens: nil, knownModels: []).check()
        }
        for host in ["0.0.0.0", "::", "10.0.0.5", "example.com"] {
            #expect(throws: HTTPConfigError.self) { try HTTPOptions(host: host, port: 0, tokens: nil, knownModels: []).check() }
            try HTTPOptions(host: host, port: 0, tokens: tokens, knownModels: []).check()
        }
    }

    @Test func tokenFilesAreStrict() throws {
        let book = try TokenBook.parse("# comment\n\nadmin  0123456789abcdef\nread\tfedcba9876543210\n", file: "t")
        #expect(book.level(of: "0123456789abcdef") == .admin)
        #expect(book.level(of: "fedcba9876543210") == .read)
        #expect(book.level(of: "0123456789abcde") == nil)
        #expect(book.level(of: "0123456789abcdef0") == nil)
        #expect(book.level(of: "") == nil)
        for bad in ["root 0123456789abcdef", "admin short", "admin 0123456789abcdef extra", "", "# only comments"] {
            #expect(throws: HTTPConfigError.self, "\(bad)") { try TokenBook.parse(bad, file: "t") }
        }
        #expect(AccessLevel.read < .admin)
    }
}
