import Foundation

/// Whether something listens on 127.0.0.1:`port`.
public func listening(on port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// Whether the real-model tests run: when the model server of `tools/start-models.sh` listens
/// on `port`, and always when the test command demands it (`make test` sets
/// AGENTFLOW_REQUIRE_MODELS=1), so a missing server fails those tests instead of skipping them.
public func realModelTestsEnabled(port: UInt16 = 8198) -> Bool {
    ProcessInfo.processInfo.environment["AGENTFLOW_REQUIRE_MODELS"] == "1" || listening(on: port)
}
