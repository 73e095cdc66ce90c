/* The DARTS mixed cell's elementwise loops (mixed_cell.h): one edge's candidates mixed by
 * its op probabilities, their backward with the per-column sums for d loss / d alpha, and
 * the non-affine batch normalisation. Included only through kern_body.h, so every loop is
 * compiled once per instruction set and reached through kern->mixed. Blocks are rows x
 * width of (rows, d) matrices (cf rows: stride 2d, [gate | candidate]); width <= PANEL. */
#ifndef NAS_EVAL_MIXED_ELEMENTWISE_H
#define NAS_EVAL_MIXED_ELEMENTWISE_H

#include <math.h>
#include <stddef.h>

#include "mathfun.h"
#include "mixed_cell.h"

/* Both edge loops take a panel row's MIXED_ACC_LD columns as MIX_VECS vectors and do each
 * step of their chains (two exponentials and a division forward, one and one backward) across
 * all the vectors before the next step. Written vector after vector, the FP scheduler fills
 * with one vector's dependent chain and the units idle: the row at once, fused multiply-adds
 * allowed, measured 1.7x (forward) to 2x (backward with sums) faster on Zen 3 with AVX2's 4
 * vectors (benchmarks/bench_mixed.c). A panel narrower than the row (d
 * not a multiple of 32) goes through a zero-padded copy, so every column takes the same
 * arithmetic. */
#define MIX_VECS (MIXED_ACC_LD / VL)

typedef struct {
    vsoft p1, p2, p3, p4, P; /* the op probabilities (none has no term) and their sum */
} MixProbs;

static inline __attribute__((always_inline)) MixProbs mix_probs(const float *p) {
    MixProbs m = {vsoft_splat(p[1]), vsoft_splat(p[2]), vsoft_splat(p[3]), vsoft_splat(p[4]),
                  vsoft_splat(p[1] + p[2] + p[3] + p[4])};
    return m;
}

/* the sign bit of every lane (not vsoft_splat(-0.0f): 0 + -0 is +0) */
static inline __attribute__((always_inline)) vsoft_i sign_bits(void) { return (vsoft_i){0} + INT32_MIN; }

static inline __attribute__((always_inline)) vsoft neg_abs(vsoft x) { return (vsoft)((vsoft_i)x | sign_bits()); }

/* tanh(b) and sigmoid(b) from e = exp(-|b|) <= 1 (never overflows): tanh(|b|) = (1 - e^2) /
 * (1 + e^2), sigmoid(|b|) = 1 / (1 + e), sigmoid(-|b|) = e / (1 + e); both quotients from the
 * one reciprocal r of (1 + e)(1 + e^2) in [1, 4] (times ra = r a, a = 1 + exp(-|c|) when the
 * gate shares it, r then of a (1 + e)(1 + e^2) in [1, 8]) */
static inline __attribute__((always_inline)) void tanh_sigmoid_of(vsoft b, vsoft e, vsoft ra, vsoft *th,
                                                                  vsoft *sg) {
    const vsoft one = vsoft_splat(1.0f), e2 = e * e, u = one + e, v = one + e2;
    const vsoft t = (one - e2) * (ra * u), s = ra * v;
    *th = (vsoft)((vsoft_i)t | ((vsoft_i)b & sign_bits())); /* t >= 0: b's sign */
    *sg = vsoft_select(b < vsoft_splat(0.0f), e * s, s);
}

/* g = sum_k p_k f_k(b), as a tree */
static inline __attribute__((always_inline)) vsoft mix_ops(const MixProbs *m, vsoft b, vsoft th, vsoft rl,
                                                           vsoft sg) {
    return (m->p1 * th + m->p2 * rl) + (m->p3 * sg + m->p4 * b);
}

/* one row of MIXED_ACC_LD columns: pre (+)= P s + c (g - P s), c = sigmoid(a),
 * [a | b] -> [c | b] (b stays before its activation: the backward recomputes the ops) */
static inline __attribute__((always_inline)) void mixed_edge_forward_row(
        int first, const MixProbs *m, const float *restrict s, float *restrict c, const float *restrict b,
        float *restrict o) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
    const vsoft one = vsoft_splat(1.0f), zero = vsoft_splat(0.0f);
    vsoft cv[MIX_VECS], bv[MIX_VECS], ec[MIX_VECS], e[MIX_VECS];
    for (int q = 0; q < MIX_VECS; q++) {
        cv[q] = vsoft_load(c + q * VL);
        bv[q] = vsoft_load(b + q * VL);
        ec[q] = neg_abs(cv[q]);
        e[q] = neg_abs(bv[q]);
    }
    vsoft_exp_neg_n(MIX_VECS, ec, ec);
    vsoft_exp_neg_n(MIX_VECS, e, e);
    for (int q = 0; q < MIX_VECS; q++) {
        const vsoft a = one + ec[q], uv = (one + e[q]) * (one + e[q] * e[q]);
        const vsoft r = one / (a * uv), ra = r * a, sa = r * uv; /* sa = sigmoid(|a|) */
        vsoft th, sg;
        tanh_sigmoid_of(bv[q], e[q], ra, &th, &sg);
        const vsoft ck = vsoft_select(cv[q] < zero, ec[q] * sa, sa);
        const vsoft rl = vsoft_select(bv[q] > zero, bv[q], zero);
        const vsoft ps = m->P * vsoft_load(s + q * VL), u = ps + ck * (mix_ops(m, bv[q], th, rl, sg) - ps);
        vsoft_store(c + q * VL, ck);
        vsoft_store(o + q * VL, first ? u : vsoft_load(o + q * VL) + u);
    }
}

