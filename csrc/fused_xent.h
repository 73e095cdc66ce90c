/* The tied decoder, softmax and cross-entropy fused (the "Cut Cross-Entropy" idea of
 * Wijmans et al. 2024 and Liger Kernel's fused linear cross-entropy): the (N, V) logits are
 * never stored. At the studies' sizes (d = 16..64, V = 10,000) the decoder's product has
 * K = d, so writing the logits and reading them back for the softmax and the gradient
 * products cost more than the arithmetic; here every logit lives in a register tile and an
 * L2-sized scratch tile only.
 *
 *   pass A (one item per block of XENT_ROWS rows): for each vocabulary tile, logits =
 *     H_rows E_tile^T + bias; an online log-sum-exp per row (running max m, sum s, both
 *     rescaled when m grows); with dH wanted, also acc += exp(logits - m) E_tile, rescaled
 *     with s, so that dH = scale (acc / s - E[target]) at the end (flash-attention style).
 *   pass B (one item per vocabulary tile; only with dE wanted), two ways:
 *   - XENT_RECOMPUTE: for each row block, the tile's logits again, transposed
 *     (E_tile H_rows^T), G^T = scale (softmax - onehot) from pass A's lse, dbias = row sums
 *     of G^T and dE_tile += G^T H_rows. 8 N V d FLOPs for a training step.
 *   - XENT_STORE: the rows go in groups of blocks (below); pass A also keeps each tile's
 *     exp(logit - m) (m: the row's running max when the tile was done) in 32-column panels,
 *     and pass B takes the group's tiles back (on one thread from the last-level cache) as
 *     the packed right operand of
 *       [dE_tile^T; dbias_tile] += [H_rows^T diag(f); f^T] tiles,  f = scale exp(m - lse),
 *     plus the onehot's share row by row (fused_xent.c). 6 N V d FLOPs and one exp per
 *     logit instead of 8 N V d and two: at the studies' d the recomputed product and exp
 *     cost more than the memory traffic (BENCHMARKS.md).
 * The forward alone costs 2 N V d.
 *
 * Determinism: tile and block boundaries depend on (N, d, V) only, each item writes its own
 * rows (pass A) or vocabulary entries (pass B) in a fixed order, and the loss is summed over
 * rows in row order, so results are bitwise the same for every thread count and schedule
 * (stronger than the core's per-thread-count contract); they differ between instruction-set
 * levels by rounding. The workspace is carved out of caller memory: no allocation here. */
#ifndef NAS_EVAL_FUSED_XENT_H
#define NAS_EVAL_FUSED_XENT_H

#include <stddef.h>
#include <stdint.h>

/* rows per pass-A item and per pass-B step: a multiple of the 32-column panel (pass B has
 * them as columns) and of every register tile's rows (3, 4,
 * 6, 8), so no product ends in a short tile */
#define XENT_ROWS 96

/* what a pass computes (the `grads` of xent_workspace_floats and xent_bind) */
enum { XENT_LOSS = 0, XENT_DH = 1, XENT_RECOMPUTE = 2, XENT_STORE = 3 };

/* XENT_STORE keeps the tiles of a group of row blocks (XENT_ROWS x V floats each): one block
 * on one worker; with several, up to XENT_STORE_GROUP_MAX_FLOATS (256 MiB) and at least a
 * block per worker (fused_xent.c). A vocabulary whose one block would pass
 * XENT_STORE_BLOCK_MAX_FLOATS (V > ~170,000: 64 MiB) trains with XENT_RECOMPUTE. */
#define XENT_STORE_BLOCK_MAX_FLOATS ((size_t)1 << 24)
#define XENT_STORE_GROUP_MAX_FLOATS ((size_t)1 << 26)

typedef struct {
    float *Ep;   /* E^T packed in 32-column panels (d rows): the logits' right operand */
    float *Ed;   /* per vocabulary tile, E_tile packed (vt rows, d columns): dH's operand */
    float *Ht;   /* per row block, H_rows^T packed (d rows, rb columns): pass B's logits */
    float *Hp;   /* per row block, H_rows packed (rb rows, d columns): dE's operand */
    float *S;    /* XENT_STORE: per row block and vocabulary tile, its exp tile in panels */
    float *mt;   /* XENT_STORE: (N, tiles) the running max each tile's exps were taken at */
    float *Hr;   /* XENT_STORE: per row block, H_rows^T (d x XENT_ROWS, row-major) */
    float *dEt;  /* XENT_STORE: [dE^T; dbias], (d + 1) x (tiles x vtile) */
    float *tile; /* per worker, XENT_ROWS x max(vtile, d + 1): its logit tile or left operand */
    float *lse;  /* (N,) log-sum-exp per row */
    float *nll;  /* (N,) lse - target logit per row */
} XentWork;

/* vocabulary columns per tile for hidden size d (a multiple of 96: of the 32-column panel and
 * of every register tile's rows, as pass B's products have a tile's rows) */
int xent_vocab_tile(int d);

/* the pass for all gradients: XENT_STORE while a row block's tiles fit
 * XENT_STORE_BLOCK_MAX_FLOATS, else XENT_RECOMPUTE (the same for every thread count) */
int xent_full_mode(int V);

/* floats the workspace takes for N rows (each part rounded up to 16 floats); grads: one of
 * XENT_LOSS (forward only), XENT_DH, XENT_RECOMPUTE or XENT_STORE (dH, dE and dbias) */
size_t xent_workspace_floats(int N, int d, int V, int workers, int grads);

/* lays the workspace out over mem (64-byte aligned, xent_workspace_floats floats) */
void xent_bind(XentWork *w, float *mem, int N, int d, int V, int workers, int grads);

/* Summed cross-entropy of the N rows of H (N, d) against targets, with the tied decoder
 * E (V, d) and bias (V,). With dH != NULL writes dH = d(scale * loss)/dH; with dE != NULL
 * (needs dH, and a workspace laid for XENT_RECOMPUTE or XENT_STORE: the pass it takes) also dE
 * and dbias (overwritten). `workers` must not exceed the count the workspace was laid for. */
double xent_run(const XentWork *w, int workers, int N, int d, int V, const float *H,
                const float *E, const float *bias, const int32_t *targets, float scale,
                float *dH, float *dE, float *dbias);

#endif
