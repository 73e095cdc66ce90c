#include "mixed_cell.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mathfun.h"
#include "panel.h"
#include "parallel.h"
#include "rng.h"
#include "simd.h"

#define ALPHA_INIT_SCALE 1e-3 /* alpha = 1e-3 N(0, 1) (ref) */
#define ACC_ROWS 7            /* per worker: 5 rows of alpha sums, 2 of batch-norm scratch */

static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}

MixedCell *mixed_create(int n, int d, uint64_t seed, int batch_norm) {
    MixedCell *mc = calloc(1, sizeof(MixedCell));
    if (!mc) return NULL;
    mc->n = n; mc->E = n * (n + 1) / 2; mc->d = d; mc->batch_norm = batch_norm;
    size_t na = (size_t)mc->E * MIXED_OPS;
    mc->alpha = calloc(na, sizeof(double));
    mc->dalpha = calloc(na, sizeof(double));
    mc->adam_m = calloc(na, sizeof(double));
    mc->adam_v = calloc(na, sizeof(double));
    mc->prob = calloc(na, sizeof(double));
    mc->dwork = calloc(3 * na, sizeof(double));
    mc->probf = alloc_floats(na);
    mc->running_mean = alloc_floats((size_t)d);
    mc->running_var = alloc_floats((size_t)d);
    if (!mc->alpha || !mc->dalpha || !mc->adam_m || !mc->adam_v || !mc->prob || !mc->dwork || !mc->probf ||
        !mc->running_mean || !mc->running_var) {
        mixed_free(mc);
        return NULL;
    }
    uint64_t key = rng_key(seed, STREAM_DARTS_ALPHA, 0);
    for (size_t i = 0; i < na; i++) mc->alpha[i] = ALPHA_INIT_SCALE * rng_normal(key, i);
    for (int k = 0; k < d; k++) mc->running_var[k] = 1.0f; /* torch's BatchNorm1d start */
    mixed_update_probs(mc);
    mc->weight_grad = 1;
    return mc;
}

void mixed_free(MixedCell *mc) {
    if (!mc) return;
    free(mc->alpha); free(mc->dalpha); free(mc->adam_m); free(mc->adam_v); free(mc->prob);
    free(mc->probf); free(mc->running_mean); free(mc->running_var); free(mc->scratch);
    free(mc->dp_part); free(mc->saved); free(mc->vec); free(mc->sink); free(mc->dwork);
    free(mc);
}

void mixed_update_probs(MixedCell *mc) {
    for (int e = 0; e < mc->E; e++) {
        const double *a = mc->alpha + (size_t)e * MIXED_OPS;
        double *p = mc->prob + (size_t)e * MIXED_OPS, mx = a[0], sum = 0.0;
        for (int k = 1; k < MIXED_OPS; k++) mx = a[k] > mx ? a[k] : mx;
        for (int k = 0; k < MIXED_OPS; k++) sum += p[k] = exp(a[k] - mx);
        for (int k = 0; k < MIXED_OPS; k++) {
            p[k] /= sum;
            mc->probf[e * MIXED_OPS + k] = (float)p[k];
        }
    }
}

void mixed_set_alpha(MixedCell *mc, const double *alpha) {
    memcpy(mc->alpha, alpha, (size_t)mc->E * MIXED_OPS * sizeof(double));
    mixed_update_probs(mc);
}

int mixed_reserve(MixedCell *mc, int T, int workers) {
    if (mc->scratch && T == mc->scratch_T && workers == mc->scratch_workers) return 0;
    size_t d = mc->d;
    size_t floats = (size_t)T * (mc->n + 1) * d + (size_t)workers * ACC_ROWS * d;
    if (floats > mc->scratch_floats) {
        free(mc->scratch);
        mc->scratch = alloc_floats(floats);
        mc->scratch_floats = mc->scratch ? floats : 0;
        if (!mc->scratch) { mc->scratch_T = 0; return -1; }
    }
    if (workers > mc->scratch_workers || !mc->dp_part) {
        free(mc->dp_part);
        mc->dp_part = calloc((size_t)workers * mc->E * MIXED_OPS, sizeof(double));
        if (!mc->dp_part) { mc->scratch_T = 0; return -1; }
    }
    mc->invstd = mc->scratch;
    mc->acc = mc->scratch + (size_t)T * (mc->n + 1) * d;
    mc->scratch_T = T;
    mc->scratch_workers = workers;
    return 0;
}

