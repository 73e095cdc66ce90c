#include "optim.h"

#include "simd.h"

void spans_add(Spans *s, size_t off, size_t len) {
    /* merge with the previous span when contiguous: a standalone model is one span */
    if (s->n > 0 && s->off[s->n - 1] + s->len[s->n - 1] == off) {
        s->len[s->n - 1] += len;
        return;
    }
    s->off[s->n] = off;
    s->len[s->n] = len;
    s->n++;
}

/* float partial sums in fixed lanes, folded into a double per block of 4096: accurate
 * and identical on every instruction set. */
SIMD_CLONES static double sq_norm(const float *restrict g, size_t n) {
    double total = 0.0;
    for (size_t b = 0; b < n; b += 4096) {
        size_t e = b + 4096 < n ? b + 4096 : n;
        float acc[16] = {0};
        size_t i = b;
        for (; i + 16 <= e; i += 16)
            for (int j = 0; j < 16; j++) acc[j] += g[i + j] * g[i + j];
        for (; i < e; i++) acc[0] += g[i] * g[i];
        for (int j = 0; j < 16; j++) total += acc[j];
    }
    return total;
}

double grad_sq_norm(const float *g, const Spans *s) {
    double total = 0.0;
    for (int i = 0; i < s->n; i++) total += sq_norm(g + s->off[i], s->len[i]);
    return total;
}

SIMD_CLONES static void sgd(float *restrict p, const float *restrict g, size_t n, float lr,
                            float scale, float wd) {
    for (size_t i = 0; i < n; i++) p[i] -= lr * (scale * g[i] + wd * p[i]);
}

void sgd_update(float *p, const float *g, const Spans *s, float lr, float scale, float wd) {
    for (int i = 0; i < s->n; i++) sgd(p + s->off[i], g + s->off[i], s->len[i], lr, scale, wd);
}

SIMD_CLONES void average_update(float *restrict avg, const float *restrict p, size_t n,
                                long count) {
    float mu = 1.0f / (float)count;
    for (size_t i = 0; i < n; i++) avg[i] += (p[i] - avg[i]) * mu;
}
