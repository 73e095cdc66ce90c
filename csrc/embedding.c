#include "embedding.h"

#include <string.h>

#include "simd.h"

SIMD_CLONES void embedding_forward(int rows, int B, int d, const int32_t *tok, const float *E,
                                   const float *row_scale, const float *mask, float *X) {
    for (int r = 0; r < rows; r++) {
        const float *restrict e = E + (size_t)tok[r] * d;
        float *restrict x = X + (size_t)r * d;
        float s = row_scale ? row_scale[tok[r]] : 1.0f;
        if (mask) {
            const float *restrict m = mask + (size_t)(r % B) * d;
            for (int k = 0; k < d; k++) x[k] = e[k] * s * m[k];
        } else {
            for (int k = 0; k < d; k++) x[k] = e[k] * s;
        }
    }
}

SIMD_CLONES void embedding_backward(int rows, int B, int d, const int32_t *tok, const float *dX,
                                    const float *row_scale, const float *mask, float *dE) {
    for (int r = 0; r < rows; r++) {
        float s = row_scale ? row_scale[tok[r]] : 1.0f;
        if (s == 0.0f) continue; /* the whole word type was dropped */
        float *restrict g = dE + (size_t)tok[r] * d;
        const float *restrict x = dX + (size_t)r * d;
        if (mask) {
            const float *restrict m = mask + (size_t)(r % B) * d;
            for (int k = 0; k < d; k++) g[k] += x[k] * s * m[k];
        } else {
            for (int k = 0; k < d; k++) g[k] += x[k] * s;
        }
    }
}
