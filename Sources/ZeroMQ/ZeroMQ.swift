import CZeroMQ
import Foundation
import Synchronization

/// An error from libzmq, with the errno it set. The one place errno becomes a Swift error.
public struct ZMQError: Error, CustomStringConvertible, Equatable {
    public var code: Int32
    public var operation: String

    public var description: String { "\(operation): \(String(cString: zmq_strerror(code))) (errno \(code))" }

    /// The call was interrupted or would block; callers retry or poll again.
    public var isTransient: Bool { code == EINTR || code == EAGAIN }
}

/// Runs a libzmq call that returns -1 on failure, retrying on EINTR.
@discardableResult
func zmqCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let rc = body()
        if rc != -1 { return rc }
        let code = CZeroMQ_errno()
        if code == EINTR { continue }
        throw ZMQError(code: code, operation: operation())
    }
}

/// A ZeroMQ context. Thread-safe (libzmq guarantees it), so it may be shared.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() {
        handle = zmq_ctx_new()
        zmq_ctx_set(handle, ZMQ_IO_THREADS, 1)
    }

    /// Terminates the context; every socket must be closed first.
    deinit { zmq_ctx_term(handle) }
}

public enum SocketType {
    case router, dealer, pair, push, pull, req, rep

    var raw: Int32 {
        switch self {
        case .router: return ZMQ_ROUTER
        case .dealer: return ZMQ_DEALER
        case .pair: return ZMQ_PAIR
        case .push: return ZMQ_PUSH
        case .pull: return ZMQ_PULL
        case .req: return ZMQ_REQ
        case .rep: return ZMQ_REP
        }
    }
}

/// A ZeroMQ socket. Not thread-safe (libzmq's rule): a socket belongs to the one thread that
/// created it, and every other thread reaches it through that thread's queue. The type is
/// deliberately not `Sendable` so the compiler enforces this.
public final class ZMQSocket {
    let handle: UnsafeMutableRawPointer
    /// Keeps the context alive as long as any of its sockets.
    let context: ZMQContext
    private var closed = false

    public init(_ context: ZMQContext, _ type: SocketType) throws(ZMQError) {
        guard let h = zmq_socket(context.handle, type.raw) else {
            throw ZMQError(code: CZeroMQ_errno(), operation: "zmq_socket")
        }
        self.handle = h
        self.context = context
        try setOption(ZMQ_LINGER, 0)
    }

    deinit { close() }

