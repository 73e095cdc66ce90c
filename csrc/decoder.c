#include "decoder.h"

#include <math.h>
#include <string.h>

#include "blas.h"
#include "mathfun.h"
#include "simd.h"
#include "vec16.h"

/* Adds the bias, turns the row into exp(l - max) and returns the log-sum-exp;
 * *target_logit receives the target's logit before the transform. */
SIMD_CLONES static float row_exp(int V, float *restrict l, const float *restrict bias,
                                 int target, float *target_logit, float *sum_out) {
    v16f m = v16_splat(-INFINITY);
    int v = 0;
    for (; v + 16 <= V; v += 16) {
        v16f x = v16_load(l + v) + v16_load(bias + v);
        v16_store(l + v, x);
        m = v16_max(x, m);
    }
    float mx = v16_hmax(m);
    for (; v < V; v++) {
        l[v] += bias[v];
        mx = l[v] > mx ? l[v] : mx;
    }
    *target_logit = l[target];
    v16f s = v16_splat(0.0f), vmx = v16_splat(mx);
    for (v = 0; v + 16 <= V; v += 16) {
        v16f e = v16_exp(v16_load(l + v) - vmx);
        v16_store(l + v, e);
        s += e;
    }
    float sum = v16_hsum(s);
    for (; v < V; v++) {
        float e = fast_expf(l[v] - mx);
        l[v] = e;
        sum += e;
    }
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