/* Given dpre: [c | b] -> [da | db] and ds += P (1 - c) dpre; with sums, per-column sums
 * acc[0] += dpre s (1 - c), acc[k] += dpre c f_k(b), k = 1..4 (rows of acc, stride
 * MIXED_ACC_LD), so that d loss / d p_k = sum(acc[0] + acc[k]). */
static inline __attribute__((always_inline)) void mixed_edge_backward_row(
        int sums, const MixProbs *m, const float *restrict gr, const float *restrict s, float *restrict c,
        float *restrict b, float *restrict ds, float *restrict acc) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
    const vsoft one = vsoft_splat(1.0f), zero = vsoft_splat(0.0f);
    vsoft bv[MIX_VECS], e[MIX_VECS];
    for (int q = 0; q < MIX_VECS; q++) {
        bv[q] = vsoft_load(b + q * VL);
        e[q] = neg_abs(bv[q]);
    }
    vsoft_exp_neg_n(MIX_VECS, e, e);
    for (int q = 0; q < MIX_VECS; q++) {
        const vsoft r = one / ((one + e[q]) * (one + e[q] * e[q]));
        vsoft th, sg;
        tanh_sigmoid_of(bv[q], e[q], r, &th, &sg);
        const vsoft bk = bv[q], ck = vsoft_load(c + q * VL), gk = vsoft_load(gr + q * VL);
        const vsoft sk = vsoft_load(s + q * VL), pos = vsoft_select(bk > zero, one, zero), rl = pos * bk;
        const vsoft g = mix_ops(m, bk, th, rl, sg);
        const vsoft gp = (m->p1 * (one - th * th) + m->p2 * pos) + (m->p3 * (sg * (one - sg)) + m->p4);
        const vsoft omc = one - ck, gc = gk * ck;
        vsoft_store(c + q * VL, gk * (g - m->P * sk) * ck * omc);
        vsoft_store(b + q * VL, gc * gp);
        vsoft_store(ds + q * VL, vsoft_load(ds + q * VL) + m->P * omc * gk);
        if (!sums) continue;
        const vsoft terms[5] = {gk * sk * omc, gc * th, gc * rl, gc * sg, gc * bk};
        for (int k = 0; k < 5; k++) {
            float *a = acc + k * MIXED_ACC_LD + q * VL;
            vsoft_store(a, vsoft_load(a) + terms[k]);
        }
    }
}

/* width columns of a row (width < MIXED_ACC_LD) into zeroed rows of MIXED_ACC_LD */
static void pad_row(int width, float dst[][MIXED_ACC_LD], const float *const *src, int arrays) {
    for (int a = 0; a < arrays; a++) {
        memset(dst[a], 0, sizeof dst[a]);
        if (src[a]) memcpy(dst[a], src[a], (size_t)width * sizeof(float));
    }
}

static void unpad_row(int width, float src[][MIXED_ACC_LD], float *const *dst, int arrays) {
    for (int a = 0; a < arrays; a++)
        if (dst[a]) memcpy(dst[a], src[a], (size_t)width * sizeof(float));
}

static inline __attribute__((always_inline)) void mixed_edge_forward_k(
        int first, int rows, int width, int d, const float *p, const float *sp, float *cf, float *pre) {
    const MixProbs m = mix_probs(p);
    for (int r = 0; r < rows; r++) {
        float *c = cf + (size_t)r * 2 * d, *b = c + d, *o = pre + (size_t)r * d;
        const float *s = sp + (size_t)r * d;
        if (width == MIXED_ACC_LD) {
            mixed_edge_forward_row(first, &m, s, c, b, o);
            continue;
        }
        float t[4][MIXED_ACC_LD];
        pad_row(width, t, (const float *const[]){s, c, b, o}, 4);
        mixed_edge_forward_row(first, &m, t[0], t[1], t[2], t[3]);
        unpad_row(width, t, (float *const[]){NULL, c, NULL, o}, 4);
    }
}

FP_CONTRACT_FAST static void mixed_edge_forward(int first, int rows, int width, int d, const float *p, const float *sp,
                               float *cf, float *pre) {
    if (first) mixed_edge_forward_k(1, rows, width, d, p, sp, cf, pre);
    else mixed_edge_forward_k(0, rows, width, d, p, sp, cf, pre);
}

