#include "mixed_cell.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "blas.h"
#include "kernels.h"
#include "panel.h"
#include "parallel.h"
#include "rng.h"

#define ALPHA_INIT_SCALE 1e-3 /* alpha = 1e-3 N(0, 1) (ref) */
#define ACC_FLOATS (7 * MIXED_ACC_LD) /* per panel: 5 rows of alpha sums, 2 of batch-norm scratch */

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

int mixed_reserve(MixedCell *mc, int T) {
    const int panels = panel_count(mc->d);
    if (mc->scratch && T == mc->scratch_T) return 0;
    size_t floats = (size_t)T * (mc->n + 1) * mc->d + (size_t)panels * ACC_FLOATS;
    if (floats > mc->scratch_floats) {
        free(mc->scratch);
        mc->scratch = alloc_floats(floats);
        mc->scratch_floats = mc->scratch ? floats : 0;
        if (!mc->scratch) { mc->scratch_T = 0; return -1; }
    }
    if (!mc->dp_part) {
        mc->dp_part = calloc((size_t)panels * mc->E * MIXED_OPS, sizeof(double));
        if (!mc->dp_part) { mc->scratch_T = 0; return -1; }
    }
    mc->invstd = mc->scratch;
    mc->acc = mc->scratch + (size_t)T * (mc->n + 1) * mc->d;
    mc->scratch_T = T;
    mc->n_panels = panels;
    return 0;
}

void mixed_begin_pass(MixedCell *mc, int train, int backward) {
    /* the reference normalises with batch statistics in training mode, which is also the
     * mode every gradient is taken in; running statistics only for evaluation */
    mc->bn_running = !train && !backward;
    mc->bn_update = train && !mc->freeze_running;
}

/* the partial sums of one edge and step, folded in double into d loss / d p_{e,1..4} */
static void fold_sums(float *acc, int width, double *dp) {
    double a = 0.0, bk[4] = {0.0, 0.0, 0.0, 0.0};
    for (int k = 0; k < width; k++) a += acc[k];
    for (int q = 0; q < 4; q++)
        for (int k = 0; k < width; k++) bk[q] += acc[(q + 1) * MIXED_ACC_LD + k];
    for (int q = 0; q < 4; q++) dp[q + 1] += a + bk[q];
    memset(acc, 0, 5 * MIXED_ACC_LD * sizeof(float));
}

/* --- the cell through time, by panel tickets ------------------------------------------- */

static inline int edge_index(int i, int j) { return i * (i - 1) / 2 + j; }

/* what every ticket needs */
typedef struct {
    const MixedCell *mc;
    const CellBuffers *buf;
    int T, B, d, n, n_panels;
    size_t bd, s_stride, cf_stride, pf, per_node;
    int ones[LM_MAX_NODES]; /* every node is an output */
} Mixed;

/* one ticket: panel q, its columns c0 .. c0 + nc of every batch row */
typedef struct {
    int q, c0, nc;
    const float *mh;  /* this panel's corner of the h mask, or NULL */
    float *acc;       /* its sums and batch-norm scratch */
    double *dp;       /* its (E, 5) d loss / d p */
} Panel;

static Mixed mixed_setup(const MixedCell *mc, const CellWork *w, const CellBuffers *buf) {
    Mixed x = {.mc = mc, .buf = buf, .n = mc->n, CELL_SIZES(w)};
    for (int i = 0; i < LM_MAX_NODES; i++) x.ones[i] = 1;
    return x;
}

static Panel panel_of(const Mixed *x, int q) {
    Panel k;
    k.q = q;
    k.c0 = q * PANEL;
    k.nc = x->d - k.c0 < PANEL ? x->d - k.c0 : PANEL;
    k.mh = x->buf->mask_h ? x->buf->mask_h + k.c0 : NULL;
    k.acc = x->mc->acc + (size_t)q * ACC_FLOATS;
    k.dp = x->mc->dp_part + (size_t)q * x->mc->E * MIXED_OPS;
    return k;
}

