import CCurl
import Foundation

/// Whether an OpenAI-compatible server answers: one `GET {baseURL}/models` through libcurl.
public enum ServerProbe {
    /// `nil` when the server answers 2xx within `timeout` seconds; otherwise what went wrong,
    /// naming the URL ("http://127.0.0.1:8198/v1/models: Couldn't connect to server").
    public static func problem(baseURL: String, timeout: Double = 3) -> String? {
        _ = curlGlobalInit
        let url = baseURL.hasSuffix("/") ? baseURL + "models" : baseURL + "/models"
        guard let h = curl_easy_init() else { return "\(url): curl_easy_init failed" }
        defer { curl_easy_cleanup(h) }
        _ = CCurl_setopt_string(h, CURLOPT_URL, url)
        _ = CCurl_setopt_long(h, CURLOPT_HTTPGET, 1)
        _ = CCurl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = CCurl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(timeout * 1000)))
        _ = CCurl_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, Int(timeout * 1000)))
        // The body (the model list) is not needed: count it and let it go.
        _ = CCurl_setopt_write_function(h) { _, size, count, _ in size * count }
        let code = curl_easy_perform(h)
        guard code == CURLE_OK else { return "\(url): \(String(cString: curl_easy_strerror(code)))" }
        var status = 0
        _ = CCurl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return (200..<300).contains(status) ? nil : "\(url): HTTP \(status)"
    }
}
