/* Branch-free float kernels that gcc vectorises; used by the cell and the softmax. */
#ifndef NAS_EVAL_MATHFUN_H
#define NAS_EVAL_MATHFUN_H

#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0 mostly (softmax after max-subtraction) but valid on [-87, 88]:
 * Cody-Waite range reduction and a degree-6 polynomial, ~2 ulp; no libm call, so the
 * loops around it vectorise. */
static inline float fast_expf(float x) {
    /* NaN-safe clamp: a NaN fails both comparisons and becomes -87, so n below is always a
     * small integer and the shift never sees a negative (a NaN input is caught upstream) */
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    /* round to nearest with the 1.5 * 2^23 trick: vectorises, unlike roundf */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float fast_sigmoidf(float x) { return 1.0f / (1.0f + fast_expf(-x)); }

/* tanh via exp of a non-positive argument, so it never overflows. */
static inline float fast_tanhf(float x) {
    float ax = x < 0 ? -x : x;
    float e = fast_expf(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0 ? -t : t;
}

#endif
