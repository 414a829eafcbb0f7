import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A second coordinator (or `agentflow run`) on a database another one holds.
public struct DatabaseLockedError: Error, CustomStringConvertible {
    public var database: String
    /// The holder's pid as it wrote it into the lock file, if readable.
    public var holder: Int32?
    /// The file the path leads to, when it is not the path itself (a symlink, `..`).
    public var realPath: String?

    public var description: String {
        let who = holder.map { "coordinator pid \($0)" } ?? "another coordinator"
        let real = realPath.map { " (the file \($0))" } ?? ""
        return "database \(database)\(real) is in use by \(who) (lock file \(realPath ?? database).lock); stop it first or pass another --database"
    }
}

/// One coordinator per database, by the file's identity: an exclusive `flock` on the database
/// file itself, taken when the store opens and held until it closes (or the process dies: the
/// kernel releases it, so a `kill -9` leaves no stale lock). A flock belongs to the file (its
/// inode), not to the name it was opened by, so a symlink, a hard link, `..` in the path or a
/// bind mount of the directory all meet the same lock. SQLite's own locks are POSIX byte-range
/// locks, which Linux keeps apart from flock, so the two never interfere.
///
/// Beside it, `<real path>.lock` holds the holder's pid for the refusal message, and is
/// flocked too, as older versions did (so an older coordinator on the same file is refused).
final class DatabaseLock {
    private let fd: Int32
    private let infoFD: Int32

    init(database: String) throws {
        let fd = open(database, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SQLiteError(code: errno, message: "cannot open the database \(database): \(String(cString: strerror(errno)))") }
        let real = Self.realPath(database)
        let infoPath = (real ?? database) + ".lock"
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw DatabaseLockedError(database: database, holder: Self.holder(infoPath), realPath: real == database ? nil : real)
        }
        let infoFD = open(infoPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard infoFD >= 0 else {
            close(fd)
            throw SQLiteError(code: errno, message: "cannot open the lock file \(infoPath): \(String(cString: strerror(errno)))")
        }
        guard flock(infoFD, LOCK_EX | LOCK_NB) == 0 else {
            close(infoFD)
            close(fd)
            throw DatabaseLockedError(database: database, holder: Self.holder(infoPath), realPath: real == database ? nil : real)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(infoFD, 0)
        _ = pwrite(infoFD, pid, pid.count, 0)
        self.fd = fd
        self.infoFD = infoFD
    }

    /// The canonical path of an existing file (symlinks and `..` resolved).
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// The pid the holder wrote, if the file reads as one.
    static func holder(_ infoPath: String) -> Int32? {
        let fd = open(infoPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &buffer, buffer.count, 0)
        return n > 0 ? Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) : nil
    }

    /// Closed after the SQLite connection (the store's `connection` is declared first): closing a
    /// descriptor of the database would drop this process's POSIX locks on it.
    deinit {
        flock(infoFD, LOCK_UN)
        close(infoFD)
        flock(fd, LOCK_UN)
        close(fd)
    }
}
