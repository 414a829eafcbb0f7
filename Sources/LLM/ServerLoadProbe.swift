import CCurl
import Foundation

/// Asks an OpenAI-compatible model server how loaded it is, where it says: `GET /metrics`
/// (vLLM's `vllm:num_requests_running`/`vllm:num_requests_waiting`; llama.cpp's
/// `llamacpp:requests_processing`/`llamacpp:requests_deferred` when started with `--metrics`),
/// else `GET /slots` (llama.cpp's server: the slots that are processing). Both live at the
/// server's root, beside `/v1`. A server with neither (llama-cpp-python's, Ollama, a hosted
/// API) gives nil. Each request is bounded: `timeout` seconds, at most ``maxBytes`` read.
public enum ServerLoadProbe {
    /// Requests the server is serving, and requests waiting for a slot.
    public typealias Load = (running: Int, waiting: Int)

    /// More than any real metrics page or slot list; a longer answer is not read.
    public static let maxBytes = 1 << 20
    /// Counts above this are capped (a server saying more is as busy as can be).
    public static let maxCount = 1 << 20

    public static func load(_ configuration: ChatClient.Configuration, timeout: Double = 1) -> Load? {
        let root = serverRoot(configuration.baseURL)
        if let body = get(root + "/metrics", configuration, timeout: timeout), let load = parseMetrics(String(decoding: body, as: UTF8.self)) {
            return load
        }
        if let body = get(root + "/slots", configuration, timeout: timeout), let load = parseSlots(body) { return load }
        return nil
    }

    /// The server's root for an OpenAI base URL: `http://h:8000/v1` → `http://h:8000`.
    public static func serverRoot(_ baseURL: String) -> String {
        var s = baseURL
        while s.hasSuffix("/") { s.removeLast() }
        if s.hasSuffix("/v1") { s.removeLast(3) }
        return s
    }

    /// The load a Prometheus text page states, or nil when it has none of the counts above.
    /// Samples of one metric are summed over their labels (vLLM has one per engine or model).
    public static func parseMetrics(_ text: String) -> Load? {
        var running: Double?
        var waiting: Double?
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            guard let (name, value) = sample(line) else { continue }
            switch name {
            case "vllm:num_requests_running", "llamacpp:requests_processing": running = (running ?? 0) + value
            case "vllm:num_requests_waiting", "llamacpp:requests_deferred": waiting = (waiting ?? 0) + value
            default: continue
            }
        }
        guard running != nil || waiting != nil else { return nil }
        return (count(running ?? 0), count(waiting ?? 0))
    }

    /// The load llama.cpp's `/slots` states: the slots processing a request (`is_processing`,
    /// or a non-zero `state` in older servers); it does not say what waits. Nil for anything
    /// but an array of objects.
    public static func parseSlots(_ body: Data) -> Load? {
        guard let slots = try? JSONSerialization.jsonObject(with: body) as? [Any], !slots.isEmpty else { return nil }
        var processing = 0
        for slot in slots {
            guard let object = slot as? [String: Any] else { return nil }
            if let busy = object["is_processing"] as? Bool {
                if busy { processing += 1 }
            } else if let state = object["state"] as? Int {
                if state != 0 { processing += 1 }
            } else {
                return nil
            }
        }
        return (processing, 0)
    }

    /// One sample line's metric name and value (`name{labels} value [timestamp]`).
    static func sample(_ line: Substring) -> (Substring, Double)? {
        let nameEnd = line.firstIndex { $0 == "{" || $0 == " " || $0 == "\t" } ?? line.endIndex
        let name = line[..<nameEnd]
        var rest = line[nameEnd...]
        if rest.first == "{" {
            // Label values are quoted and may hold spaces; the value follows the last brace.
            guard let close = rest.lastIndex(of: "}") else { return nil }
            rest = rest[rest.index(after: close)...]
        }
        guard let token = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).first, let value = Double(token) else { return nil }
        return (name, value)
    }

    /// A count from a metric value: NaN and negatives are 0, the rest capped.
    static func count(_ value: Double) -> Int {
        guard value.isFinite else { return value == .infinity ? maxCount : 0 }
        return Int(min(max(0, value.rounded()), Double(maxCount)))
    }

    /// The body of a 200 answer, or nil (any failure, another status, too long).
    static func get(_ url: String, _ configuration: ChatClient.Configuration, timeout: Double) -> Data? {
        withCurlGet(url, configuration, timeout: timeout, unavailable: nil) { h in
            let sink = BoundedSink()
            let me = Unmanaged.passUnretained(sink).toOpaque()
            _ = CCurl_setopt_pointer(h, CURLOPT_WRITEDATA, me)
            _ = CCurl_setopt_write_function(h) { pointer, size, count, userdata in
                let sink = Unmanaged<BoundedSink>.fromOpaque(userdata!).takeUnretainedValue()
                let n = size * count
                guard let pointer, sink.data.count + n <= ServerLoadProbe.maxBytes else { return 0 }
                sink.data.append(UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: n)
                return n
            }
            let code = withExtendedLifetime(sink) { curl_easy_perform(h) }
            guard code == CURLE_OK else { return nil }
            var status = 0
            _ = CCurl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
            return status == 200 ? sink.data : nil
        }
    }
}

/// The body read so far (one request, one thread).
private final class BoundedSink {
    var data = Data()
}
