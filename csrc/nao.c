/* NAO encoder-predictor-decoder, forward, backward and optimiser (see nao.h for the maths).
 *
 * Slices: a batch of B rows is cut into nao_slices(B) slices of consecutive rows (about
 * NAO_SLICE_ROWS each, at most NAO_MAX_SLICES), fixed by B alone. The LSTM recurrences never mix
 * rows, so each slice runs the whole forward and backward of its rows as one ticket of the
 * core's thread pool (parallel.h), with its gradients in a buffer of its own; the slices'
 * gradients are then summed in slice order, and clipping and Adam run over fixed chunks of the
 * parameters. Who runs a ticket never changes what it computes: the same bits for any thread
 * count. One thread runs the same slices one after the other.
 *
 * Layout: every activation buffer has room for `cap` rows, and the slice of rows r0.. owns the
 * part from r0 * (doubles per row), so each slice's buffers are contiguous. Inside a slice
 * activations are time-major (step, row, feature): the rows of a step are one (nr, X) block and
 * all steps together one (T nr, X) matrix, so the parts that do not recur are one gemm over
 * every step (the encoder's input projection, the attention and output layers of the decoder,
 * every weight gradient); only h_prev W_h and its backward run step by step (lstm_step_*). LSTM
 * states keep the initial state in slot 0 (the state after step t in slot t + 1), so that the
 * previous states of all steps are one matrix as well. The attention contexts are batch-major
 * (row, step, H) because every decoder step of a row reads all n of them.
 *
 * The decoder's LSTM input is an embedding row, so its input part b + dec_emb[v] W_x is a
 * (V, 4H) table computed once per call and gathered per step (the same dot products as x W_x);
 * backward, the pre-activation gradients are summed into the table's V rows and go through
 * W_x and the embedding once. The backward reuses the gate buffers for the pre-activation
 * gradients (each unit reads its gates before writing) and tanh(c) saved by the forward. */
#include "nao.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "lstm.h"
#include "parallel.h"
#include "rng.h"

#define NAO_SLICE_ROWS 64     /* rows per slice: B = 100 (the reference batch) is two of 50 */
#define NAO_MAX_SLICES 8      /* bounds the per-slice gradient buffers */
#define NAO_UPDATE_CHUNKS 16  /* parameter chunks of the gradient sum, clipping and Adam */

/* The activations of one slice of rows, sizes per slice of nr rows; time-major inside. */
typedef struct {
    int k, r0, nr;              /* slice k holds batch rows r0 .. r0 + nr - 1 */
    double *enc_x, *enc_mask;   /* (n, nr, 2E) token-pair embeddings after dropout, dropout scales */
    double *enc_gates;          /* (n, nr, 4H) gates; the backward's pre-activation gradients */
    double *enc_c, *enc_h;      /* (n + 1, nr, H) slot 0: the initial state (zeros) */
    double *enc_tc;             /* (n, nr, H) tanh(c) */
    double *enc_nrm;            /* (n, nr) norms of h_t before normalisation */
    double *ctx;                /* (nr, n, H) normalised encoder outputs */
    double *mean, *emb;         /* (nr, H) mean context, architecture embedding */
    double *mean_nrm, *pred;    /* (nr) */
    double *mlp_a[NAO_MAX_MLP]; /* (nr, M) post-ReLU activations */
    double *dec_gates;          /* (L, nr, 4H) as enc_gates */
    double *dec_c, *dec_h;      /* (L + 1, nr, H) slot 0: the initial state (emb) */
    double *dec_tc;             /* (L, nr, H) */
    double *attn;               /* (L, nr, n) attention weights */
    double *comb;               /* (L, nr, 2H) [mix, h] */
    double *att_o;              /* (L, nr, H) tanh output of the attention layer */
    double *logp;               /* (L, nr, V) log-probabilities */
    double *d_ctx;              /* (nr, n, H) */
    double *d_emb, *d_mean;     /* (nr, H) */
    double *d_pred;             /* (nr) */
    double *d_a, *d_b;          /* (nr, max(M, H)) predictor layer gradients, ping-pong */
    double *d_hA, *d_cA, *d_hB, *d_cB; /* (nr, H) LSTM state gradients, ping-pong */
    double *d_x;                /* (n, nr, 2E) encoder input gradients */
    double *d_logit;            /* (L, nr, V) */
    double *d_o;                /* (L, nr, H) */
    double *d_comb;             /* (L, nr, 2H) */
    int *dec_in;                /* (L, nr) decoder input token of each step */
} Slice;

/* A double-buffer member of Slice and its doubles per batch row. */
typedef struct {
    size_t field, per_row;
} RowField;

#define NAO_MAX_FIELDS (40 + NAO_MAX_MLP)

struct NaoModel {
    NaoShape s;
    int V, L, cap, max_slices;
    uint64_t seed;
    size_t n_params;
    int n_tensors;
    NaoTensorInfo info[NAO_MAX_TENSORS];
    double *params, *grads, *adam_m, *adam_v;
    NaoTensors P, G; /* views of params and grads */
    int64_t t;         /* Adam steps taken */
    uint64_t shuffles; /* epoch shuffles drawn */
    int workers;       /* pool threads of the current call (pool_threads()) */

    double *arena;     /* every activation and scratch buffer below */
    int *ints;         /* dec_in's rows, then tok_buf */
    Slice all;         /* the buffers from row 0 (all.nr = cap) */
    RowField fields[NAO_MAX_FIELDS];
    int n_fields;
    int *tok_buf;      /* (cap, L) a gathered mini-batch */
    double *tgt_buf;   /* (cap) its targets */
    double *xtab;      /* (V, 4H) the decoder's input part per token, b + dec_emb W_x */
    double *d_tab;     /* (max_slices, V, 4H) its gradient, per slice */
    double *slice_grads;             /* (max_slices - 1, n_params): slices 1.. (slice 0: grads) */
    NaoTensors Gs[NAO_MAX_SLICES];   /* views of each slice's gradients (Gs[0] = G) */
    double sq[NAO_UPDATE_CHUNKS];    /* per chunk: sum of squared gradients */
};

static inline double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ---------------------------------------------------------------------------------------
 * Parameter layout and initialisation */

static const char *MLP_W_NAMES[NAO_MAX_MLP] = {"mlp_W0", "mlp_W1", "mlp_W2", "mlp_W3",
                                               "mlp_W4", "mlp_W5", "mlp_W6", "mlp_W7"};
static const char *MLP_B_NAMES[NAO_MAX_MLP] = {"mlp_b0", "mlp_b1", "mlp_b2", "mlp_b3",
                                               "mlp_b4", "mlp_b5", "mlp_b6", "mlp_b7"};

enum { INIT_NORMAL, INIT_UNIFORM, INIT_ZERO };

