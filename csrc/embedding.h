/* Embedding lookup with the input-side dropouts folded in, and its scatter-add backward. */
#ifndef NAS_EVAL_EMBEDDING_H
#define NAS_EVAL_EMBEDDING_H

#include <stdint.h>

/* X[r] = E[tok[r]] * row_scale[tok[r]] * mask[r % B]; row_scale/mask may be NULL. */
void embedding_forward(int rows, int B, int d, const int32_t *tok, const float *E,
                       const float *row_scale, const float *mask, float *X);

/* dE[tok[r]] += dX[r] * row_scale[tok[r]] * mask[r % B], in row order (deterministic). */
void embedding_backward(int rows, int B, int d, const int32_t *tok, const float *dX,
                        const float *row_scale, const float *mask, float *dE);

#endif
