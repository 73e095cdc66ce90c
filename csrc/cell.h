/* The recurrent cell through time: forward over T steps, backward through time.
 * Per-step work is only what the recurrence forces (one (B,d)x(d,2d) product per node
 * and step); everything that can be batched over all T*B rows lives in lm.c. */
#ifndef NAS_EVAL_CELL_H
#define NAS_EVAL_CELL_H

#include "lm.h"

/* Both work on batch rows b0..b1-1 only: rows of a batch are independent through the
 * recurrence, so workers split the batch and run the whole time loop without syncing.
 * Buffers (see LM): CF, S are (n+1) blocks of T*B rows; H holds (T+1)*B rows with H[0]
 * = h_{-1} on entry. On entry CF[0] holds x_t W0[:d] for every step. W[i] is node i's
 * matrix (index 1..n; W[0] unused), w0h = W0[d:]. mask_h may be NULL (no dropout). */
void cell_forward(const CellArch *a, int T, int B, int b0, int b1, int d, const float *w0h,
                  float *const *W, const float *mask_h, float *CF, float *S, float *H,
                  float *tmp);

/* dH (T*B, d): gradient with respect to h_0..h_{T-1} (the outputs H[1..T]).
 * On return CF holds [da | db] for every node and step, and dh holds the gradient with
 * respect to the incoming hidden state h_{-1}. */
void cell_backward(const CellArch *a, int T, int B, int b0, int b1, int d, const float *w0h,
                   float *const *W, const float *mask_h, float *CF, const float *S,
                   const float *H, const float *dH, float *dS, float *G, float *dh);

#endif
