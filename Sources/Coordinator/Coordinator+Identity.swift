import AgentFlowCore
import Foundation
import Synchronization
import Wire
import ZeroMQ

/// Who may connect and which worker names each key may register (issue 12). Shared between the
/// coordinator's thread (the ZAP handler and `register` read it) and whoever reloads it (the
/// CLI's SIGHUP handler); a reload changes what new handshakes and registrations see and
/// leaves every connection that is already up alone.
public final class WorkerIdentities: Sendable {
    /// Keys the ZAP handler admits: authorizedKeys plus every key that owns a worker name, or
    /// any key when authorizedKeys is empty.
    public let allowList: KeyAllowList
    private let book: Mutex<WorkerKeyBook>

    public init(authorizedKeys: [String], book: WorkerKeyBook) {
        allowList = KeyAllowList()
        self.book = Mutex(book)
        replace(authorizedKeys: authorizedKeys, book: book)
    }

    public func replace(authorizedKeys: [String], book new: WorkerKeyBook) {
        allowList.replace(with: authorizedKeys.isEmpty ? [] : Set(authorizedKeys).union(new.keys))
        book.withLock { $0 = new }
    }

    public var current: WorkerKeyBook { book.withLock { $0 } }
}

extension Coordinator {
    /// Why a registration is refused, or nil to admit it: the key must own the name when names
    /// are bound to keys, and a name alive under another key stays with that key.
    func refusal(_ info: WorkerInfo, key: String?, identity: Data) -> String? {
        if workerName(identity) != info.name {
            return "the connection's routing id '\(String(decoding: identity, as: UTF8.self))' does not belong to worker name '\(info.name)'"
        }
        let book = options.identities?.current ?? WorkerKeyBook()
        if !book.allows(key: key, name: info.name) {
            guard let key else { return "worker names are bound to CURVE keys here and this connection has none" }
            let owned = book.patterns(of: key)
            return "key \(key) may not register as '\(info.name)'"
                + (owned.isEmpty ? " (it owns no worker name: enrol it with agentflow keys enroll NAME)" : " (it owns: \(owned.joined(separator: ", ")))")
        }
        if let previous = workers[info.name], previous.alive, previous.identity != identity,
           let old = previous.key, let key, old != key {
            return "worker name '\(info.name)' is in use by a live worker with another key (\(old)); pick another name or stop that worker"
        }
        return nil
    }

    /// The name a ROUTER identity belongs to: workers connect as `NAME#SUFFIX`, a suffix unique to
    /// the process, so a second process cannot take over a live worker's connection.
    func workerName(_ identity: Data) -> String {
        let text = String(decoding: identity, as: UTF8.self)
        guard let hash = text.lastIndex(of: "#") else { return text }
        return String(text[..<hash])
    }
}
