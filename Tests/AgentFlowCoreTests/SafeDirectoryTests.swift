import Archive
import Foundation
import Testing

/// `SafeDirectory` reads and writes only regular files with one link, never through a symbolic
/// link, and says why it refused.
@Suite struct SafeDirectoryTests {
    func refusal(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return (error as? SafeDirectory.Refusal)?.message ?? "\(error)"
        }
    }

    @Test func regularFilesOnlyAndTheRefusalSaysWhy() throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-safedir-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let outside = root.deletingLastPathComponent().appendingPathComponent("af-safedir-outside-\(UUID().uuidString)")
        try Data("secret".utf8).write(to: outside)
        defer { try? FileManager.default.removeItem(at: outside) }
        let dir = SafeDirectory(root: root)

        try dir.write("a/b/file.txt", Data("hello".utf8))
        #expect(try dir.read("a/b/file.txt", limit: 5) == Data("hello".utf8))
        try dir.write("a/b/file.txt", Data("hi".utf8), executable: true)
        #expect(try dir.read("a/b/file.txt", limit: 100) == Data("hi".utf8), "a rewrite replaces the contents")

        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("link").path, withDestinationPath: outside.path)
        #expect(refusal { try dir.write("link", Data("x".utf8)) } == "it is a symbolic link")
        #expect(refusal { _ = try dir.read("link", limit: 100) } == "it is a symbolic link")
        #expect(try String(contentsOf: outside, encoding: .utf8) == "secret", "nothing written through the link")

        try FileManager.default.linkItem(atPath: outside.path, toPath: root.appendingPathComponent("hard").path)
        #expect(refusal { try dir.write("hard", Data("x".utf8)) } == "it has other hard links; not written")
        #expect(refusal { _ = try dir.read("hard", limit: 100) } == "it has other hard links; not read")
        #expect(try String(contentsOf: outside, encoding: .utf8) == "secret")

        #expect(refusal { _ = try dir.read("missing", limit: 100) } == "no such file")
        #expect(refusal { _ = try dir.read("a/b", limit: 100) } == "not a regular file")
        #expect(refusal { try dir.write("a/b", Data()) } == "it is a directory")
        #expect(refusal { _ = try dir.read("a/b/file.txt", limit: 1) } == "2 bytes, more than 1")
    }
}
