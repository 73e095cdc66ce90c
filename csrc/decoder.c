#include "decoder.h"

#include <math.h>
#include <string.h>

#include "blas.h"
#include "mathfun.h"
#include "simd.h"

#define LANES 16 /* fixed partial-reduction width: same sums on every instruction set */

/* Adds the bias, turns the row into exp(l - max) and returns the log-sum-exp;
 * *target_logit receives the target's logit before the transform. */
SIMD_CLONES static float row_exp(int V, float *restrict l, const float *restrict bias,
                                 int target, float *target_logit, float *sum_out) {
    float m[LANES], s[LANES];
    for (int j = 0; j < LANES; j++) { m[j] = -INFINITY; s[j] = 0.0f; }
    int v = 0;
    for (; v + LANES <= V; v += LANES)
        for (int j = 0; j < LANES; j++) {
            float x = l[v + j] + bias[v + j];
            l[v + j] = x;
            m[j] = x > m[j] ? x : m[j];
        }
    for (; v < V; v++) {
        l[v] += bias[v];
        m[0] = l[v] > m[0] ? l[v] : m[0];
    }
    float mx = m[0];
    for (int j = 1; j < LANES; j++) mx = m[j] > mx ? m[j] : mx;
    *target_logit = l[target];
    for (v = 0; v + LANES <= V; v += LANES)
        for (int j = 0; j < LANES; j++) {
            float e = fast_expf(l[v + j] - mx);
            l[v + j] = e;
            s[j] += e;
        }
    for (; v < V; v++) {
        float e = fast_expf(l[v] - mx);
        l[v] = e;
        s[0] += e;
    }
    float sum = 0.0f;
    for (int j = 0; j < LANES; j++) sum += s[j];
    *sum_out = sum;
    return mx + logf(sum);
}

/* exp row -> scale * (softmax - onehot); column sums into dbias */
SIMD_CLONES static void row_grad(int V, float *restrict l, float sum, int target, float scale,
                                 float *restrict dbias) {
    float inv = scale / sum;
    for (int v = 0; v < V; v++) {
        float g = l[v] * inv;
        l[v] = g;
        dbias[v] += g;
    }
    l[target] -= scale;
    dbias[target] -= scale;
}

double decoder_rows(int rows, int d, int V, const float *HD, const float *E,
                    const float *bias, const int32_t *targets, float *logits, int chunk,
                    float scale, float *dHD, float *dE, float *dbias) {
    double loss = 0.0;
    if (dHD) {
        memset(dbias, 0, (size_t)V * sizeof(float));
        if (rows == 0) memset(dE, 0, (size_t)V * d * sizeof(float));
    }
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        int nr = rows - r0 < chunk ? rows - r0 : chunk;
        const float *h = HD + (size_t)r0 * d;
        gemm(0, 1, nr, V, d, 1.0f, h, d, E, d, 0.0f, logits, V);
        for (int r = 0; r < nr; r++) {
            float *l = logits + (size_t)r * V, tl, sum;
            int target = targets[r0 + r];
            float lse = row_exp(V, l, bias, target, &tl, &sum);
            loss += (double)(lse - tl);
            if (dHD) row_grad(V, l, sum, target, scale, dbias);
        }
        if (!dHD) continue;
        gemm(0, 0, nr, d, V, 1.0f, logits, V, E, d, 0.0f, dHD + (size_t)r0 * d, d);
        gemm(1, 0, V, d, nr, 1.0f, logits, V, h, d, r0 == 0 ? 0.0f : 1.0f, dE, d);
    }
    return loss;
}
