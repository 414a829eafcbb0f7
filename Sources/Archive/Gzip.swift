import CZlib
import Foundation

/// gzip compression over zlib, in memory.
public enum Gzip {
    /// Why data could not be decompressed.
    public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// `data` compressed in the gzip format.
    public static func compress(_ data: Data, level: Int32 = 6) -> Data {
        var stream = z_stream()
        guard CZlib_deflateInitGzip(&stream, level) == Z_OK else { return Data() }
        defer { deflateEnd(&stream) }
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            var status = Z_OK
            repeat {
                chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    status = deflate(&stream, Z_FINISH)
                    out.append(buffer.baseAddress!, count: buffer.count - Int(stream.avail_out))
                }
            } while status == Z_OK
        }
        return out
    }

    /// Decompresses gzip `data`; refuses output past `limit` bytes (a small archive that
    /// expands hugely) and anything that is not one complete gzip stream.
    public static func decompress(_ data: Data, limit: Int) throws(Failure) -> Data {
        var stream = z_stream()
        guard CZlib_inflateInitGzip(&stream) == Z_OK else { throw Failure(message: "zlib could not start") }
        defer { inflateEnd(&stream) }
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var status = Z_OK
        var failure: Failure?
        data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while status == Z_OK {
                chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    out.append(buffer.baseAddress!, count: buffer.count - Int(stream.avail_out))
                }
                if out.count > limit {
                    failure = Failure(message: "it expands past \(limit) bytes")
                    return
                }
                if status == Z_BUF_ERROR && stream.avail_in == 0 {
                    failure = Failure(message: "the gzip data is cut short")
                    return
                }
            }
            if status != Z_STREAM_END { failure = Failure(message: "not valid gzip data (zlib status \(status))") }
        }
        if let failure { throw failure }
        return out
    }
}
