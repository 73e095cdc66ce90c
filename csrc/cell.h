/* The recurrent cell through time: forward over T steps, backward through time.
 * Per-step work is only what the recurrence forces (one (B,d)x(d,2d) product per node
 * and step); everything that can be batched over all T*B rows lives in lm.c. */
#ifndef NAS_EVAL_CELL_H
#define NAS_EVAL_CELL_H

#include "lm.h"

/* Where a worker's share of the cell lives: batch rows lo..hi (by_cols == 0) or state
 * columns lo..hi (by_cols == 1; every worker then calls barrier(ctx) at the same points). */
typedef struct {
    int T, B, d;
    int by_cols, lo, hi;
    int p0, p1;  /* by columns: my 32-column panels; lo, hi = their columns */
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
    float *packed; /* by columns: (n+1) x 4 panel_floats(d, d): gate, candidate, transposed */
} CellBuffers;

void cell_forward(const CellArch *a, const CellBlock *blk, const CellBuffers *buf);
void cell_backward(const CellArch *a, const CellBlock *blk, const CellBuffers *buf);

/* Node kernels on a rows x width block of (rows, d) matrices, shared with the mixed cell
 * (mixed_cell.c). cf rows have stride 2d and hold [gate | candidate].
 * node_forward: [a | b] -> [c | f] with c = sigmoid(a), f = op(b); s = sp + c (f - sp).
 * node_backward: given ds, [c | f] -> [da | db]; dsp (+)= ds (1 - c). */
void node_forward(int op, int rows, int width, int d, const float *sp, float *cf, float *s);
void node_backward(int op, int rows, int width, int d, const float *ds, const float *sp,
                   float *cf, float *dsp, int accumulate);
/* y = x * m; y += x (m == NULL) or y += x * m; out = (x + y) * scale (x == NULL: zeros) */
void block_mul(int rows, int width, int d, const float *x, const float *m, float *y);
void block_add(int rows, int width, int d, const float *x, const float *m, float *y);
void block_set(int rows, int width, int d, const float *x, const float *y, float scale, float *out);

#endif
