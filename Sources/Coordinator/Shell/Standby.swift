import AgentFlowCore
import Foundation
import Logging
import Store
import Wire
import ZeroMQ

/// Several coordinators on one PostgreSQL database (issue 21): before a coordinator runs its
/// core it stands by, its sockets bound, until it takes the lease (``CoordinatorLease``). Meanwhile
/// it answers every worker message with `notLeader` (naming the leader's workers endpoint,
/// from the lease row), so workers move on at once; it serves clients' read-only queries from
/// the database, and answers writes with ``ClientReply/notLeader`` naming the leader's client
/// endpoint (the client asks there, or the next endpoint of its list: a redirect, not a forward).
extension Coordinator {
    static let standbyLog = Logger(label: "agentflow.coordinator.standby")

    /// Stands by until this coordinator leads (true) or `stop` is set (false). Database errors
    /// while standing by are logged and retried: a standby outlives a database failover.
    func standBy(_ db: PostgresDatabase, store: Store, workers: ZMQSocket, clients: ZMQSocket, advertised: (workers: String, clients: String),
                 stop: StopSignal, telemetry: Telemetry) throws -> Bool {
        let holder = "\(ProcessInfo.processInfo.hostName) pid \(getpid())"
        let lease = options.lease
        var queries: QueryService?
        var leader: CoordinatorLease.Holder?
        var poller = ZMQPoller()
        let wi = poller.add(workers)
        let ci = poller.add(clients)
        let si = poller.add(fd: stop.pipe.readFD)
        var nextTry = 0.0
        var announced = false
        var lastProblem = ""
        // Look often enough that a takeover costs a small part of the lease.
        let every = min(0.5, lease.seconds / 10)
        while !stop.isSet {
            let now = time.monotonic
            if now >= nextTry {
                nextTry = now + every
                do {
                    if try db.acquireLease(holder: holder, workers: advertised.workers, clients: advertised.clients, for: lease) {
                        Self.standbyLog.notice("leading: took the coordinator lease (epoch \(db.lease?.epoch ?? 0), \(String(format: "%.1f", lease.seconds)) s lease)")
                        return true
                    }
                    leader = try db.leaseHolder()
                    if !announced, let leader {
                        announced = true
                        Self.standbyLog.notice("standing by: \(leader.holder) leads (epoch \(leader.epoch)); taking over when its lease expires")
                    }
                    lastProblem = ""
                } catch {
                    let problem = "\(error)"
                    if problem != lastProblem { Self.standbyLog.warning("standing by, the database does not answer: \(problem)") }
                    lastProblem = problem
                }
            }
            try poller.poll(timeout: max(0, nextTry - time.monotonic))
            if poller.isReadable(si) { stop.pipe.drain() }
            if poller.isReadable(wi) {
                var budget = 4096
                while budget > 0, let frames = try workers.receive(dontWait: true) {
                    budget -= 1
                    guard frames.count == 2 else { continue }
                    let reply = CoordinatorMessage.notLeader(leader: leader?.live == true ? leader?.workers ?? "" : "")
                    _ = try? workers.send([frames[0], codec.encode(reply)], dontWait: true)
                }
            }
            if poller.isReadable(ci) {
                var budget = 256
                while budget > 0, let (frames, peerKey, _) = try clients.receiveWithPeer(dontWait: true) {
                    budget -= 1
                    guard frames.count >= 2, let payload = frames.last else { continue }
                    let route = Array(frames.dropLast())
                    let reply: ClientReply
                    if let request = try? codec.decode(ClientRequest.self, from: payload) {
                        switch admit(request, key: peerKey) {
                        case .refuse(let right, let problem):
                            telemetry.refusals.refused(right)
                            reply = .error(code: ClientReply.notAuthorized, message: problem)
                        case .admit(let admitted) where admitted.isReadOnlyQuery:
                            if queries == nil {
                                queries = QueryService(reader: try store.reader(), board: LiveBoard(), telemetry: telemetry, wallClock: { [time] in time.wallInstant })
                            }
                            reply = queries!.answer(admitted)
                        case .admit:
                            let at = leader.map { $0.live && !$0.clients.isEmpty ? " at \($0.clients)" : "" } ?? ""
                            reply = .error(code: ClientReply.notLeader, message: "this coordinator stands by; send writes to the leading coordinator\(at)")
                        }
                    } else {
                        reply = .error(code: 2, message: "malformed request (\(payload.count) bytes)")
                    }
                    _ = try? clients.send(route + [codec.encode(reply)], dontWait: true)
                }
            }
        }
        return false
    }

    /// What workers and clients reach this coordinator at, for the lease row: the bound
    /// endpoints, unless bound to every address (then none: workers try their list in turn).
    static func advertised(_ endpoint: String) -> String {
        endpoint.contains("://0.0.0.0:") || endpoint.contains("://*:") || endpoint.contains("://[::]:") ? "" : endpoint
    }
}