void mixed_begin_pass(MixedCell *mc, int train, int backward) {
    /* the reference normalises with batch statistics in training mode, which is also the
     * mode every gradient is taken in; running statistics only for evaluation */
    mc->bn_running = !train && !backward;
    mc->bn_update = train && !mc->freeze_running;
}

/* --- elementwise kernels on a rows x width block of (rows, d) matrices ------------------ */

/* pre (+)= P s + c (g - P s) for one edge; [a | b] -> [c | b] (b stays pre-activation) */
static inline __attribute__((always_inline)) void edge_forward_k(
        int first, int rows, int width, int d, const float *restrict p, const float *restrict sp,
        float *restrict cf, float *restrict pre) {
    const float p1 = p[1], p2 = p[2], p3 = p[3], p4 = p[4], P = p1 + p2 + p3 + p4;
    for (int r = 0; r < rows; r++) {
        float *restrict c = cf + (size_t)r * 2 * d, *restrict b = c + d;
        const float *restrict s = sp + (size_t)r * d;
        float *restrict o = pre + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            float ck = fast_sigmoidf(c[k]), bk = b[k];
            float g = p1 * fast_tanhf(bk) + p2 * (bk > 0.0f ? bk : 0.0f) + p3 * fast_sigmoidf(bk) + p4 * bk;
            float ps = P * s[k];
            float u = ps + ck * (g - ps);
            c[k] = ck;
            o[k] = first ? u : o[k] + u;
        }
    }
}

SIMD_CLONES static void edge_forward(int first, int rows, int width, int d, const float *p,
                                     const float *sp, float *cf, float *pre) {
    if (first) edge_forward_k(1, rows, width, d, p, sp, cf, pre);
    else edge_forward_k(0, rows, width, d, p, sp, cf, pre);
}

/* Given dpre: [c | b] -> [da | db], dsp += P (1 - c) dpre; with sums, per-column partial
 * sums for d loss / d p: acc[0] += dpre s (1 - c), acc[k] += dpre c f_k(b) (k = 1..4). */
static inline __attribute__((always_inline)) void edge_backward_k(
        int sums, int rows, int width, int d, const float *restrict p, const float *restrict dpre,
        const float *restrict sp, float *restrict cf, float *restrict dsp, float *restrict acc) {
    const float p1 = p[1], p2 = p[2], p3 = p[3], p4 = p[4], P = p1 + p2 + p3 + p4;
    float *restrict a0 = acc, *restrict a1 = acc + d, *restrict a2 = acc + 2 * d;
    float *restrict a3 = acc + 3 * d, *restrict a4 = acc + 4 * d;
    for (int r = 0; r < rows; r++) {
        float *restrict c = cf + (size_t)r * 2 * d, *restrict b = c + d;
        const float *restrict s = sp + (size_t)r * d, *restrict gr = dpre + (size_t)r * d;
        float *restrict ds = dsp + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            float ck = c[k], bk = b[k], gk = gr[k], sk = s[k];
            float th = fast_tanhf(bk), sg = fast_sigmoidf(bk), pos = bk > 0.0f ? 1.0f : 0.0f;
            float rl = pos * bk;
            float g = p1 * th + p2 * rl + p3 * sg + p4 * bk;
            float gp = p1 * (1.0f - th * th) + p2 * pos + p3 * sg * (1.0f - sg) + p4;
            float omc = 1.0f - ck, ps = P * sk;
            c[k] = gk * (g - ps) * ck * omc;
            b[k] = gk * ck * gp;
            ds[k] += P * omc * gk;
            if (sums) {
                float gc = gk * ck;
                a0[k] += gk * sk * omc;
                a1[k] += gc * th;
                a2[k] += gc * rl;
                a3[k] += gc * sg;
                a4[k] += gc * bk;
            }
        }
    }
}

