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
