import AgentFlowCore
import Foundation

/// Input blobs this worker has received, by SHA-256, least recently used dropped first past
/// `capacity` bytes. A job's attempts name the same inputs, so after the first dispatch the
/// coordinator need not send them again. A value: the worker's core owns it.
struct BlobCache: Sendable {
    let capacity: Int
    private var blobs: [String: Blob] = [:]
    private var order: [String] = []
    private(set) var bytes = 0

    init(capacity: Int = 256 << 20) { self.capacity = capacity }

    mutating func get(_ sha256: String) -> Blob? {
        guard let blob = blobs[sha256] else { return nil }
        touch(sha256)
        return blob
    }

    mutating func put(_ blob: Blob) {
        if blobs[blob.sha256] != nil {
            touch(blob.sha256)
            return
        }
        blobs[blob.sha256] = blob
        order.append(blob.sha256)
        bytes += blob.data.count
        while bytes > capacity, order.count > 1 {
            let oldest = order.removeFirst()
            if let gone = blobs.removeValue(forKey: oldest) { bytes -= gone.data.count }
        }
    }

    private mutating func touch(_ sha256: String) {
        if let i = order.firstIndex(of: sha256) { order.remove(at: i) }
        order.append(sha256)
    }
}
