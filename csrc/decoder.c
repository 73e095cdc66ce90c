#include "decoder.h"

#include <math.h>
#include <string.h>

#include "blas.h"
#include "kernels.h"

double decoder_rows(int rows, int d, int V, const float *HD, const float *E,
                    const float *bias, const int32_t *targets, float *logits, int chunk,
                    float scale, float *dHD, float *dE, float *dbias) {
    double loss = 0.0;
    if (dHD) {
        memset(dbias, 0, (size_t)V * sizeof(float));
        if (rows == 0) memset(dE, 0, (size_t)V * d * sizeof(float));
    }
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        int nr = rows - r0 < chunk ? rows - r0 : chunk;
        const float *h = HD + (size_t)r0 * d;
        gemm(0, 1, nr, V, d, 1.0f, h, d, E, d, 0.0f, logits, V);
        for (int r = 0; r < nr; r++) {
            float *l = logits + (size_t)r * V, tl, sum;
            int target = targets[r0 + r];
            float lse = kern->row_exp(V, l, bias, target, &tl, &sum);
            loss += (double)(lse - tl);
            if (dHD) kern->row_grad(V, l, sum, target, scale, dbias);
        }
        if (!dHD) continue;
        gemm(0, 0, nr, d, V, 1.0f, logits, V, E, d, 0.0f, dHD + (size_t)r0 * d, d);
        gemm(1, 0, V, d, nr, 1.0f, logits, V, h, d, r0 == 0 ? 0.0f : 1.0f, dE, d);
    }
    return loss;
}
