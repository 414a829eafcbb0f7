import CCurl

/// A GET through libcurl as the server probes send one (``ServerProbe``, ``ServerLoadProbe``):
/// the client's headers and CA file, `timeout` seconds both to connect and in all. `perform` is
/// handed the easy handle to say where the body goes, run it and read what it needs; when no
/// handle can be made the answer is `unavailable`.
func withCurlGet<T>(_ url: String, _ configuration: ChatClient.Configuration, timeout: Double, unavailable: T,
                    _ perform: (UnsafeMutableRawPointer) -> T) -> T {
    _ = curlGlobalInit
    guard let h = curl_easy_init() else { return unavailable }
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
    return perform(h)
}
