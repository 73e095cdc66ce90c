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

/* tanh(b) and sigmoid(b) from one exponential e = exp(-|b|) <= 1 (never overflows):
 * tanh(|b|) = (1 - e^2) / (1 + e^2), sigmoid(|b|) = 1 / (1 + e), sigmoid(-|b|) = e / (1 + e) */
static inline __attribute__((always_inline)) void tanh_sigmoid(float b, float *th, float *sg) {
    const int neg = b < 0.0f;
    const float e = fast_expf(neg ? b : -b), e2 = e * e;
    const float t = (1.0f - e2) / (1.0f + e2), s = 1.0f / (1.0f + e);
    *th = neg ? -t : t;
    *sg = neg ? e * s : s;
}

/* pre (+)= P s + c (g - P s) with g = sum_k p_k f_k(b), P = sum_k p_k (k != none);
 * [a | b] -> [c | b] (b stays before its activation: the backward recomputes the ops) */
static inline __attribute__((always_inline)) void mixed_edge_forward_k(
        int first, int rows, int width, int d, const float *restrict p, const float *restrict sp,
        float *restrict cf, float *restrict pre) {
    const float p1 = p[1], p2 = p[2], p3 = p[3], p4 = p[4], P = p1 + p2 + p3 + p4;
    for (int r = 0; r < rows; r++) {
        float *restrict c = cf + (size_t)r * 2 * d, *restrict b = c + d;
        const float *restrict s = sp + (size_t)r * d;
        float *restrict o = pre + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            float ck = fast_sigmoidf(c[k]), bk = b[k], th, sg;
            tanh_sigmoid(bk, &th, &sg);
            float g = p1 * th + p2 * (bk > 0.0f ? bk : 0.0f) + p3 * sg + p4 * bk;
            float ps = P * s[k];
            float u = ps + ck * (g - ps);
            c[k] = ck;
            o[k] = first ? u : o[k] + u;
        }
    }
}

/* a whole panel (the usual case) with its width known to the compiler: two or four vector
 * registers per row, no remainder loop */
static void mixed_edge_forward(int first, int rows, int width, int d, const float *p, const float *sp,
                               float *cf, float *pre) {
    if (width == MIXED_ACC_LD && first) mixed_edge_forward_k(1, rows, MIXED_ACC_LD, d, p, sp, cf, pre);
    else if (width == MIXED_ACC_LD) mixed_edge_forward_k(0, rows, MIXED_ACC_LD, d, p, sp, cf, pre);
    else if (first) mixed_edge_forward_k(1, rows, width, d, p, sp, cf, pre);
    else mixed_edge_forward_k(0, rows, width, d, p, sp, cf, pre);
}

/* Given dpre: [c | b] -> [da | db] and dsp += P (1 - c) dpre; with sums, per-column sums
 * (rows of acc, stride MIXED_ACC_LD) acc[0] += dpre s (1 - c), acc[k] += dpre c f_k(b),
 * k = 1..4, so that d loss / d p_k = sum(acc[0] + acc[k]). */
static inline __attribute__((always_inline)) void mixed_edge_backward_k(
        int sums, int rows, int width, int d, const float *restrict p, const float *restrict dpre,
        const float *restrict sp, float *restrict cf, float *restrict dsp, float *restrict acc) {
    const float p1 = p[1], p2 = p[2], p3 = p[3], p4 = p[4], P = p1 + p2 + p3 + p4;
    float *restrict a0 = acc, *restrict a1 = acc + MIXED_ACC_LD, *restrict a2 = acc + 2 * MIXED_ACC_LD;
    float *restrict a3 = acc + 3 * MIXED_ACC_LD, *restrict a4 = acc + 4 * MIXED_ACC_LD;
    for (int r = 0; r < rows; r++) {
        float *restrict c = cf + (size_t)r * 2 * d, *restrict b = c + d;
        const float *restrict s = sp + (size_t)r * d, *restrict gr = dpre + (size_t)r * d;
        float *restrict ds = dsp + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            float ck = c[k], bk = b[k], gk = gr[k], sk = s[k], th, sg;
            tanh_sigmoid(bk, &th, &sg);
            float pos = bk > 0.0f ? 1.0f : 0.0f;
            float rl = pos * bk;
            float g = p1 * th + p2 * rl + p3 * sg + p4 * bk;
            float gp = p1 * (1.0f - th * th) + p2 * pos + p3 * sg * (1.0f - sg) + p4;
            float omc = 1.0f - ck, ps = P * sk;
            c[k] = gk * (g - ps) * ck * omc;
            b[k] = gk * ck * gp;
            ds[k] += P * omc * gk;
            if (sums) {
                float gc = gk * ck;
                a0[k] += gk * sk * omc;
                a1[k] += gc * th;
                a2[k] += gc * rl;
                a3[k] += gc * sg;
                a4[k] += gc * bk;
            }
        }
    }
}

static void mixed_edge_backward(int sums, int rows, int width, int d, const float *p, const float *dpre,
                                const float *sp, float *cf, float *dsp, float *acc) {
    if (width == MIXED_ACC_LD && sums) mixed_edge_backward_k(1, rows, MIXED_ACC_LD, d, p, dpre, sp, cf, dsp, acc);
    else if (width == MIXED_ACC_LD) mixed_edge_backward_k(0, rows, MIXED_ACC_LD, d, p, dpre, sp, cf, dsp, acc);
    else if (sums) mixed_edge_backward_k(1, rows, width, d, p, dpre, sp, cf, dsp, acc);
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