    public func close() {
        if !closed {
            zmq_close(handle)
            closed = true
        }
    }

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        try zmqCall("zmq_setsockopt(\(option))") { zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) }
    }

    public func setOption(_ option: Int32, _ value: [UInt8]) throws(ZMQError) {
        try zmqCall("zmq_setsockopt(\(option))") { value.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) } }
    }

    /// How long `close` may keep sending what is queued (a goodbye), in seconds; 0 by default.
    public func setLinger(seconds: Double) throws(ZMQError) { try setOption(ZMQ_LINGER, Int32(max(0, min(seconds, 60)) * 1000)) }

    /// Sets the routing id peers see for this socket (DEALER identity).
    /// How long `close()` waits for queued messages to leave (0: drop them at once, the default here).
    public func setLinger(milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_LINGER, milliseconds) }

    public func setIdentity(_ id: String) throws(ZMQError) { try setOption(ZMQ_ROUTING_ID, Array(id.utf8)) }

    /// Makes this socket a CURVE server with the given Z85 secret key: traffic is encrypted and
    /// only peers that know the matching public key can connect.
    public func setCurveServer(secretKey: String) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVER, 1)
        try setOption(ZMQ_CURVE_SECRETKEY, Array(secretKey.utf8) + [0])
    }

    /// Makes this socket a CURVE client of the server whose Z85 public key is `serverKey`.
    public func setCurveClient(serverKey: String, keys: CurveKeyPair) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVERKEY, Array(serverKey.utf8) + [0])
        try setOption(ZMQ_CURVE_PUBLICKEY, Array(keys.publicKey.utf8) + [0])
        try setOption(ZMQ_CURVE_SECRETKEY, Array(keys.secretKey.utf8) + [0])
    }

    /// ROUTER: a peer that reconnects with a routing id already in use takes it over.
    public func setRouterHandover() throws(ZMQError) { try setOption(ZMQ_ROUTER_HANDOVER, 1) }

    /// Queue limits; 0 = unlimited. The coordinator raises them so bursts are not dropped.
    public func setHighWaterMarks(send: Int32, receive: Int32) throws(ZMQError) {
        try setOption(ZMQ_SNDHWM, send)
        try setOption(ZMQ_RCVHWM, receive)
    }

    /// Largest message accepted; larger ones are dropped by libzmq (and the peer disconnected).
    public func setMaxMessageSize(_ bytes: Int64) throws(ZMQError) {
        var v = bytes
        try zmqCall("zmq_setsockopt(ZMQ_MAXMSGSIZE)") { zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size) }
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        try zmqCall("zmq_bind(\(endpoint))") { zmq_bind(handle, endpoint) }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        try zmqCall("zmq_connect(\(endpoint))") { zmq_connect(handle, endpoint) }
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*` to a port).
    public func lastEndpoint() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        var size = buf.count
        zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buf, &size)
        return cString(buf)
    }

    /// Sends a multipart message. With `dontWait`, returns false instead of blocking when the
    /// peer's queue is full or (ROUTER with mandatory routing) the peer is unknown.
    @discardableResult
    public func send(_ frames: [Data], dontWait: Bool = false) throws(ZMQError) -> Bool {
        for (i, frame) in frames.enumerated() {
            var flags: Int32 = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if rc == -1 {
                let code = CZeroMQ_errno()
                if code == EAGAIN || code == EHOSTUNREACH { return false }
                throw ZMQError(code: code, operation: "zmq_send")
            }
        }
        return true
    }

    /// Receives one whole multipart message, or `nil` when none is waiting and `dontWait` is set.
    public func receive(dontWait: Bool = false) throws(ZMQError) -> [Data]? {
        try receive(dontWait: dontWait, peerKey: nil)
    }

    /// Receives one message and the CURVE public key (Z85) its sender authenticated with — the
    /// user id the ZAP handler gave the connection; nil without CURVE.
    public func receiveWithPeerKey(dontWait: Bool = false) throws(ZMQError) -> (frames: [Data], peerKey: String?)? {
        var key: String?
        guard let frames = try receive(dontWait: dontWait, peerKey: &key) else { return nil }
        return (frames, key)
    }

    /// Receives one message, the CURVE key its sender authenticated with (nil without CURVE) and
    /// the sender's IP address (`Peer-Address`: tcp only; nil for ipc and inproc peers).
    public func receiveWithPeer(dontWait: Bool = false) throws(ZMQError) -> (frames: [Data], peerKey: String?, peerAddress: String?)? {
        var key: String?, address: String?
        guard let frames = try receive(dontWait: dontWait, peerKey: &key, peerAddress: &address) else { return nil }
        return (frames, key, address)
    }

    private func receive(dontWait: Bool, peerKey: UnsafeMutablePointer<String?>?,
                         peerAddress: UnsafeMutablePointer<String?>? = nil) throws(ZMQError) -> [Data]? {
        var frames: [Data] = []
        var msg = zmq_msg_t()
        zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        repeat {
            let rc = zmq_msg_recv(&msg, handle, dontWait ? ZMQ_DONTWAIT : 0)
            if rc == -1 {
                let code = CZeroMQ_errno()
                if code == EAGAIN && frames.isEmpty { return nil }
                if code == EINTR && frames.isEmpty { return nil }
                if code == EAGAIN || code == EINTR { continue }
                throw ZMQError(code: code, operation: "zmq_msg_recv")
            }
            // A ROUTER's routing-id frame is made locally and carries no metadata; the peer's frames do.
            if let peerKey, peerKey.pointee == nil, let id = zmq_msg_gets(&msg, "User-Id") {
                let text = String(cString: id)
                peerKey.pointee = text.isEmpty ? nil : text
            }
            if let peerAddress, peerAddress.pointee == nil, let a = zmq_msg_gets(&msg, "Peer-Address") {
                let text = String(cString: a)
                peerAddress.pointee = text.isEmpty ? nil : text
            }
            frames.append(Data(bytes: zmq_msg_data(&msg), count: zmq_msg_size(&msg)))
        } while zmq_msg_more(&msg) != 0
        return frames
    }
}

/// Waits for input on sockets and plain file descriptors (the wake-up pipe of a thread's queue).
public struct ZMQPoller {
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Adds a socket; returns its index for `isReadable`.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    @discardableResult
    public mutating func add(fd: Int32) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    /// Waits up to `timeout` seconds (negative: forever). Returns how many items are readable.
    @discardableResult
    public mutating func poll(timeout: Double) throws(ZMQError) -> Int {
        let ms = timeout < 0 ? -1 : Int(min(timeout * 1000, 3_600_000).rounded(.up))
        let count = items.count
        let rc = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32(count), ms) }
        if rc == -1 {
            let code = CZeroMQ_errno()
            if code == EINTR { return 0 }
            throw ZMQError(code: code, operation: "zmq_poll")
        }
        return Int(rc)
    }

    public func isReadable(_ index: Int) -> Bool { items[index].revents & Int16(ZMQ_POLLIN) != 0 }
}

/// A pipe whose read end a polling thread watches; any thread may `signal()` it to wake that
/// thread up after putting work in its queue.
public final class WakeupPipe: Sendable {
    public let readFD: Int32
    let writeFD: Int32

    public init() {
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        readFD = fds[0]
        writeFD = fds[1]
    }

    deinit {
        Foundation.close(readFD)
        Foundation.close(writeFD)
    }

    public func signal() {
        var b: UInt8 = 1
        _ = write(writeFD, &b, 1)
    }

    /// Empties the pipe; call after waking up, before draining the queue.
    public func drain() {
        var buf = [UInt8](repeating: 0, count: 256)
        while read(readFD, &buf, buf.count) > 0 {}
    }
}

/// The text of a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// libzmq's version, e.g. "4.3.4".
public func zmqVersion() -> String {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return "\(major).\(minor).\(patch)"
}

/// Lets another thread stop a running coordinator (or worker) loop.
public final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    public let pipe = WakeupPipe()

    public init() {}
    public var isSet: Bool { flag.load(ordering: .acquiring) }
    public func set() {
        flag.store(true, ordering: .releasing)
        pipe.signal()
    }
}


/// A CURVE key pair in Z85 text (40 characters each).
public struct CurveKeyPair: Sendable, Equatable {
    public var publicKey: String
    public var secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair from libzmq (libsodium).
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        try zmqCall("zmq_curve_keypair") { zmq_curve_keypair(&pub, &sec) }
        return CurveKeyPair(publicKey: cString(pub), secretKey: cString(sec))
    }

    /// Whether `key` is a well-formed Z85 CURVE key.
    public static func isValid(_ key: String) -> Bool {
        guard key.utf8.count == 40 else { return false }
        var out = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&out, key) != nil
    }

    /// The Z85 text of a 32-byte binary key (as ZAP delivers it).
    public static func z85(_ binary: Data) -> String? {
        guard binary.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        let ok = binary.withUnsafeBytes { zmq_z85_encode(&out, $0.bindMemory(to: UInt8.self).baseAddress, 32) }
        return ok == nil ? nil : cString(out)
    }
}

/// Whether this libzmq was built with CURVE support.
public var zmqHasCurve: Bool { zmq_has("curve") != 0 }

/// The client public keys a ZAP handler admits; empty = any. Any thread may replace the set
/// (the coordinator's SIGHUP reload); connections already made are not touched.
public final class KeyAllowList: Sendable {
    private let keys: Mutex<Set<String>>

    public init(_ keys: some Sequence<String> = []) { self.keys = Mutex(Set(keys)) }

    public func replace(with new: some Sequence<String>) {
        let set = Set(new)
        keys.withLock { $0 = set }
    }

    public func admits(_ key: String?) -> Bool {
        keys.withLock { $0.isEmpty || key.map($0.contains) == true }
    }
}

/// ZeroMQ's authentication protocol (ZAP, RFC 27) handler: libzmq asks it about every CURVE
/// handshake on the context; it allows the listed client public keys (or any, when the list
/// is empty — then the server key alone keeps strangers out). The key becomes the connection's
/// user id, which `receiveWithPeerKey` reads back per message. Owned by the thread that polls it.
public final class ZAPHandler {
    public let socket: ZMQSocket
    let allowed: KeyAllowList
    public private(set) var denied = 0
    /// The first few public keys refused (Z85), for the operator.
    public private(set) var deniedKeys: [String] = []

    public convenience init(_ context: ZMQContext, allowed: [String]) throws(ZMQError) {
        try self.init(context, allowList: KeyAllowList(allowed))
    }

    public init(_ context: ZMQContext, allowList: KeyAllowList) throws(ZMQError) {
        socket = try ZMQSocket(context, .rep)
        try socket.bind("inproc://zeromq.zap.01")
        self.allowed = allowList
    }

    /// Answers every pending request.
    public func serve() throws(ZMQError) {
        while let f = try socket.receive(dontWait: true) {
            guard f.count >= 6 else { continue }
            let requestID = f[1]
            let mechanism = String(decoding: f[5], as: UTF8.self)
            let key = f.count >= 7 ? CurveKeyPair.z85(f[6]) : nil
            let ok = mechanism == "CURVE" && allowed.admits(key)
            if !ok {
                denied += 1
                if deniedKeys.count < 16, let key, !deniedKeys.contains(key) { deniedKeys.append(key) }
            }
            try socket.send([Data("1.0".utf8), requestID, Data((ok ? "200" : "400").utf8), Data((ok ? "OK" : "key not allowed").utf8),
                             Data((ok ? key ?? "" : "").utf8), Data()])
        }
    }
}
