/* The core's hot elementwise loops (cell nodes, state blocks, softmax rows, embedding,
 * optimiser), written once as plain C that the compiler vectorises. This header is
 * included only by the per-instruction-set kernel files (kern_*.c, through kern_body.h),
 * which compile it under their own target, so every loop here exists once per ISA and
 * the dispatch table (kernels.h) picks one at load time. */
#ifndef NAS_EVAL_ELEMENTWISE_H
#define NAS_EVAL_ELEMENTWISE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arch.h"
#include "mathfun.h"

/* --- cell nodes ------------------------------------------------------------------------ */
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
        int op, int rows, int width, int d, const float *restrict sp, float *restrict cf,
        float *restrict s) {
    for (int r = 0; r < rows; r++) {
        float *restrict c = cf + (size_t)r * 2 * d, *restrict f = c + d;
        const float *restrict p = sp + (size_t)r * d;
        float *restrict o = s + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            float ck = fast_sigmoidf(c[k]);
            float fk = activate(op, f[k]);
            c[k] = ck;
            f[k] = fk;
            o[k] = p[k] + ck * (fk - p[k]);
        }
    }
}

/* rows x width block of a (rows, d) state; cf rows have stride 2d (gate | candidate) */
static void node_forward(int op, int rows, int width, int d, const float *sp, float *cf,
                         float *s) {
    switch (op) {
    case OP_TANH: node_forward_op(OP_TANH, rows, width, d, sp, cf, s); break;
    case OP_RELU: node_forward_op(OP_RELU, rows, width, d, sp, cf, s); break;
    case OP_SIGMOID: node_forward_op(OP_SIGMOID, rows, width, d, sp, cf, s); break;
    default: node_forward_op(OP_IDENTITY, rows, width, d, sp, cf, s); break;
    }
}

/* Given ds, overwrite [c | f] with [da | db] and add ds * (1 - c) into dsp
 * (or store it there when accumulate == 0). */
static inline __attribute__((always_inline)) void node_backward_op(
        int op, int rows, int width, int d, const float *restrict ds, const float *restrict sp,
        float *restrict cf, float *restrict dsp, int accumulate) {
    for (int r = 0; r < rows; r++) {
        float *restrict c = cf + (size_t)r * 2 * d, *restrict f = c + d;
        const float *restrict p = sp + (size_t)r * d;
        const float *restrict g = ds + (size_t)r * d;
        float *restrict dp = dsp + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            float ck = c[k], fk = f[k], gk = g[k];
            float carry = gk * (1.0f - ck);
            c[k] = gk * (fk - p[k]) * ck * (1.0f - ck);
            f[k] = gk * ck * activate_grad(op, fk);
            dp[k] = accumulate ? dp[k] + carry : carry;
        }
    }
}

static void node_backward(int op, int rows, int width, int d, const float *ds, const float *sp,
                          float *cf, float *dsp, int accumulate) {
    switch (op) {
    case OP_TANH: node_backward_op(OP_TANH, rows, width, d, ds, sp, cf, dsp, accumulate); break;
    case OP_RELU: node_backward_op(OP_RELU, rows, width, d, ds, sp, cf, dsp, accumulate); break;
    case OP_SIGMOID: node_backward_op(OP_SIGMOID, rows, width, d, ds, sp, cf, dsp, accumulate); break;
    default: node_backward_op(OP_IDENTITY, rows, width, d, ds, sp, cf, dsp, accumulate); break;
    }
}

/* --- rows x width blocks of (rows, d) matrices ------------------------------------------- */
static void block_mul(int rows, int width, int d, const float *x, const float *m, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d, *restrict mr = m + (size_t)r * d;
        float *restrict yr = y + (size_t)r * d;
        for (int k = 0; k < width; k++) yr[k] = xr[k] * mr[k];
    }
}

/* y += x (m == NULL) or y += x * m */
static void block_add(int rows, int width, int d, const float *x, const float *m, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d;
        float *restrict yr = y + (size_t)r * d;
        if (m) {
            const float *restrict mr = m + (size_t)r * d;
            for (int k = 0; k < width; k++) yr[k] += xr[k] * mr[k];
        } else {
            for (int k = 0; k < width; k++) yr[k] += xr[k];
        }
    }
}

/* out = (x + y) * scale, or 0 when x == NULL */
static void block_set(int rows, int width, int d, const float *x, const float *y, float scale,
                      float *out) {
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d, *restrict yr = y + (size_t)r * d;
        float *restrict o = out + (size_t)r * d;
        if (x) for (int k = 0; k < width; k++) o[k] = (xr[k] + yr[k]) * scale;
        else for (int k = 0; k < width; k++) o[k] = 0.0f;
    }
}