/* Where tensor k lives in NaoTensors (a byte offset of its pointer member) and how it starts. */
typedef struct {
    size_t field;
    int init;
    double bound;
} TensorSpec;

static void add_tensor(NaoModel *m, TensorSpec *spec, size_t field, const char *name, size_t rows,
                       size_t cols, int init, double bound) {
    int k = m->n_tensors++;
    NaoTensorInfo *t = &m->info[k];
    t->name = name;
    t->offset = m->n_params;
    t->rows = rows;
    t->cols = cols;
    spec[k] = (TensorSpec){field, init, bound};
    m->n_params += rows * cols;
}

/* The tensor list in arena order, initialised as torch would (nn.Embedding N(0, 1),
 * nn.LSTM / nn.Linear U(+-1/sqrt(fan))) except the predictor, which the reference starts at
 * U(+-0.04) with zero biases. */
static void layout(NaoModel *m, TensorSpec *spec) {
    const NaoShape *s = &m->s;
    size_t V = (size_t)m->V, E = (size_t)s->emb, H = (size_t)s->hidden, M = (size_t)s->mlp_hidden;
    double lstm = 1.0 / sqrt((double)H), att = 1.0 / sqrt(2.0 * H);
#define FIELD(member) offsetof(NaoTensors, member)
    add_tensor(m, spec, FIELD(enc_emb), "enc_emb", V, E, INIT_NORMAL, 0.0);
    add_tensor(m, spec, FIELD(enc_W), "enc_W", 2 * E + H, 4 * H, INIT_UNIFORM, lstm);
    add_tensor(m, spec, FIELD(enc_b), "enc_b", 1, 4 * H, INIT_UNIFORM, lstm);
    size_t in = H;
    for (int l = 0; l < s->mlp_layers; l++) {
        add_tensor(m, spec, FIELD(mlp_W) + l * sizeof(double *), MLP_W_NAMES[l], in, M, INIT_UNIFORM, 0.04);
        add_tensor(m, spec, FIELD(mlp_b) + l * sizeof(double *), MLP_B_NAMES[l], 1, M, INIT_ZERO, 0.0);
        in = M;
    }
    size_t last = (size_t)s->mlp_layers * sizeof(double *);
    add_tensor(m, spec, FIELD(mlp_W) + last, "pred_W", in, 1, INIT_UNIFORM, 0.04);
    add_tensor(m, spec, FIELD(mlp_b) + last, "pred_b", 1, 1, INIT_ZERO, 0.0);
    add_tensor(m, spec, FIELD(dec_emb), "dec_emb", V, H, INIT_NORMAL, 0.0);
    add_tensor(m, spec, FIELD(dec_W), "dec_W", 2 * H, 4 * H, INIT_UNIFORM, lstm);
    add_tensor(m, spec, FIELD(dec_b), "dec_b", 1, 4 * H, INIT_UNIFORM, lstm);
    add_tensor(m, spec, FIELD(att_W), "att_W", 2 * H, H, INIT_UNIFORM, att);
    add_tensor(m, spec, FIELD(att_b), "att_b", 1, H, INIT_UNIFORM, att);
    add_tensor(m, spec, FIELD(out_W), "out_W", H, V, INIT_UNIFORM, lstm);
    add_tensor(m, spec, FIELD(out_b), "out_b", 1, V, INIT_UNIFORM, lstm);
#undef FIELD
}

/* Point every member of T at its tensor inside the arena `base` (params or grads). */
static void bind_views(const NaoModel *m, const TensorSpec *spec, double *base, NaoTensors *T) {
    memset(T, 0, sizeof(*T));
    for (int k = 0; k < m->n_tensors; k++)
        *(double **)((char *)T + spec[k].field) = base + m->info[k].offset;
}