SIMD_CLONES static void edge_backward(int sums, int rows, int width, int d, const float *p,
                                      const float *dpre, const float *sp, float *cf, float *dsp,
                                      float *acc) {
    if (sums) edge_backward_k(1, rows, width, d, p, dpre, sp, cf, dsp, acc);
    else edge_backward_k(0, rows, width, d, p, dpre, sp, cf, dsp, acc);
}

/* the partial sums of one edge and step, folded in double into d loss / d p_{e,1..4} */
static void fold_sums(float *acc, int d, int width, double *dp) {
    double a = 0.0, bk[4] = {0.0, 0.0, 0.0, 0.0};
    for (int k = 0; k < width; k++) a += acc[k];
    for (int q = 0; q < 4; q++)
        for (int k = 0; k < width; k++) bk[q] += acc[(size_t)(q + 1) * d + k];
    for (int q = 0; q < 4; q++) dp[q + 1] += a + bk[q];
    for (int q = 0; q < 5; q++) memset(acc + (size_t)q * d, 0, (size_t)width * sizeof(float));
}

/* Batch statistics over the rows of each column (biased variance, as torch normalises),
 * in place; the running statistics get torch's update (unbiased variance, momentum 0.1). */
SIMD_CLONES static void bn_batch(int rows, int width, int d, float *x, float *invstd,
                                 float *rmean, float *rvar, int update, float *mean, float *var) {
    const float inv_rows = 1.0f / (float)rows;
    for (int k = 0; k < width; k++) mean[k] = var[k] = 0.0f;
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d;
        for (int k = 0; k < width; k++) mean[k] += xr[k];
    }
    for (int k = 0; k < width; k++) mean[k] *= inv_rows;
    for (int r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            float c = xr[k] - mean[k];
            var[k] += c * c;
        }
    }
    for (int k = 0; k < width; k++) {
        var[k] *= inv_rows;
        invstd[k] = 1.0f / sqrtf(var[k] + BN_EPS);
    }
    for (int r = 0; r < rows; r++) {
        float *restrict xr = x + (size_t)r * d;
        for (int k = 0; k < width; k++) xr[k] = (xr[k] - mean[k]) * invstd[k];
    }
    if (update && rows > 1) {
        const float unbias = (float)rows / (float)(rows - 1);
        for (int k = 0; k < width; k++) {
            rmean[k] = (1.0f - BN_MOMENTUM) * rmean[k] + BN_MOMENTUM * mean[k];
            rvar[k] = (1.0f - BN_MOMENTUM) * rvar[k] + BN_MOMENTUM * var[k] * unbias;
        }
    }
}

SIMD_CLONES static void bn_running(int rows, int width, int d, float *x, const float *rmean,
                                   const float *rvar, float *invstd) {
    for (int k = 0; k < width; k++) invstd[k] = 1.0f / sqrtf(rvar[k] + BN_EPS);
    for (int r = 0; r < rows; r++) {
        float *restrict xr = x + (size_t)r * d;
        for (int k = 0; k < width; k++) xr[k] = (xr[k] - rmean[k]) * invstd[k];
    }
}

/* dy -> dx in place: dx = invstd (dy - mean(dy) - y mean(dy y)), means over the rows */
SIMD_CLONES static void bn_backward(int rows, int width, int d, const float *y, const float *invstd,
                                    float *dy, float *m1, float *m2) {
    const float inv_rows = 1.0f / (float)rows;
    for (int k = 0; k < width; k++) m1[k] = m2[k] = 0.0f;
    for (int r = 0; r < rows; r++) {
        const float *restrict yr = y + (size_t)r * d, *restrict gr = dy + (size_t)r * d;
        for (int k = 0; k < width; k++) {
            m1[k] += gr[k];
            m2[k] += gr[k] * yr[k];
        }
    }
    for (int k = 0; k < width; k++) { m1[k] *= inv_rows; m2[k] *= inv_rows; }
    for (int r = 0; r < rows; r++) {
        const float *restrict yr = y + (size_t)r * d;
        float *restrict gr = dy + (size_t)r * d;
        for (int k = 0; k < width; k++) gr[k] = invstd[k] * (gr[k] - m1[k] - yr[k] * m2[k]);
    }
}

