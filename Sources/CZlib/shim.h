#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2 and inflateInit2 are macros (they pass the library version and the stream's
/// size), which Swift cannot import. windowBits 15 + 16 selects the gzip format.
static inline int CZlib_deflateInitGzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
static inline int CZlib_inflateInitGzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
#endif
