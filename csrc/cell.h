/* The recurrent cell through time: forward over T steps, backward through time.
 * Per-step work is only what the recurrence forces (one (B,d)x(d,2d) product per node
 * and step); everything that can be batched over all T*B rows lives in lm.c. */
#ifndef NAS_EVAL_CELL_H
#define NAS_EVAL_CELL_H

#include "lm.h"

/* Where a worker's share of the cell lives: batch rows lo..hi (by_cols == 0) or state
 * columns lo..hi (by_cols == 1; every worker then calls barrier(ctx) at the same points).
 * With panels, the per-step products run through node matrices packed once per step
 * (panel.h): each worker packs panels pack0..pack1 and multiplies with panels p0..p1 (its
 * own by columns, all of them by rows); meet: they wait for each other after packing. */
typedef struct {
    int T, B, d;
    int by_cols, lo, hi;
    int panels, meet;
    int pack0, pack1, p0, p1;
    void (*barrier)(void *ctx);
    void *ctx;
} CellBlock;

/* Buffers, all (T*B)-row blocks per node (see LM): CF (n+1) x (T*B, 2d) holds on entry
 * x_t W0[:d] in block 0 and receives [gate | candidate], later [da | db]; S, SM (n+1) x
 * (T*B, d) node states and their h-masked copies (SM == S without h dropout); H, HM
 * ((T+1)*B, d) with H[0] = h_{-1} on entry; dH (T*B, d) the gradient with respect to
 * h_0..h_{T-1}; dS, G (n+1) x (B, d) and dh (B, d) per-step scratch; dh ends as the
 * gradient with respect to h_{-1}. W[i] is node i's matrix (1..n), w0h = W0[d:]. */
typedef struct {
    const float *w0h;
    float *const *W;
    const float *mask_h;
    float *CF, *S, *SM, *H, *HM;
    const float *dH;
    float *dS, *G, *dh;
    float *packed; /* with panels: (n+1) x 2 panel_floats(d, d): gate and candidate, then transposed */
} CellBuffers;

void cell_forward(const CellArch *a, const CellBlock *blk, const CellBuffers *buf);
void cell_backward(const CellArch *a, const CellBlock *blk, const CellBuffers *buf);

#endif
