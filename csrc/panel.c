#include "panel.h"

#include <string.h>

#include "simd.h"
#include "vec16.h"

void panel_pack(int k, int n, const float *src, int ld, int trans, int p0, int p1, float *dst) {
    for (int p = p0; p < p1; p++) {
        float *out = dst + (size_t)p * k * PANEL;
        int j0 = p * PANEL, w = n - j0 < PANEL ? n - j0 : PANEL;
        for (int i = 0; i < k; i++) {
            float *row = out + (size_t)i * PANEL;
            if (trans)
                for (int j = 0; j < w; j++) row[j] = src[(size_t)(j0 + j) * ld + i];
            else
                memcpy(row, src + (size_t)i * ld + j0, (size_t)w * sizeof(float));
            for (int j = w; j < PANEL; j++) row[j] = 0.0f;
        }
    }
}

/* rows r..r+R of one panel: R x 32 accumulators in registers (R <= 8) */
#define TILE(R)                                                                            \
    do {                                                                                   \
        v16f c0[R], c1[R];                                                                 \
        for (int i = 0; i < R; i++) c0[i] = c1[i] = v16_splat(0.0f);                       \
        const float *a = A + (size_t)r * lda;                                              \
        for (int kk = 0; kk < k; kk++) {                                                   \
            v16f b0 = v16_load(bp + (size_t)kk * PANEL), b1 = v16_load(bp + (size_t)kk * PANEL + 16); \
            for (int i = 0; i < R; i++) {                                                  \
                v16f ai = v16_splat(a[(size_t)i * lda + kk]);                              \
                c0[i] += ai * b0;                                                          \
                c1[i] += ai * b1;                                                          \
            }                                                                              \
        }                                                                                  \
        for (int i = 0; i < R; i++) {                                                      \
            float tile[PANEL], *out = C + (size_t)(r + i) * ldc + j0;                      \
            v16_store(tile, c0[i]);                                                        \
            v16_store(tile + 16, c1[i]);                                                   \
            if (beta == 0.0f) for (int j = 0; j < w; j++) out[j] = tile[j];                \
            else for (int j = 0; j < w; j++) out[j] = beta * out[j] + tile[j];             \
        }                                                                                  \
    } while (0)

/* fused multiply-adds are the point of this kernel: allow contraction here only */
SIMD_CLONES __attribute__((optimize("fp-contract=fast"))) void panel_gemm(
        int m, int n, int k, const float *A, int lda, const float *packed, int p0, int p1,
        float beta, float *C, int ldc) {
    for (int p = p0; p < p1; p++) {
        const float *bp = packed + (size_t)p * k * PANEL;
        int j0 = p * PANEL, w = n - j0 < PANEL ? n - j0 : PANEL;
        int r = 0;
        for (; r + 8 <= m; r += 8) TILE(8);
        for (; r + 4 <= m; r += 4) TILE(4);
        for (; r < m; r++) TILE(1);
    }
}
