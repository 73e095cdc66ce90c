/* The DARTS mixed cell (DESIGN §3, search-time variant): the continuous relaxation of the
 * recurrent cell. Node i (1..n) reads every earlier node j < i through its one matrix W_i:
 *   [a_ij | b_ij] = (s_j * m_h) W_i,  c_ij = sigmoid(a_ij),
 *   pre_i = sum_j sum_{k != none} p_{e,k} (s_j + c_ij (f_k(b_ij) - s_j)),  e = edge j -> i,
 *   s_i = BN(pre_i)   (non-affine batch normalisation; also on s0),
 * with p_e = softmax(alpha_e) over (none, tanh, relu, sigmoid, identity); `none` adds zero.
 * Written as pre_i = sum_j [P_e s_j + c_ij (g_ij - P_e s_j)] with P_e = sum_{k != none} p_{e,k}
 * and g_ij = sum_k p_{e,k} f_k(b_ij): one pass per edge, whatever the number of ops.
 *
 * The cell plugs into the LM (lm.h) in place of the discrete cell: same embedding, W0, node
 * bank (n matrices), decoder, dropouts and SGD. Its workers always share it by 32-column
 * panels, one ticket per panel of a node at a step (batch normalisation needs every batch
 * row of a column; parallel.h): each panel keeps its own sums for d loss / d alpha, reduced
 * in panel order, so results do not depend on the thread count or on who ran what.
 * Buffers, beside the LM's:
 *   CF: block 0 = node 0 as in the discrete cell, then one (T*B, 2d) block per edge e in
 *       the order of Arch.to_alpha (e = i(i-1)/2 + j): [c | b] after the forward (b before
 *       its activation: backward recomputes the four ops), [da | db] after the backward;
 *   S, SM: (n+1) x (T*B, d) node states after batch normalisation, and times m_h. */
#ifndef NAS_EVAL_MIXED_CELL_H
#define NAS_EVAL_MIXED_CELL_H

#include <stddef.h>
#include <stdint.h>

#include "cell.h"

#define MIXED_OPS 5 /* none, tanh, relu, sigmoid, identity (the reference's PRIMITIVES) */
#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define MIXED_ACC_LD 32 /* stride of the per-column sums (a panel's columns) */

/* the elementwise loops, one table per instruction set (mixed_elementwise.h, kernels.h) */
typedef struct MixedKernels {
    void (*edge_forward)(int first, int rows, int width, int d, const float *p, const float *sp,
                         float *cf, float *pre);
    void (*edge_backward)(int sums, int rows, int width, int d, const float *p, const float *dpre,
                          const float *sp, float *cf, float *dsp, float *acc);
    void (*bn_batch)(int rows, int width, int d, float *x, float *invstd, float *rmean, float *rvar,
                     int update, float *mean, float *var);
    void (*bn_running)(int rows, int width, int d, float *x, const float *rmean, const float *rvar,
                       float *invstd);
    void (*bn_backward)(int rows, int width, int d, const float *y, const float *invstd, float *dy,
                        float *m1, float *m2);
} MixedKernels;

typedef struct MixedCell {
    int n, E, d;
    int batch_norm;       /* 0: no normalisation (the one-hot equivalence with the discrete cell) */
    double *alpha;        /* (E, 5) architecture weights */
    double *dalpha;       /* (E, 5) d objective / d alpha of the last backward with alpha_grad */
    double *adam_m, *adam_v;
    int64_t adam_t;       /* Adam steps taken */
    double *prob;         /* (E, 5) softmax(alpha) per edge */
    float *probf;         /* the same in float, read by the kernels */
    float *running_mean, *running_var; /* (d,) one BN module for s0 and every node, as the reference */

    /* per pass, set by mixed_begin_pass / the caller */
    int bn_running;       /* 1: normalise with the running statistics (pure evaluation) */
    int bn_update;        /* 1: batch statistics also update the running ones */
    int freeze_running;   /* 1: never update the running statistics (virtual-step passes) */
    int alpha_grad;       /* 1: the backward accumulates d loss / d alpha */
    int weight_grad;      /* 1: the backward computes the weight gradients (lm.c) */

    /* scratch laid out by mixed_reserve */
    size_t scratch_floats;
    int scratch_T, n_panels;
    float *scratch;
    float *invstd;        /* (T, n+1, d): 1 / sqrt(var + eps) of each normalisation */
    float *acc;           /* panels x 7 x 32: per-column sums (5 rows) and batch-norm scratch (2) */
    double *dp_part;      /* panels x (E, 5): d loss / d p_{e,k} of each panel's columns */
    /* for the architecture step (darts.c): two parameter-arena copies (second order) and a
     * hidden-state sink, allocated on first use; (3, E, 5) doubles of alpha gradients */
    size_t arena_floats, sink_floats;
    float *saved, *vec, *sink;
    double *dwork;
} MixedCell;

MixedCell *mixed_create(int n, int d, uint64_t seed, int batch_norm);
void mixed_free(MixedCell *mc);
/* alpha changed: recompute the probabilities */
void mixed_update_probs(MixedCell *mc);
/* scratch for a segment of T steps; 0 or -1 (out of memory) */
int mixed_reserve(MixedCell *mc, int T);
/* the batch-norm mode of one pass: running statistics when neither training nor
 * differentiating, batch statistics otherwise (updating the running ones when training) */
void mixed_begin_pass(MixedCell *mc, int train, int backward);

/* The cell through time; every worker of the job calls these with the same work and
 * buffers (cell.h), buf->packed always set; work->by_cols and row_chunk are not used. */
void mixed_cell_forward(const MixedCell *mc, const CellWork *w, const CellBuffers *buf);
void mixed_cell_backward(const MixedCell *mc, const CellWork *w, const CellBuffers *buf);

/* After mixed_cell_backward: reduce the panels' sums (in panel order) and chain them
 * through the softmax into mc->dalpha (overwritten). */
void mixed_alpha_gradient(MixedCell *mc);

/* Node-matrix gradients dW_i = sum_j SM_j^T [da | db]_ij over all T*B rows (overwrites gmats). */
void mixed_weight_gradients(const MixedCell *mc, int workers, int d, size_t rows, const float *SM,
                            const float *CF, float *gmats);

#endif
