#include "cell.h"

#include <string.h>

#include "blas.h"
#include "panel.h"
#include "kernels.h"

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
    const int d = g.d, by_cols = g.by_cols, r0 = g.r0, nr = g.nr, c0 = g.c0, nc = g.nc;
    const size_t bd = g.bd, s_stride = g.s_stride, cf_stride = g.cf_stride, off = g.off;
    const float *mh = g.mh;
    float *const *W = buf->W;
    /* my block of h_{-1} masked, before the others meet me and read it */
    if (mh && nr && nc) kern->block_mul(nr, nc, d, buf->H + off, mh, buf->HM + off);
    /* pack my share of every node's gate and candidate matrices once per step */
    const size_t pf = panel_floats(d, d), per_node = 2 * pf;
    if (blk->panels) {
        for (int i = 0; i <= a->n; i++) {
            const float *Wi = i ? W[i] : buf->w0h;
            float *P = buf->packed + i * per_node;
            panel_pack(d, d, Wi, 2 * d, 0, blk->pack0, blk->pack1, P);
            panel_pack(d, d, Wi + d, 2 * d, 0, blk->pack0, blk->pack1, P + pf);
        }
        if (blk->meet) blk->barrier(blk->ctx);  /* every panel packed before any product */
    }
    if (nr == 0 || nc == 0) {  /* nothing of its own, but it must still meet the others */
        if (by_cols) for (int t = 0; t < g.T * (a->n + 1); t++) blk->barrier(blk->ctx);
        return;
    }
    /* the products: my rows (all of them by columns) of my panels (all of them by rows) */
#define PRODUCT(A, node, Wm, beta, C)                                                          \
    do {                                                                                       \
        if (blk->panels) {                                                                     \
            const float *P = buf->packed + (node) * per_node;                                  \
            const float *Ar = (A) + (size_t)r0 * d;                                            \
            float *Cr = (C) + (size_t)r0 * 2 * d;                                              \
            panel_gemm(nr, d, d, Ar, d, P, blk->p0, blk->p1, (beta), Cr, 2 * d);               \
            panel_gemm(nr, d, d, Ar, d, P + pf, blk->p0, blk->p1, (beta), Cr + d, 2 * d);      \
        } else {                                                                               \
            gemm(0, 0, nr, 2 * d, d, 1.0f, (A) + (size_t)r0 * d, d, (Wm), 2 * d, (beta),       \
                 (C) + (size_t)r0 * 2 * d, 2 * d);                                             \
        }                                                                                      \
    } while (0)
    for (int t = 0; t < g.T; t++) {
        const size_t at = (size_t)t * bd;
        float *cf0 = buf->CF + 2 * at;
        PRODUCT(buf->HM + at, 0, buf->w0h, 1.0f, cf0);
        kern->node_forward(OP_TANH, nr, nc, d, buf->H + at + off, cf0 + 2 * (size_t)r0 * d + c0, buf->S + at + off);
        if (mh) kern->block_mul(nr, nc, d, buf->S + at + off, mh, buf->SM + at + off);
        for (int i = 1; i <= a->n; i++) {
            if (by_cols) blk->barrier(blk->ctx);  /* node pred[i] complete in every column */
            const int p = a->pred[i - 1];
            float *cf = buf->CF + i * cf_stride + 2 * at;
            PRODUCT(buf->SM + p * s_stride + at, i, W[i], 0.0f, cf);
            float *s = buf->S + i * s_stride + at + off;
            kern->node_forward(a->op[i - 1], nr, nc, d, buf->S + p * s_stride + at + off,
                         cf + 2 * (size_t)r0 * d + c0, s);
            if (mh) kern->block_mul(nr, nc, d, s, mh, buf->SM + i * s_stride + at + off);
        }
        float *h = buf->H + bd + at + off;
        kern->block_mean(a->n, a->out, nr, nc, d, buf->S + at + off, s_stride, h);
        if (mh) kern->block_mul(nr, nc, d, h, mh, buf->HM + bd + at + off);
        if (by_cols) blk->barrier(blk->ctx);  /* h_t complete before the next step reads it */
    }
