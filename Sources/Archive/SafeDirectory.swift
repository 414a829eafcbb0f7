import AgentFlowCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A directory into which untrusted relative paths are written and from which they are read
/// (a workspace the model's code also writes into; a user's `--dir`). Every path component is
/// opened relative to the one before with `O_NOFOLLOW`, so a symbolic link planted in the tree
/// never leads a write or a read outside it; a file with more than one hard link is neither
/// written nor read (it may be a link to a file outside).
///
/// Not thread-safe; one attempt uses one instance.
public final class SafeDirectory {
    public let root: URL

    /// Why a path was refused or could not be written or read.
    public struct Refusal: Error, CustomStringConvertible, Equatable, Sendable {
        public var path: String
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    /// One file or directory found by ``walk(_:limit:)``.
    public struct Entry: Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case file, directory, symlink, other }
        public var path: String
        public var kind: Kind
        public var size: Int
        public var links: Int
        public var executable: Bool
        /// Modification time in nanoseconds, with the inode: what changed between two walks.
        public var stamp: String
    }

    /// `root` must exist.
    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    private func openRoot() throws(Refusal) -> Int32 {
        let fd = open(root.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Refusal(path: root.path, message: "cannot open: \(errnoText())") }
        return fd
    }

    private func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    private func components(_ path: String) throws(Refusal) -> [String] {
        switch WorkspacePath.components(path) {
        case .success(let parts): return parts
        case .failure(let problem): throw Refusal(path: path, message: problem.message)
        }
    }

    /// Opens the directory holding the last component, creating missing directories when
    /// `create`; the caller closes the descriptor.
    private func parent(of parts: [String], path: String, create: Bool) throws(Refusal) -> Int32 {
        var fd = try openRoot()
        for part in parts.dropLast() {
            if create && mkdirat(fd, part, 0o755) != 0 && errno != EEXIST {
                let e = errno
                close(fd)
                throw Refusal(path: path, message: "cannot create directory '\(part)': \(errnoText(e))")
            }
            let next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let e = errno
            close(fd)
            guard next >= 0 else {
                let why = e == ELOOP || e == ENOTDIR ? "'\(part)' is a symbolic link or a file, not a directory" : errnoText(e)
                throw Refusal(path: path, message: why)
            }
            fd = next
        }
        return fd
    }

    /// Opens `name` in the directory `dir` with `flags`, never through a symbolic link, and only
    /// a regular file with no other hard links (`verb`: what the refusal says was not done to
    /// it); returns the descriptor, which the caller closes, and the file's size.
    private func openFile(_ name: String, in dir: Int32, path: String, flags: Int32, mode: mode_t = 0, verb: String) throws(Refusal) -> (Int32, Int) {
        let fd = openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = errno
            throw Refusal(path: path, message: e == ELOOP ? "it is a symbolic link" : e == EISDIR ? "it is a directory" : e == ENOENT ? "no such file" : errnoText(e))
        }
        var info = stat()
        let regular = fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
        guard regular, info.st_nlink <= 1 else {
            close(fd)
            throw Refusal(path: path, message: regular ? "it has other hard links; not \(verb)" : "not a regular file")
        }
        return (fd, Int(info.st_size))
    }

    /// Writes `data` to `path`, creating parent directories; replaces a regular file, refuses
    /// to write through a symbolic link or into a hard-linked file.
    public func write(_ path: String, _ data: Data, executable: Bool = false) throws(Refusal) {
        let parts = try components(path)
        let dir = try parent(of: parts, path: path, create: true)
        defer { close(dir) }
        let (fd, _) = try openFile(parts.last!, in: dir, path: path, flags: O_WRONLY | O_CREAT, mode: executable ? 0o755 : 0o644, verb: "written")
        defer { close(fd) }
        guard ftruncate(fd, 0) == 0 else { throw Refusal(path: path, message: "cannot truncate: \(errnoText())") }
        if executable { _ = fchmod(fd, 0o755) }
        var written = 0
        let failure: Int32? = data.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            return nil
        }
        if let failure { throw Refusal(path: path, message: "cannot write: \(errnoText(failure))") }
    }

    /// Creates `path` and its parents as directories.
    public func makeDirectory(_ path: String) throws(Refusal) {
        let parts = try components(path)
        let dir = try parent(of: parts, path: path, create: true)
        defer { close(dir) }
        if mkdirat(dir, parts.last!, 0o755) != 0 && errno != EEXIST {
            throw Refusal(path: path, message: "cannot create: \(errnoText())")
        }
        let fd = openat(dir, parts.last!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Refusal(path: path, message: "it is a symbolic link or a file, not a directory") }
        close(fd)
    }

    /// The contents of the regular file `path`, refusing links and files over `limit` bytes.
    public func read(_ path: String, limit: Int) throws(Refusal) -> Data {
        let parts = try components(path)
        let dir = try parent(of: parts, path: path, create: false)
        defer { close(dir) }
        let (fd, size) = try openFile(parts.last!, in: dir, path: path, flags: O_RDONLY | O_NONBLOCK, verb: "read")
        defer { close(fd) }
        guard size <= limit else { throw Refusal(path: path, message: "\(size) bytes, more than \(limit)") }
        var out = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Refusal(path: path, message: "cannot read: \(errnoText())")
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
            if out.count > limit { throw Refusal(path: path, message: "more than \(limit) bytes") }
        }
        return out
    }

    /// Every file, directory and link under `path` (the whole tree when nil), depth first,
    /// never following links; at most `limit` entries (the rest are not listed).
    public func walk(_ path: String? = nil, limit: Int = 100_000) -> [Entry] {
        var out: [Entry] = []
        guard let start = try? openStart(path) else { return [] }
        walk(start, prefix: path.flatMap(WorkspacePath.normalized).map { $0 + "/" } ?? "", into: &out, limit: limit, depth: 0)
        return out
    }

    private func openStart(_ path: String?) throws(Refusal) -> Int32 {
        guard let path else { return try openRoot() }
        let parts = try components(path)
        let dir = try parent(of: parts, path: path, create: false)
        defer { close(dir) }
        let fd = openat(dir, parts.last!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Refusal(path: path, message: "not a directory") }
        return fd
    }

    /// Walks the directory open at `fd` (and closes it).
    private func walk(_ fd: Int32, prefix: String, into out: inout [Entry], limit: Int, depth: Int) {
        guard let dir = fdopendir(fd) else {
            close(fd)
            return
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != "." && name != ".." { names.append(name) }
        }
        for name in names.sorted() {
            guard out.count < limit else { return }
            var info = stat()
            guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let type = info.st_mode & S_IFMT
            let kind: Entry.Kind = type == S_IFREG ? .file : type == S_IFDIR ? .directory : type == S_IFLNK ? .symlink : .other
            let stamp = "\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            out.append(Entry(path: prefix + name, kind: kind, size: Int(info.st_size), links: Int(info.st_nlink),
                             executable: info.st_mode & S_IXUSR != 0, stamp: stamp))
            if kind == .directory && depth < 64 {
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 { walk(child, prefix: prefix + name + "/", into: &out, limit: limit, depth: depth + 1) }
            }
        }
    }

    /// Removes `path` and, for a directory, everything in it, never following links (a link
    /// itself is removed). Missing is fine.
    public func remove(_ path: String) throws(Refusal) {
        let parts = try components(path)
        let dir: Int32
        do { dir = try parent(of: parts, path: path, create: false) } catch { return }
        defer { close(dir) }
        removeEntry(dir, parts.last!, depth: 0)
    }

    private func removeEntry(_ dir: Int32, _ name: String, depth: Int) {
        if unlinkat(dir, name, 0) == 0 || errno == ENOENT { return }
        guard depth < 64 else { return }
        let fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 {
            // Make it writable first (inputs are made read-only).
            _ = fchmod(fd, 0o755)
            if let d = fdopendir(fd) {
                var names: [String] = []
                while let entry = readdir(d) {
                    let n = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
                    if n != "." && n != ".." { names.append(n) }
                }
                for n in names { removeEntry(fd, n, depth: depth + 1) }
                closedir(d)
            } else {
                close(fd)
            }
        }
        _ = unlinkat(dir, name, AT_REMOVEDIR)
    }

    /// Makes `path` and everything under it read-only for its owner too (`a-w`), links untouched.
    public func makeReadOnly(_ path: String) {
        for entry in walk(path) where entry.kind == .file || entry.kind == .directory {
            setMode(entry.path, entry.kind == .directory ? 0o555 : entry.executable ? 0o555 : 0o444)
        }
        setMode(path, 0o555)
    }

    /// Sets the permission bits of the file or directory at `path` (links are left alone).
    public func setMode(_ path: String, _ mode: mode_t) {
        guard let parts = try? components(path), let dir = try? parent(of: parts, path: path, create: false) else { return }
        defer { close(dir) }
        _ = fchmodat(dir, parts.last!, mode, 0)
    }
}
