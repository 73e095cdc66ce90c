/* 16-lane float vectors (GCC vector extensions): one source for every instruction set
 * (AVX-512 registers in the v4 clone, pairs/quads of narrower ones elsewhere) and the same
 * operation order everywhere, so results do not depend on which clone runs. */
#ifndef NAS_EVAL_VEC16_H
#define NAS_EVAL_VEC16_H

#include <stdint.h>
#include <string.h>

/* 64-byte vectors are passed between these always-inlined helpers only, never across an
 * ABI boundary, so the warning that narrower targets would pass them differently does
 * not apply (kept off for the rest of the translation unit, where they are inlined). */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

static inline v16f v16_load(const float *p) { v16f v; memcpy(&v, p, sizeof v); return v; }
static inline void v16_store(float *p, v16f v) { memcpy(p, &v, sizeof v); }
static inline v16f v16_splat(float x) { return (v16f){0} + x; }

static inline v16f v16_select(v16i mask, v16f a, v16f b) {
    return (v16f)(((v16i)a & mask) | ((v16i)b & ~mask));
}
static inline v16f v16_max(v16f a, v16f b) { return v16_select(a > b, a, b); }
static inline v16f v16_min(v16f a, v16f b) { return v16_select(a < b, a, b); }

/* the lane-wise twin of fast_expf (mathfun.h): same constants, same operation order */
static inline v16f v16_exp(v16f x) {
    x = v16_min(v16_max(x, v16_splat(-87.0f)), v16_splat(88.0f));
    v16f n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    v16f r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    v16f p = v16_splat(1.0f / 720.0f);
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    v16i bits = (__builtin_convertvector(n, v16i) + 127) << 23;
    return p * (v16f)bits;
}

static inline float v16_hmax(v16f v) {
    float m = v[0];
    for (int j = 1; j < 16; j++) m = v[j] > m ? v[j] : m;
    return m;
}

static inline float v16_hsum(v16f v) {
    float s = 0.0f;
    for (int j = 0; j < 16; j++) s += v[j];
    return s;
}

#endif
