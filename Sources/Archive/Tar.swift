import AgentFlowCore
import Foundation

/// One entry of a file tree in transit: a regular file or a directory, by relative path.
public struct TreeEntry: Sendable, Equatable {
    public var path: String
    public var isDirectory: Bool
    public var data: Data
    /// Whether the owner may execute it (a script in a repository keeps its bit).
    public var executable: Bool

    public init(path: String, isDirectory: Bool = false, data: Data = Data(), executable: Bool = false) {
        self.path = path
        self.isDirectory = isDirectory
        self.data = data
        self.executable = executable
    }
}

/// The tar format (POSIX ustar, with the PAX and GNU long-name extensions read), limited to
/// what file trees need: regular files and directories. Reading is strict about sizes and
/// checksums and refuses unsafe paths; links, devices and other entry types are skipped and
/// named, never created.
public enum Tar {
    public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// What reading an archive gave: its entries, and the ones skipped with why.
    public struct Contents: Sendable {
        public var entries: [TreeEntry]
        public var skipped: [String]
    }

    // MARK: Writing

    /// A tar archive of `entries` (paths as given; directories end up with mode 755, files
    /// 644 or 755). Paths longer than ustar's fields get a PAX header.
    public static func write(_ entries: [TreeEntry]) -> Data {
        var out = Data()
        for e in entries {
            let name = e.isDirectory ? e.path + "/" : e.path
            var header = ustarHeader(name: name, size: e.isDirectory ? 0 : e.data.count,
                                     mode: e.isDirectory || e.executable ? 0o755 : 0o644, type: e.isDirectory ? "5" : "0")
            if header == nil {
                // A PAX extended header carries the long path; the ustar header gets a stand-in.
                let record = paxRecord("path", name)
                out += ustarHeader(name: "PaxHeader", size: record.count, mode: 0o644, type: "x")!
                out += padded(record)
                header = ustarHeader(name: String(name.suffix(90).filter(\.isASCII)), size: e.isDirectory ? 0 : e.data.count,
                                     mode: e.isDirectory || e.executable ? 0o755 : 0o644, type: e.isDirectory ? "5" : "0", force: true)
            }
            out += header!
            if !e.isDirectory { out += padded(e.data) }
        }
        out += Data(count: 1024)
        return out
    }