/* h = mean of nodes 1..n */
SIMD_CLONES static void mean_of_nodes(int rows, int width, int d, int n, const float *S1,
                                      size_t node_stride, float *h) {
    const float inv = 1.0f / (float)n;
    for (int r = 0; r < rows; r++) {
        float *restrict hr = h + (size_t)r * d;
        for (int k = 0; k < width; k++) hr[k] = 0.0f;
        for (int i = 0; i < n; i++) {
            const float *restrict sr = S1 + (size_t)i * node_stride + (size_t)r * d;
            for (int k = 0; k < width; k++) hr[k] += sr[k];
        }
        for (int k = 0; k < width; k++) hr[k] *= inv;
    }
}

/* --- the cell through time ------------------------------------------------------------- */

static inline int edge_index(int i, int j) { return i * (i - 1) / 2 + j; }

/* What one worker owns: its state columns c0 .. c0 + nc of every batch row. */
typedef struct {
    int T, B, d, n, c0, nc;
    size_t bd, s_stride, cf_stride, pf, per_node;
    const float *mh; /* this block's corner of the h mask, or NULL */
    float *scratch;  /* ACC_ROWS x d of this worker */
} Block;

static Block block_of(const MixedCell *mc, const CellBlock *blk, const CellBuffers *buf, int worker) {
    Block g;
    g.T = blk->T; g.B = blk->B; g.d = blk->d; g.n = mc->n;
    g.c0 = blk->lo; g.nc = blk->hi - blk->lo;
    g.bd = (size_t)g.B * g.d;
    g.s_stride = (size_t)g.T * g.bd;
    g.cf_stride = 2 * g.s_stride;
    g.pf = panel_floats(g.d, g.d);
    g.per_node = 4 * g.pf;
    g.mh = buf->mask_h ? buf->mask_h + g.c0 : NULL;
    g.scratch = mc->acc + (size_t)worker * ACC_ROWS * g.d;
    return g;
}

/* my columns of [a | b] = A W (A: B rows of all d columns) */
static void product(const Block *g, const CellBlock *blk, const CellBuffers *buf, int node,
                    const float *A, float beta, float *C) {
    const float *P = buf->packed + node * g->per_node;
    panel_gemm(g->B, g->d, g->d, A, g->d, P, blk->p0, blk->p1, beta, C, 2 * g->d);
    panel_gemm(g->B, g->d, g->d, A, g->d, P + g->pf, blk->p0, blk->p1, beta, C + g->d, 2 * g->d);
}

/* my columns of G (+)= [da | db] W^T */
static void product_t(const Block *g, const CellBlock *blk, const CellBuffers *buf, int node,
                      const float *dab, float beta, float *G) {
    panel_gemm(g->B, g->d, 2 * g->d, dab, 2 * g->d, buf->packed + node * g->per_node + 2 * g->pf,
               blk->p0, blk->p1, beta, G, g->d);
}

static void normalise(const MixedCell *mc, const Block *g, float *x, float *invstd) {
    if (!mc->batch_norm) return;
    float *rm = mc->running_mean + g->c0, *rv = mc->running_var + g->c0;
    if (mc->bn_running) bn_running(g->B, g->nc, g->d, x, rm, rv, invstd);
    else bn_batch(g->B, g->nc, g->d, x, invstd, rm, rv, mc->bn_update, g->scratch + 5 * g->d,
                  g->scratch + 6 * g->d);
}