/* this panel's columns of [gate | candidate] = A W_node (+ beta), A: B rows of all columns */
static void product(const Mixed *x, const Panel *k, const float *A, int node, float beta, float *C) {
    const float *P = x->buf->packed + node * x->per_node;
    panel_gemm(x->B, x->d, x->d, A, x->d, P, k->q, k->q + 1, beta, C, 2 * x->d);
    panel_gemm(x->B, x->d, x->d, A, x->d, P + x->pf, k->q, k->q + 1, beta, C + x->d, 2 * x->d);
}

/* this panel's columns of G (+)= [da | db] W_node^T */
static void product_t(const Mixed *x, const Panel *k, const float *dab, int node, float beta, float *G) {
    panel_gemm(x->B, x->d, 2 * x->d, dab, 2 * x->d, x->buf->packed + node * x->per_node, k->q, k->q + 1,
               beta, G, x->d);
}

static void normalise(const Mixed *x, const Panel *k, float *s, float *invstd) {
    const MixedCell *mc = x->mc;
    if (!mc->batch_norm) return;
    float *rm = mc->running_mean + k->c0, *rv = mc->running_var + k->c0;
    if (mc->bn_running) kern->mixed->bn_running(x->B, k->nc, x->d, s, rm, rv, invstd);
    else kern->mixed->bn_batch(x->B, k->nc, x->d, s, invstd, rm, rv, mc->bn_update,
                               k->acc + 5 * MIXED_ACC_LD, k->acc + 6 * MIXED_ACC_LD);
}

static long claim(TaskQueue *q, unsigned long long base, unsigned count) {
    long long t = queue_claim(q, base + count);
    return t < 0 ? -1 : (long)(t - (long long)base);
}

/* --- forward ------------------------------------------------------------------------------ */
/* node i at step t on a panel: the products of every predecessor through W_i (W_i packed
 * once per step and streamed against each predecessor's B rows: the i products of a node
 * cost one (i B) x d x 2d product), the mixture, the normalisation; after node n, h_t */
static void forward_node(const Mixed *x, const Panel *k, int t, int i) {
    const CellBuffers *buf = x->buf;
    const int d = x->d, B = x->B, nc = k->nc;
    const size_t at = (size_t)t * x->bd, c0 = (size_t)k->c0;
    float *invstd = x->mc->invstd + ((size_t)t * (x->n + 1) + i) * d + c0;
    float *s = buf->S + i * x->s_stride + at + c0;
    if (i == 0) { /* s0 = BN(h + c0 (tanh(b0) - h)), x W0[:d] already in CF block 0 */
        float *cf0 = buf->CF + 2 * at;
        product(x, k, buf->HM + at, 0, 1.0f, cf0);
        kern->node_forward(OP_TANH, B, nc, d, buf->H + at + c0, cf0 + c0, s);
    } else {
        for (int j = 0; j < i; j++)
            product(x, k, buf->SM + j * x->s_stride + at, i, 0.0f,
                    buf->CF + (size_t)(1 + edge_index(i, j)) * x->cf_stride + 2 * at);
        for (int j = 0; j < i; j++) {
            int e = edge_index(i, j);
            kern->mixed->edge_forward(j == 0, B, nc, d, x->mc->probf + e * MIXED_OPS,
                                      buf->S + j * x->s_stride + at + c0,
                                      buf->CF + (size_t)(1 + e) * x->cf_stride + 2 * at + c0, s);
        }
    }
    normalise(x, k, s, invstd);
    if (k->mh) kern->block_mul(B, nc, d, s, k->mh, buf->SM + i * x->s_stride + at + c0);
    if (i == x->n) { /* h_t = mean of nodes 1..n */
        float *h = buf->H + x->bd + at + c0;
        kern->block_mean(x->n, x->ones, B, nc, d, buf->S + at + c0, x->s_stride, h);
        if (k->mh) kern->block_mul(B, nc, d, h, k->mh, buf->HM + x->bd + at + c0);
    }
}

/* --- backward ----------------------------------------------------------------------------- */
/* G_0 = dab_0 W0h^T of step t (the gradient into h_{t-1} through node 0's product), into dh */
static void backward_input(const Mixed *x, const Panel *k, int t) {
    const CellBuffers *buf = x->buf;
    product_t(x, k, buf->CF + 2 * (size_t)t * x->bd, 0, 0.0f, buf->G);
    kern->block_add(x->B, k->nc, x->d, buf->G + k->c0, k->mh, buf->dh + k->c0);
}

