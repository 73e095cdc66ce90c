/* The one place that maps the BLAS names the core uses onto scipy-openblas32's
 * prefixed exports (every symbol in that wheel carries a `scipy_` prefix). */
#ifndef NAS_EVAL_BLAS_H
#define NAS_EVAL_BLAS_H

#include <cblas.h>

#define blas_sgemm scipy_cblas_sgemm
#define blas_dgemm scipy_cblas_dgemm
#define blas_set_num_threads scipy_openblas_set_num_threads
#define blas_get_num_threads scipy_openblas_get_num_threads
#define blas_get_corename scipy_openblas_get_corename
#define blas_get_config scipy_openblas_get_config

/* C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, all row-major and dense. */
static inline void gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                        const float *a, int lda, const float *b, int ldb, float beta,
                        float *c, int ldc) {
    blas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
               trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* The same in double precision (the controllers: ENAS, NAO). */
static inline void gemm_f64(int trans_a, int trans_b, int m, int n, int k, double alpha,
                            const double *a, int lda, const double *b, int ldb, double beta,
                            double *c, int ldc) {
    blas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
               trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#endif
