#include "cell.h"

#include <string.h>

#include "blas.h"
#include "mathfun.h"
#include "panel.h"
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
SIMD_CLONES void node_forward(int op, int rows, int width, int d, const float *sp,
                                     float *cf, float *s) {
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

SIMD_CLONES void node_backward(int op, int rows, int width, int d, const float *ds,
                                      const float *sp, float *cf, float *dsp, int accumulate) {
    switch (op) {
    case OP_TANH: node_backward_op(OP_TANH, rows, width, d, ds, sp, cf, dsp, accumulate); break;
    case OP_RELU: node_backward_op(OP_RELU, rows, width, d, ds, sp, cf, dsp, accumulate); break;
    case OP_SIGMOID: node_backward_op(OP_SIGMOID, rows, width, d, ds, sp, cf, dsp, accumulate); break;
    default: node_backward_op(OP_IDENTITY, rows, width, d, ds, sp, cf, dsp, accumulate); break;
    }
}

/* --- rows x width blocks of (rows, d) matrices ------------------------------------------- */
SIMD_CLONES void block_mul(int rows, int width, int d, const float *x, const float *m,
                                  float *y) {
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d, *restrict mr = m + (size_t)r * d;
        float *restrict yr = y + (size_t)r * d;
        for (int k = 0; k < width; k++) yr[k] = xr[k] * mr[k];
    }
}

/* y += x (m == NULL) or y += x * m */
SIMD_CLONES void block_add(int rows, int width, int d, const float *x, const float *m,
                                  float *y) {
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

SIMD_CLONES void block_set(int rows, int width, int d, const float *x, const float *y,
                                  float scale, float *out) {
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d, *restrict yr = y + (size_t)r * d;
        float *restrict o = out + (size_t)r * d;
        if (x) for (int k = 0; k < width; k++) o[k] = (xr[k] + yr[k]) * scale;
        else for (int k = 0; k < width; k++) o[k] = 0.0f;
    }
}

/* h = mean of the output nodes' states (block) */
SIMD_CLONES static void block_mean(const CellArch *a, int rows, int width, int d, const float *S,
                                   size_t node_stride, float *h) {
    int count = 0;
    for (int i = 1; i <= a->n; i++) count += a->out[i - 1] != 0;
    float inv = 1.0f / (float)count;
    for (int r = 0; r < rows; r++) {
        float *restrict hr = h + (size_t)r * d;
        for (int k = 0; k < width; k++) hr[k] = 0.0f;
        for (int i = 1; i <= a->n; i++) {
            if (!a->out[i - 1]) continue;
            const float *restrict sr = S + (size_t)i * node_stride + (size_t)r * d;
            for (int k = 0; k < width; k++) hr[k] += sr[k];
        }
        for (int k = 0; k < width; k++) hr[k] *= inv;
    }
}

/* The forward through time on a block of the batch (rows b0..b1, all columns; workers split
 * the batch and never wait for each other) or of the columns (all rows, columns k0..k1 of
 * every state; workers meet at a barrier after each node, since the next node's product
 * reads every column; worth it for large d, where products over all B rows run much faster
 * than over half of them). */
/* A worker's block of every (T*B, d) matrix: rows r0.. (nr of them) and columns c0.. (nc),
 * `off` into each step's (B, d) slice, and the strides between steps and nodes. */
typedef struct {
    int T, B, d, by_cols, r0, nr, c0, nc;
    size_t off, bd, s_stride, cf_stride;
    const float *mh; /* this block's corner of the h mask, or NULL */
} Geometry;

static Geometry geometry(const CellBlock *blk, const CellBuffers *buf) {
    Geometry g;
    g.T = blk->T; g.B = blk->B; g.d = blk->d; g.by_cols = blk->by_cols;
    g.r0 = g.by_cols ? 0 : blk->lo;
    g.nr = g.by_cols ? g.B : blk->hi - blk->lo;
    g.c0 = g.by_cols ? blk->lo : 0;
    g.nc = g.by_cols ? blk->hi - blk->lo : g.d;
    g.off = (size_t)g.r0 * g.d + g.c0;
    g.bd = (size_t)g.B * g.d;
    g.s_stride = (size_t)g.T * g.bd;
    g.cf_stride = 2 * g.s_stride;
    g.mh = buf->mask_h ? buf->mask_h + g.off : NULL;
    return g;
}

