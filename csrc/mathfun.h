/* Branch-free float kernels that gcc vectorises; used by the cell and the softmax. */
#ifndef NAS_EVAL_MATHFUN_H
#define NAS_EVAL_MATHFUN_H

#include <stdint.h>
#include <string.h>

/* exp(x) = 2^n exp(r): n = round(x / ln 2), r = x - n ln 2 with ln 2 in two parts
 * (Cody-Waite range reduction), exp(r) by a degree-6 polynomial; ~2 ulp on [-87, 88], no
 * libm call, so the loops around it vectorise. The rounding and the polynomial are written
 * once here, over any type T with float arithmetic: for floats (fast_expf) and for the
 * softmax's float vectors (elementwise.h), so that every version has the same constants in
 * the same operation order and gives the same bits. The clamp and 2^n, which need each
 * type's own comparisons and integer conversion, are the callers'.
 * Defines T name_round(T x), n, and T name_poly(T x, T n), exp(x - n ln 2). */
#define EXP_STEPS(name, T)                                                                  \
    /* round to nearest with the 1.5 * 2^23 trick: vectorises, unlike roundf */             \
    static inline __attribute__((always_inline)) T name##_round(T x) {                      \
        return (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;                      \
    }                                                                                       \
    static inline __attribute__((always_inline)) T name##_poly(T x, T n) {                  \
        T r = x - n * 0.693145751953125f;                                                   \
        r = r - n * 1.428606765330187045e-06f;                                              \
        T p = (T){0} + 1.0f / 720.0f;                                                       \
        p = p * r + 1.0f / 120.0f;                                                          \
        p = p * r + 1.0f / 24.0f;                                                           \
        p = p * r + 1.0f / 6.0f;                                                            \
        p = p * r + 0.5f;                                                                   \
        p = p * r + 1.0f;                                                                   \
        p = p * r + 1.0f;                                                                   \
        return p;                                                                           \
    }

EXP_STEPS(fast_expf, float)

/* exp(x) for x <= 0 mostly (softmax after max-subtraction) but valid on [-87, 88] */
static inline float fast_expf(float x) {
    /* NaN-safe clamp: a NaN fails both comparisons and becomes -87, so n below is always a
     * small integer and the shift never sees a negative (a NaN input is caught upstream) */
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    float n = fast_expf_round(x);
    float p = fast_expf_poly(x, n);
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
