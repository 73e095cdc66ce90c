#include "embedding.h"

#include "kernels.h"

void embedding_forward(int rows, int B, int d, const int32_t *tok, const float *E,
                       const float *row_scale, const float *mask, float *X) {
    kern->embedding_forward(rows, B, d, tok, E, row_scale, mask, X);
}

void embedding_backward(int rows, int B, int d, const int32_t *tok, const float *dX,
                        const float *row_scale, const float *mask, float *dE) {
    kern->embedding_backward(rows, B, d, tok, dX, row_scale, mask, dE);
}
