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
        let baseURL = configuration.baseURL
        let url = baseURL.hasSuffix("/") ? baseURL + "models" : baseURL + "/models"
        return withCurlGet(url, configuration, timeout: timeout, unavailable: "\(url): curl_easy_init failed") { h in
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
}
