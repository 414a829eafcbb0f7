#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H
#include <curl/curl.h>

/// curl_easy_setopt is variadic; Swift calls these typed wrappers instead.
static inline CURLcode CCurl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode CCurl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode CCurl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode CCurl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
typedef size_t (*CCurl_write_callback)(char *, size_t, size_t, void *);
static inline CURLcode CCurl_setopt_write_function(CURL *h, CCurl_write_callback f) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, f); }
typedef int (*CCurl_xferinfo_callback)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
static inline CURLcode CCurl_setopt_xferinfo_function(CURL *h, CCurl_xferinfo_callback f) { return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f); }
static inline CURLcode CCurl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode CCurl_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode CCurl_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
/// Seconds the server asked to wait in a Retry-After header of the last response, or 0.
static inline curl_off_t CCurl_retry_after(CURL *h) {
#if LIBCURL_VERSION_NUM >= 0x074200
    curl_off_t v = 0;
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &v) != CURLE_OK) return 0;
    return v;
#else
    return 0;
#endif
}
#endif