/* Node i at step t on a panel; first the products of node i + 1 (whose elementwise work the
 * previous phase did) into G of its predecessors, or before the last node node 0's product
 * of step t + 1: their columns of G are the ones this panel reads next. */
static void backward_node(const Mixed *x, const Panel *k, int t, int i) {
    const CellBuffers *buf = x->buf;
    const MixedCell *mc = x->mc;
    const int d = x->d, B = x->B, nc = k->nc, n = x->n;
    const size_t at = (size_t)t * x->bd, c0 = (size_t)k->c0, bd = x->bd;
    const float *invstd = mc->invstd + ((size_t)t * (n + 1) + i) * d + c0;
    float *dS = buf->dS, *G = buf->G, *dh = buf->dh + c0;
    if (i == n) {
        if (t + 1 < x->T) backward_input(x, k, t + 1);
        /* h_t = mean of nodes 1..n; every node but the last has children */
        for (int j = 0; j <= n; j++) {
            kern->block_set(B, nc, d, j ? buf->dH + at + c0 : NULL, dh, 1.0f / (float)n, dS + j * bd + c0);
            if (j < n) kern->block_set(B, nc, d, NULL, NULL, 0.0f, G + j * bd + c0);
        }
    } else { /* G_j += dab_{i+1,j} W_{i+1}^T, j <= i */
        for (int j = 0; j <= i; j++)
            product_t(x, k, buf->CF + (size_t)(1 + edge_index(i + 1, j)) * x->cf_stride + 2 * at, i + 1, 1.0f,
                      G + j * bd);
    }
    float *ds = dS + i * bd + c0;
    if (i < n) kern->block_add(B, nc, d, G + i * bd + c0, k->mh, ds);
    if (mc->batch_norm)
        kern->mixed->bn_backward(B, nc, d, buf->S + i * x->s_stride + at + c0, invstd, ds,
                                 k->acc + 5 * MIXED_ACC_LD, k->acc + 6 * MIXED_ACC_LD);
    if (i == 0) { /* s0's carry goes to h_{t-1} */
        kern->node_backward(OP_TANH, B, nc, d, ds, buf->H + at + c0, buf->CF + 2 * at + c0, dh, 0);
        return;
    }
    for (int j = 0; j < i; j++) {
        int e = edge_index(i, j);
        kern->mixed->edge_backward(mc->alpha_grad, B, nc, d, mc->probf + e * MIXED_OPS, ds,
                                   buf->S + j * x->s_stride + at + c0,
                                   buf->CF + (size_t)(1 + e) * x->cf_stride + 2 * at + c0, dS + j * bd + c0,
                                   k->acc);
        if (mc->alpha_grad) fold_sums(k->acc, nc, k->dp + (size_t)e * MIXED_OPS);
    }
}

/* --- the passes ------------------------------------------------------------------------- */
/* Phase 0 of a pass on panel k: pack its columns of every node matrix (transposed for the
 * backward, whose forward is done); the forward then masks h_{-1}, the backward clears dh
 * and the panel's sums. */
static void begin_panel(const Mixed *x, const Panel *k, int backward) {
    const CellBuffers *buf = x->buf;
    cell_pack_panel(buf, x->n, x->d, k->q, backward);
    if (!backward) {
        if (k->mh) kern->block_mul(x->B, k->nc, x->d, buf->H + k->c0, k->mh, buf->HM + k->c0);
        return;
    }
    kern->block_set(x->B, k->nc, x->d, NULL, NULL, 0.0f, buf->dh + k->c0);
    memset(k->acc, 0, ACC_FLOATS * sizeof(float));
    memset(k->dp, 0, (size_t)x->mc->E * MIXED_OPS * sizeof(double));
}

/* A pass as phases of one ticket per panel: phase 0, then one per node and step, the
 * backward's from the last step's last node. Returns the number of tickets used. */
