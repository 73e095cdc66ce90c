/* The cell's per-step product, C (m x 2d) = A (m x d) W (d x 2d), through the core's
 * panel kernel of every instruction set this CPU runs and through OpenBLAS sgemm (which
 * re-packs W on every call), single-threaded, GFLOP/s (best of 15 bursts of ~0.2 s). It
 * is what the switches in csrc/kern_*.c (PANEL_MIN_D, the register tiles) were chosen
 * from. Build and run from the repository root:
 *
 *   OB=$(python -c 'import scipy_openblas32 as s; print(s.get_include_dir(), s.get_lib_dir(), s.get_library())')
 *   set -- $OB; gcc -std=c11 -O3 -fno-math-errno -fno-trapping-math -Wno-psabi -Icsrc -I$1 \
 *       benchmarks/bench_panel.c csrc/kern_*.c csrc/isa.c csrc/panel.c -L$2 -l$3 -Wl,-rpath,$2 -lm \
 *       -o /tmp/bench_panel && /tmp/bench_panel
 *
 * (OPENBLAS_CORETYPE=Haswell caps OpenBLAS to AVX2; -DAVX2_MR=6 -DAVX2_NV=2 etc. try other
 * tiles.) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "blas.h"
#include "kernels.h"
#include "panel.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void) {
    blas_set_num_threads(1);
    const int ds[] = {16, 32, 64, 96, 128, 192, 256, 512, 850, 1024}, ms[] = {64, 32, 16};
    printf("OpenBLAS %s; GFLOP/s of C (m x 2d) = A (m x d) W (d x 2d)\n", blas_get_corename());
    for (size_t di = 0; di < sizeof ds / sizeof *ds; di++)
        for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++) {
            int d = ds[di], m = ms[mi], n = 2 * d, k = d;
            float *A = aligned_alloc(64, sizeof(float) * ((size_t)m * k + 16));
            float *W = aligned_alloc(64, sizeof(float) * ((size_t)k * n + 16));
            float *C = aligned_alloc(64, sizeof(float) * ((size_t)m * n + 16));
            float *P = aligned_alloc(64, sizeof(float) * (2 * panel_floats(k, d) + 16));
            for (int i = 0; i < m * k; i++) A[i] = (float)(i % 7) * 0.1f;
            for (int i = 0; i < k * n; i++) W[i] = (float)(i % 5) * 0.1f;
            panel_pack(k, d, W, n, 0, 0, panel_count(d), P);
            panel_pack(k, d, W + d, n, 0, 0, panel_count(d), P + panel_floats(k, d));
            double flops = 2.0 * m * n * k, best = 1e9;
            int reps = (int)(2e8 / flops) + 1;
            for (int r = 0; r < 15; r++) {
                double t = now();
                for (int i = 0; i < reps; i++) gemm(0, 0, m, n, k, 1.0f, A, k, W, n, 0.0f, C, n);
                t = now() - t;
                if (t < best) best = t;
            }
            printf("d=%4d m=%2d | openblas %6.1f |", d, m, flops * reps / best / 1e9);
            for (int isa = N_ISA - 1; isa >= 0; isa--) {
                if (isa_select(isa) != 0) continue;
                best = 1e9;
                for (int r = 0; r < 15; r++) {
                    double t = now();
                    for (int i = 0; i < reps; i++) {
                        panel_gemm(m, d, k, A, k, P, 0, panel_count(d), 0.0f, C, n);
                        panel_gemm(m, d, k, A, k, P + panel_floats(k, d), 0, panel_count(d), 0.0f, C + d, n);
                    }
                    t = now() - t;
                    if (t < best) best = t;
                }
                printf(" %s %dx%d %6.1f |", kern->name, kern->tile_rows, kern->tile_cols, flops * reps / best / 1e9);
            }
            printf("\n");
            free(A); free(W); free(C); free(P);
        }
    return 0;
}
