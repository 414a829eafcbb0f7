import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The benchmarks' HTTP/1.1 client: one keep-alive TCP connection to 127.0.0.1, requests one
/// at a time, on the thread that made it. Plain sockets, so the bench measures the server and
/// not a client library's overhead.
final class BenchHTTPClient {
    let fd: Int32
    let port: Int
    private var pending: [UInt8] = []

    init(port: Int) throws {
        self.port = port
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchmarkFailure(description: "socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw BenchmarkFailure(description: "connect to 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { close(fd) }

    /// Sends one request and returns the status code and body.
    func send(method: String, path: String, contentType: String, body: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        let head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n"
        var bytes = Array(head.utf8)
        bytes += body
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw BenchmarkFailure(description: "HTTP write failed: errno \(errno)") }
            sent += n
        }
        // Headers up to the blank line, then Content-Length bytes of body.
        let end: Int = try readUntil { buf in
            guard buf.count >= 4 else { return nil }
            for i in 0...(buf.count - 4) where buf[i] == 13 && buf[i + 1] == 10 && buf[i + 2] == 13 && buf[i + 3] == 10 { return i + 4 }
            return nil
        }
        let headText = String(decoding: pending[..<end], as: UTF8.self)
        let lines = headText.split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.split(separator: " ").count >= 2, let status = Int(statusLine.split(separator: " ")[1]) else {
            throw BenchmarkFailure(description: "bad HTTP status line: \(headText.prefix(80))")
        }
        var length = 0
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" { length = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0 }
        }
        let total: Int = try readUntil { buf in buf.count >= end + length ? end + length : nil }
        let answer = Array(pending[end..<total])
        pending.removeFirst(total)
        return (status, answer)
    }

    /// Reads until `complete` finds what it needs in the bytes read so far.
    private func readUntil(_ complete: ([UInt8]) -> Int?) throws -> Int {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            if let n = complete(pending) { return n }
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard got > 0 else { throw BenchmarkFailure(description: "the HTTP server closed the connection (errno \(errno))") }
            pending += chunk[..<got]
        }
    }
}
