/// Random damage to an encoded frame, as the frame-decoding tests apply it: one to three bytes
/// overwritten, inserted or deleted, or set to values that make lengths and counts lie.
func damageFrame(_ bytes: inout [UInt8], using rng: inout TestRNG) {
    for _ in 0..<Int.random(in: 1...3, using: &rng) {
        let at = Int.random(in: 0..<max(1, bytes.count), using: &rng)
        switch Int.random(in: 0..<4, using: &rng) {
        case 0 where !bytes.isEmpty: bytes[at] = UInt8.random(in: 0...255, using: &rng)
        case 1: bytes.insert(UInt8.random(in: 0...9, using: &rng), at: min(at, bytes.count))
        case 2 where !bytes.isEmpty: bytes.remove(at: at)
        default: if !bytes.isEmpty { bytes[at] = [0, 0xff, 8, 7][Int.random(in: 0..<4, using: &rng)] }
        }
    }
}