#undef PRODUCT
}

void cell_backward(const CellArch *a, const CellBlock *blk, const CellBuffers *buf) {
    const Geometry g = geometry(blk, buf);
    const int T = g.T, d = g.d, by_cols = g.by_cols, r0 = g.r0, nr = g.nr, c0 = g.c0, nc = g.nc;
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
    /* pack my share of every node's transposed matrix once (the forward's panels are done) */
    const size_t per_node = 2 * panel_floats(d, d);
    if (blk->panels) {
        for (int i = 0; i <= a->n; i++)
            panel_pack(2 * d, d, i ? W[i] : buf->w0h, 2 * d, 1, blk->pack0, blk->pack1,
                       buf->packed + i * per_node);
        if (blk->meet) blk->barrier(blk->ctx);
    }
    if (nr == 0 || nc == 0) {
        if (by_cols) for (int t = 0; t < T * (a->n + 1); t++) blk->barrier(blk->ctx);
        return;
    }
    kern->block_set(nr, nc, d, NULL, NULL, 0.0f, dh);
    /* G_p += dab_i W_i^T: my rows (all by columns) of my panels (all by rows) */
#define PRODUCT_T(dab, node, Wm, beta, C)                                                      \
    do {                                                                                       \
        if (blk->panels)                                                                       \
            panel_gemm(nr, d, 2 * d, (dab) + (size_t)r0 * 2 * d, 2 * d,                        \
                       buf->packed + (node) * per_node, blk->p0, blk->p1, (beta),              \
                       (C) + (size_t)r0 * d, d);                                               \
        else                                                                                   \
            gemm(0, 1, nr, d, 2 * d, 1.0f, (dab) + (size_t)r0 * 2 * d, 2 * d, (Wm), 2 * d,     \
                 (beta), (C) + (size_t)r0 * d, d);                                             \
    } while (0)
    for (int t = T - 1; t >= 0; t--) {
        const size_t at = (size_t)t * bd;
        /* gradient reaching each node's state at step t: h_t = mean of output nodes */
        for (int i = 0; i <= a->n; i++) {
            int out = i > 0 && a->out[i - 1];
            kern->block_set(nr, nc, d, out ? buf->dH + at + off : NULL, dh, inv_out, dS + i * bd + off);
            if (has_child[i]) kern->block_set(nr, nc, d, NULL, NULL, 0.0f, G + i * bd + off);
        }
        for (int i = a->n; i >= 1; i--) {
            float *ds = dS + i * bd + off;
            if (has_child[i]) kern->block_add(nr, nc, d, G + i * bd + off, mh, ds);
            const int p = a->pred[i - 1];
            float *cf = buf->CF + i * cf_stride + 2 * at;
            kern->node_backward(a->op[i - 1], nr, nc, d, ds, buf->S + p * s_stride + at + off,
                          cf + 2 * (size_t)r0 * d + c0, dS + p * bd + off, 1);
            if (by_cols) blk->barrier(blk->ctx);  /* dab_i complete in every column */
            PRODUCT_T(cf, i, W[i], 1.0f, G + p * bd);
        }
        /* node 0: s0 = h + c0 (tanh(b0) - h) with h = h_{t-1} */
        float *ds0 = dS + off;
        if (has_child[0]) kern->block_add(nr, nc, d, G + off, mh, ds0);
        float *cf0 = buf->CF + 2 * at;
        kern->node_backward(OP_TANH, nr, nc, d, ds0, buf->H + at + off, cf0 + 2 * (size_t)r0 * d + c0, dh, 0);
        if (by_cols) blk->barrier(blk->ctx);
        PRODUCT_T(cf0, 0, buf->w0h, 0.0f, G);
        kern->block_add(nr, nc, d, G + off, mh, dh);
    }
#undef PRODUCT_T
}
