import CCurl
import Foundation

/// Whether an OpenAI-compatible server answers: one `GET {baseURL}/models` through libcurl, with
/// the client's key, headers and CA file.
public enum ServerProbe {
    /// `nil` when the server answers 2xx within `timeout` seconds, or accepts the connection but
    /// is too busy to answer in time (a one-thread llama.cpp server that is generating can take
    /// longer than that for its model list; it is up, and requests queue there); otherwise what
    /// went wrong, naming the URL ("http://127.0.0.1:8198/v1/models: Couldn't connect to server",
    /// "…/models: the backend refused the key (HTTP 401)").
    public static func problem(baseURL: String, timeout: Double = 3) -> String? {
        problem(ChatClient.Configuration(baseURL: baseURL), timeout: timeout)
    }

    public static func problem(_ configuration: ChatClient.Configuration, timeout: Double = 3) -> String? {
        _ = curlGlobalInit
        let baseURL = configuration.baseURL
        let url = baseURL.hasSuffix("/") ? baseURL + "models" : baseURL + "/models"
        guard let h = curl_easy_init() else { return "\(url): curl_easy_init failed" }
        defer { curl_easy_cleanup(h) }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in configuration.requestHeaders { list = curl_slist_append(list, header) }
        defer { curl_slist_free_all(list) }
        _ = CCurl_setopt_string(h, CURLOPT_URL, url)
        _ = CCurl_setopt_slist(h, CURLOPT_HTTPHEADER, list)
        _ = CCurl_setopt_long(h, CURLOPT_HTTPGET, 1)
        _ = CCurl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = CCurl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(timeout * 1000)))
        _ = CCurl_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, Int(timeout * 1000)))
        if let caFile = configuration.caFile { _ = CCurl_setopt_string(h, CURLOPT_CAINFO, caFile) }
        // The body (the model list) is not needed: count it and let it go.
        _ = CCurl_setopt_write_function(h) { _, size, count, _ in size * count }
        let code = curl_easy_perform(h)
        if code == CURLE_OPERATION_TIMEDOUT {
            var connected: curl_off_t = 0
            _ = CCurl_getinfo_off_t(h, CURLINFO_CONNECT_TIME_T, &connected)
            if connected > 0 { return nil }
        }
        guard code == CURLE_OK else {
            let curl = String(cString: curl_easy_strerror(code))
            return "\(url): " + (ChatClient.tlsProblem(code).map { "\($0): \(curl)" } ?? curl)
        }
        var status = 0
        _ = CCurl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        if status == 401 || status == 403 {
            return "\(url): " + ChatClient.refusedKey(status: status, body: "", keySent: configuration.apiKey != nil)
        }
        return (200..<300).contains(status) ? nil : "\(url): HTTP \(status)"
    }
}
