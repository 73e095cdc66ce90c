/* Tied decoder and softmax cross-entropy, processed in row chunks so the logits
 * buffer stays small and cache-resident instead of a fresh (T*B, V) tensor per step. */
#ifndef NAS_EVAL_DECODER_H
#define NAS_EVAL_DECODER_H

#include <stdint.h>

/* Returns the summed cross-entropy of `rows` rows of HD (rows, d) against targets.
 * With dHD != NULL also computes, for the loss scaled by `scale` (1/N for a mean):
 * dHD = dlogits E, dE = dlogits^T HD and dbias = column sums of dlogits (both overwritten,
 * so each worker of a row split writes its own partial dE / dbias). */
double decoder_rows(int rows, int d, int V, const float *HD, const float *E, const float *bias,
                    const int32_t *targets, float *logits, int chunk, float scale, float *dHD,
                    float *dE, float *dbias);

#endif
