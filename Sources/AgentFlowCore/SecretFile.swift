import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads a file that holds a secret (a CURVE key pair, HTTP tokens) and says plainly why it
/// cannot: "no such file", or "permission denied" naming the user this process runs as and the
/// file's owner and mode — the usual trouble when a service's user cannot read a file root made.
public enum SecretFile {
    /// The file's text; throws ``ConfigError`` naming the file and the problem. `hint` is added to
    /// a missing file's message (how to make one).
    public static func read(_ path: String, what: String, hint: String = "") throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigError(file: path, problem(path, errno: errno, what: what, hint: hint)) }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConfigError(file: path, "cannot read the \(what): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
            // Secrets are small; anything past a megabyte is not one of these files.
            if data.count > 1 << 20 { throw ConfigError(file: path, "the \(what) is larger than 1 MiB; is this the right file?") }
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigError(file: path, "the \(what) is not UTF-8 text") }
        return text
    }

    /// The file's text, or nil when there is no such file. Only a missing file is nil: one this
    /// user may not read, or may not reach through a closed directory, throws "permission
    /// denied" like ``read(_:what:hint:)``, so it is never taken for an empty one.
    public static func readIfPresent(_ path: String, what: String) throws -> String? {
        if access(path, F_OK) != 0, errno == ENOENT { return nil }
        return try read(path, what: what)
    }

    static func problem(_ path: String, errno code: Int32, what: String, hint: String) -> String {
        switch code {
        case ENOENT:
            return "no such file: the \(what) does not exist" + (hint.isEmpty ? "" : " (\(hint))")
        case EACCES, EPERM:
            var st = stat()
            let file = stat(path, &st) == 0
                ? "it belongs to \(ownerName(st.st_uid)):\(groupName(st.st_gid)) with mode \(String(format: "%04o", st.st_mode & 0o7777))"
                : "a directory on its path is closed to this user"
            return "permission denied: user \(userName(geteuid())) cannot read the \(what) (\(file)); "
                + "make it readable by that user, e.g. chgrp \(groupName(getegid())) \(path) && chmod 0640 \(path) (docs/deploy.md, Keys)"
        default:
            return "cannot read the \(what): \(String(cString: strerror(code)))"
        }
    }

    static func userName(_ uid: uid_t) -> String {
        if let p = getpwuid(uid), let name = p.pointee.pw_name { return "\(String(cString: name)) (uid \(uid))" }
        return "uid \(uid)"
    }

    static func ownerName(_ uid: uid_t) -> String {
        if let p = getpwuid(uid), let name = p.pointee.pw_name { return String(cString: name) }
        return "\(uid)"
    }

    static func groupName(_ gid: gid_t) -> String {
        if let g = getgrgid(gid), let name = g.pointee.gr_name { return String(cString: name) }
        return "\(gid)"
    }
}