static void init_params(NaoModel *m, const TensorSpec *spec) {
    for (int k = 0; k < m->n_tensors; k++) {
        const NaoTensorInfo *t = &m->info[k];
        double *p = m->params + t->offset;
        size_t n = t->rows * t->cols;
        uint64_t key = rng_key(m->seed, STREAM_NAO_INIT, (uint64_t)k);
        for (size_t i = 0; i < n; i++) {
            switch (spec[k].init) {
            case INIT_NORMAL: p[i] = rng_normal(key, i); break;
            case INIT_UNIFORM: p[i] = spec[k].bound * (2.0 * (double)rng_uniform(key, i) - 1.0); break;
            default: p[i] = 0.0;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Creation and slices */

static int nao_slices(int B) {
    int k = (B + NAO_SLICE_ROWS - 1) / NAO_SLICE_ROWS;
    return k < 1 ? 1 : k > NAO_MAX_SLICES ? NAO_MAX_SLICES : k;
}

/* The per-row buffers of Slice with their doubles per batch row. */
static void row_fields(NaoModel *m) {
    const NaoShape *s = &m->s;
    size_t n = (size_t)s->nodes, E = (size_t)s->emb, H = (size_t)s->hidden, M = (size_t)s->mlp_hidden;
    size_t L = (size_t)m->L, V = (size_t)m->V, W = (size_t)imax(s->mlp_hidden, s->hidden);
#define ROW(member, count) (m->fields[m->n_fields++] = (RowField){offsetof(Slice, member), (count)})
    ROW(enc_x, n * 2 * E);
    ROW(enc_mask, n * 2 * E);
    ROW(enc_gates, n * 4 * H);
    ROW(enc_c, (n + 1) * H);
    ROW(enc_h, (n + 1) * H);
    ROW(enc_tc, n * H);
    ROW(enc_nrm, n);
    ROW(ctx, n * H);
    ROW(mean, H);
    ROW(emb, H);
    ROW(mean_nrm, 1);
    ROW(pred, 1);
    for (int l = 0; l < s->mlp_layers; l++)
        m->fields[m->n_fields++] = (RowField){offsetof(Slice, mlp_a) + l * sizeof(double *), M};
    ROW(dec_gates, L * 4 * H);
    ROW(dec_c, (L + 1) * H);
    ROW(dec_h, (L + 1) * H);
    ROW(dec_tc, L * H);
    ROW(attn, L * n);
    ROW(comb, L * 2 * H);
    ROW(att_o, L * H);
    ROW(logp, L * V);
    ROW(d_ctx, n * H);
    ROW(d_emb, H);
    ROW(d_mean, H);
    ROW(d_pred, 1);
    ROW(d_a, W);
    ROW(d_b, W);
    ROW(d_hA, H);
    ROW(d_cA, H);
    ROW(d_hB, H);
    ROW(d_cB, H);
    ROW(d_x, n * 2 * E);
    ROW(d_logit, L * V);
    ROW(d_o, L * H);
    ROW(d_comb, L * 2 * H);
#undef ROW
}

/* Carves the arena: the row buffers (cap rows each), then the per-call and per-slice scratch. */
static void carve_activations(NaoModel *m) {
    size_t cap = (size_t)m->cap, VG = (size_t)m->V * 4 * (size_t)m->s.hidden;
    double *p = m->arena;
    for (int f = 0; f < m->n_fields; f++) {
        *(double **)((char *)&m->all + m->fields[f].field) = p;
        p += cap * m->fields[f].per_row;
    }
    m->all.k = m->all.r0 = 0;
    m->all.nr = m->cap;
    m->all.dec_in = m->ints;
    m->tok_buf = m->ints + (size_t)m->L * cap;
    m->tgt_buf = p;
    p += cap;
    m->xtab = p;
    p += VG;
    m->d_tab = p;
    p += (size_t)m->max_slices * VG;
    m->slice_grads = p;
}

static size_t activation_doubles(const NaoModel *m) {
    size_t per_row = 0, VG = (size_t)m->V * 4 * (size_t)m->s.hidden;
    for (int f = 0; f < m->n_fields; f++) per_row += m->fields[f].per_row;
    return (size_t)m->cap * (per_row + 1) + (1 + (size_t)m->max_slices) * VG +
           (size_t)(m->max_slices - 1) * m->n_params;
}

NaoModel *nao_create(NaoShape shape, int max_batch, uint64_t seed) {
    NaoModel *m = calloc(1, sizeof(NaoModel));
    if (!m) return NULL;
    m->s = shape;
    m->V = shape.nodes + shape.ops + 1;
    m->L = 2 * shape.nodes;
    m->cap = max_batch;
    m->max_slices = nao_slices(max_batch);
    m->seed = seed;
    m->workers = 1;
    TensorSpec spec[NAO_MAX_TENSORS];
    layout(m, spec);
    row_fields(m);
    size_t np = m->n_params;
    m->params = calloc(4 * np, sizeof(double));
    m->arena = calloc(activation_doubles(m), sizeof(double));
    m->ints = calloc(2 * (size_t)m->L * m->cap, sizeof(int));
    if (!m->params || !m->arena || !m->ints) { nao_free(m); return NULL; }
    m->grads = m->params + np;
    m->adam_m = m->params + 2 * np;
    m->adam_v = m->params + 3 * np;
    bind_views(m, spec, m->params, &m->P);
    bind_views(m, spec, m->grads, &m->G);
    init_params(m, spec);
    carve_activations(m);
    m->Gs[0] = m->G;
    for (int k = 1; k < m->max_slices; k++)
        bind_views(m, spec, m->slice_grads + (size_t)(k - 1) * np, &m->Gs[k]);
    return m;
}

void nao_free(NaoModel *m) {
    if (!m) return;
    free(m->params);
    free(m->arena);
    free(m->ints);
    free(m);
}

NaoShape nao_shape(const NaoModel *m) { return m->s; }
int nao_max_batch(const NaoModel *m) { return m->cap; }
size_t nao_num_params(const NaoModel *m) { return m->n_params; }
double *nao_params(NaoModel *m) { return m->params; }
double *nao_grads(NaoModel *m) { return m->grads; }
double *nao_adam_m(NaoModel *m) { return m->adam_m; }
double *nao_adam_v(NaoModel *m) { return m->adam_v; }
int64_t *nao_step(NaoModel *m) { return &m->t; }
uint64_t *nao_shuffles(NaoModel *m) { return &m->shuffles; }

int nao_tensors(const NaoModel *m, NaoTensorInfo *info) {
    memcpy(info, m->info, (size_t)m->n_tensors * sizeof(NaoTensorInfo));
    return m->n_tensors;
}

/* Slice k of a batch of B rows: rows pool_range(B, k, nao_slices(B)) of every buffer. */
static void slice_at(const NaoModel *m, int B, int k, Slice *s) {
    int lo, hi;
    pool_range(B, k, nao_slices(B), &lo, &hi);
    *s = m->all;
    for (int f = 0; f < m->n_fields; f++)
        *(double **)((char *)s + m->fields[f].field) += (size_t)lo * m->fields[f].per_row;
    s->dec_in += (size_t)lo * m->L;
    s->k = k;
    s->r0 = lo;
    s->nr = hi - lo;
}

typedef void (*SliceFn)(NaoModel *m, const Slice *s, void *arg);

typedef struct {
    NaoModel *m;
    int B;
    SliceFn fn;
    void *arg;
} SliceJob;

static void slice_item(void *ctx, int item, int n_items, int worker) {
    (void)n_items;
    (void)worker;
    SliceJob *j = ctx;
    Slice s;
    slice_at(j->m, j->B, item, &s);
    j->fn(j->m, &s, j->arg);
}

/* fn on every slice of a batch of B rows, each slice a ticket of the pool. */
static void for_slices(NaoModel *m, int B, SliceFn fn, void *arg) {
    SliceJob j = {m, B, fn, arg};
    pool_for(slice_item, &j, nao_slices(B), m->workers);
}

/* ---------------------------------------------------------------------------------------
 * Small layers */

/* y (B, Out) = x (B, In) . W (In, Out) + b */
static void linear_forward(int B, int In, int Out, const double *x, const double *W,
                           const double *b, double *y) {
    if (B <= 0) return;
    for (int r = 0; r < B; r++) memcpy(y + (size_t)r * Out, b, (size_t)Out * sizeof(double));
    gemm_f64(0, 0, B, Out, In, 1.0, x, In, W, Out, 1.0, y, Out);
}

/* dW += x^T dy, db += sum_rows dy (both skipped when NULL); dx = dy W^T (overwritten, or NULL). */
static void linear_backward(int B, int In, int Out, const double *x, const double *W,
                            const double *dy, double *dW, double *db, double *dx) {
    if (B <= 0) return;
    if (db)
        for (int r = 0; r < B; r++) {
            const double *dyr = dy + (size_t)r * Out;
            for (int j = 0; j < Out; j++) db[j] += dyr[j];
        }
    if (dW) gemm_f64(1, 0, In, Out, B, 1.0, x, In, dy, Out, 1.0, dW, Out);
    if (dx) gemm_f64(0, 1, B, In, Out, 1.0, dy, Out, W, Out, 0.0, dx, In);
}

/* y = x / max(||x||, eps) as torch.nn.functional.normalize; returns ||x||. */
static double l2_normalize(int n, const double *x, double *y) {
    double s = 0.0;
    for (int k = 0; k < n; k++) s += x[k] * x[k];
    double nrm = sqrt(s), d = nrm > NAO_NORM_EPS ? nrm : NAO_NORM_EPS;
    for (int k = 0; k < n; k++) y[k] = x[k] / d;
    return nrm;
}

/* dx += J^T dy for y = normalize(x): (dy - y (y . dy)) / ||x||, or dy / eps below eps. */
static void l2_normalize_backward(int n, const double *y, double nrm, const double *dy, double *dx) {
    if (nrm <= NAO_NORM_EPS) {
        for (int k = 0; k < n; k++) dx[k] += dy[k] / NAO_NORM_EPS;
        return;
    }
    double s = 0.0;
    for (int k = 0; k < n; k++) s += y[k] * dy[k];
    for (int k = 0; k < n; k++) dx[k] += (dy[k] - s * y[k]) / nrm;
}

static void log_softmax_inplace(int V, double *z) {
    double mx = z[0], s = 0.0;
    for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
    for (int j = 0; j < V; j++) s += exp(z[j] - mx);
    double lse = mx + log(s);
    for (int j = 0; j < V; j++) z[j] -= lse;
}

/* ---------------------------------------------------------------------------------------
 * Encoder */

/* Token pairs -> the slice's (n, nr, 2E) inputs, with dropout masks of `step` when training. */
static void encoder_embed(const NaoModel *m, const Slice *s, const int *tok, int train, uint64_t step) {
    int n = m->s.nodes, E = m->s.emb, L = m->L, X = 2 * E, nr = s->nr;
    double p = m->s.dropout, keep = 1.0 / (1.0 - p);
    uint64_t key = rng_key(m->seed, STREAM_NAO_DROPOUT, step);
    for (int t = 0; t < n; t++)
        for (int j = 0; j < nr; j++) {
            size_t row = ((size_t)t * nr + j) * X, r = (size_t)(s->r0 + j);
            double *x = s->enc_x + row, *mask = s->enc_mask + row;
            memcpy(x, m->P.enc_emb + (size_t)tok[r * L + 2 * t] * E, (size_t)E * sizeof(double));
            memcpy(x + E, m->P.enc_emb + (size_t)tok[r * L + 2 * t + 1] * E, (size_t)E * sizeof(double));
            for (int k = 0; k < X; k++) {
                /* the mask index follows (batch row, step, feature): slices do not change it */
                uint64_t i = ((uint64_t)r * n + t) * X + k;
                mask[k] = (train && p > 0.0) ? (rng_uniform(key, i) >= p ? keep : 0.0) : 1.0;
                x[k] *= mask[k];
            }
        }
}

/* ctx (nr, n, H) = normalised LSTM outputs of the slice's rows (tok: the whole batch). */
static void encoder_forward(const NaoModel *m, const Slice *s, const int *tok, int train, uint64_t step) {
    int n = m->s.nodes, X = 2 * m->s.emb, H = m->s.hidden, G = 4 * H, nr = s->nr;
    encoder_embed(m, s, tok, train, step);
    /* the input part b + x W_x of every step in one product */
    linear_forward(n * nr, X, G, s->enc_x, m->P.enc_W, m->P.enc_b, s->enc_gates);
    memset(s->enc_h, 0, (size_t)nr * H * sizeof(double));
    memset(s->enc_c, 0, (size_t)nr * H * sizeof(double));
    const double *W_h = m->P.enc_W + (size_t)X * G;
    for (int t = 0; t < n; t++) {
        size_t o = (size_t)t * nr; /* first row of step t; its state lands in slot t + 1 */
        lstm_step_forward(nr, H, s->enc_h + o * H, s->enc_c + o * H, W_h, s->enc_gates + o * G,
                          s->enc_c + (o + nr) * H, s->enc_h + (o + nr) * H, s->enc_tc + o * H);
        for (int j = 0; j < nr; j++)
            s->enc_nrm[o + j] = l2_normalize(H, s->enc_h + (o + nr + j) * H, s->ctx + ((size_t)j * n + t) * H);
    }
}

/* emb (nr, H) = normalise(mean over the n contexts of each row) */
static void embed_contexts(const NaoModel *m, const Slice *s) {
    int n = m->s.nodes, H = m->s.hidden;
    for (int r = 0; r < s->nr; r++) {
        double *mu = s->mean + (size_t)r * H;
        for (int k = 0; k < H; k++) mu[k] = 0.0;
        for (int t = 0; t < n; t++) {
            const double *ct = s->ctx + ((size_t)r * n + t) * H;
            for (int k = 0; k < H; k++) mu[k] += ct[k];
        }
        for (int k = 0; k < H; k++) mu[k] /= n;
        s->mean_nrm[r] = l2_normalize(H, mu, s->emb + (size_t)r * H);
    }
}

/* d_ctx (nr, n, H) += gradient through emb = normalise(mean(ctx)) of d_emb. */
static void embed_contexts_backward(const NaoModel *m, const Slice *s) {
    int n = m->s.nodes, H = m->s.hidden;
    for (int r = 0; r < s->nr; r++) {
        double *dm = s->d_mean + (size_t)r * H;
        for (int k = 0; k < H; k++) dm[k] = 0.0;
        l2_normalize_backward(H, s->emb + (size_t)r * H, s->mean_nrm[r], s->d_emb + (size_t)r * H, dm);
        for (int t = 0; t < n; t++) {
            double *dc = s->d_ctx + ((size_t)r * n + t) * H;
            for (int k = 0; k < H; k++) dc[k] += dm[k] / n;
        }
    }
}

/* The recurrence's carried gradients (dh, dc from step t+1) start at zero after the last step. */
static void clear_carry_grads(const Slice *s, int nr, int H) {
    memset(s->d_hA, 0, (size_t)nr * H * sizeof(double));
    memset(s->d_cA, 0, (size_t)nr * H * sizeof(double));
}

/* Backpropagate d_ctx through the normalisations, the LSTM and the embeddings into G. */
static void encoder_backward(const NaoModel *m, const Slice *s, const int *tok, const NaoTensors *G) {
    int n = m->s.nodes, E = m->s.emb, H = m->s.hidden, G4 = 4 * H, L = m->L, X = 2 * E, nr = s->nr;
    double *dh = s->d_hA, *dc = s->d_cA, *dh_prev = s->d_hB, *dc_prev = s->d_cB;
    clear_carry_grads(s, nr, H);
    const double *W_h = m->P.enc_W + (size_t)X * G4;
    for (int t = n - 1; t >= 0; t--) {
        size_t o = (size_t)t * nr;
        /* dh: from step t+1 so far; add the context's gradient through the normalisation */
        for (int j = 0; j < nr; j++)
            l2_normalize_backward(H, s->ctx + ((size_t)j * n + t) * H, s->enc_nrm[o + j],
                                  s->d_ctx + ((size_t)j * n + t) * H, dh + (size_t)j * H);
        double *g = s->enc_gates + o * G4; /* becomes the pre-activation gradients */
        lstm_step_backward(nr, H, s->enc_c + o * H, g, NULL, s->enc_tc + o * H, dh, dc, W_h, g,
                           t ? dh_prev : NULL, t ? dc_prev : NULL); /* the zero initial state needs none */
        double *sw = dh; dh = dh_prev; dh_prev = sw;
        sw = dc; dc = dc_prev; dc_prev = sw;
    }
    /* every step at once: the weights, and the inputs' gradients (n nr, 2E) */
    int rows = n * nr;
    lstm_weight_grads(rows, X, H, s->enc_x, s->enc_h, s->enc_gates, G->enc_W, G->enc_b);
    gemm_f64(0, 1, rows, X, G4, 1.0, s->enc_gates, G4, m->P.enc_W, G4, 0.0, s->d_x, X);
    for (int t = n - 1; t >= 0; t--)
        for (int j = 0; j < nr; j++) {
            size_t row = ((size_t)t * nr + j) * X, r = (size_t)(s->r0 + j);
            const double *dx = s->d_x + row, *mask = s->enc_mask + row;
            double *g0 = G->enc_emb + (size_t)tok[r * L + 2 * t] * E;
            double *g1 = G->enc_emb + (size_t)tok[r * L + 2 * t + 1] * E;
            for (int k = 0; k < E; k++) { g0[k] += dx[k] * mask[k]; g1[k] += dx[E + k] * mask[E + k]; }
        }
}

/* ---------------------------------------------------------------------------------------
 * Predictor */

/* pred (nr) = sigmoid(MLP(emb)) with emb (nr, H) given (s->emb or a caller's rows). */
static void predictor_forward(const NaoModel *m, const Slice *s, const double *emb) {
    int H = m->s.hidden, M = m->s.mlp_hidden, nl = m->s.mlp_layers, B = s->nr;
    const double *a = emb;
    int in = H;
    for (int l = 0; l < nl; l++) {
        double *y = s->mlp_a[l];
        linear_forward(B, in, M, a, m->P.mlp_W[l], m->P.mlp_b[l], y);
        for (size_t k = 0; k < (size_t)B * M; k++) y[k] = y[k] > 0.0 ? y[k] : 0.0;
        a = y;
        in = M;
    }
    linear_forward(B, in, 1, a, m->P.mlp_W[nl], m->P.mlp_b[nl], s->pred);
    for (int r = 0; r < B; r++) s->pred[r] = sigmoid(s->pred[r]);
}

/* From d_pred (nr): d_emb (nr, H) overwritten; parameter gradients accumulated into G (or none). */
static void predictor_backward(const NaoModel *m, const Slice *s, const double *emb, const NaoTensors *G) {
    int H = m->s.hidden, M = m->s.mlp_hidden, nl = m->s.mlp_layers, B = s->nr;
    double *dz = s->d_a, *dprev = s->d_b;
    for (int r = 0; r < B; r++) dz[r] = s->d_pred[r] * s->pred[r] * (1.0 - s->pred[r]);
    for (int l = nl; l >= 0; l--) {
        int in = l ? M : H, out = l == nl ? 1 : M;
        const double *x = l ? s->mlp_a[l - 1] : emb;
        double *dx = l ? dprev : s->d_emb;
        linear_backward(B, in, out, x, m->P.mlp_W[l], dz, G ? G->mlp_W[l] : NULL, G ? G->mlp_b[l] : NULL, dx);
        if (l) {
            /* through the ReLU of layer l-1 */
            const double *a = s->mlp_a[l - 1];
            for (size_t k = 0; k < (size_t)B * M; k++) if (a[k] <= 0.0) dx[k] = 0.0;
            double *sw = dz; dz = dprev; dprev = sw;
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Decoder */

/* Dot-product attention of h (B, H) over the n contexts of each row, ctx (B, n, H):
 * a = softmax_j(h . ctx_j), mix = sum_j a_j ctx_j; comb (B, 2H) = [mix, h], the input of the
 * attention's output layer. */
static void attend_forward(int B, int n, int H, const double *h, const double *ctx, double *attn,
                           double *comb) {
    for (int r = 0; r < B; r++) {
        const double *hr = h + (size_t)r * H, *cr = ctx + (size_t)r * n * H;
        double *a = attn + (size_t)r * n, *mix = comb + (size_t)r * 2 * H;
        double mx = -INFINITY, s = 0.0;
        for (int j = 0; j < n; j++) {
            double d = 0.0;
            for (int k = 0; k < H; k++) d += hr[k] * cr[(size_t)j * H + k];
            a[j] = d;
            mx = d > mx ? d : mx;
        }
        for (int j = 0; j < n; j++) { a[j] = exp(a[j] - mx); s += a[j]; }
        for (int k = 0; k < H; k++) mix[k] = 0.0;
        for (int j = 0; j < n; j++) {
            a[j] /= s;
            for (int k = 0; k < H; k++) mix[k] += a[j] * cr[(size_t)j * H + k];
        }
        memcpy(mix + H, hr, (size_t)H * sizeof(double));
    }
}

/* From d_comb (B, 2H): dh (B, H) and d_ctx (B, n, H) accumulated (the contexts get the
 * gradient through the mix and through the scores). */
static void attend_backward(int B, int n, int H, const double *h, const double *ctx, const double *attn,
                            const double *d_comb, double *dh, double *d_ctx) {
    for (int r = 0; r < B; r++) {
        const double *dmix = d_comb + (size_t)r * 2 * H, *a = attn + (size_t)r * n;
        const double *hr = h + (size_t)r * H, *cr = ctx + (size_t)r * n * H;
        double *dhr = dh + (size_t)r * H, *dcr = d_ctx + (size_t)r * n * H;
        double da[NAO_MAX_NODES], s = 0.0;
        for (int k = 0; k < H; k++) dhr[k] += dmix[H + k];
        for (int j = 0; j < n; j++) {
            double d = 0.0;
            for (int k = 0; k < H; k++) d += dmix[k] * cr[(size_t)j * H + k];
            da[j] = d;
            s += a[j] * d;
        }
        for (int j = 0; j < n; j++) {
            double ds = a[j] * (da[j] - s); /* softmax backward */
            double *dcj = dcr + (size_t)j * H;
            const double *cj = cr + (size_t)j * H;
            for (int k = 0; k < H; k++) {
                dcj[k] += a[j] * dmix[k] + ds * hr[k];
                dhr[k] += ds * cj[k];
            }
        }
    }
}

/* The decoder's input part of every token, xtab (V, 4H) = b + dec_emb W_x: a step gathers its
 * rows instead of multiplying its embedded inputs (once per call, before the slices run). */
static void decoder_table(NaoModel *m) {
    int H = m->s.hidden;
    linear_forward(m->V, H, 4 * H, m->P.dec_emb, m->P.dec_W, m->P.dec_b, m->xtab);
}

/* The decoder starts from (h, c) = (emb, emb): slot 0 of its states. */
static void decoder_start(const NaoModel *m, const Slice *s) {
    size_t bytes = (size_t)s->nr * m->s.hidden * sizeof(double);
    memcpy(s->dec_h, s->emb, bytes);
    memcpy(s->dec_c, s->emb, bytes);
}

/* The LSTM of decoder step t for the slice's rows, inputs s->dec_in[t]. */
static void decoder_lstm_step(const NaoModel *m, const Slice *s, int t) {
    int H = m->s.hidden, G = 4 * H, nr = s->nr;
    size_t o = (size_t)t * nr;
    double *gates = s->dec_gates + o * G;
    for (int j = 0; j < nr; j++)
        memcpy(gates + (size_t)j * G, m->xtab + (size_t)s->dec_in[o + j] * G, (size_t)G * sizeof(double));
    lstm_step_forward(nr, H, s->dec_h + o * H, s->dec_c + o * H, m->P.dec_W + (size_t)H * G, gates,
                      s->dec_c + (o + nr) * H, s->dec_h + (o + nr) * H, s->dec_tc + o * H);
}

/* Attention and output layers of steps t0 .. t0 + nt - 1 (one block of rows): log-probabilities
 * in s->logp. */
static void decoder_outputs(const NaoModel *m, const Slice *s, int t0, int nt) {
    int n = m->s.nodes, H = m->s.hidden, V = m->V, nr = s->nr, rows = nt * nr;
    for (int t = t0; t < t0 + nt; t++) {
        size_t o = (size_t)t * nr;
        attend_forward(nr, n, H, s->dec_h + (o + nr) * H, s->ctx, s->attn + o * n, s->comb + o * 2 * H);
    }
    size_t o = (size_t)t0 * nr;
    double *out = s->att_o + o * H, *lp = s->logp + o * V;
    linear_forward(rows, 2 * H, H, s->comb + o * 2 * H, m->P.att_W, m->P.att_b, out);
    for (size_t k = 0; k < (size_t)rows * H; k++) out[k] = tanh(out[k]);
    linear_forward(rows, H, V, out, m->P.out_W, m->P.out_b, lp);
    for (int r = 0; r < rows; r++) log_softmax_inplace(V, lp + (size_t)r * V);
}

/* Teacher forcing: step t reads the start symbol (t = 0) or token t-1 (tok: the whole batch);
 * the LSTM runs every step, then the output layers run on all of them at once. */
static void decoder_forward(const NaoModel *m, const Slice *s, const int *tok) {
    int L = m->L, nr = s->nr;
    decoder_start(m, s);
    for (int t = 0; t < L; t++) {
        for (int j = 0; j < nr; j++)
            s->dec_in[(size_t)t * nr + j] = t ? tok[(size_t)(s->r0 + j) * L + t - 1] : 0;
        decoder_lstm_step(m, s, t);
    }
    decoder_outputs(m, s, 0, L);
}

/* The allowed tokens of position t: node i = t/2 + 1 emits its predecessor (1..i) at even t
 * and its op (n+1..n+K) at odd t. */
static void allowed_tokens(const NaoModel *m, int t, int *lo, int *hi) {
    int n = m->s.nodes;
    if (t % 2 == 0) { *lo = 1; *hi = t / 2 + 1; }
    else { *lo = n + 1; *hi = n + m->s.ops; }
}

/* Greedy constrained decoding of the slice's rows from s->ctx / s->emb into tok (the whole
 * chunk's (B, L) tokens). */
static void decoder_greedy(const NaoModel *m, const Slice *s, int *tok) {
    int L = m->L, V = m->V, nr = s->nr;
    decoder_start(m, s);
    for (int t = 0; t < L; t++) {
        for (int j = 0; j < nr; j++)
            s->dec_in[(size_t)t * nr + j] = t ? tok[(size_t)(s->r0 + j) * L + t - 1] : 0;
        decoder_lstm_step(m, s, t);
        decoder_outputs(m, s, t, 1);
        int lo, hi;
        allowed_tokens(m, t, &lo, &hi);
        for (int j = 0; j < nr; j++) {
            const double *row = s->logp + ((size_t)t * nr + j) * V;
            int best = lo;
            for (int v = lo + 1; v <= hi; v++) if (row[v] > row[best]) best = v;
            tok[(size_t)(s->r0 + j) * L + t] = best;
        }
    }
}

/* NLL backward with weight w per token (w = (1 - trade_off) / (B L)): accumulates the decoder's
 * parameter gradients into G, and d_ctx (attention) and d_emb (initial state). */
static void decoder_backward(NaoModel *m, const Slice *s, const int *tok, double w, const NaoTensors *G) {
    int n = m->s.nodes, H = m->s.hidden, G4 = 4 * H, V = m->V, L = m->L, nr = s->nr, rows = L * nr;
    /* the output and attention layers of every step at once */
    for (int t = 0; t < L; t++)
        for (int j = 0; j < nr; j++) {
            size_t i = (size_t)t * nr + j;
            const double *lp = s->logp + i * V;
            double *dl = s->d_logit + i * V;
            for (int v = 0; v < V; v++) dl[v] = w * exp(lp[v]);
            dl[tok[(size_t)(s->r0 + j) * L + t]] -= w;
        }
    linear_backward(rows, H, V, s->att_o, m->P.out_W, s->d_logit, G->out_W, G->out_b, s->d_o);
    for (size_t k = 0; k < (size_t)rows * H; k++) s->d_o[k] *= 1.0 - s->att_o[k] * s->att_o[k];
    linear_backward(rows, 2 * H, H, s->comb, m->P.att_W, s->d_o, G->att_W, G->att_b, s->d_comb);
    /* the recurrence, last step first: the attention's gradient joins dh from step t+1 */
    double *dh = s->d_hA, *dc = s->d_cA, *dh_prev = s->d_hB, *dc_prev = s->d_cB;
    clear_carry_grads(s, nr, H);
    const double *W_h = m->P.dec_W + (size_t)H * G4;
    for (int t = L - 1; t >= 0; t--) {
        size_t o = (size_t)t * nr;
        attend_backward(nr, n, H, s->dec_h + (o + nr) * H, s->ctx, s->attn + o * n, s->d_comb + o * 2 * H, dh,
                        s->d_ctx);
        double *g = s->dec_gates + o * G4; /* becomes the pre-activation gradients */
        lstm_step_backward(nr, H, s->dec_c + o * H, g, NULL, s->dec_tc + o * H, dh, dc, W_h, g, dh_prev, dc_prev);
        double *sw = dh; dh = dh_prev; dh_prev = sw;
        sw = dc; dc = dc_prev; dc_prev = sw;
    }
    /* h_{-1} = c_{-1} = emb */
    for (size_t k = 0; k < (size_t)nr * H; k++) s->d_emb[k] += dh[k] + dc[k];
    /* every step at once: W_h through the previous states; W_x, b and the embedding through
     * the table's rows, dtab[v] = the sum of the gradients of the steps that read token v */
    lstm_weight_grads(rows, 0, H, NULL, s->dec_h, s->dec_gates, G->dec_W + (size_t)H * G4, NULL);
    double *dtab = m->d_tab + (size_t)s->k * V * G4;
    memset(dtab, 0, (size_t)V * G4 * sizeof(double));
    for (int i = 0; i < rows; i++) {
        const double *da = s->dec_gates + (size_t)i * G4;
        double *d = dtab + (size_t)s->dec_in[i] * G4;
        for (int j = 0; j < G4; j++) d[j] += da[j];
    }
    linear_backward(V, H, G4, m->P.dec_emb, m->P.dec_W, dtab, G->dec_W, G->dec_b, NULL);
    gemm_f64(0, 1, V, H, G4, 1.0, dtab, G4, m->P.dec_W, G4, 1.0, G->dec_emb, H);
}

/* ---------------------------------------------------------------------------------------
 * Loss, gradient and optimiser */

typedef struct {
    const int *tok;
    const double *target;
    double trade_off;
    int train, B;
    uint64_t step;
} BatchArgs;

/* Forward and backward of one slice into its own gradient buffer (m->Gs[k]). */
static void slice_loss_grad(NaoModel *m, const Slice *s, void *arg) {
    const BatchArgs *a = arg;
    const NaoTensors *G = &m->Gs[s->k];
    int n = m->s.nodes, H = m->s.hidden;
    memset(s->k ? m->slice_grads + (size_t)(s->k - 1) * m->n_params : m->grads, 0, m->n_params * sizeof(double));
    encoder_forward(m, s, a->tok, a->train, a->step);
    embed_contexts(m, s);
    predictor_forward(m, s, s->emb);
    decoder_forward(m, s, a->tok);
    memset(s->d_ctx, 0, (size_t)s->nr * n * H * sizeof(double));
    for (int j = 0; j < s->nr; j++) s->d_pred[j] = a->trade_off * 2.0 * (s->pred[j] - a->target[s->r0 + j]) / a->B;
    predictor_backward(m, s, s->emb, G);
    decoder_backward(m, s, a->tok, (1.0 - a->trade_off) / ((double)a->B * m->L), G);
    embed_contexts_backward(m, s);
    encoder_backward(m, s, a->tok, G);
}

typedef struct {
    NaoModel *m;
    int slices;
    int adam;        /* 0: sum the slices' gradients into grads and square them; 1: clip and Adam */
    double coef;     /* clipping factor (>= 1: none) */
    AdamConfig cfg;
} UpdateJob;

/* Chunk `item` of the parameters: the same chunks for every thread count. */
static void update_item(void *ctx, int item, int n_items, int worker) {
    (void)worker;
    UpdateJob *u = ctx;
    NaoModel *m = u->m;
    size_t n = m->n_params, lo = n * (size_t)item / (size_t)n_items, hi = n * (size_t)(item + 1) / (size_t)n_items;
    double *g = m->grads;
    if (!u->adam) {
        double sq = 0.0;
        for (int k = 1; k < u->slices; k++) {
            const double *gk = m->slice_grads + (size_t)(k - 1) * n;
            for (size_t i = lo; i < hi; i++) g[i] += gk[i];
        }
        for (size_t i = lo; i < hi; i++) sq += g[i] * g[i];
        m->sq[item] = sq;
        return;
    }
    if (u->coef < 1.0) for (size_t i = lo; i < hi; i++) g[i] *= u->coef;
    adam_update(hi - lo, m->params + lo, g + lo, m->adam_m + lo, m->adam_v + lo, m->t, u->cfg);
}

/* Loss and gradient of a batch (grads), and the gradient's squared norm. */
static double loss_grad(NaoModel *m, int B, const int *tok, const double *target, double trade_off, int train,
                        uint64_t step, double *mse_out, double *nll_out, double *sq_norm) {
    int V = m->V, L = m->L, S = nao_slices(B);
    BatchArgs a = {tok, target, trade_off, train, B, step};
    decoder_table(m);
    for_slices(m, B, slice_loss_grad, &a);
    /* the losses in batch-row order */
    double mse = 0.0, nll = 0.0;
    for (int k = 0; k < S; k++) {
        Slice s;
        slice_at(m, B, k, &s);
        for (int j = 0; j < s.nr; j++) {
            int r = s.r0 + j;
            double e = s.pred[j] - target[r];
            mse += e * e;
            for (int t = 0; t < L; t++) nll -= s.logp[((size_t)t * s.nr + j) * V + tok[(size_t)r * L + t]];
        }
    }
    mse /= B;
    nll /= (double)B * L;
    UpdateJob u = {.m = m, .slices = S, .adam = 0};
    pool_for(update_item, &u, NAO_UPDATE_CHUNKS, m->workers);
    double sq = 0.0;
    for (int k = 0; k < NAO_UPDATE_CHUNKS; k++) sq += m->sq[k];
    if (sq_norm) *sq_norm = sq;
    if (mse_out) *mse_out = mse;
    if (nll_out) *nll_out = nll;
    return trade_off * mse + (1.0 - trade_off) * nll;
}

double nao_loss_grad(NaoModel *m, int B, const int *tok, const double *target, double trade_off,
                     int train, uint64_t step, double *mse_out, double *nll_out) {
    m->workers = pool_threads();
    return loss_grad(m, B, tok, target, trade_off, train, step, mse_out, nll_out, NULL);
}

static double train_step(NaoModel *m, int B, const int *tok, const double *target, NaoOptim o,
                         double *mse, double *nll, double *gnorm_out) {
    int64_t t = ++m->t;
    double sq, loss = loss_grad(m, B, tok, target, o.trade_off, 1, (uint64_t)t, mse, nll, &sq);
    double gnorm = sqrt(sq);
    /* torch.nn.utils.clip_grad_norm_ */
    UpdateJob u = {.m = m, .adam = 1, .coef = o.max_grad_norm > 0.0 ? o.max_grad_norm / (gnorm + 1e-6) : 1.0,
                  .cfg = o.adam};
    pool_for(update_item, &u, NAO_UPDATE_CHUNKS, m->workers);
    if (gnorm_out) *gnorm_out = gnorm;
    return loss;
}

double nao_train_step(NaoModel *m, int B, const int *tok, const double *target, NaoOptim o,
                      double *mse, double *nll, double *gnorm_out) {
    m->workers = pool_threads();
    return train_step(m, B, tok, target, o, mse, nll, gnorm_out);
}

/* In-place Fisher-Yates shuffle of perm with the next key of the shuffle stream. */
static void shuffle(NaoModel *m, int N, int *perm) {
    uint64_t key = rng_key(m->seed, STREAM_NAO_SHUFFLE, m->shuffles++);
    for (int k = N - 1; k > 0; k--) {
        int j = (int)((double)rng_uniform(key, (uint64_t)k) * (k + 1));
        if (j > k) j = k;
        int sw = perm[k]; perm[k] = perm[j]; perm[j] = sw;
    }
}

void nao_fit(NaoModel *m, int N, const int *tok, const double *target, int epochs, int batch,
             int do_shuffle, NaoOptim o, double out[2]) {
    int L = m->L;
    int *perm = malloc((size_t)N * sizeof(int));
    out[0] = out[1] = NAN;
    if (!perm) return;
    m->workers = pool_threads();
    for (int k = 0; k < N; k++) perm[k] = k;
    for (int e = 0; e < epochs; e++) {
        if (do_shuffle) shuffle(m, N, perm);
        double sum_mse = 0.0, sum_nll = 0.0;
        for (int b0 = 0; b0 < N; b0 += batch) {
            /* the last mini-batch may be partial (the reference dropped it, which trains
             * nothing at all when the pool is smaller than one batch) */
            int B = N - b0 < batch ? N - b0 : batch;
            for (int r = 0; r < B; r++) {
                memcpy(m->tok_buf + (size_t)r * L, tok + (size_t)perm[b0 + r] * L, (size_t)L * sizeof(int));
                m->tgt_buf[r] = target[perm[b0 + r]];
            }
            double mse, nll;
            train_step(m, B, m->tok_buf, m->tgt_buf, o, &mse, &nll, NULL);
            sum_mse += mse * B;
            sum_nll += nll * B;
        }
        out[0] = sum_mse / N;
        out[1] = sum_nll / N;
    }
    free(perm);
}

/* ---------------------------------------------------------------------------------------
 * Inference (walks its input in chunks of cap rows, each chunk in slices) */

typedef struct {
    const int *tok;     /* the chunk's tokens (encode) or its decoded tokens (decode) */
    int *out_tok;
    const double *in;   /* the chunk's embeddings (predict_emb) or contexts (decode) */
    int grad;           /* predict_*: also the gradient */
} InferArgs;

static void slice_encode(NaoModel *m, const Slice *s, void *arg) {
    const InferArgs *a = arg;
    encoder_forward(m, s, a->tok, 0, 0);
    embed_contexts(m, s);
    predictor_forward(m, s, s->emb);
}

void nao_encode(NaoModel *m, int N, const int *tok, double *ctx, double *emb, double *pred) {
    int n = m->s.nodes, H = m->s.hidden, L = m->L;
    m->workers = pool_threads();
    for (int r0 = 0; r0 < N; r0 += m->cap) {
        int B = N - r0 < m->cap ? N - r0 : m->cap;
        InferArgs a = {tok + (size_t)r0 * L, NULL, NULL, 0};
        for_slices(m, B, slice_encode, &a);
        if (ctx) memcpy(ctx + (size_t)r0 * n * H, m->all.ctx, (size_t)B * n * H * sizeof(double));
        if (emb) memcpy(emb + (size_t)r0 * H, m->all.emb, (size_t)B * H * sizeof(double));
        if (pred) memcpy(pred + r0, m->all.pred, (size_t)B * sizeof(double));
    }
}

/* Predictions (and, with grad, d pred / d input) for N rows of `width` inputs each, in
   batches of the model's capacity; `slice_fn` runs one slice, `d_in` is where the whole
   batch's input gradient lands. */
static void predict_rows(NaoModel *m, int N, const double *in, size_t width, SliceFn slice_fn,
                         const double *d_in, double *pred, double *grad) {
    m->workers = pool_threads();
    for (int r0 = 0; r0 < N; r0 += m->cap) {
        int B = N - r0 < m->cap ? N - r0 : m->cap;
        InferArgs a = {NULL, NULL, in + (size_t)r0 * width, grad != NULL};
        for_slices(m, B, slice_fn, &a);
        if (pred) memcpy(pred + r0, m->all.pred, (size_t)B * sizeof(double));
        if (grad) memcpy(grad + (size_t)r0 * width, d_in, (size_t)B * width * sizeof(double));
    }
}

static void slice_predict_emb(NaoModel *m, const Slice *s, void *arg) {
    const InferArgs *a = arg;
    const double *e = a->in + (size_t)s->r0 * m->s.hidden;
    predictor_forward(m, s, e);
    if (a->grad) {
        for (int r = 0; r < s->nr; r++) s->d_pred[r] = 1.0;
        predictor_backward(m, s, e, NULL);
    }
}

void nao_predict_emb(NaoModel *m, int N, const double *emb, double *pred, double *grad) {
    predict_rows(m, N, emb, (size_t)m->s.hidden, slice_predict_emb, m->all.d_emb, pred, grad);
}

static void slice_predict_ctx(NaoModel *m, const Slice *s, void *arg) {
    const InferArgs *a = arg;
    size_t nH = (size_t)m->s.nodes * m->s.hidden;
    memcpy(s->ctx, a->in + (size_t)s->r0 * nH, (size_t)s->nr * nH * sizeof(double));
    embed_contexts(m, s);
    predictor_forward(m, s, s->emb);
    if (a->grad) {
        for (int r = 0; r < s->nr; r++) s->d_pred[r] = 1.0;
        predictor_backward(m, s, s->emb, NULL);
        memset(s->d_ctx, 0, (size_t)s->nr * nH * sizeof(double));
        embed_contexts_backward(m, s);
    }
}

void nao_predict_ctx(NaoModel *m, int N, const double *ctx, double *pred, double *grad) {
    predict_rows(m, N, ctx, (size_t)m->s.nodes * m->s.hidden, slice_predict_ctx, m->all.d_ctx, pred, grad);
}

static void slice_decode(NaoModel *m, const Slice *s, void *arg) {
    const InferArgs *a = arg;
    int H = m->s.hidden;
    size_t rows = (size_t)s->nr * m->s.nodes, first = (size_t)s->r0 * m->s.nodes;
    for (size_t i = 0; i < rows; i++) l2_normalize(H, a->in + (first + i) * H, s->ctx + i * H);
    embed_contexts(m, s);
    decoder_greedy(m, s, a->out_tok);
}

void nao_decode(NaoModel *m, int N, const double *ctx, int *tok) {
    size_t nH = (size_t)m->s.nodes * m->s.hidden;
    m->workers = pool_threads();
    decoder_table(m);
    for (int r0 = 0; r0 < N; r0 += m->cap) {
        int B = N - r0 < m->cap ? N - r0 : m->cap;
        InferArgs a = {NULL, tok + (size_t)r0 * m->L, ctx + (size_t)r0 * nH, 0};
        for_slices(m, B, slice_decode, &a);
    }
}