/* h = mean of the output nodes' states (block); out[i - 1] != 0 marks node i an output */
static void block_mean(int n, const int *out, int rows, int width, int d, const float *S,
                       size_t node_stride, float *h) {
    int count = 0;
    for (int i = 1; i <= n; i++) count += out[i - 1] != 0;
    float inv = 1.0f / (float)count;
    for (int r = 0; r < rows; r++) {
        float *restrict hr = h + (size_t)r * d;
        for (int k = 0; k < width; k++) hr[k] = 0.0f;
        for (int i = 1; i <= n; i++) {
            if (!out[i - 1]) continue;
            const float *restrict sr = S + (size_t)i * node_stride + (size_t)r * d;
            for (int k = 0; k < width; k++) hr[k] += sr[k];
        }
        for (int k = 0; k < width; k++) hr[k] *= inv;
    }
}

/* --- softmax rows (16 lanes: the same operation order on every ISA) ------------------- */
/* Lane j takes the elements v = j mod 16, held as 16 / VL vectors of the target's own
 * width (one zmm, two ymm, four xmm or NEON q registers; VL from kern_<isa>.c). Generic
 * 64-byte vectors were scalarised by gcc below AVX-512 (comparisons and the int
 * conversion went through the stack: 28 % of an AVX2 training step at d = 64). */
#define SOFTMAX_LANES 16
#define SOFTMAX_VECS (SOFTMAX_LANES / VL)
typedef float vsoft __attribute__((vector_size(VL * 4)));
typedef int32_t vsoft_i __attribute__((vector_size(VL * 4)));

static inline vsoft vsoft_load(const float *p) { vsoft v; memcpy(&v, p, sizeof v); return v; }
static inline void vsoft_store(float *p, vsoft v) { memcpy(p, &v, sizeof v); }
static inline vsoft vsoft_splat(float x) { return (vsoft){0} + x; }
static inline vsoft vsoft_select(vsoft_i mask, vsoft a, vsoft b) {
    return (vsoft)(((vsoft_i)a & mask) | ((vsoft_i)b & ~mask));
}

EXP_STEPS(vsoft_exp, vsoft) /* mathfun.h: fast_expf's rounding and polynomial, lane-wise */

/* exp of N vectors (N <= EXP_VECS_MAX, a constant where inlined) of arguments <= 0, where
 * the upper clamp can go: the same bits as fast_expf in every lane. Each step is done across
 * all N vectors before the next: an exp is a chain of a dozen dependent operations, and
 * written one vector after another the FP scheduler fills with one chain while the units
 * idle (mixed_elementwise.h: 2x on Zen 3). */
#define EXP_VECS_MAX 8
static inline __attribute__((always_inline)) void vsoft_exp_neg_n(int N, const vsoft *x, vsoft *out) {
    vsoft n[EXP_VECS_MAX], y[EXP_VECS_MAX];
    for (int q = 0; q < N; q++) y[q] = vsoft_select(x[q] > vsoft_splat(-87.0f), x[q], vsoft_splat(-87.0f));
    for (int q = 0; q < N; q++) n[q] = vsoft_exp_round(y[q]);
    for (int q = 0; q < N; q++) out[q] = vsoft_exp_poly(y[q], n[q]);
    for (int q = 0; q < N; q++) out[q] *= (vsoft)((__builtin_convertvector(n[q], vsoft_i) + 127) << 23);
}

/* one vector of it (softmax logits less their row's max) */
static inline vsoft vsoft_exp_neg(vsoft x) {
    vsoft out;
    vsoft_exp_neg_n(1, &x, &out);
    return out;
}

/* the max and the sum of the SOFTMAX_LANES lanes of v[0..SOFTMAX_VECS), in lane order */
static inline __attribute__((always_inline)) float lanes_max(const vsoft *v) {
    float lanes[SOFTMAX_LANES];
    for (int q = 0; q < SOFTMAX_VECS; q++) vsoft_store(lanes + q * VL, v[q]);
    float mx = lanes[0];
    for (int j = 1; j < SOFTMAX_LANES; j++) mx = lanes[j] > mx ? lanes[j] : mx;
    return mx;
}

static inline __attribute__((always_inline)) float lanes_sum(const vsoft *v) {
    float lanes[SOFTMAX_LANES];
    for (int q = 0; q < SOFTMAX_VECS; q++) vsoft_store(lanes + q * VL, v[q]);
    float sum = 0.0f;
    for (int j = 0; j < SOFTMAX_LANES; j++) sum += lanes[j];
    return sum;
}

/* Adds bias into the row x[0..n) and returns the row's max. */
static inline __attribute__((always_inline)) float row_add_max(int n, float *restrict x,
                                                               const float *restrict bias) {
    vsoft m[SOFTMAX_VECS];
    for (int q = 0; q < SOFTMAX_VECS; q++) m[q] = vsoft_splat(-INFINITY);
    int v = 0;
    for (; v + SOFTMAX_LANES <= n; v += SOFTMAX_LANES) {
        for (int q = 0; q < SOFTMAX_VECS; q++) {
            vsoft y = vsoft_load(x + v + q * VL) + vsoft_load(bias + v + q * VL);
            vsoft_store(x + v + q * VL, y);
            m[q] = vsoft_select(y > m[q], y, m[q]);
        }
    }
    float mx = lanes_max(m);
    for (; v < n; v++) {
        x[v] += bias[v];
        mx = x[v] > mx ? x[v] : mx;
    }
    return mx;
}

