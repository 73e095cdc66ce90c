#include "cell.h"

#include <string.h>

#include "blas.h"
#include "mathfun.h"
#include "simd.h"

static inline __attribute__((always_inline)) float activate(int op, float x) {
    switch (op) {
    case OP_TANH: return fast_tanhf(x);
    case OP_RELU: return x > 0.0f ? x : 0.0f;
    case OP_SIGMOID: return fast_sigmoidf(x);
    default: return x;
    }
}

/* derivative of the activation, written in terms of its output f */
static inline __attribute__((always_inline)) float activate_grad(int op, float f) {
    switch (op) {
    case OP_TANH: return 1.0f - f * f;
    case OP_RELU: return f > 0.0f ? 1.0f : 0.0f;
    case OP_SIGMOID: return f * (1.0f - f);
    default: return 1.0f;
    }
}

/* [a | b] -> [c | f] with c = sigmoid(a), f = op(b); s = sp + c * (f - sp). */
static inline __attribute__((always_inline)) void node_forward_op(
        int op, int rows, int d, const float *restrict sp, float *restrict cf,
        float *restrict s) {
    for (int r = 0; r < rows; r++) {
        float *restrict c = cf + (size_t)r * 2 * d, *restrict f = c + d;
        const float *restrict p = sp + (size_t)r * d;
        float *restrict o = s + (size_t)r * d;
        for (int k = 0; k < d; k++) {
            float ck = fast_sigmoidf(c[k]);
            float fk = activate(op, f[k]);
            c[k] = ck;
            f[k] = fk;
            o[k] = p[k] + ck * (fk - p[k]);
        }
    }
}

SIMD_CLONES static void node_forward(int op, int rows, int d, const float *sp, float *cf,
                                     float *s) {
    switch (op) {
    case OP_TANH: node_forward_op(OP_TANH, rows, d, sp, cf, s); break;
    case OP_RELU: node_forward_op(OP_RELU, rows, d, sp, cf, s); break;
    case OP_SIGMOID: node_forward_op(OP_SIGMOID, rows, d, sp, cf, s); break;
    default: node_forward_op(OP_IDENTITY, rows, d, sp, cf, s); break;
    }
}

/* Given ds, overwrite [c | f] with [da | db] and add ds * (1 - c) into dsp
 * (or store it there when accumulate == 0). */
static inline __attribute__((always_inline)) void node_backward_op(
        int op, int rows, int d, const float *restrict ds, const float *restrict sp,
        float *restrict cf, float *restrict dsp, int accumulate) {
    for (int r = 0; r < rows; r++) {
        float *restrict c = cf + (size_t)r * 2 * d, *restrict f = c + d;
        const float *restrict p = sp + (size_t)r * d;
        const float *restrict g = ds + (size_t)r * d;
        float *restrict dp = dsp + (size_t)r * d;
        for (int k = 0; k < d; k++) {
            float ck = c[k], fk = f[k], gk = g[k];
            float carry = gk * (1.0f - ck);
            c[k] = gk * (fk - p[k]) * ck * (1.0f - ck);
            f[k] = gk * ck * activate_grad(op, fk);
            dp[k] = accumulate ? dp[k] + carry : carry;
        }
    }
}

SIMD_CLONES static void node_backward(int op, int rows, int d, const float *ds,
                                      const float *sp, float *cf, float *dsp, int accumulate) {
    switch (op) {
    case OP_TANH: node_backward_op(OP_TANH, rows, d, ds, sp, cf, dsp, accumulate); break;
    case OP_RELU: node_backward_op(OP_RELU, rows, d, ds, sp, cf, dsp, accumulate); break;
    case OP_SIGMOID: node_backward_op(OP_SIGMOID, rows, d, ds, sp, cf, dsp, accumulate); break;
    default: node_backward_op(OP_IDENTITY, rows, d, ds, sp, cf, dsp, accumulate); break;
    }
}

SIMD_CLONES static void mul_into(size_t n, const float *restrict x, const float *restrict m,
                                 float *restrict y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * m[i];
}

SIMD_CLONES static void add_mul(size_t n, const float *restrict x, const float *restrict m,
                                float *restrict y) {
    for (size_t i = 0; i < n; i++) y[i] += x[i] * m[i];
}

SIMD_CLONES static void add_into(size_t n, const float *restrict x, float *restrict y) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

