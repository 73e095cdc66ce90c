/* The body of one instruction set's kernel table; included once by each kern_<isa>.c,
 * which first defines
 *   KERN_TABLE  name of the Kernels table to define (kernels_<isa>)
 *   KERN_NAME   its name string, KERN_ISA its level
 *   KERN_TARGET the compiler target it needs, e.g. "avx2,fma" (left undefined: the
 *               compiler's baseline, as for generic and NEON)
 *   VL          float lanes of one native vector register
 *   MR, NV      the register tile: MR rows x NV vectors (NV * VL columns, dividing PANEL)
 * and may define PANEL_MIN_D, COLUMN_SPLIT_MIN_D (kernels.h), its measured switches: the
 * defaults below hold for every level so far. Everything from here to the end, the headers
 * included from here too, is compiled for KERN_TARGET. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef PANEL_MIN_D
#define PANEL_MIN_D 64
#endif
#ifndef COLUMN_SPLIT_MIN_D
#define COLUMN_SPLIT_MIN_D 512
#endif

/* KERN_PRAGMA(words): #pragma words, the macros in words (KERN_TARGET) expanded first:
 * these pragmas take their words as written */
#define KERN_PRAGMA_(...) _Pragma(#__VA_ARGS__)
#define KERN_PRAGMA(...) KERN_PRAGMA_(__VA_ARGS__)
#if defined(KERN_TARGET) && defined(__clang__)
KERN_PRAGMA(clang attribute push(__attribute__((target(KERN_TARGET))), apply_to = function))
#elif defined(KERN_TARGET)
KERN_PRAGMA(GCC push_options)
KERN_PRAGMA(GCC target(KERN_TARGET))
#endif

#include "elementwise.h"
#include "kernels.h"
#include "panel.h"

typedef float vnat __attribute__((vector_size(VL * 4)));

#define TILE_COLS (NV * VL)
_Static_assert(PANEL % TILE_COLS == 0, "the tile must divide the panel");
_Static_assert(MR >= 1 && MR <= 8, "panel_gemm handles left-over rows up to 7");

static inline vnat vnat_load(const float *p) { vnat v; memcpy(&v, p, sizeof v); return v; }
static inline void vnat_store(float *p, vnat v) { memcpy(p, &v, sizeof v); }

/* R rows x NV vectors of C at rows r.., panel columns c.. (within panel bp): the
 * accumulators live in registers for the whole k loop; each B vector is loaded once per k
 * and each A element broadcast once. Each C element is one dot product in k order, so the
 * result never depends on where the tile sits (splits stay bit-identical). */
#define TILE(R)                                                                            \
    do {                                                                                   \
        vnat acc[R][NV];                                                                   \
        for (int i = 0; i < (R); i++)                                                      \
            for (int v = 0; v < NV; v++) acc[i][v] = (vnat){0};                            \
        const float *a = A + (size_t)r * lda;                                              \
        const float *b = bp + c;                                                           \
        for (int kk = 0; kk < k; kk++, b += PANEL) {                                       \
            vnat bv[NV];                                                                   \
            for (int v = 0; v < NV; v++) bv[v] = vnat_load(b + v * VL);                    \
            for (int i = 0; i < (R); i++) {                                                \
                vnat ai = a[(size_t)i * lda + kk] - (vnat){0}; /* x - 0 == x: a plain broadcast */ \
                for (int v = 0; v < NV; v++) acc[i][v] += ai * bv[v];                      \
            }                                                                              \
        }                                                                                  \
        for (int i = 0; i < (R); i++) {                                                    \
            float *out = C + (size_t)(r + i) * ldc + j0 + c;                               \
            if (c + TILE_COLS <= w) {                                                      \
                for (int v = 0; v < NV; v++) {                                             \
                    vnat o = acc[i][v];                                                    \
                    if (beta != 0.0f) o += beta * vnat_load(out + v * VL);                 \
                    vnat_store(out + v * VL, o);                                           \
                }                                                                          \
            } else {                                                                       \
                float tile[TILE_COLS];                                                     \
                for (int v = 0; v < NV; v++) vnat_store(tile + v * VL, acc[i][v]);         \
                for (int j = 0; j < w - c; j++)                                            \
                    out[j] = beta != 0.0f ? beta * out[j] + tile[j] : tile[j];             \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* fused multiply-adds are the point of this kernel: allow contraction here only */
#if defined(__clang__)
#define FP_CONTRACT_FAST
#else
#define FP_CONTRACT_FAST __attribute__((optimize("fp-contract=fast")))
#endif

FP_CONTRACT_FAST static void panel_gemm_isa(int m, int n, int k, const float *A, int lda,
                                            const float *packed, int p0, int p1, float beta,
                                            float *C, int ldc) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
    for (int p = p0; p < p1; p++) {
        const float *bp = packed + (size_t)p * k * PANEL;
        int j0 = p * PANEL, w = n - j0 < PANEL ? n - j0 : PANEL;
        for (int c = 0; c < w; c += TILE_COLS) {
            int r = 0;
            for (; r + MR <= m; r += MR) TILE(MR);
            switch (m - r) { /* the rows left over, fewer than MR */
            case 7: TILE(7); break;
            case 6: TILE(6); break;
            case 5: TILE(5); break;
            case 4: TILE(4); break;
            case 3: TILE(3); break;
            case 2: TILE(2); break;
            case 1: TILE(1); break;
            default: break;
            }
        }
    }
}
#undef TILE

#include "mixed_elementwise.h" /* after FP_CONTRACT_FAST */
#include "xent_elementwise.h"

const Kernels KERN_TABLE = {
    .name = KERN_NAME,
    .isa = KERN_ISA,
    .tile_rows = MR,
    .tile_cols = TILE_COLS,
    .panel_min_d = PANEL_MIN_D,
    .column_split_min_d = COLUMN_SPLIT_MIN_D,
    .panel_gemm = panel_gemm_isa,
    .node_forward = node_forward,
    .node_backward = node_backward,
    .block_mul = block_mul,
    .block_add = block_add,
    .block_set = block_set,
    .block_mean = block_mean,
    .row_exp = row_exp,
    .row_grad = row_grad,
    .xent_online = xent_online,
    .xent_grad = xent_grad,
    .embedding_forward = embedding_forward_rows,
    .embedding_backward = embedding_backward_rows,
    .sq_norm = sq_norm,
    .sgd = sgd,
    .average = average,
    .mixed = &mixed_kernels,
};

#if defined(KERN_TARGET) && defined(__clang__)
#pragma clang attribute pop
#elif defined(KERN_TARGET)
#pragma GCC pop_options
#endif