/* a narrow panel's sums go to a padded copy of acc and its first width columns back */
static inline __attribute__((always_inline)) void mixed_edge_backward_k(
        int sums, int rows, int width, int d, const float *p, const float *dpre, const float *sp, float *cf,
        float *dsp, float *acc) {
    const MixProbs m = mix_probs(p);
    float at[5][MIXED_ACC_LD], *acc_rows[5];
    for (int k = 0; k < 5; k++) acc_rows[k] = acc + k * MIXED_ACC_LD;
    float *ac = width == MIXED_ACC_LD ? acc : at[0];
    if (sums && ac != acc) pad_row(width, at, (const float *const *)acc_rows, 5);
    for (int r = 0; r < rows; r++) {
        float *c = cf + (size_t)r * 2 * d, *b = c + d, *ds = dsp + (size_t)r * d;
        const float *s = sp + (size_t)r * d, *g = dpre + (size_t)r * d;
        if (width == MIXED_ACC_LD) {
            mixed_edge_backward_row(sums, &m, g, s, c, b, ds, ac);
            continue;
        }
        float t[5][MIXED_ACC_LD];
        pad_row(width, t, (const float *const[]){g, s, c, b, ds}, 5);
        mixed_edge_backward_row(sums, &m, t[0], t[1], t[2], t[3], t[4], ac);
        unpad_row(width, t, (float *const[]){NULL, NULL, c, b, ds}, 5);
    }
    if (sums && ac != acc) unpad_row(width, at, acc_rows, 5);
}

FP_CONTRACT_FAST static void mixed_edge_backward(int sums, int rows, int width, int d, const float *p, const float *dpre,
                                const float *sp, float *cf, float *dsp, float *acc) {
    if (sums) mixed_edge_backward_k(1, rows, width, d, p, dpre, sp, cf, dsp, acc);
    else mixed_edge_backward_k(0, rows, width, d, p, dpre, sp, cf, dsp, acc);
}

/* Batch statistics over the rows of each column (biased variance, as torch normalises), in
 * place; with update, torch's running update (unbiased variance, momentum 0.1). mean, var:
 * width floats of scratch. */
static void mixed_bn_batch(int rows, int width, int d, float *x, float *invstd, float *rmean,
                           float *rvar, int update, float *mean, float *var) {
    const float inv_rows = 1.0f / (float)rows;
    for (int k = 0; k < width; k++) mean[k] = var[k] = 0.0f;
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d;
        for (int k = 0; k < width; k++) mean[k] += xr[k];
    }
    for (int k = 0; k < width; k++) mean[k] *= inv_rows;
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            float c = xr[k] - mean[k];
            var[k] += c * c;
        }
    }
    for (int k = 0; k < width; k++) {
        var[k] *= inv_rows;
        invstd[k] = 1.0f / sqrtf(var[k] + BN_EPS);
    }
    for (int r = 0; r < rows; r++) {
        float *restrict xr = x + (size_t)r * d;
        for (int k = 0; k < width; k++) xr[k] = (xr[k] - mean[k]) * invstd[k];
    }
    if (update && rows > 1) {
        const float unbias = (float)rows / (float)(rows - 1);
        for (int k = 0; k < width; k++) {
            rmean[k] = (1.0f - BN_MOMENTUM) * rmean[k] + BN_MOMENTUM * mean[k];
            rvar[k] = (1.0f - BN_MOMENTUM) * rvar[k] + BN_MOMENTUM * var[k] * unbias;
        }
    }
}

/* evaluation: normalise with the running statistics */
static void mixed_bn_running(int rows, int width, int d, float *x, const float *rmean, const float *rvar,
                             float *invstd) {
    for (int k = 0; k < width; k++) invstd[k] = 1.0f / sqrtf(rvar[k] + BN_EPS);
    for (int r = 0; r < rows; r++) {
        float *restrict xr = x + (size_t)r * d;
        for (int k = 0; k < width; k++) xr[k] = (xr[k] - rmean[k]) * invstd[k];
    }
}

/* dy -> dx in place: dx = invstd (dy - mean(dy) - y mean(dy y)), means over the rows */
static void mixed_bn_backward(int rows, int width, int d, const float *y, const float *invstd, float *dy,
                              float *m1, float *m2) {
    const float inv_rows = 1.0f / (float)rows;
    for (int k = 0; k < width; k++) m1[k] = m2[k] = 0.0f;
    for (int r = 0; r < rows; r++) {
        const float *restrict yr = y + (size_t)r * d, *restrict gr = dy + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            m1[k] += gr[k];
            m2[k] += gr[k] * yr[k];
        }
    }
    for (int k = 0; k < width; k++) { m1[k] *= inv_rows; m2[k] *= inv_rows; }
    for (int r = 0; r < rows; r++) {
        const float *restrict yr = y + (size_t)r * d;
        float *restrict gr = dy + (size_t)r * d;
        for (int k = 0; k < width; k++) gr[k] = invstd[k] * (gr[k] - m1[k] - yr[k] * m2[k]);
    }
}

static const MixedKernels mixed_kernels = {
    .edge_forward = mixed_edge_forward,
    .edge_backward = mixed_edge_backward,
    .bn_batch = mixed_bn_batch,
    .bn_running = mixed_bn_running,
    .bn_backward = mixed_bn_backward,
};

#endif