SIMD_CLONES static void mean_of_outputs(const CellArch *a, size_t n, const float *S,
                                        size_t node_stride, float *h) {
    int count = 0;
    memset(h, 0, n * sizeof(float));
    for (int i = 1; i <= a->n; i++) {
        if (!a->out[i - 1]) continue;
        const float *restrict s = S + (size_t)i * node_stride;
        for (size_t k = 0; k < n; k++) h[k] += s[k];
        count++;
    }
    float inv = 1.0f / (float)count;
    for (size_t k = 0; k < n; k++) h[k] *= inv;
}

void cell_forward(const CellArch *a, int T, int B, int d, const float *w0h,
                  float *const *W, const float *mask_h, float *CF, float *S, float *H,
                  float *tmp) {
    const size_t bd = (size_t)B * d, rows = (size_t)T * B;
    const size_t s_stride = rows * d, cf_stride = rows * 2 * d;
    for (int t = 0; t < T; t++) {
        const float *hprev = H + t * bd;
        float *cf0 = CF + t * 2 * bd;
        const float *hin = hprev;
        if (mask_h) { mul_into(bd, hprev, mask_h, tmp); hin = tmp; }
        gemm(0, 0, B, 2 * d, d, 1.0f, hin, d, w0h, 2 * d, 1.0f, cf0, 2 * d);
        node_forward(OP_TANH, B, d, hprev, cf0, S + t * bd);
        for (int i = 1; i <= a->n; i++) {
            const float *sp = S + a->pred[i - 1] * s_stride + t * bd;
            float *cf = CF + i * cf_stride + t * 2 * bd;
            const float *sin = sp;
            if (mask_h) { mul_into(bd, sp, mask_h, tmp); sin = tmp; }
            gemm(0, 0, B, 2 * d, d, 1.0f, sin, d, W[i], 2 * d, 0.0f, cf, 2 * d);
            node_forward(a->op[i - 1], B, d, sp, cf, S + i * s_stride + t * bd);
        }
        mean_of_outputs(a, bd, S + t * bd, s_stride, H + (t + 1) * bd);
    }
}

void cell_backward(const CellArch *a, int T, int B, int d, const float *w0h,
                   float *const *W, const float *mask_h, float *CF, const float *S,
                   const float *H, const float *dH, float *dS, float *G, float *dh) {
    const size_t bd = (size_t)B * d, rows = (size_t)T * B;
    const size_t s_stride = rows * d, cf_stride = rows * 2 * d;
    int n_out = 0, has_child[LM_MAX_NODES + 1] = {0};
    for (int i = 1; i <= a->n; i++) {
        n_out += a->out[i - 1] != 0;
        has_child[a->pred[i - 1]] = 1;
    }
    const float inv_out = 1.0f / (float)n_out;
    memset(dh, 0, bd * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        /* gradient reaching each node's state at step t: h_t = mean of output nodes */
        for (int i = 1; i <= a->n; i++) {
            float *ds = dS + i * bd;
            if (!a->out[i - 1]) { memset(ds, 0, bd * sizeof(float)); continue; }
            const float *g = dH + t * bd;
            for (size_t k = 0; k < bd; k++) ds[k] = (g[k] + dh[k]) * inv_out;
        }
        memset(dS, 0, bd * sizeof(float));
        memset(G, 0, (size_t)(a->n + 1) * bd * sizeof(float));
        for (int i = a->n; i >= 1; i--) {
            float *ds = dS + i * bd;
            if (has_child[i]) {
                if (mask_h) add_mul(bd, G + i * bd, mask_h, ds);
                else add_into(bd, G + i * bd, ds);
            }
            int p = a->pred[i - 1];
            float *cf = CF + i * cf_stride + t * 2 * bd;
            node_backward(a->op[i - 1], B, d, ds, S + p * s_stride + t * bd, cf, dS + p * bd, 1);
            gemm(0, 1, B, d, 2 * d, 1.0f, cf, 2 * d, W[i], 2 * d, 1.0f, G + p * bd, d);
        }
        /* node 0: s0 = h + c0 (tanh(b0) - h) with h = h_{t-1} */
        float *ds0 = dS;
        if (has_child[0]) {
            if (mask_h) add_mul(bd, G, mask_h, ds0);
            else add_into(bd, G, ds0);
        }
        float *cf0 = CF + t * 2 * bd;
        node_backward(OP_TANH, B, d, ds0, H + t * bd, cf0, dh, 0);
        gemm(0, 1, B, d, 2 * d, 1.0f, cf0, 2 * d, w0h, 2 * d, 0.0f, G, d);
        if (mask_h) add_mul(bd, G, mask_h, dh);
        else add_into(bd, G, dh);
    }
}
