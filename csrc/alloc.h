/* The core's one allocator of float buffers: 64-byte aligned (a cache line, the widest
 * vector) and zeroed, so that no buffer starts with whatever the heap held. */
#ifndef NAS_EVAL_ALLOC_H
#define NAS_EVAL_ALLOC_H

#include <stdlib.h>
#include <string.h>

static inline float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes ? bytes : 64);
    return p;
}

#endif
