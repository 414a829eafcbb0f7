import AgentFlowCore
import Foundation
import Planner
import Wire

/// A message in flight.
enum Packet {
    /// Worker → coordinator, from a routing id.
    case fromWorker(identity: Data, WorkerMessage)
    /// Coordinator → worker, to a routing id.
    case toWorker(identity: Data, CoordinatorMessage)
    /// Client → coordinator.
    case fromClient(route: [Data], ClientRequest)
    /// Coordinator → client.
    case toClient(route: [Data], ClientReply)
}

/// The simulated network: every message gets a delay (so messages overtake each other), and
/// may be dropped or delivered twice, at the configured rates. Deterministic: one seeded
/// generator, and ties broken by send order.
struct SimNetwork {
    var rng: SplitMix64
    var dropRate: Double
    var duplicateRate: Double
    var maxDelay: Duration
    private var queue: [(at: MonotonicInstant, seq: Int, packet: Packet)] = []
    private var seq = 0
    private(set) var sent = 0
    private(set) var dropped = 0
    private(set) var duplicated = 0

    init(seed: UInt64, dropRate: Double, duplicateRate: Double, maxDelay: Duration) {
        rng = SplitMix64(seed: seed)
        self.dropRate = dropRate
        self.duplicateRate = duplicateRate
        self.maxDelay = maxDelay
    }

    mutating func send(_ packet: Packet, now: MonotonicInstant) {
        sent += 1
        if rng.unit() < dropRate {
            dropped += 1
            return
        }
        enqueue(packet, at: now + delay(upTo: maxDelay))
        if rng.unit() < duplicateRate {
            duplicated += 1
            enqueue(packet, at: now + delay(upTo: maxDelay * 2))
        }
    }

    /// 1 ms plus a uniform draw up to `most`.
    private mutating func delay(upTo most: Duration) -> Duration {
        .milliseconds(1) + .nanoseconds(Int64((rng.unit() * most.seconds * 1e9).rounded()))
    }

    private mutating func enqueue(_ packet: Packet, at: MonotonicInstant) {
        seq += 1
        let i = queue.firstIndex { ($0.at, $0.seq) > (at, seq) } ?? queue.count
        queue.insert((at, seq, packet), at: i)
    }

    var nextAt: MonotonicInstant? { queue.first?.at }

    /// Packets due by `now`, in delivery order.
    mutating func due(_ now: MonotonicInstant) -> [Packet] {
        var out: [Packet] = []
        while let first = queue.first, first.at <= now {
            out.append(first.packet)
            queue.removeFirst()
        }
        return out
    }

    var inFlight: Int { queue.count }

    /// Packets in flight other than heartbeats, which never stop by design.
    var inFlightWork: Int {
        queue.count { q in
            switch q.packet {
            case .fromWorker(_, .heartbeat), .toWorker(_, .heartbeat): false
            default: true
            }
        }
    }

    /// What is in flight, by kind ("result to coordinator: 2, heartbeat to worker: 3").
    var inFlightSummary: String {
        var kinds: [String: Int] = [:]
        for q in queue { kinds[q.packet.kind, default: 0] += 1 }
        return kinds.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
    }
}

extension Packet {
    var kind: String {
        func name(_ m: Any) -> String { String("\(m)".prefix { $0 != "(" }) }
        switch self {
        case .fromWorker(let id, let m): return name(m) + " from " + String(decoding: id, as: UTF8.self)
        case .toWorker(let id, let m):
            if case .rejected(let reason) = m { return "rejected (\(reason)) to \(String(decoding: id, as: UTF8.self))" }
            return name(m) + " to " + String(decoding: id, as: UTF8.self)
        case .fromClient(_, let r): return name(r) + " from a client"
        case .toClient(_, let r): return name(r) + " to a client"
        }
    }
}