    static func paxRecord(_ key: String, _ value: String) -> Data {
        // "LEN key=value\n", where LEN counts itself.
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).count + body.utf8.count != length { length += 1 }
        return Data((String(length) + body).utf8)
    }

    static func padded(_ data: Data) -> Data {
        var d = data
        let rest = data.count % 512
        if rest != 0 { d += Data(count: 512 - rest) }
        return d
    }

    /// A 512-byte ustar header, or nil when `name` does not fit (unless `force`).
    static func ustarHeader(name: String, size: Int, mode: Int, type: Character, force: Bool = false) -> Data? {
        var h = [UInt8](repeating: 0, count: 512)
        var nameBytes = Array(name.utf8)
        var prefix: [UInt8] = []
        if nameBytes.count > 100 {
            // Split at a '/' so that the prefix is ≤ 155 bytes and the rest ≤ 100.
            guard let cut = nameBytes.indices.last(where: { nameBytes[$0] == UInt8(ascii: "/") && $0 <= 155 && nameBytes.count - $0 - 1 <= 100 }) else {
                if !force { return nil }
                nameBytes = Array(nameBytes.suffix(100))
                return finish(&h, nameBytes, [], size, mode, type)
            }
            prefix = Array(nameBytes[..<cut])
            nameBytes = Array(nameBytes[(cut + 1)...])
        }
        return finish(&h, nameBytes, prefix, size, mode, type)
    }

    private static func finish(_ h: inout [UInt8], _ name: [UInt8], _ prefix: [UInt8], _ size: Int, _ mode: Int, _ type: Character) -> Data {
        func put(_ bytes: [UInt8], at: Int) { for (i, b) in bytes.enumerated() { h[at + i] = b } }
        func octal(_ v: Int, width: Int) -> [UInt8] { Array(String(format: "%0\(width - 1)o", v).utf8) + [0] }
        put(name, at: 0)
        put(octal(mode, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)
        put(Array(repeating: UInt8(ascii: " "), count: 8), at: 148)
        h[156] = UInt8(type.asciiValue!)
        put(Array("ustar\u{0}00".utf8), at: 257)
        put(prefix, at: 345)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(Array(String(format: "%06o", sum).utf8) + [0, UInt8(ascii: " ")], at: 148)
        return Data(h)
    }

    // MARK: Reading

    /// The entries of a tar archive, at most `maxEntries` and `maxBytes` of file content.
    /// Paths are checked with ``WorkspacePath``: `..`, absolute paths and control characters
    /// make the whole archive refused.
    public static func read(_ data: Data, maxEntries: Int, maxBytes: Int) throws(Failure) -> Contents {
        let bytes = [UInt8](data)
        var at = 0
        var entries: [TreeEntry] = []
        var skipped: [String] = []
        var total = 0
        var longName: String?
        var zeroBlocks = 0
        while at + 512 <= bytes.count {
            let h = bytes[at..<(at + 512)]
            if h.allSatisfy({ $0 == 0 }) {
                zeroBlocks += 1
                at += 512
                if zeroBlocks == 2 { break }
                continue
            }
            zeroBlocks = 0
            guard checksumMatches(h) else { throw Failure(message: "entry at byte \(at): bad header checksum (not a tar archive?)") }
            guard let size = octal(h, 124, 12), size >= 0 else { throw Failure(message: "entry at byte \(at): bad size field") }
            let start = at + 512
            let end = start + size
            guard end <= bytes.count else { throw Failure(message: "entry at byte \(at): cut short") }
            let type = h[h.startIndex + 156]
            at = start + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "x"):
                longName = paxPath(bytes[start..<end]) ?? longName
                continue
            case UInt8(ascii: "g"):
                continue
            case UInt8(ascii: "L"):
                longName = String(decoding: bytes[start..<end].prefix { $0 != 0 }, as: UTF8.self)
                continue
            default: break
            }
            var name = longName ?? headerName(h)
            longName = nil
            let isDirectory = type == UInt8(ascii: "5")
            if name.hasSuffix("/") { name.removeLast() }
            guard type == 0 || type == UInt8(ascii: "0") || type == UInt8(ascii: "7") || isDirectory else {
                skipped.append("\(name) (\(kindName(type)))")
                continue
            }
            if name == "." || name.isEmpty { continue }
            let path: String
            switch WorkspacePath.components(name) {
            case .success(let parts): path = parts.joined(separator: "/")
            case .failure(let problem): throw Failure(message: "entry '\(name.prefix(120))': \(problem.message)")
            }
            total += isDirectory ? 0 : size
            if total > maxBytes { throw Failure(message: "the files are more than \(maxBytes) bytes unpacked") }
            if entries.count >= maxEntries { throw Failure(message: "more than \(maxEntries) files and directories") }
            let mode = octal(h, 100, 8) ?? 0o644
            entries.append(TreeEntry(path: path, isDirectory: isDirectory, data: isDirectory ? Data() : Data(bytes[start..<end]),
                                     executable: !isDirectory && mode & 0o100 != 0))
        }
        return Contents(entries: entries, skipped: skipped)
    }

    static func kindName(_ type: UInt8) -> String {
        switch type {
        case UInt8(ascii: "1"): return "hard link, not unpacked"
        case UInt8(ascii: "2"): return "symbolic link, not unpacked"
        case UInt8(ascii: "3"), UInt8(ascii: "4"): return "device, not unpacked"
        case UInt8(ascii: "6"): return "FIFO, not unpacked"
        default: return "entry type '\(Character(UnicodeScalar(type)))', not unpacked"
        }
    }

    static func checksumMatches(_ h: ArraySlice<UInt8>) -> Bool {
        guard let stored = octal(h, 148, 8) else { return false }
        var sum = 0
        for (i, b) in h.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
        return sum == stored
    }

    static func octal(_ h: ArraySlice<UInt8>, _ offset: Int, _ width: Int) -> Int? {
        let field = h[(h.startIndex + offset)..<(h.startIndex + offset + width)]
        let text = String(decoding: field.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return 0 }
        guard text.count <= 11 else { return nil }
        return Int(text, radix: 8)
    }

    static func headerName(_ h: ArraySlice<UInt8>) -> String {
        func field(_ offset: Int, _ width: Int) -> String {
            String(decoding: h[(h.startIndex + offset)..<(h.startIndex + offset + width)].prefix { $0 != 0 }, as: UTF8.self)
        }
        let name = field(0, 100)
        let magic = field(257, 6)
        let prefix = magic.hasPrefix("ustar") ? field(345, 155) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// The `path` record of a PAX extended header.
    static func paxPath(_ body: ArraySlice<UInt8>) -> String? {
        var rest = body[...]
        var path: String?
        while let space = rest.firstIndex(of: UInt8(ascii: " ")) {
            guard let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)), length > 0,
                  rest.startIndex + length <= rest.endIndex else { break }
            let record = rest[(space + 1)..<(rest.startIndex + length)]
            let text = String(decoding: record, as: UTF8.self)
            if text.hasPrefix("path=") { path = String(text.dropFirst(5).dropLast(text.hasSuffix("\n") ? 1 : 0)) }
            rest = rest[(rest.startIndex + length)...]
        }
        return path
    }
}

/// A file tree as gzip-compressed tar: the form inputs and outputs travel in.
public enum TarGz {
    public static func pack(_ entries: [TreeEntry]) -> Data {
        Gzip.compress(Tar.write(entries))
    }

    /// Unpacks, refusing more than `maxEntries` entries or `maxBytes` of content.
    public static func unpack(_ data: Data, maxEntries: Int = Limits.maxInputFiles, maxBytes: Int = Limits.maxInputTreeBytes) throws -> Tar.Contents {
        do {
            // The tar framing adds at least 512 bytes per entry on top of the content.
            let tar = try Gzip.decompress(data, limit: maxBytes + (maxEntries + 4) * 1024)
            return try Tar.read(tar, maxEntries: maxEntries, maxBytes: maxBytes)
        } catch let e as Gzip.Failure {
            throw Tar.Failure(message: "not a gzip-compressed tar archive: \(e.message)")
        }
    }
}
