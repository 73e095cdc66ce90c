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
} DartsOptions;

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

/* -1: out of memory; 0 otherwise (see stats.ok). The model's step counter is unchanged. */
int darts_alpha_step(LM *m, const CellArch *a, Segment train, Segment valid, DartsOptions o,
                     DartsStats *stats);

#endif
