/* Products of a few rows (the batch at one time step) with a matrix that stays fixed for a
 * whole step: the matrix is packed once into panels of 32 columns, and each product then
 * streams the panels straight through a register tile sized to the instruction set
 * (kern_*.c; 8 x 32 on AVX-512). OpenBLAS would re-pack the
 * full matrix on every call, which at B = 64 rows costs about as much as the arithmetic. */
#ifndef NAS_EVAL_PANEL_H
#define NAS_EVAL_PANEL_H

#include <stddef.h>

#include "kernels.h"

#define PANEL 32

static inline int panel_count(int n) { return (n + PANEL - 1) / PANEL; }

/* floats one packed matrix of k rows and n columns takes */
static inline size_t panel_floats(int k, int n) { return (size_t)panel_count(n) * k * PANEL; }

/* Packs panels p0..p1 of B (k x n). B[i][j] = src[i * ld + j], or src[j * ld + i] when
 * trans (B is then the transpose of a row-major n x k matrix). Columns past n are zero. */
void panel_pack(int k, int n, const float *src, int ld, int trans, int p0, int p1, float *dst);

/* C[:, 32 p0 .. min(n, 32 p1)) = A (m x k) B + beta C, with B packed (panel_pack); the
 * register-tile kernel of the instruction set in use (kernels.h). */
static inline void panel_gemm(int m, int n, int k, const float *A, int lda, const float *packed,
                              int p0, int p1, float beta, float *C, int ldc) {
    kern->panel_gemm(m, n, k, A, lda, packed, p0, p1, beta, C, ldc);
}

#endif
