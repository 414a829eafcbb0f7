import AgentFlowCore
import CCurl
import Foundation
import Synchronization
import Tracing

/// Sends ended spans to an OpenTelemetry collector over OTLP/HTTP (protobuf,
/// `Content-Type: application/x-protobuf`), from a thread of its own: spans are queued (at most
/// ``queueLimit``; past it the oldest are dropped and counted), posted in batches of up to
/// ``batchSize`` at least every ``interval``, each post bounded by ``timeout``. A batch the
/// collector does not take is tried once more, then dropped and counted; what went wrong is said
/// through `onProblem` at most once a minute. Nothing here can block or fail the caller.
public final class OTLPExporter: Sendable {
    public let url: String
    let resource: [(String, SpanAttribute)]
    let onProblem: @Sendable (String) -> Void
    public static let queueLimit = 8192
    public static let batchSize = 512
    public static let interval = 1.0
    public static let timeout = 5.0

    struct State {
        var queue: [FinishedSpan] = []
        var inFlight = 0
        var exported = 0
        var dropped = 0
        var stopping = false
        var lastProblemAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - url: where spans are posted (``AgentFlowCore/TelemetrySpec/tracesURL``).
    ///   - resource: the process's resource attributes (`service.name`, …).
    public init(url: String, resource: [(String, SpanAttribute)], onProblem: @escaping @Sendable (String) -> Void = { _ in }) {
        self.url = url
        self.resource = resource
        self.onProblem = onProblem
        _ = curlReady
        startThread(named: "otlp exporter") { [self] in run() }
    }

    /// Queues an ended span.
    public func export(_ span: FinishedSpan) {
        let full = state.withLock { s -> Bool in
            s.queue.append(span)
            if s.queue.count > Self.queueLimit {
                s.queue.removeFirst(s.queue.count - Self.queueLimit)
                s.dropped += 1
            }
            return s.queue.count >= Self.batchSize
        }
        if full { wake.signal() }
    }

    /// Spans exported and dropped so far.
    public var counts: (exported: Int, dropped: Int) { state.withLock { ($0.exported, $0.dropped) } }

    /// Waits until everything queued has been posted (or dropped), at most `timeout` seconds.
    @discardableResult
    public func flush(timeout: Double = 5) -> Bool {
        // Monotonic: a wall-clock step must neither cut the wait short nor stretch it.
        let end = ContinuousClock.now + .clampedSeconds(timeout)
        while ContinuousClock.now < end {
            if state.withLock({ $0.queue.isEmpty && $0.inFlight == 0 }) { return true }
            wake.signal()
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    /// Posts what is queued (at most `timeout` seconds) and stops the thread.
    public func shutdown(timeout: Double = 5) {
        flush(timeout: timeout)
        state.withLock { $0.stopping = true }
        wake.signal()
        _ = finished.wait(timeout: .now() + 1)
    }

    private func run() {
        defer { finished.signal() }
        while true {
            _ = wake.wait(timeout: .now() + Self.interval)
            while true {
                let (batch, stopping) = state.withLock { s -> ([FinishedSpan], Bool) in
                    let n = min(Self.batchSize, s.queue.count)
                    let batch = Array(s.queue.prefix(n))
                    s.queue.removeFirst(n)
                    s.inFlight = n
                    return (batch, s.stopping)
                }
                if batch.isEmpty {
                    if stopping { return }
                    break
                }
                let body = OTLPProtobuf.exportRequest(resource: resource, scope: "agentflow", version: String(wireFormatVersion), spans: batch)
                var problem = post(body)
                if problem != nil { problem = post(body) }
                state.withLock { s in
                    s.inFlight = 0
                    if problem == nil { s.exported += batch.count } else { s.dropped += batch.count }
                }
                if let problem { say("cannot export \(batch.count) span(s) to \(url): \(problem); they are dropped") }
            }
        }
    }

    private func say(_ problem: String) {
        let now = ContinuousClock.now
        let due = state.withLock { s -> Bool in
            if let last = s.lastProblemAt, now - last < .seconds(60) { return false }
            s.lastProblemAt = now
            return true
        }
        if due { onProblem(problem) }
    }

    /// One POST; nil when the collector took it (2xx), else what went wrong.
    private func post(_ body: [UInt8]) -> String? {
        guard let handle = curl_easy_init() else { return "libcurl could not start a transfer" }
        defer { curl_easy_cleanup(handle) }
        var headers: UnsafeMutablePointer<curl_slist>?
        headers = curl_slist_append(headers, "Content-Type: application/x-protobuf")
        headers = curl_slist_append(headers, "Expect:")
        defer { curl_slist_free_all(headers) }
        let discard: CCurl_write_callback = { _, size, count, _ in size * count }
        return body.withUnsafeBytes { raw -> String? in
            _ = CCurl_setopt_string(handle, CURLOPT_URL, url)
            _ = CCurl_setopt_long(handle, CURLOPT_POST, 1)
            _ = CCurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress))
            _ = CCurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, raw.count)
            _ = CCurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headers)
            _ = CCurl_setopt_write_function(handle, discard)
            _ = CCurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            _ = CCurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, 2000)
            _ = CCurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(Self.timeout * 1000))
            let code = curl_easy_perform(handle)
            guard code == CURLE_OK else { return String(cString: curl_easy_strerror(code)) }
            var status = 0
            _ = CCurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            return (200..<300).contains(status) ? nil : "HTTP \(status)"
        }
    }

    /// The OTLP protocol generation the exports follow (opentelemetry-proto v1).
    let wireFormatVersion = 1
}

/// libcurl is initialised once per process before the first transfer (thread-safe since 7.84).
let curlReady: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