void cell_forward(const CellArch *a, const CellBlock *blk, const CellBuffers *buf) {
    const Geometry g = geometry(blk, buf);
    const int B = g.B, d = g.d, by_cols = g.by_cols, r0 = g.r0, nr = g.nr, c0 = g.c0, nc = g.nc;
    const size_t bd = g.bd, s_stride = g.s_stride, cf_stride = g.cf_stride, off = g.off;
    const float *mh = g.mh;
    float *const *W = buf->W;
    if (nr == 0 || nc == 0) {  /* nothing of its own, but it must still meet the others */
        if (by_cols) for (int t = 0; t < g.T * (a->n + 1) + 1; t++) blk->barrier(blk->ctx);
        return;
    }
    if (mh) block_mul(nr, nc, d, buf->H + off, mh, buf->HM + off);
    /* by columns: pack my panels of every node's gate and candidate matrices once */
    const size_t pf = panel_floats(d, d), per_node = 4 * pf;
    if (by_cols)
        for (int i = 0; i <= a->n; i++) {
            const float *Wi = i ? W[i] : buf->w0h;
            float *P = buf->packed + i * per_node;
            panel_pack(d, d, Wi, 2 * d, 0, blk->p0, blk->p1, P);
            panel_pack(d, d, Wi + d, 2 * d, 0, blk->p0, blk->p1, P + pf);
        }
    if (by_cols) blk->barrier(blk->ctx);
    /* the products: all rows of my columns of gate and candidate, or my rows of all columns */
#define PRODUCT(A, node, Wm, beta, C)                                                               \
    do {                                                                                       \
        if (by_cols) {                                                                         \
            const float *P = buf->packed + (node) * per_node;                                  \
            panel_gemm(B, d, d, (A), d, P, blk->p0, blk->p1, (beta), (C), 2 * d);              \
            panel_gemm(B, d, d, (A), d, P + pf, blk->p0, blk->p1, (beta), (C) + d, 2 * d);     \
        } else {                                                                               \
            gemm(0, 0, nr, 2 * d, d, 1.0f, (A) + (size_t)r0 * d, d, (Wm), 2 * d, (beta),           \
                 (C) + (size_t)r0 * 2 * d, 2 * d);                                             \
        }                                                                                      \
    } while (0)
    for (int t = 0; t < g.T; t++) {
        const size_t at = (size_t)t * bd;
        float *cf0 = buf->CF + 2 * at;
        PRODUCT(buf->HM + at, 0, buf->w0h, 1.0f, cf0);
        node_forward(OP_TANH, nr, nc, d, buf->H + at + off, cf0 + 2 * (size_t)r0 * d + c0, buf->S + at + off);
        if (mh) block_mul(nr, nc, d, buf->S + at + off, mh, buf->SM + at + off);
        for (int i = 1; i <= a->n; i++) {
            if (by_cols) blk->barrier(blk->ctx);  /* node pred[i] complete in every column */
            const int p = a->pred[i - 1];
            float *cf = buf->CF + i * cf_stride + 2 * at;
            PRODUCT(buf->SM + p * s_stride + at, i, W[i], 0.0f, cf);
            float *s = buf->S + i * s_stride + at + off;
            node_forward(a->op[i - 1], nr, nc, d, buf->S + p * s_stride + at + off,
                         cf + 2 * (size_t)r0 * d + c0, s);
            if (mh) block_mul(nr, nc, d, s, mh, buf->SM + i * s_stride + at + off);
        }
        float *h = buf->H + bd + at + off;
        block_mean(a, nr, nc, d, buf->S + at + off, s_stride, h);
        if (mh) block_mul(nr, nc, d, h, mh, buf->HM + bd + at + off);
        if (by_cols) blk->barrier(blk->ctx);  /* h_t complete before the next step reads it */
    }
#undef PRODUCT
}

