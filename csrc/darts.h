/* The DARTS architecture step (the reference's Architect.step) on an LM with a mixed cell:
 * the gradient of the validation loss with respect to alpha, first order (at the current
 * weights w) or second order (at the weights w' = w - eta (clipped grad + wd w) of one
 * virtual SGD step on the training batch, minus eta times the implicit term estimated by
 * a finite-difference Hessian-vector product), then one Adam step on alpha. */
#ifndef NAS_EVAL_DARTS_H
#define NAS_EVAL_DARTS_H

#include <stdint.h>

#include "adam.h"
#include "lm.h"
#include "mixed_cell.h"

typedef struct {
    const int32_t *inputs, *targets; /* (T, B) */
    int T, B;
    const float *h0;                 /* (B, d) incoming hidden state */
    float *h_out;                    /* (B, d) h_T, or NULL */
} Segment;

typedef struct {
    int order;      /* 1: first order; 2: the unrolled second-order step */
    float eta;      /* learning rate of the weight step this batch gets (lr * T / bptt) */
    float clip;     /* the weight step's gradient-norm clip (<= 0: none) */
    float wd;       /* the weight step's weight decay */
    double r;       /* 0.01: the finite-difference radius is r / ||v|| */
    AdamConfig adam;
    int apply;      /* 1: Adam step on alpha; 0: only leave the gradient in mix->dalpha */
    int per_pass;   /* 1: every pass of the step draws its own dropout masks, as the reference's
                     * forward passes do; 0: the training-batch passes reuse step k's masks */
    /* The paper code's architect (nas-landmarkreg darts_policy/architect.py caches the unrolled
     * model): NULL, or DARTS_CACHE_LEN doubles [alpha0 | alpha-gradient sum | v sum] that
     * persist across steps. The validation pass runs at alpha0 (the cached model's alpha is
     * never updated), v accumulates the validation weight gradients and is clipped in place
     * (the cached model's gradients are never zeroed); with `accumulate` the alpha gradient
     * accumulates too (see docs/fidelity.md: whether it did depends on PyTorch's zero_grad). */
    double *cache;
    int accumulate;
    /* 1: the Hessian-vector passes update the batch-norm running statistics too, as every
     * train-mode pass of the reference's model did; 0: only the virtual step's pass (at the
     * model's own weights) and the weight step's update them */
    int bn_every_pass;
} DartsOptions;

/* length of DartsOptions.cache for E edges and `total` weights */
#define DARTS_CACHE_LEN(E, total) (2 * (size_t)(E) * MIXED_OPS + (size_t)(total))

typedef struct {
    double valid_loss_sum; /* cross-entropy sum on the validation batch (at w' for order 2) */
    long tokens;
    double virtual_grad_norm; /* order 2: norm of the training gradient of the virtual step */
    double valid_grad_norm;   /* order 2: norm of the validation gradient at w' (before clipping) */
    int ok;                   /* 0: a non-finite loss or gradient; alpha left unchanged */
} DartsStats;

/* The validation passes of step k key their dropout masks with k | DARTS_VALID_COUNTER, so
 * they never reuse a training step's masks; the training-batch passes of the second-order
 * step use step k's own masks, which the weight step that follows also uses. */
#define DARTS_VALID_COUNTER (1ULL << 63)
/* With per_pass, pass p of step k (0 validation, 1 virtual step, 2 and 3 the Hessian-vector
 * passes at w + R v and w - R v) keys its masks with DARTS_PASS_COUNTER(k, p): distinct from
 * each other and from every training step while k < DARTS_MAX_STEP. */
#define DARTS_MAX_STEP (1ULL << 61)
#define DARTS_PASS_COUNTER(k, p) ((k) | DARTS_VALID_COUNTER | ((uint64_t)(p) << 61))

/* -1: out of memory; 0 otherwise (see stats.ok). The model's step counter is unchanged. */
int darts_alpha_step(LM *m, const CellArch *a, Segment train, Segment valid, DartsOptions o,
                     DartsStats *stats);

#endif
