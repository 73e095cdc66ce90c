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

void cell_forward(const CellArch *a, int T, int B, int b0, int b1, int d, const float *w0h,
                  float *const *W, const float *mask_h, float *CF, float *S, float *H,
                  float *tmp) {
    const size_t bd = (size_t)B * d, rows = (size_t)T * B, nb = (size_t)(b1 - b0) * d;
    const size_t s_stride = rows * d, cf_stride = rows * 2 * d, off = (size_t)b0 * d;
    const int nr = b1 - b0;
    const float *mh = mask_h ? mask_h + off : NULL;
    float *tm = tmp + off;
    for (int t = 0; t < T; t++) {
        const size_t at = t * bd + off; /* this step's rows b0..b1 in a (T*B, d) block */
        const float *hprev = H + at;
        float *cf0 = CF + 2 * at;
        const float *hin = hprev;
        if (mh) { mul_into(nb, hprev, mh, tm); hin = tm; }
        gemm(0, 0, nr, 2 * d, d, 1.0f, hin, d, w0h, 2 * d, 1.0f, cf0, 2 * d);
        node_forward(OP_TANH, nr, d, hprev, cf0, S + at);
        for (int i = 1; i <= a->n; i++) {
            const float *sp = S + a->pred[i - 1] * s_stride + at;
            float *cf = CF + i * cf_stride + 2 * at;
            const float *sin = sp;
            if (mh) { mul_into(nb, sp, mh, tm); sin = tm; }
            gemm(0, 0, nr, 2 * d, d, 1.0f, sin, d, W[i], 2 * d, 0.0f, cf, 2 * d);
            node_forward(a->op[i - 1], nr, d, sp, cf, S + i * s_stride + at);
        }
        mean_of_outputs(a, nb, S + at, s_stride, H + bd + at);
    }
}

SIMD_CLONES static void scaled_sum(size_t n, const float *restrict x, const float *restrict y,
                                   float scale, float *restrict out) {
    for (size_t i = 0; i < n; i++) out[i] = (x[i] + y[i]) * scale;
}

void cell_backward(const CellArch *a, int T, int B, int b0, int b1, int d, const float *w0h,
                   float *const *W, const float *mask_h, float *CF, const float *S,
                   const float *H, const float *dH, float *dS, float *G, float *dh) {
    const size_t bd = (size_t)B * d, rows = (size_t)T * B, nb = (size_t)(b1 - b0) * d;
    const size_t s_stride = rows * d, cf_stride = rows * 2 * d, off = (size_t)b0 * d;
    const int nr = b1 - b0;
    const float *mh = mask_h ? mask_h + off : NULL;
    int n_out = 0, has_child[LM_MAX_NODES + 1] = {0};
    for (int i = 1; i <= a->n; i++) {
        n_out += a->out[i - 1] != 0;
        has_child[a->pred[i - 1]] = 1;
    }
    const float inv_out = 1.0f / (float)n_out;
    float *dh_r = dh + off;
    memset(dh_r, 0, nb * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        const size_t at = t * bd + off;
        /* gradient reaching each node's state at step t: h_t = mean of output nodes */
        for (int i = 0; i <= a->n; i++) {
            float *ds = dS + i * bd + off;
            if (i > 0 && a->out[i - 1]) scaled_sum(nb, dH + at, dh_r, inv_out, ds);
            else memset(ds, 0, nb * sizeof(float));
            if (has_child[i]) memset(G + i * bd + off, 0, nb * sizeof(float));
        }
        for (int i = a->n; i >= 1; i--) {
            float *ds = dS + i * bd + off;
            if (has_child[i]) {
                if (mh) add_mul(nb, G + i * bd + off, mh, ds);
                else add_into(nb, G + i * bd + off, ds);
            }
            int p = a->pred[i - 1];
            float *cf = CF + i * cf_stride + 2 * at;
            node_backward(a->op[i - 1], nr, d, ds, S + p * s_stride + at, cf, dS + p * bd + off, 1);
            gemm(0, 1, nr, d, 2 * d, 1.0f, cf, 2 * d, W[i], 2 * d, 1.0f, G + p * bd + off, d);
        }
        /* node 0: s0 = h + c0 (tanh(b0) - h) with h = h_{t-1} */
        float *ds0 = dS + off, *g0 = G + off;
        if (has_child[0]) {
            if (mh) add_mul(nb, g0, mh, ds0);
            else add_into(nb, g0, ds0);
        }
        float *cf0 = CF + 2 * at;
        node_backward(OP_TANH, nr, d, ds0, H + at, cf0, dh_r, 0);
        gemm(0, 1, nr, d, 2 * d, 1.0f, cf0, 2 * d, w0h, 2 * d, 0.0f, g0, d);
        if (mh) add_mul(nb, g0, mh, dh_r);
        else add_into(nb, g0, dh_r);
    }
}
