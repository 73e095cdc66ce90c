/* The DARTS mixed cell's elementwise loops (csrc/mixed_elementwise.h) alone, single-threaded,
 * through the kernels of every instruction set this CPU runs: ns per element of one edge's
 * mixture forward, its backward without and with the per-column sums for d loss / d alpha,
 * on the shapes of bench_darts.py (B = 64 rows of a 32-column panel, d = 256; 8 edges' data,
 * ~200 KB, so the loops read from L2). Best of 7 bursts. Build and run from the repository
 * root (no OpenBLAS needed):
 *
 *   gcc -std=c11 -O3 -fno-math-errno -fno-trapping-math -Wno-psabi -Icsrc \
 *       benchmarks/bench_mixed.c csrc/kern_*.c csrc/isa.c -lm -o /tmp/bench_mixed && /tmp/bench_mixed
 *
 * To compare two versions of the loops, build it against each commit's csrc/ (the same
 * benchmark file): e.g. `git worktree add /tmp/old OLD` and -I/tmp/old/csrc with
 * /tmp/old/csrc/kern_*.c /tmp/old/csrc/isa.c. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels.h"
#include "mixed_cell.h"

#define B 64
#define D 256
#define EDGES 8

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* inputs in the range the cell sees (pre-activations of a few units either side of 0) */
static void fill(float *cf, float *s, float *pre, float *ds) {
    for (long i = 0; i < (long)EDGES * B * 2 * D; i++) cf[i] = (float)((i * 7919) % 1000) / 250.0f - 2.0f;
    for (long i = 0; i < (long)EDGES * B * D; i++) {
        s[i] = (float)((i * 31) % 100) / 50.0f - 1.0f;
        ds[i] = 0.0f;
    }
    for (int i = 0; i < B * D; i++) pre[i] = 0.01f;
}

/* mode 0: forward; 1: backward; 2: backward with the sums */
static double ns_per_element(int mode, float *cf, float *s, float *pre, float *ds, float *acc) {
    const float p[MIXED_OPS] = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
    const int reps = 2000;
    double best = 1e9;
    for (int burst = 0; burst < 7; burst++) {
        fill(cf, s, pre, ds); /* the backward overwrites cf: every burst starts from the same data */
        double t = now();
        for (int r = 0; r < reps; r++)
            for (int e = 0; e < EDGES; e++) {
                float *c = cf + (size_t)e * B * 2 * D, *se = s + (size_t)e * B * D;
                if (mode == 0) kern->mixed->edge_forward(e == 0, B, MIXED_ACC_LD, D, p, se, c, pre);
                else kern->mixed->edge_backward(mode == 2, B, MIXED_ACC_LD, D, p, pre, se, c,
                                                ds + (size_t)e * B * D, acc);
            }
        t = now() - t;
        if (t < best) best = t;
    }
    return best / ((double)reps * EDGES * B * MIXED_ACC_LD) * 1e9;
}

int main(void) {
    float *cf = aligned_alloc(64, sizeof(float) * EDGES * B * 2 * D);
    float *s = aligned_alloc(64, sizeof(float) * EDGES * B * D);
    float *ds = aligned_alloc(64, sizeof(float) * EDGES * B * D);
    float *pre = aligned_alloc(64, sizeof(float) * B * D);
    float *acc = aligned_alloc(64, sizeof(float) * 7 * MIXED_ACC_LD);
    if (!cf || !s || !ds || !pre || !acc) return 1;
    for (int i = 0; i < 7 * MIXED_ACC_LD; i++) acc[i] = 0.0f;
    printf("ns per element (one edge, %d rows x %d columns of d = %d), single thread\n", B, MIXED_ACC_LD, D);
    for (int isa = N_ISA - 1; isa >= 0; isa--) {
        if (isa_select(isa) != 0) continue;
        printf("%-8s forward %5.2f | backward %5.2f | backward with sums %5.2f\n", kern->name,
               ns_per_element(0, cf, s, pre, ds, acc), ns_per_element(1, cf, s, pre, ds, acc),
               ns_per_element(2, cf, s, pre, ds, acc));
    }
    free(cf); free(s); free(ds); free(pre); free(acc);
    return 0;
}