void cell_backward(const CellArch *a, const CellBlock *blk, const CellBuffers *buf) {
    const Geometry g = geometry(blk, buf);
    const int T = g.T, B = g.B, d = g.d, by_cols = g.by_cols, r0 = g.r0, nr = g.nr, c0 = g.c0, nc = g.nc;
    const size_t bd = g.bd, s_stride = g.s_stride, cf_stride = g.cf_stride, off = g.off;
    const float *mh = g.mh;
    float *const *W = buf->W;
    float *dS = buf->dS, *G = buf->G, *dh = buf->dh + off;
    int n_out = 0, has_child[LM_MAX_NODES + 1] = {0};
    for (int i = 1; i <= a->n; i++) {
        n_out += a->out[i - 1] != 0;
        has_child[a->pred[i - 1]] = 1;
    }
    const float inv_out = 1.0f / (float)n_out;
    if (nr == 0 || nc == 0) {
        if (by_cols) for (int t = 0; t < T * (a->n + 1); t++) blk->barrier(blk->ctx);
        return;
    }
    block_set(nr, nc, d, NULL, NULL, 0.0f, dh);
    /* by columns: pack my panels of every node's transposed matrix once */
    const size_t pf = panel_floats(d, d), per_node = 4 * pf;
    if (by_cols)
        for (int i = 0; i <= a->n; i++)
            panel_pack(2 * d, d, i ? W[i] : buf->w0h, 2 * d, 1, blk->p0, blk->p1,
                       buf->packed + i * per_node + 2 * pf);
    /* G_p += dab_i W_i^T: my columns of all rows, or my rows of all columns */
#define PRODUCT_T(dab, node, Wm, beta, C)                                                          \
    do {                                                                                       \
        if (by_cols)                                                                           \
            panel_gemm(B, d, 2 * d, (dab), 2 * d, buf->packed + (node) * per_node + 2 * pf,     \
                       blk->p0, blk->p1, (beta), (C), d);                                      \
        else                                                                                   \
            gemm(0, 1, nr, d, 2 * d, 1.0f, (dab) + (size_t)r0 * 2 * d, 2 * d, (Wm), 2 * d, (beta), \
                 (C) + (size_t)r0 * d, d);                                                     \
    } while (0)
    for (int t = T - 1; t >= 0; t--) {
        const size_t at = (size_t)t * bd;
        /* gradient reaching each node's state at step t: h_t = mean of output nodes */
        for (int i = 0; i <= a->n; i++) {
            int out = i > 0 && a->out[i - 1];
            block_set(nr, nc, d, out ? buf->dH + at + off : NULL, dh, inv_out, dS + i * bd + off);
            if (has_child[i]) block_set(nr, nc, d, NULL, NULL, 0.0f, G + i * bd + off);
        }
        for (int i = a->n; i >= 1; i--) {
            float *ds = dS + i * bd + off;
            if (has_child[i]) block_add(nr, nc, d, G + i * bd + off, mh, ds);
            const int p = a->pred[i - 1];
            float *cf = buf->CF + i * cf_stride + 2 * at;
            node_backward(a->op[i - 1], nr, nc, d, ds, buf->S + p * s_stride + at + off,
                          cf + 2 * (size_t)r0 * d + c0, dS + p * bd + off, 1);
            if (by_cols) blk->barrier(blk->ctx);  /* dab_i complete in every column */
            PRODUCT_T(cf, i, W[i], 1.0f, G + p * bd);
        }
        /* node 0: s0 = h + c0 (tanh(b0) - h) with h = h_{t-1} */
        float *ds0 = dS + off;
        if (has_child[0]) block_add(nr, nc, d, G + off, mh, ds0);
        float *cf0 = buf->CF + 2 * at;
        node_backward(OP_TANH, nr, nc, d, ds0, buf->H + at + off, cf0 + 2 * (size_t)r0 * d + c0, dh, 0);
        if (by_cols) blk->barrier(blk->ctx);
        PRODUCT_T(cf0, 0, buf->w0h, 0.0f, G);
        block_add(nr, nc, d, G + off, mh, dh);
    }
#undef PRODUCT_T
}
