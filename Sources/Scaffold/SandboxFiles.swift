import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A workspace path that is not a plain relative path inside it.
public struct WorkspacePathError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var problem: String
    public var description: String { "workspace path '\(path)': \(problem)" }
}

/// The worker's side of workspace files that ``SafeDirectory`` (reads, walks) does not do:
/// writing over whatever the code left at a path (the workflow's own files, restored), copying
/// and removing a tree, changing owners. Sandboxed code can leave symbolic links anywhere in
/// its workspace (`answer.md -> /etc/shadow`, `sub -> /root/.ssh`) and the worker works there
/// with its own rights, so nothing here follows a link: each component is opened with
/// `O_NOFOLLOW` relative to the one before.
enum SandboxFiles {
    /// The components of `path`, refused when absolute, empty, or with `.`/`..`/NUL.
    static func components(_ path: String) throws -> [String] {
        if path.hasPrefix("/") { throw WorkspacePathError(path: path, problem: "absolute paths are outside the workspace") }
        if path.contains("\0") { throw WorkspacePathError(path: path, problem: "contains a NUL byte") }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if parts.isEmpty { throw WorkspacePathError(path: path, problem: "empty") }
        if parts.contains(where: { $0 == ".." || $0 == "." }) {
            throw WorkspacePathError(path: path, problem: "'.' and '..' are not allowed")
        }
        if parts.contains(where: { $0.utf8.count > 255 }) || path.utf8.count > 4000 {
            throw WorkspacePathError(path: path, problem: "too long")
        }
        return parts
    }

    private static func posixError(_ what: String, _ path: String) -> any Error {
        let code = errno
        return WorkspacePathError(path: path, problem: "\(what): \(String(cString: strerror(code)))")
    }

    /// Opens the directory that holds `parts.last`, creating missing directories when asked, and
    /// replacing a link or a file that stands where a directory must be when `replace` is set.
    private static func openParent(
        root: URL, _ parts: [String], path: String, create: Bool, replace: Bool, owner: uid_t? = nil
    ) throws -> Int32 {
        var fd = open(root.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError("cannot open the workspace", path) }
        for part in parts.dropLast() {
            var next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && (errno == ELOOP || errno == ENOTDIR) && replace {
                _ = unlinkat(fd, part, 0)
            }
            if next < 0 && create && (errno == ENOENT || replace) {
                if mkdirat(fd, part, 0o755) == 0, let owner { _ = fchownat(fd, part, owner, owner, AT_SYMLINK_NOFOLLOW) }
                next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            close(fd)
            guard next >= 0 else { throw posixError("'\(part)' is not a directory of the workspace", path) }
            fd = next
        }
        return fd
    }

    /// Writes `data` to `path` inside `root`, creating directories. With `replace`, whatever the
    /// code left at that path or on the way (a link, a directory, a file) is removed first.
    static func write(root: URL, _ path: String, _ data: Data, replace: Bool = false, owner: uid_t? = nil) throws {
        let parts = try components(path)
        let dir = try openParent(root: root, parts, path: path, create: true, replace: replace, owner: owner)
        defer { close(dir) }
        let name = parts.last!
        if replace {
            if unlinkat(dir, name, 0) != 0 && errno == EISDIR { removeTree(at: dir, name) }
        }
        let fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw posixError("cannot write", path) }
        defer { close(fd) }
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw posixError("cannot write", path) }
                offset += n
            }
        }
        if let owner { _ = fchown(fd, owner, owner) }
    }

    /// Copies the tree at `source` into the existing directory `destination`: directories,
    /// regular files and links (as links); nothing else (fifos, sockets, devices). Names for
    /// which `skip` answers true are left out.
    static func copyTree(_ source: URL, to destination: URL, skip: (String) -> Bool = { _ in false }) throws {
        let from = open(source.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard from >= 0 else { throw posixError("cannot open", source.path) }
        defer { close(from) }
        let to = open(destination.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard to >= 0 else { throw posixError("cannot open", destination.path) }
        defer { close(to) }
        try copyEntries(from, to, skip: skip, depth: 0)
    }

    private static func copyEntries(_ from: Int32, _ to: Int32, skip: (String) -> Bool, depth: Int) throws {
        guard depth < 64 else { return }
        for name in entries(of: from) where !skip(name) {
            var info = stat()
            guard fstatat(from, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                guard mkdirat(to, name, 0o755) == 0 || errno == EEXIST else { throw posixError("cannot create", name) }
                let sub = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                let target = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                defer {
                    if sub >= 0 { close(sub) }
                    if target >= 0 { close(target) }
                }
                if sub >= 0 && target >= 0 { try copyEntries(sub, target, skip: skip, depth: depth + 1) }
            case S_IFREG:
                let input = openat(from, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                guard input >= 0 else { continue }
                defer { close(input) }
                let output = openat(to, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, info.st_mode & 0o755 | 0o600)
                guard output >= 0 else { throw posixError("cannot create", name) }
                defer { close(output) }
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    var offset = 0
                    while offset < n {
                        let w = buffer.withUnsafeBytes { Glibc.write(output, $0.baseAddress! + offset, n - offset) }
                        if w < 0 && errno == EINTR { continue }
                        guard w > 0 else { throw posixError("cannot write", name) }
                        offset += w
                    }
                }
            case S_IFLNK:
                var target = [CChar](repeating: 0, count: 4097)
                let n = readlinkat(from, name, &target, 4096)
                guard n >= 0 else { continue }
                target[n] = 0
                _ = symlinkat(target, to, name)
            default:
                continue
            }
        }
    }

    /// Names in the open directory `fd` (not `.` and `..`).
    static func entries(of fd: Int32) -> [String] {
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes `name` in the open directory `dir`, recursively, never following a link.
    static func removeTree(at dir: Int32, _ name: String, depth: Int = 0) {
        if unlinkat(dir, name, 0) == 0 { return }
        guard depth < 256 else { return }
        let sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard sub >= 0 else { return }
        for entry in entries(of: sub) { removeTree(at: sub, entry, depth: depth + 1) }
        close(sub)
        _ = unlinkat(dir, name, AT_REMOVEDIR)
    }

    /// Removes the directory at `url` and everything in it, never following a link.
    static func removeTree(_ url: URL) {
        let parent = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        defer { close(parent) }
        removeTree(at: parent, url.lastPathComponent)
    }

    /// Changes the owner of everything under `url` (links themselves, not their targets).
    static func chownTree(_ url: URL, to owner: uid_t) {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = fchown(fd, owner, owner)
        chownEntries(fd, owner, depth: 0)
    }

    private static func chownEntries(_ dir: Int32, _ owner: uid_t, depth: Int) {
        guard depth < 256 else { return }
        for name in entries(of: dir) {
            _ = fchownat(dir, name, owner, owner, AT_SYMLINK_NOFOLLOW)
            let sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if sub >= 0 {
                chownEntries(sub, owner, depth: depth + 1)
                close(sub)
            }
        }
    }
}