/* Turns the row x[0..n), none of it above mx, into exp(x - mx) and returns its sum. */
static inline __attribute__((always_inline)) float row_exp_sum(int n, float *restrict x, float mx) {
    vsoft s[SOFTMAX_VECS], vmx = vsoft_splat(mx);
    for (int q = 0; q < SOFTMAX_VECS; q++) s[q] = vsoft_splat(0.0f);
    int v = 0;
    /* two groups of lanes at a time, their exps interleaved; each group still added into
     * the lanes in turn, so the sums (and bits) are those of one group at a time */
    for (; v + 2 * SOFTMAX_LANES <= n; v += 2 * SOFTMAX_LANES) {
        vsoft e[2 * SOFTMAX_VECS];
        for (int q = 0; q < 2 * SOFTMAX_VECS; q++) e[q] = vsoft_load(x + v + q * VL) - vmx;
        vsoft_exp_neg_n(2 * SOFTMAX_VECS, e, e);
        for (int q = 0; q < 2 * SOFTMAX_VECS; q++) {
            vsoft_store(x + v + q * VL, e[q]);
            s[q % SOFTMAX_VECS] += e[q];
        }
    }
    for (; v + SOFTMAX_LANES <= n; v += SOFTMAX_LANES) {
        for (int q = 0; q < SOFTMAX_VECS; q++) {
            vsoft e = vsoft_exp_neg(vsoft_load(x + v + q * VL) - vmx);
            vsoft_store(x + v + q * VL, e);
            s[q] += e;
        }
    }
    float sum = lanes_sum(s);
    for (; v < n; v++) {
        float e = fast_expf(x[v] - mx);
        x[v] = e;
        sum += e;
    }
    return sum;
}

/* Adds the bias, turns the row into exp(l - max) and returns the log-sum-exp;
 * *target_logit receives the target's logit before the transform. */
static float row_exp(int V, float *restrict l, const float *restrict bias, int target,
                     float *target_logit, float *sum_out) {
    float mx = row_add_max(V, l, bias);
    *target_logit = l[target];
    float sum = row_exp_sum(V, l, mx);
    *sum_out = sum;
    return mx + logf(sum);
}

/* exp row -> scale * (softmax - onehot); column sums into dbias */
static void row_grad(int V, float *restrict l, float sum, int target, float scale,
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

/* --- embedding ---------------------------------------------------------------------------- */
static void embedding_forward_rows(int rows, int B, int d, const int32_t *tok, const float *E,
                                   const float *row_scale, const float *mask, float *X) {
    for (int r = 0; r < rows; r++) {
        const float *restrict e = E + (size_t)tok[r] * d;
        float *restrict x = X + (size_t)r * d;
        float s = row_scale ? row_scale[tok[r]] : 1.0f;
        if (mask) {
            const float *restrict m = mask + (size_t)(r % B) * d;
            for (int k = 0; k < d; k++) x[k] = e[k] * s * m[k];
        } else {
            for (int k = 0; k < d; k++) x[k] = e[k] * s;
        }
    }
}

static void embedding_backward_rows(int rows, int B, int d, const int32_t *tok, const float *dX,
                                    const float *row_scale, const float *mask, float *dE) {
    for (int r = 0; r < rows; r++) {
        float s = row_scale ? row_scale[tok[r]] : 1.0f;
        if (s == 0.0f) continue; /* the whole word type was dropped */
        float *restrict g = dE + (size_t)tok[r] * d;
        const float *restrict x = dX + (size_t)r * d;
        if (mask) {
            const float *restrict m = mask + (size_t)(r % B) * d;
            for (int k = 0; k < d; k++) g[k] += x[k] * s * m[k];
        } else {
            for (int k = 0; k < d; k++) g[k] += x[k] * s;
        }
    }
}

/* --- optimiser ---------------------------------------------------------------------------- */
/* float partial sums in fixed lanes, folded into a double per block of 4096: accurate
 * and identical on every instruction set. */
static double sq_norm(const float *restrict g, size_t n) {
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

static void sgd(float *restrict p, const float *restrict g, size_t n, float lr, float scale,
                float wd) {
    for (size_t i = 0; i < n; i++) p[i] -= lr * (scale * g[i] + wd * p[i]);
}

static void average(float *restrict avg, const float *restrict p, size_t n, long count) {
    float mu = 1.0f / (float)count;
    for (size_t i = 0; i < n; i++) avg[i] += (p[i] - avg[i]) * mu;
}

#endif