void mixed_cell_forward(const MixedCell *mc, const CellBlock *blk, const CellBuffers *buf, int worker) {
    const Block g = block_of(mc, blk, buf, worker);
    const int T = g.T, B = g.B, d = g.d, n = g.n, c0 = g.c0, nc = g.nc;
    const size_t bd = g.bd, s_stride = g.s_stride, cf_stride = g.cf_stride;
    if (nc <= 0) { /* no columns of its own, but it must still meet the others */
        for (int k = 0; k < 1 + T * (n + 1); k++) blk->barrier(blk->ctx);
        return;
    }
    if (g.mh) block_mul(B, nc, d, buf->H + c0, g.mh, buf->HM + c0);
    for (int i = 0; i <= n; i++) { /* my panels of every node's gate and candidate matrices */
        const float *Wi = i ? buf->W[i] : buf->w0h;
        float *P = buf->packed + i * g.per_node;
        panel_pack(d, d, Wi, 2 * d, 0, blk->p0, blk->p1, P);
        panel_pack(d, d, Wi + d, 2 * d, 0, blk->p0, blk->p1, P + g.pf);
    }
    blk->barrier(blk->ctx); /* h_{-1} m_h complete in every column */
    for (int t = 0; t < T; t++) {
        const size_t at = (size_t)t * bd;
        float *invstd = mc->invstd + (size_t)t * (n + 1) * d + c0;
        /* s0 = BN(h + c0 (tanh(b0) - h)), with x W0[:d] already in CF block 0 */
        float *cf0 = buf->CF + 2 * at;
        product(&g, blk, buf, 0, buf->HM + at, 1.0f, cf0);
        float *s0 = buf->S + at + c0;
        node_forward(OP_TANH, B, nc, d, buf->H + at + c0, cf0 + c0, s0);
        normalise(mc, &g, s0, invstd);
        if (g.mh) block_mul(B, nc, d, s0, g.mh, buf->SM + at + c0);
        for (int i = 1; i <= n; i++) {
            blk->barrier(blk->ctx); /* node i - 1 complete in every column */
            /* W_i is packed once and streamed against each predecessor's B rows: the i
             * products of a node cost one (i B) x d x 2d product */
            for (int j = 0; j < i; j++)
                product(&g, blk, buf, i, buf->SM + j * s_stride + at, 0.0f,
                        buf->CF + (size_t)(1 + edge_index(i, j)) * cf_stride + 2 * at);
            float *si = buf->S + i * s_stride + at + c0;
            for (int j = 0; j < i; j++) {
                int e = edge_index(i, j);
                edge_forward(j == 0, B, nc, d, mc->probf + e * MIXED_OPS, buf->S + j * s_stride + at + c0,
                             buf->CF + (size_t)(1 + e) * cf_stride + 2 * at + c0, si);
            }
            normalise(mc, &g, si, invstd + (size_t)i * d);
            if (g.mh) block_mul(B, nc, d, si, g.mh, buf->SM + i * s_stride + at + c0);
        }
        float *h = buf->H + bd + at + c0;
        mean_of_nodes(B, nc, d, n, buf->S + s_stride + at + c0, s_stride, h);
        if (g.mh) block_mul(B, nc, d, h, g.mh, buf->HM + bd + at + c0);
        blk->barrier(blk->ctx); /* h_t complete before the next step reads it */
    }
}

