/* Trains the C core without Python, for machines and emulators where the package cannot
 * run (.ci/arm_check.sh: aarch64 under qemu-user). A discrete 8-node cell (d = 40: OpenBLAS
 * products; d = 96: packed panels) and DARTS's 4-node mixed cell (batch norm, every
 * dropout, the alpha gradient) take three SGD steps each on a fixed token stream; it prints
 * every step's loss and gradient norm, then sums and an FNV-1a hash of the parameters (and
 * of the alpha gradient), one line each, for another run to compare.
 *
 *   core_driver ISA THREADS     e.g. core_driver neon 2; ISA as $NAS_EVAL_ISA
 *
 * BLAS comes from here, not OpenBLAS: a plain triple loop in float64 accumulation (the
 * core's own kernels are what is under test; OpenBLAS is checked by its own project), so a
 * run on one platform is comparable with a run on another. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "kernels.h"
#include "lm.h"
#include "mixed_cell.h"
#include "parallel.h"

/* --- the BLAS symbols the core links (blas.h), row-major only, as the core calls them -- */
static void gemm_ref(int ta, int tb, int m, int n, int k, double alpha, const void *a, int lda,
                     const void *b, int ldb, double beta, void *c, int ldc, int f64) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                size_t ia = ta ? (size_t)p * lda + i : (size_t)i * lda + p;
                size_t ib = tb ? (size_t)j * ldb + p : (size_t)p * ldb + j;
                s += f64 ? ((const double *)a)[ia] * ((const double *)b)[ib]
                         : (double)((const float *)a)[ia] * ((const float *)b)[ib];
            }
            size_t ic = (size_t)i * ldc + j;
            if (f64) {
                double *cc = c;
                cc[ic] = alpha * s + (beta != 0 ? beta * cc[ic] : 0);
            } else {
                float *cc = c;
                cc[ic] = (float)(alpha * s + (beta != 0 ? beta * cc[ic] : 0));
            }
        }
}

void blas_sgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m,
                blasint n, blasint k, float alpha, const float *a, blasint lda, const float *b,
                blasint ldb, float beta, float *c, blasint ldc) {
    if (o != CblasRowMajor) abort();
    gemm_ref(ta == CblasTrans, tb == CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0);
}

void blas_dgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m,
                blasint n, blasint k, double alpha, const double *a, blasint lda, const double *b,
                blasint ldb, double beta, double *c, blasint ldc) {
    if (o != CblasRowMajor) abort();
    gemm_ref(ta == CblasTrans, tb == CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1);
}

/* --- what a run prints ----------------------------------------------------------------------- */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void report(const char *what, const float *x, size_t n) {
    double sum = 0, asum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i], asum += fabs(x[i]);
    printf("%s sum %.9e abs %.9e fnv %016llx\n", what, sum, asum,
           (unsigned long long)fnv1a(1469598103934665603ull, x, n * sizeof *x));
}

enum { V = 50, T = 7, B = 6, STEPS = 3 };

/* three SGD steps of a model on a fixed stream; the mixed cell's arch is its own */
static void train(const char *name, LM *m, const CellArch *a) {
    int32_t tokens[(STEPS * T + 1) * B];
    uint64_t s = 12345;
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((s >> 33) % V);
    }
    float h[B * 96] = {0}, h1[B * 96];
    if (lm_reserve(m, T, B, a->n)) { puts("out of memory"); exit(1); }
    StepOptions opt = {.lr = 2.0f, .clip = 0.25f, .wd = 1e-4f, .tar = 1e-3f, .ar = 1e-3f,
                       .train = 1, .backward = 1, .update = 1};
    for (int k = 0; k < STEPS; k++) {
        if (m->mix) m->mix->alpha_grad = 1;
        StepStats st = lm_step(m, a, tokens + k * T * B, tokens + k * T * B + B, T, B, h, h1, opt);
        memcpy(h, h1, sizeof(float) * B * m->d);
        printf("%s step %d loss %.9e grad_norm %.9e\n", name, k, st.loss_sum, st.grad_norm);
    }
    char what[96];
    snprintf(what, sizeof what, "%s parameters", name);
    report(what, m->params, m->lay.total);
    if (m->mix) {
        float da[LM_MAX_NODES * (LM_MAX_NODES + 1) / 2 * 5];
        for (int e = 0; e < m->mix->E * 5; e++) da[e] = (float)m->mix->dalpha[e];
        snprintf(what, sizeof what, "%s alpha_grad", name);
        report(what, da, (size_t)m->mix->E * 5);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: core_driver ISA THREADS\n"); return 2; }
    const char *err = isa_init(argv[1]);
    if (err) { fprintf(stderr, "%s\n", err); return 2; }
    pool_set_threads(atoi(argv[2]));
    lm_decoder_init(NULL);
    Dropouts drop = {.out = 0.2f, .h = 0.2f, .x = 0.1f, .in = 0.1f, .emb = 0.1f};
    const int preds[8] = {0, 1, 1, 0, 3, 2, 6, 4}, ops[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    for (int d = 40; d <= 96; d += 56) {
        char name[64];
        LM *m = lm_create(V, d, 1, 8, 8, 7, drop);
        CellArch a = {.n = 8, .w0 = 0};
        for (int i = 0; i < 8; i++) a.pred[i] = preds[i], a.op[i] = ops[i], a.mat[i] = i, a.out[i] = 1;
        lm_init_params(m);
        snprintf(name, sizeof name, "cell d=%d", d);
        train(name, m, &a);
        lm_free(m);

        m = lm_create(V, d, 1, 4, 4, 9, drop);
        m->mix = mixed_create(4, d, 9, 1);
        lm_init_params(m);
        for (int e = 0; e < m->mix->E * 5; e++) m->mix->alpha[e] = sin(1.7 * e); /* every op weighted */
        mixed_update_probs(m->mix);
        CellArch own = {.n = 4, .w0 = 0};
        for (int i = 0; i < 4; i++) own.mat[i] = i, own.out[i] = 1;
        snprintf(name, sizeof name, "mixed d=%d", d);
        train(name, m, &own);
        lm_free(m);
    }
    return 0;
}
