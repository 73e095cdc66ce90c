/* One table of the core's hot kernels per instruction set, chosen once at load time.
 *
 * Each kern_<isa>.c compiles the same sources (kern_body.h: the panel micro-kernel and
 * elementwise.h's loops) under its own target -- AVX-512, AVX2 + FMA, NEON, or the
 * compiler's baseline ("generic", portable C) -- with a register tile sized to that
 * register file. isa_init() picks the best level the CPU runs, capped by $NAS_EVAL_ISA,
 * and every caller goes through `kern`. No target_clones: works the same with gcc and
 * clang, and the level can be forced lower for tests and benchmarks. */
#ifndef NAS_EVAL_KERNELS_H
#define NAS_EVAL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* instruction-set levels, lowest first; after them the emulations (isa_emulated), which
 * isa_best() never picks: another level's code compiled for AVX2, for tests on x86
 * (kern_avx512emu.c, kern_neonemu.c) */
enum {
    ISA_GENERIC = 0, ISA_NEON = 1, ISA_AVX2 = 2, ISA_AVX512 = 3,
    ISA_AVX512_EMU = 4, ISA_NEON_EMU = 5, N_ISA = 6
};
#define N_ISA_NATIVE 4

typedef struct {
    const char *name;       /* "generic", "neon", "avx2", "avx512"; "avx512-emu", "neon-emu" */
    int isa;
    int tile_rows, tile_cols; /* panel_gemm's register tile */
    /* measured switches (kern_<isa>.c; BENCHMARKS.md): the cell's per-step products go
     * through panel_gemm from d >= panel_min_d (OpenBLAS, which re-packs the matrix on every
     * call, below: it wins only at d < 64), and two or more workers split the cell by state
     * columns from d >= column_split_min_d, by batch rows below. Rows need no meeting until
     * the end; columns meet once per node and step, which stalls whenever the OS preempts a
     * worker (2 threads lost 30 % to 1 at d = 128 on a loaded machine; rows: 3 % gained),
     * but stream each node matrix once per step instead of once per row chunk, which should
     * matter once the matrices outgrow the caches (the reason to keep columns from d = 512,
     * where n = 8 node matrices take 19 MB; not measured on an idle machine) */
    int panel_min_d, column_split_min_d;
    /* C[:, 32 p0 .. min(n, 32 p1)) = A (m x k) B + beta C, B packed (panel.h) */
    void (*panel_gemm)(int m, int n, int k, const float *A, int lda, const float *packed,
                       int p0, int p1, float beta, float *C, int ldc);
    void (*node_forward)(int op, int rows, int width, int d, const float *sp, float *cf,
                         float *s);
    void (*node_backward)(int op, int rows, int width, int d, const float *ds, const float *sp,
                          float *cf, float *dsp, int accumulate);
    void (*block_mul)(int rows, int width, int d, const float *x, const float *m, float *y);
    void (*block_add)(int rows, int width, int d, const float *x, const float *m, float *y);
    void (*block_set)(int rows, int width, int d, const float *x, const float *y, float scale,
                      float *out);
    void (*block_mean)(int n, const int *out, int rows, int width, int d, const float *S,
                       size_t node_stride, float *h);
    float (*row_exp)(int V, float *l, const float *bias, int target, float *target_logit,
                     float *sum_out);
    void (*row_grad)(int V, float *l, float sum, int target, float scale, float *dbias);
    /* the fused cross-entropy's tile loops (xent_elementwise.h, fused_xent.h) */
    void (*xent_online)(int rows, int vt, float *l, int ld, const float *bias, const int32_t *tgt,
                        int v0, float *mx, float *sm, float *tl, float *acc, int d, int first);
    void (*xent_grad)(int vt, int rows, float *l, int ld, const float *bias, const float *lse,
                      const int32_t *tgt, int v0, float scale, float *dbias, int first);
    void (*embedding_forward)(int rows, int B, int d, const int32_t *tok, const float *E,
                              const float *row_scale, const float *mask, float *X);
    void (*embedding_backward)(int rows, int B, int d, const int32_t *tok, const float *dX,
                               const float *row_scale, const float *mask, float *dE);
    double (*sq_norm)(const float *g, size_t n);
    void (*sgd)(float *p, const float *g, size_t n, float lr, float scale, float wd);
    void (*average)(float *avg, const float *p, size_t n, long count);
    const struct MixedKernels *mixed; /* the DARTS mixed cell's loops (mixed_elementwise.h) */
} Kernels;

/* the kernels in use: the generic set until isa_init/isa_select picks another */
extern const Kernels *kern;

const char *isa_name(int isa);          /* NULL for an unknown level */
int isa_from_name(const char *name);    /* -1 for an unknown name */
int isa_compiled(int isa);              /* this build has kernels for it */
int isa_supported(int isa);             /* compiled in and this CPU (and OS) can run it */
int isa_emulated(int isa);              /* a test level, another level's code (kernels.h) */
int isa_listed(int i);                  /* the i-th level (i < N_ISA) as listed: natives best first */
int isa_best(void);                     /* highest supported level, emulations aside */
int isa_current(void);

/* Switches to level isa; returns 0, or -1 when it is not supported (nothing changes).
 * Any level gives the same results to rounding; each is deterministic on its own. */
int isa_select(int isa);

/* Picks the best level, or the one named by env_value ($NAS_EVAL_ISA) when not NULL or
 * empty. Returns NULL, or a static message when the value is unknown or not supported
 * here (then the best level is in use). */
const char *isa_init(const char *env_value);

/* the compiler this core was built with, e.g. "gcc 12.2.0" */
const char *isa_compiler(void);

#endif