static unsigned long long node_phases(const Mixed *x, TaskQueue *q, int backward) {
    unsigned long long base = 0;
    long task;
    for (; (task = claim(q, base, x->n_panels)) >= 0; queue_finish(q)) {
        Panel k = panel_of(x, (int)task);
        begin_panel(x, &k, backward);
    }
    base += x->n_panels;
    for (int s = 0; s < x->T * (x->n + 1); s++, base += x->n_panels) {
        const int t = backward ? x->T - 1 - s / (x->n + 1) : s / (x->n + 1);
        const int i = backward ? x->n - s % (x->n + 1) : s % (x->n + 1);
        queue_wait(q, base);
        for (; (task = claim(q, base, x->n_panels)) >= 0; queue_finish(q)) {
            Panel k = panel_of(x, (int)task);
            if (backward) backward_node(x, &k, t, i);
            else forward_node(x, &k, t, i);
        }
    }
    return base;
}

void mixed_cell_forward(const MixedCell *mc, const CellWork *w, const CellBuffers *buf) {
    const Mixed x = mixed_setup(mc, w, buf);
    node_phases(&x, w->queue, 0);
}

/* the node phases, then one more: the gradient into h_{-1} */
void mixed_cell_backward(const MixedCell *mc, const CellWork *w, const CellBuffers *buf) {
    const Mixed x = mixed_setup(mc, w, buf);
    TaskQueue *q = w->queue;
    unsigned long long base = node_phases(&x, q, 1);
    long task;
    queue_wait(q, base);
    for (; (task = claim(q, base, x.n_panels)) >= 0; queue_finish(q)) {
        Panel k = panel_of(&x, (int)task);
        backward_input(&x, &k, 0);
    }
}

void mixed_alpha_gradient(MixedCell *mc) {
    for (int e = 0; e < mc->E; e++) {
        double dp[MIXED_OPS] = {0}, dot = 0.0;
        for (int q = 0; q < mc->n_panels; q++)
            for (int k = 0; k < MIXED_OPS; k++)
                dp[k] += mc->dp_part[((size_t)q * mc->E + e) * MIXED_OPS + k];
        const double *p = mc->prob + (size_t)e * MIXED_OPS;
        for (int k = 0; k < MIXED_OPS; k++) dot += p[k] * dp[k];
        for (int k = 0; k < MIXED_OPS; k++) mc->dalpha[e * MIXED_OPS + k] = p[k] * (dp[k] - dot);
    }
}

/* node i's gradient, one single-threaded product: node i's edges are consecutive CF blocks
 * and its predecessors' states consecutive S blocks, so sum_j SM_j^T dab_ij is one product
 * with i T B rows */
typedef struct {
    int n, d;
    size_t rows;
    const float *SM, *CF;
    float *gmats;
} WeightGrads;

static void node_weight_grad_item(void *ctx, int item, int n_items, int worker) {
    (void)n_items; (void)worker;
    const WeightGrads *g = ctx;
    const int i = g->n - item; /* the largest products first: the last ones balance the workers */
    const float *dab = g->CF + (size_t)(1 + edge_index(i, 0)) * g->rows * 2 * g->d;
    gemm(1, 0, g->d, 2 * g->d, (int)((size_t)i * g->rows), 1.0f, g->SM, g->d, dab, 2 * g->d, 0.0f,
         g->gmats + (size_t)(i - 1) * g->d * 2 * g->d, 2 * g->d);
}

/* The nodes' products share out whole among the workers rather than each split by columns
 * (par_gemm): a column block re-packs all i T B state rows, four times per node on 2 workers.
 * Each node is one product whoever runs it, so the result depends on nothing but the inputs
 * (its bits differ from par_gemm's column blocks by rounding). Below par_gemm's threshold
 * for all the products together, the calling thread does them all. */
void mixed_weight_gradients(const MixedCell *mc, int workers, int d, size_t rows, const float *SM,
                            const float *CF, float *gmats) {
    WeightGrads g = {mc->n, d, rows, SM, CF, gmats};
    const double macs = (double)d * 2 * d * (double)rows * mc->n * (mc->n + 1) / 2;
    pool_for(node_weight_grad_item, &g, mc->n, macs < PAR_GEMM_MIN_MACS ? 1 : workers);
}