void mixed_cell_backward(const MixedCell *mc, const CellBlock *blk, const CellBuffers *buf, int worker) {
    const Block g = block_of(mc, blk, buf, worker);
    const int T = g.T, B = g.B, d = g.d, n = g.n, c0 = g.c0, nc = g.nc;
    const size_t bd = g.bd, s_stride = g.s_stride, cf_stride = g.cf_stride;
    double *dp = mc->dp_part + (size_t)worker * mc->E * MIXED_OPS;
    memset(dp, 0, (size_t)mc->E * MIXED_OPS * sizeof(double));
    if (nc <= 0) {
        for (int k = 0; k < T * (n + 1); k++) blk->barrier(blk->ctx);
        return;
    }
    const int sums = mc->alpha_grad;
    float *acc = g.scratch, *dS = buf->dS, *G = buf->G, *dh = buf->dh + c0;
    memset(acc, 0, (size_t)5 * d * sizeof(float));
    block_set(B, nc, d, NULL, NULL, 0.0f, dh);
    for (int i = 0; i <= n; i++) /* my panels of every node's transposed matrix */
        panel_pack(2 * d, d, i ? buf->W[i] : buf->w0h, 2 * d, 1, blk->p0, blk->p1,
                   buf->packed + i * g.per_node + 2 * g.pf);
    const float inv_n = 1.0f / (float)n;
    for (int t = T - 1; t >= 0; t--) {
        const size_t at = (size_t)t * bd;
        const float *invstd = mc->invstd + (size_t)t * (n + 1) * d + c0;
        /* h_t = mean of nodes 1..n; every node but the last has children */
        for (int i = 0; i <= n; i++) {
            block_set(B, nc, d, i ? buf->dH + at + c0 : NULL, dh, inv_n, dS + i * bd + c0);
            if (i < n) block_set(B, nc, d, NULL, NULL, 0.0f, G + i * bd + c0);
        }
        for (int i = n; i >= 1; i--) {
            float *ds = dS + i * bd + c0;
            if (i < n) block_add(B, nc, d, G + i * bd + c0, g.mh, ds);
            if (mc->batch_norm)
                bn_backward(B, nc, d, buf->S + i * s_stride + at + c0, invstd + (size_t)i * d, ds,
                            g.scratch + 5 * d, g.scratch + 6 * d);
            for (int j = 0; j < i; j++) {
                int e = edge_index(i, j);
                edge_backward(sums, B, nc, d, mc->probf + e * MIXED_OPS, ds,
                              buf->S + j * s_stride + at + c0,
                              buf->CF + (size_t)(1 + e) * cf_stride + 2 * at + c0, dS + j * bd + c0, acc);
                if (sums) fold_sums(acc, d, nc, dp + (size_t)e * MIXED_OPS);
            }
            blk->barrier(blk->ctx); /* [da | db] of node i complete in every column */
            for (int j = 0; j < i; j++)
                product_t(&g, blk, buf, i, buf->CF + (size_t)(1 + edge_index(i, j)) * cf_stride + 2 * at,
                          1.0f, G + j * bd);
        }
        /* node 0: s0 = BN(h + c0 (tanh(b0) - h)) with h = h_{t-1} */
        float *ds0 = dS + c0;
        block_add(B, nc, d, G + c0, g.mh, ds0);
        if (mc->batch_norm)
            bn_backward(B, nc, d, buf->S + at + c0, invstd, ds0, g.scratch + 5 * d, g.scratch + 6 * d);
        float *cf0 = buf->CF + 2 * at;
        node_backward(OP_TANH, B, nc, d, ds0, buf->H + at + c0, cf0 + c0, dh, 0);
        blk->barrier(blk->ctx);
        product_t(&g, blk, buf, 0, cf0, 0.0f, G);
        block_add(B, nc, d, G + c0, g.mh, dh);
    }
}

void mixed_alpha_gradient(MixedCell *mc, int workers) {
    for (int e = 0; e < mc->E; e++) {
        double dp[MIXED_OPS] = {0}, dot = 0.0;
        for (int w = 0; w < workers; w++)
            for (int k = 0; k < MIXED_OPS; k++)
                dp[k] += mc->dp_part[((size_t)w * mc->E + e) * MIXED_OPS + k];
        const double *p = mc->prob + (size_t)e * MIXED_OPS;
        for (int k = 0; k < MIXED_OPS; k++) dot += p[k] * dp[k];
        for (int k = 0; k < MIXED_OPS; k++) mc->dalpha[e * MIXED_OPS + k] = p[k] * (dp[k] - dot);
    }
}

void mixed_weight_gradients(const MixedCell *mc, int workers, int d, size_t rows, const float *SM,
                            const float *CF, float *gmats) {
    /* node i's edges are consecutive CF blocks and its predecessors' states consecutive S
     * blocks, so sum_j SM_j^T dab_ij is one product with i T B rows */
    for (int i = 1; i <= mc->n; i++) {
        const float *dab = CF + (size_t)(1 + edge_index(i, 0)) * rows * 2 * d;
        par_gemm(workers, 1, 0, d, 2 * d, (int)((size_t)i * rows), 1.0f, SM, d, dab, 2 * d, 0.0f,
                 gmats + (size_t)(i - 1) * d * 2 * d, 2 * d);
    }
}
