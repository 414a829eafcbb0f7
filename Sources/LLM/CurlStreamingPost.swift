import AgentFlowCore
import CCurl
import Foundation

/// libcurl must be initialised once per process before any thread uses it.
/// Swift runs a global's initialiser exactly once, thread-safely.
let curlGlobalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

/// One blocking HTTP POST with libcurl's easy interface whose response body is handed to a
/// closure as it arrives, on the calling thread. It stops early when a ``CancellationFlag`` is
/// raised, the deadline passes on the clock it is given, no byte arrives for `stallTimeout` once the response has
/// started (`firstByteTimeout` before that), or the body closure returns an error. See https://curl.se/libcurl/c/curl_easy_perform.html
///
/// Not thread-safe and not `Sendable`: one instance serves one `perform()` on one thread; libcurl
/// calls the callbacks on that thread. Only the cancellation flag is shared with other threads.
final class CurlStreamingPost {
    enum StopReason {
        case cancelled, deadline, stalled
        case body(LLMError)
    }

    struct Outcome {
        var code: CURLcode
        var status: Int
        var retryAfter: Duration
        /// Set when a callback aborted the transfer.
        var stopped: StopReason?
        /// The body of a non-2xx response (its first 64 KiB).
        var errorBody: String
        var curlMessage: String
    }

    private let url: String
    private let body: String
    private let headers: [String]
    private let caFile: String?
    private let connectTimeout: Duration
    private let totalTimeout: Duration
    private let stallTimeout: Duration
    private let firstByteTimeout: Duration
    private let deadline: MonotonicInstant?
    private let time: any TimeSource
    private let cancel: CancellationFlag?
    private let onBody: (UnsafeRawBufferPointer) -> LLMError?

    private var handle: UnsafeMutableRawPointer?
    private var status = 0
    private var stopped: StopReason?
    private var errorBody: [UInt8] = []
    private var lastByteAt: MonotonicInstant
    private var receivedAny = false

    init(
        url: String, body: String, headers: [String], caFile: String? = nil, connectTimeout: Duration, totalTimeout: Duration,
        stallTimeout: Duration, firstByteTimeout: Duration, deadline: MonotonicInstant?, time: any TimeSource, cancel: CancellationFlag?,
        onBody: @escaping (UnsafeRawBufferPointer) -> LLMError?
    ) {
        self.url = url
        self.body = body
        self.headers = headers
        self.caFile = caFile
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.stallTimeout = stallTimeout
        self.firstByteTimeout = firstByteTimeout
        self.deadline = deadline
        self.time = time
        self.lastByteAt = time.instant
        self.cancel = cancel
        self.onBody = onBody
    }

    /// Runs the request to its end on the calling thread.
    func perform() -> Outcome {
        _ = curlGlobalInit
        guard let h = curl_easy_init() else {
            return Outcome(code: CURLE_FAILED_INIT, status: 0, retryAfter: .zero, stopped: nil, errorBody: "", curlMessage: "curl_easy_init failed")
        }
        handle = h
        defer {
            curl_easy_cleanup(h)
            handle = nil
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in headers { list = curl_slist_append(list, header) }
        defer { curl_slist_free_all(list) }

        // libcurl runs on real time: its limit is what the given clock says is left.
        var timeout = totalTimeout
        if let deadline { timeout = min(timeout, deadline.remaining(at: time.instant)) }

        _ = CCurl_setopt_string(h, CURLOPT_URL, url)
        _ = CCurl_setopt_slist(h, CURLOPT_HTTPHEADER, list)
        _ = CCurl_setopt_long(h, CURLOPT_POST, 1)
        _ = CCurl_setopt_long(h, CURLOPT_POSTFIELDSIZE, body.utf8.count)
        _ = CCurl_setopt_string(h, CURLOPT_COPYPOSTFIELDS, body)
        _ = CCurl_setopt_long(h, CURLOPT_NOSIGNAL, 1)  // no SIGALRM in a threaded process
        _ = CCurl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(connectTimeout))
        _ = CCurl_setopt_long(h, CURLOPT_TIMEOUT_MS, Self.milliseconds(timeout))
        _ = CCurl_setopt_long(h, CURLOPT_TCP_NODELAY, 1)
        // https: the system trust store unless the backend names its own CA file.
        if let caFile { _ = CCurl_setopt_string(h, CURLOPT_CAINFO, caFile) }

        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = CCurl_setopt_pointer(h, CURLOPT_WRITEDATA, me)
        _ = CCurl_setopt_write_function(h) { pointer, size, count, userdata in
            let transfer = Unmanaged<CurlStreamingPost>.fromOpaque(userdata!).takeUnretainedValue()
            let n = size * count
            return transfer.receive(UnsafeRawBufferPointer(start: pointer, count: n)) ? n : 0
        }
        _ = CCurl_setopt_long(h, CURLOPT_NOPROGRESS, 0)
        _ = CCurl_setopt_pointer(h, CURLOPT_XFERINFODATA, me)
        _ = CCurl_setopt_xferinfo_function(h) { userdata, _, _, _, _ in
            let transfer = Unmanaged<CurlStreamingPost>.fromOpaque(userdata!).takeUnretainedValue()
            return transfer.shouldContinue() ? 0 : 1
        }

        lastByteAt = time.instant
        let code = curl_easy_perform(h)
        var responseCode = 0
        _ = CCurl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &responseCode)
        if status == 0 { status = responseCode }
        let retryAfter = Duration.seconds(max(0, min(Int(CCurl_retry_after(h)), 86_400)))
        return Outcome(
            code: code, status: status, retryAfter: retryAfter, stopped: stopped,
            errorBody: String(decoding: errorBody, as: UTF8.self),
            curlMessage: String(cString: curl_easy_strerror(code))
        )
    }

    /// How long since the last byte of the body arrived, on the given clock.
    var sinceLastByte: Duration { time.instant - lastByteAt }

    /// A libcurl time limit: whole milliseconds, at least 1 (0 would mean none).
    static func milliseconds(_ span: Duration) -> Int { max(1, Int(min(span, .seconds(Limits.maxSeconds)) / .milliseconds(1))) }

    private func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        lastByteAt = time.instant
        receivedAny = true
        if status == 0, let handle {
            var code = 0
            _ = CCurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
            status = code
        }
        guard (200..<300).contains(status) else {
            if errorBody.count < 65536 { errorBody.append(contentsOf: bytes.prefix(65536 - errorBody.count)) }
            return true
        }
        if let error = onBody(bytes) {
            stopped = .body(error)
            return false
        }
        return shouldContinue()
    }

    private func shouldContinue() -> Bool {
        if stopped != nil { return false }
        if cancel?.isCancelled == true {
            stopped = .cancelled
        } else if let deadline, time.instant >= deadline {
            stopped = .deadline
        } else if sinceLastByte >= (receivedAny ? stallTimeout : firstByteTimeout) {
            // Before the first byte the request may be queued behind others on the server (a
            // worker's slots share one server): that wait has its own, longer limit.
            stopped = .stalled
        }
        return stopped == nil
    }
}
