import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A second coordinator (or `agentflow run`) on a database another one holds.
public struct DatabaseLockedError: Error, CustomStringConvertible {
    public var database: String
    /// The holder's pid as it wrote it into the lock file, if readable.
    public var holder: Int32?

    public var description: String {
        let who = holder.map { "coordinator pid \($0)" } ?? "another coordinator"
        return "database \(database) is in use by \(who) (lock file \(database).lock); stop it first or pass another --database"
    }
}

/// One coordinator per database: an exclusive `flock` on `<database>.lock`, taken when the
/// store opens and held until it closes (or the process dies: the kernel releases it, so a
/// `kill -9` leaves no stale lock). The file holds the holder's pid, for the refusal message.
final class DatabaseLock {
    private let fd: Int32

    init(database: String) throws {
        let path = database + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SQLiteError(code: errno, message: "cannot open the lock file \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
            throw DatabaseLockedError(database: database, holder: Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        self.fd = fd
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
