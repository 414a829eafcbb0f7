#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
// glibc's malloc tuning, which Swift's Glibc module does not export.
#include <malloc.h>

/// Gives free heap memory back to the system (glibc's malloc_trim); returns 1 if any was released.
static inline int CMalloc_trim(void) { return malloc_trim(0); }
#endif
