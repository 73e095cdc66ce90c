/* NAO encoder-predictor-decoder, forward, backward and optimiser (see nao.h for the maths).
 *
 * Layout: activations are time-major, (step, row, feature), with room for `cap` rows, so that
 * the rows of one step are one contiguous (B, X) block as lstm_forward/lstm_backward expect;
 * the attention contexts are batch-major (row, step, H) because every decoder step of a row
 * reads all n of them. The LSTM gates and the linear layers are double-precision gemms over the
 * whole mini-batch (lstm.c, linear_forward/linear_backward); the attention over the n
 * contexts and the elementwise maths are plain loops. */
#include "nao.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "lstm.h"
#include "rng.h"

struct NaoModel {
    NaoShape s;
    int V, L, cap;
    uint64_t seed;
    size_t n_params;
    int n_tensors;
    NaoTensorInfo info[NAO_MAX_TENSORS];
    double *params, *grads, *adam_m, *adam_v;
    NaoTensors P, G; /* views of params and grads */
    int64_t t;         /* Adam steps taken */
    uint64_t shuffles; /* epoch shuffles drawn */

    double *arena;     /* every activation and scratch buffer below */
    int *dec_in;       /* (L, cap) decoder input token of each step */
    int *tok_buf;      /* (cap, L) a gathered mini-batch */
    double *tgt_buf;   /* (cap) its targets */
    double *zeros;     /* (cap, H) the encoder's initial state */
    double *enc_x;     /* (n, cap, 2E) token-pair embeddings after dropout */
    double *enc_mask;  /* (n, cap, 2E) dropout scales (0 or 1/(1-p); 1 in evaluation) */
    double *enc_gates; /* (n, cap, 4H) */
    double *enc_c, *enc_h; /* (n, cap, H) */
    double *enc_nrm;   /* (n, cap) norms of h_t before normalisation */
    double *ctx;       /* (cap, n, H) normalised encoder outputs */
    double *mean;      /* (cap, H) mean context */
    double *mean_nrm;  /* (cap) its norm */
    double *emb;       /* (cap, H) architecture embedding */
    double *mlp_a[NAO_MAX_MLP]; /* (cap, M) post-ReLU activations */
    double *pred;      /* (cap) */
    double *dec_x;     /* (L, cap, H) embedded decoder inputs */
    double *dec_gates; /* (L, cap, 4H) */
    double *dec_c, *dec_h; /* (L, cap, H) */
    double *attn;      /* (L, cap, n) attention weights */
    double *comb;      /* (L, cap, 2H) [mix, h] */
    double *att_o;     /* (L, cap, H) tanh output of the attention layer */
    double *logp;      /* (L, cap, V) log-probabilities */
    /* backward scratch */
    double *d_ctx;     /* (cap, n, H) */
    double *d_emb;     /* (cap, H) */
    double *d_mean;    /* (cap, H) */
    double *d_pred;    /* (cap) */
    double *d_a, *d_b; /* (cap, max(M, H)) predictor layer gradients, ping-pong */
    double *d_hA, *d_cA, *d_hB, *d_cB; /* (cap, H) LSTM state gradients, ping-pong */
    double *d_x;       /* (cap, max(2E, H)) LSTM input gradient */
    double *d_gates;   /* (cap, 4H) the LSTM backward's pre-activation gradients */
    double *d_logit;   /* (cap, V) */
    double *d_o;       /* (cap, H) */
    double *d_comb;    /* (cap, 2H) */
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
 * Creation */

static size_t activation_doubles(const NaoShape *s, int V, int L, int cap) {
    size_t n = (size_t)s->nodes, E = (size_t)s->emb, H = (size_t)s->hidden, M = (size_t)s->mlp_hidden;
    size_t c = (size_t)cap, W = (size_t)imax(s->mlp_hidden, s->hidden), X = (size_t)imax(2 * s->emb, s->hidden);
    size_t total = 0;
    total += c;                                  /* tgt_buf */
    total += c * H;                              /* zeros */
    total += 2 * n * c * 2 * E;                  /* enc_x, enc_mask */
    total += n * c * 4 * H + 2 * n * c * H;      /* enc_gates, enc_c, enc_h */
    total += n * c;                              /* enc_nrm */
    total += c * n * H + 2 * c * H + c;          /* ctx, mean, emb, mean_nrm */
    total += (size_t)s->mlp_layers * c * M + c;  /* mlp_a, pred */
    total += (size_t)L * c * (H + 4 * H + 2 * H + n + 2 * H + H + (size_t)V); /* decoder */
    total += c * n * H + 2 * c * H + c;          /* d_ctx, d_emb, d_mean, d_pred */
    total += 2 * c * W + 4 * c * H + c * X;      /* d_a, d_b, d_h/c A/B, d_x */
    total += c * 4 * H;                          /* d_gates */
    total += c * (size_t)V + c * H + c * 2 * H;  /* d_logit, d_o, d_comb */
    return total;
}

static void carve_activations(NaoModel *m) {
    const NaoShape *s = &m->s;
    size_t n = (size_t)s->nodes, E = (size_t)s->emb, H = (size_t)s->hidden, M = (size_t)s->mlp_hidden;
    size_t c = (size_t)m->cap, L = (size_t)m->L, V = (size_t)m->V;
    size_t W = (size_t)imax(s->mlp_hidden, s->hidden), X = (size_t)imax(2 * s->emb, s->hidden);
    double *p = m->arena;
#define TAKE(ptr, count) do { (ptr) = p; p += (count); } while (0)
    TAKE(m->tgt_buf, c);
    TAKE(m->zeros, c * H);
    TAKE(m->enc_x, n * c * 2 * E);
    TAKE(m->enc_mask, n * c * 2 * E);
    TAKE(m->enc_gates, n * c * 4 * H);
    TAKE(m->enc_c, n * c * H);
    TAKE(m->enc_h, n * c * H);
    TAKE(m->enc_nrm, n * c);
    TAKE(m->ctx, c * n * H);
    TAKE(m->mean, c * H);
    TAKE(m->emb, c * H);
    TAKE(m->mean_nrm, c);
    for (int l = 0; l < s->mlp_layers; l++) TAKE(m->mlp_a[l], c * M);
    TAKE(m->pred, c);
    TAKE(m->dec_x, L * c * H);
    TAKE(m->dec_gates, L * c * 4 * H);
    TAKE(m->dec_c, L * c * H);
    TAKE(m->dec_h, L * c * H);
    TAKE(m->attn, L * c * n);
    TAKE(m->comb, L * c * 2 * H);
    TAKE(m->att_o, L * c * H);
    TAKE(m->logp, L * c * V);
    TAKE(m->d_ctx, c * n * H);
    TAKE(m->d_emb, c * H);
    TAKE(m->d_mean, c * H);
    TAKE(m->d_pred, c);
    TAKE(m->d_a, c * W);
    TAKE(m->d_b, c * W);
    TAKE(m->d_hA, c * H);
    TAKE(m->d_cA, c * H);
    TAKE(m->d_hB, c * H);
    TAKE(m->d_cB, c * H);
    TAKE(m->d_x, c * X);
    TAKE(m->d_gates, c * 4 * H);
    TAKE(m->d_logit, c * V);
    TAKE(m->d_o, c * H);
    TAKE(m->d_comb, c * 2 * H);
#undef TAKE
}

NaoModel *nao_create(NaoShape shape, int max_batch, uint64_t seed) {
    NaoModel *m = calloc(1, sizeof(NaoModel));
    if (!m) return NULL;
    m->s = shape;
    m->V = shape.nodes + shape.ops + 1;
    m->L = 2 * shape.nodes;
    m->cap = max_batch;
    m->seed = seed;
    TensorSpec spec[NAO_MAX_TENSORS];
    layout(m, spec);
    size_t np = m->n_params;
    m->params = calloc(4 * np, sizeof(double));
    size_t na = activation_doubles(&shape, m->V, m->L, m->cap);
    m->arena = calloc(na, sizeof(double));
    m->dec_in = calloc((size_t)m->L * m->cap, sizeof(int));
    m->tok_buf = calloc((size_t)m->L * m->cap, sizeof(int));
    if (!m->params || !m->arena || !m->dec_in || !m->tok_buf) { nao_free(m); return NULL; }
    m->grads = m->params + np;
    m->adam_m = m->params + 2 * np;
    m->adam_v = m->params + 3 * np;
    bind_views(m, spec, m->params, &m->P);
    bind_views(m, spec, m->grads, &m->G);
    init_params(m, spec);
    carve_activations(m);
    return m;
}

void nao_free(NaoModel *m) {
    if (!m) return;
    free(m->params);
    free(m->arena);
    free(m->dec_in);
    free(m->tok_buf);
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

/* Token pairs -> (n, cap, 2E) inputs, with dropout masks of `step` when training. */
static void encoder_embed(NaoModel *m, int B, const int *tok, int train, uint64_t step) {
    int n = m->s.nodes, E = m->s.emb, L = m->L, X = 2 * E;
    double p = m->s.dropout, keep = 1.0 / (1.0 - p);
    uint64_t key = rng_key(m->seed, STREAM_NAO_DROPOUT, step);
    for (int t = 0; t < n; t++)
        for (int r = 0; r < B; r++) {
            size_t row = ((size_t)t * m->cap + r) * X;
            double *x = m->enc_x + row, *mask = m->enc_mask + row;
            memcpy(x, m->P.enc_emb + (size_t)tok[(size_t)r * L + 2 * t] * E, (size_t)E * sizeof(double));
            memcpy(x + E, m->P.enc_emb + (size_t)tok[(size_t)r * L + 2 * t + 1] * E, (size_t)E * sizeof(double));
            for (int k = 0; k < X; k++) {
                /* the mask index follows (row, step, feature) so it does not depend on cap */
                uint64_t i = ((uint64_t)r * n + t) * X + k;
                mask[k] = (train && p > 0.0) ? (rng_uniform(key, i) >= p ? keep : 0.0) : 1.0;
                x[k] *= mask[k];
            }
        }
}

/* ctx (cap, n, H) = normalised LSTM outputs; emb = normalise(mean_t ctx). */
static void encoder_forward(NaoModel *m, int B, const int *tok, int train, uint64_t step) {
    int n = m->s.nodes, E = m->s.emb, H = m->s.hidden, c = m->cap;
    encoder_embed(m, B, tok, train, step);
    for (int t = 0; t < n; t++) {
        const double *hp = t ? m->enc_h + (size_t)(t - 1) * c * H : m->zeros;
        const double *cp = t ? m->enc_c + (size_t)(t - 1) * c * H : m->zeros;
        lstm_forward(B, 2 * E, H, m->enc_x + (size_t)t * c * 2 * E, hp, cp, m->P.enc_W, m->P.enc_b,
                     m->enc_gates + (size_t)t * c * 4 * H, m->enc_c + (size_t)t * c * H,
                     m->enc_h + (size_t)t * c * H);
        for (int r = 0; r < B; r++)
            m->enc_nrm[(size_t)t * c + r] = l2_normalize(H, m->enc_h + ((size_t)t * c + r) * H,
                                                         m->ctx + ((size_t)r * n + t) * H);
    }
}

/* emb (B, H) = normalise(mean over the n contexts of each row) */
static void embed_contexts(NaoModel *m, int B) {
    int n = m->s.nodes, H = m->s.hidden;
    for (int r = 0; r < B; r++) {
        double *mu = m->mean + (size_t)r * H;
        for (int k = 0; k < H; k++) mu[k] = 0.0;
        for (int t = 0; t < n; t++) {
            const double *ct = m->ctx + ((size_t)r * n + t) * H;
            for (int k = 0; k < H; k++) mu[k] += ct[k];
        }
        for (int k = 0; k < H; k++) mu[k] /= n;
        m->mean_nrm[r] = l2_normalize(H, mu, m->emb + (size_t)r * H);
    }
}

/* d_ctx (B, n, H) += gradient through emb = normalise(mean(ctx)) of d_emb. */
static void embed_contexts_backward(NaoModel *m, int B) {
    int n = m->s.nodes, H = m->s.hidden;
    for (int r = 0; r < B; r++) {
        double *dm = m->d_mean + (size_t)r * H;
        for (int k = 0; k < H; k++) dm[k] = 0.0;
        l2_normalize_backward(H, m->emb + (size_t)r * H, m->mean_nrm[r], m->d_emb + (size_t)r * H, dm);
        for (int t = 0; t < n; t++) {
            double *dc = m->d_ctx + ((size_t)r * n + t) * H;
            for (int k = 0; k < H; k++) dc[k] += dm[k] / n;
        }
    }
}

/* Backpropagate d_ctx through the normalisations, the LSTM and the embeddings. */
static void encoder_backward(NaoModel *m, int B, const int *tok) {
    int n = m->s.nodes, E = m->s.emb, H = m->s.hidden, c = m->cap, L = m->L, X = 2 * E;
    double *dh = m->d_hA, *dc = m->d_cA, *dh_prev = m->d_hB, *dc_prev = m->d_cB;
    memset(dh, 0, (size_t)B * H * sizeof(double));
    memset(dc, 0, (size_t)B * H * sizeof(double));
    for (int t = n - 1; t >= 0; t--) {
        /* dh: from step t+1 so far; add the context's gradient through the normalisation */
        for (int r = 0; r < B; r++)
            l2_normalize_backward(H, m->ctx + ((size_t)r * n + t) * H, m->enc_nrm[(size_t)t * c + r],
                                  m->d_ctx + ((size_t)r * n + t) * H, dh + (size_t)r * H);
        const double *hp = t ? m->enc_h + (size_t)(t - 1) * c * H : m->zeros;
        const double *cp = t ? m->enc_c + (size_t)(t - 1) * c * H : m->zeros;
        const double *x = m->enc_x + (size_t)t * c * X;
        lstm_backward_ws(B, X, H, x, hp, cp, m->P.enc_W, m->enc_gates + (size_t)t * c * 4 * H,
                         m->enc_c + (size_t)t * c * H, dh, dc, m->G.enc_W, m->G.enc_b, m->d_x, dh_prev,
                         dc_prev, m->d_gates, lstm_backward_work(c, H));
        for (int r = 0; r < B; r++) {
            const double *dx = m->d_x + (size_t)r * X, *mask = m->enc_mask + ((size_t)t * c + r) * X;
            double *g0 = m->G.enc_emb + (size_t)tok[(size_t)r * L + 2 * t] * E;
            double *g1 = m->G.enc_emb + (size_t)tok[(size_t)r * L + 2 * t + 1] * E;
            for (int k = 0; k < E; k++) { g0[k] += dx[k] * mask[k]; g1[k] += dx[E + k] * mask[E + k]; }
        }
        double *sw = dh; dh = dh_prev; dh_prev = sw;
        sw = dc; dc = dc_prev; dc_prev = sw;
    }
}

/* ---------------------------------------------------------------------------------------
 * Predictor */

/* pred (B) = sigmoid(MLP(emb)) with emb (B, H) given (m->emb or a caller's chunk). */
static void predictor_forward(NaoModel *m, int B, const double *emb) {
    int H = m->s.hidden, M = m->s.mlp_hidden, nl = m->s.mlp_layers;
    const double *a = emb;
    int in = H;
    for (int l = 0; l < nl; l++) {
        double *y = m->mlp_a[l];
        linear_forward(B, in, M, a, m->P.mlp_W[l], m->P.mlp_b[l], y);
        for (size_t k = 0; k < (size_t)B * M; k++) y[k] = y[k] > 0.0 ? y[k] : 0.0;
        a = y;
        in = M;
    }
    linear_forward(B, in, 1, a, m->P.mlp_W[nl], m->P.mlp_b[nl], m->pred);
    for (int r = 0; r < B; r++) m->pred[r] = sigmoid(m->pred[r]);
}

/* From d_pred (B): d_emb (B, H) overwritten; parameter gradients accumulated when params. */
static void predictor_backward(NaoModel *m, int B, const double *emb, int params) {
    int H = m->s.hidden, M = m->s.mlp_hidden, nl = m->s.mlp_layers;
    double *dz = m->d_a, *dprev = m->d_b;
    for (int r = 0; r < B; r++) dz[r] = m->d_pred[r] * m->pred[r] * (1.0 - m->pred[r]);
    for (int l = nl; l >= 0; l--) {
        int in = l ? M : H, out = l == nl ? 1 : M;
        const double *x = l ? m->mlp_a[l - 1] : emb;
        double *dx = l ? dprev : m->d_emb;
        linear_backward(B, in, out, x, m->P.mlp_W[l], dz, params ? m->G.mlp_W[l] : NULL,
                        params ? m->G.mlp_b[l] : NULL, dx);
        if (l) {
            /* through the ReLU of layer l-1 */
            const double *a = m->mlp_a[l - 1];
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

/* One decoder step t for rows 0..B-1 with inputs m->dec_in[t]: LSTM, attention, output
 * layer; leaves log-probabilities in m->logp[t]. */
static void decoder_step_forward(NaoModel *m, int B, int t) {
    int n = m->s.nodes, H = m->s.hidden, V = m->V, c = m->cap;
    const int *in_tok = m->dec_in + (size_t)t * c;
    double *x = m->dec_x + (size_t)t * c * H;
    for (int r = 0; r < B; r++)
        memcpy(x + (size_t)r * H, m->P.dec_emb + (size_t)in_tok[r] * H, (size_t)H * sizeof(double));
    /* the decoder starts from (h, c) = (emb, emb) */
    const double *hp = t ? m->dec_h + (size_t)(t - 1) * c * H : m->emb;
    const double *cp = t ? m->dec_c + (size_t)(t - 1) * c * H : m->emb;
    double *h = m->dec_h + (size_t)t * c * H;
    lstm_forward(B, H, H, x, hp, cp, m->P.dec_W, m->P.dec_b, m->dec_gates + (size_t)t * c * 4 * H,
                 m->dec_c + (size_t)t * c * H, h);
    double *comb = m->comb + (size_t)t * c * 2 * H;
    attend_forward(B, n, H, h, m->ctx, m->attn + (size_t)t * c * n, comb);
    double *o = m->att_o + (size_t)t * c * H, *lp = m->logp + (size_t)t * c * V;
    linear_forward(B, 2 * H, H, comb, m->P.att_W, m->P.att_b, o);
    for (size_t k = 0; k < (size_t)B * H; k++) o[k] = tanh(o[k]);
    linear_forward(B, H, V, o, m->P.out_W, m->P.out_b, lp);
    for (int r = 0; r < B; r++) log_softmax_inplace(V, lp + (size_t)r * V);
}

/* Teacher forcing: step t reads the start symbol (t = 0) or token t-1. */
static void decoder_forward(NaoModel *m, int B, const int *tok) {
    int L = m->L, c = m->cap;
    for (int t = 0; t < L; t++) {
        for (int r = 0; r < B; r++) m->dec_in[(size_t)t * c + r] = t ? tok[(size_t)r * L + t - 1] : 0;
        decoder_step_forward(m, B, t);
    }
}

/* The allowed tokens of position t: node i = t/2 + 1 emits its predecessor (1..i) at even t
 * and its op (n+1..n+K) at odd t. */
static void allowed_tokens(const NaoModel *m, int t, int *lo, int *hi) {
    int n = m->s.nodes;
    if (t % 2 == 0) { *lo = 1; *hi = t / 2 + 1; }
    else { *lo = n + 1; *hi = n + m->s.ops; }
}

/* Greedy constrained decoding from m->ctx / m->emb; tok (B, L). */
static void decoder_greedy(NaoModel *m, int B, int *tok) {
    int L = m->L, V = m->V, c = m->cap;
    for (int t = 0; t < L; t++) {
        for (int r = 0; r < B; r++) m->dec_in[(size_t)t * c + r] = t ? tok[(size_t)r * L + t - 1] : 0;
        decoder_step_forward(m, B, t);
        int lo, hi;
        allowed_tokens(m, t, &lo, &hi);
        const double *lp = m->logp + (size_t)t * c * V;
        for (int r = 0; r < B; r++) {
            const double *row = lp + (size_t)r * V;
            int best = lo;
            for (int j = lo + 1; j <= hi; j++) if (row[j] > row[best]) best = j;
            tok[(size_t)r * L + t] = best;
        }
    }
}

/* NLL backward with weight w per token (w = (1 - trade_off) / (B L)): accumulates the decoder's
 * parameter gradients, d_ctx (attention) and d_emb (initial state). */
static void decoder_backward(NaoModel *m, int B, const int *tok, double w) {
    int n = m->s.nodes, H = m->s.hidden, V = m->V, L = m->L, c = m->cap;
    double *dh = m->d_hA, *dc = m->d_cA, *dh_prev = m->d_hB, *dc_prev = m->d_cB;
    memset(dh, 0, (size_t)B * H * sizeof(double));
    memset(dc, 0, (size_t)B * H * sizeof(double));
    for (int t = L - 1; t >= 0; t--) {
        const double *lp = m->logp + (size_t)t * c * V, *o = m->att_o + (size_t)t * c * H;
        const double *comb = m->comb + (size_t)t * c * 2 * H, *attn = m->attn + (size_t)t * c * n;
        const double *h = m->dec_h + (size_t)t * c * H;
        for (int r = 0; r < B; r++) {
            double *dl = m->d_logit + (size_t)r * V;
            for (int j = 0; j < V; j++) dl[j] = w * exp(lp[(size_t)r * V + j]);
            dl[tok[(size_t)r * L + t]] -= w;
        }
        linear_backward(B, H, V, o, m->P.out_W, m->d_logit, m->G.out_W, m->G.out_b, m->d_o);
        for (size_t k = 0; k < (size_t)B * H; k++) m->d_o[k] *= 1.0 - o[k] * o[k];
        linear_backward(B, 2 * H, H, comb, m->P.att_W, m->d_o, m->G.att_W, m->G.att_b, m->d_comb);
        attend_backward(B, n, H, h, m->ctx, attn, m->d_comb, dh, m->d_ctx);
        const double *hp = t ? m->dec_h + (size_t)(t - 1) * c * H : m->emb;
        const double *cp = t ? m->dec_c + (size_t)(t - 1) * c * H : m->emb;
        lstm_backward_ws(B, H, H, m->dec_x + (size_t)t * c * H, hp, cp, m->P.dec_W,
                         m->dec_gates + (size_t)t * c * 4 * H, m->dec_c + (size_t)t * c * H, dh, dc,
                         m->G.dec_W, m->G.dec_b, m->d_x, dh_prev, dc_prev, m->d_gates,
                         lstm_backward_work(c, H));
        const int *in_tok = m->dec_in + (size_t)t * c;
        for (int r = 0; r < B; r++) {
            double *g = m->G.dec_emb + (size_t)in_tok[r] * H;
            const double *dx = m->d_x + (size_t)r * H;
            for (int k = 0; k < H; k++) g[k] += dx[k];
        }
        double *sw = dh; dh = dh_prev; dh_prev = sw;
        sw = dc; dc = dc_prev; dc_prev = sw;
    }
    /* h_{-1} = c_{-1} = emb */
    for (size_t k = 0; k < (size_t)B * H; k++) m->d_emb[k] += dh[k] + dc[k];
}

/* ---------------------------------------------------------------------------------------
 * Loss, gradient and optimiser */

double nao_loss_grad(NaoModel *m, int B, const int *tok, const double *target, double trade_off,
                     int train, uint64_t step, double *mse_out, double *nll_out) {
    int n = m->s.nodes, H = m->s.hidden, V = m->V, L = m->L, c = m->cap;
    encoder_forward(m, B, tok, train, step);
    embed_contexts(m, B);
    predictor_forward(m, B, m->emb);
    decoder_forward(m, B, tok);

    double mse = 0.0, nll = 0.0;
    for (int r = 0; r < B; r++) {
        double e = m->pred[r] - target[r];
        mse += e * e;
        for (int t = 0; t < L; t++) nll -= m->logp[((size_t)t * c + r) * V + tok[(size_t)r * L + t]];
    }
    mse /= B;
    nll /= (double)B * L;

    memset(m->grads, 0, m->n_params * sizeof(double));
    memset(m->d_ctx, 0, (size_t)B * n * H * sizeof(double));
    for (int r = 0; r < B; r++) m->d_pred[r] = trade_off * 2.0 * (m->pred[r] - target[r]) / B;
    predictor_backward(m, B, m->emb, 1);
    decoder_backward(m, B, tok, (1.0 - trade_off) / ((double)B * L));
    embed_contexts_backward(m, B);
    encoder_backward(m, B, tok);

    if (mse_out) *mse_out = mse;
    if (nll_out) *nll_out = nll;
    return trade_off * mse + (1.0 - trade_off) * nll;
}

static double grad_norm(const NaoModel *m) {
    double s = 0.0;
    for (size_t k = 0; k < m->n_params; k++) s += m->grads[k] * m->grads[k];
    return sqrt(s);
}

double nao_train_step(NaoModel *m, int B, const int *tok, const double *target, NaoOptim o,
                      double *mse, double *nll, double *gnorm_out) {
    int64_t t = ++m->t;
    double loss = nao_loss_grad(m, B, tok, target, o.trade_off, 1, (uint64_t)t, mse, nll);
    double gnorm = grad_norm(m);
    if (o.max_grad_norm > 0.0) {
        /* torch.nn.utils.clip_grad_norm_ */
        double coef = o.max_grad_norm / (gnorm + 1e-6);
        if (coef < 1.0) for (size_t k = 0; k < m->n_params; k++) m->grads[k] *= coef;
    }
    adam_update(m->n_params, m->params, m->grads, m->adam_m, m->adam_v, t, o.adam);
    if (gnorm_out) *gnorm_out = gnorm;
    return loss;
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
            nao_train_step(m, B, m->tok_buf, m->tgt_buf, o, &mse, &nll, NULL);
            sum_mse += mse * B;
            sum_nll += nll * B;
        }
        out[0] = sum_mse / N;
        out[1] = sum_nll / N;
    }
    free(perm);
}

/* ---------------------------------------------------------------------------------------
 * Inference (walks its input in chunks of cap rows) */

void nao_encode(NaoModel *m, int N, const int *tok, double *ctx, double *emb, double *pred) {
    int n = m->s.nodes, H = m->s.hidden, L = m->L;
    for (int r0 = 0; r0 < N; r0 += m->cap) {
        int B = N - r0 < m->cap ? N - r0 : m->cap;
        encoder_forward(m, B, tok + (size_t)r0 * L, 0, 0);
        embed_contexts(m, B);
        predictor_forward(m, B, m->emb);
        if (ctx) memcpy(ctx + (size_t)r0 * n * H, m->ctx, (size_t)B * n * H * sizeof(double));
        if (emb) memcpy(emb + (size_t)r0 * H, m->emb, (size_t)B * H * sizeof(double));
        if (pred) memcpy(pred + r0, m->pred, (size_t)B * sizeof(double));
    }
}

void nao_predict_emb(NaoModel *m, int N, const double *emb, double *pred, double *grad) {
    int H = m->s.hidden;
    for (int r0 = 0; r0 < N; r0 += m->cap) {
        int B = N - r0 < m->cap ? N - r0 : m->cap;
        const double *e = emb + (size_t)r0 * H;
        predictor_forward(m, B, e);
        if (pred) memcpy(pred + r0, m->pred, (size_t)B * sizeof(double));
        if (grad) {
            for (int r = 0; r < B; r++) m->d_pred[r] = 1.0;
            predictor_backward(m, B, e, 0);
            memcpy(grad + (size_t)r0 * H, m->d_emb, (size_t)B * H * sizeof(double));
        }
    }
}

void nao_predict_ctx(NaoModel *m, int N, const double *ctx, double *pred, double *grad) {
    int n = m->s.nodes, H = m->s.hidden;
    for (int r0 = 0; r0 < N; r0 += m->cap) {
        int B = N - r0 < m->cap ? N - r0 : m->cap;
        memcpy(m->ctx, ctx + (size_t)r0 * n * H, (size_t)B * n * H * sizeof(double));
        embed_contexts(m, B);
        predictor_forward(m, B, m->emb);
        if (pred) memcpy(pred + r0, m->pred, (size_t)B * sizeof(double));
        if (grad) {
            for (int r = 0; r < B; r++) m->d_pred[r] = 1.0;
            predictor_backward(m, B, m->emb, 0);
            memset(m->d_ctx, 0, (size_t)B * n * H * sizeof(double));
            embed_contexts_backward(m, B);
            memcpy(grad + (size_t)r0 * n * H, m->d_ctx, (size_t)B * n * H * sizeof(double));
        }
    }
}

void nao_decode(NaoModel *m, int N, const double *ctx, int *tok) {
    int n = m->s.nodes, H = m->s.hidden, L = m->L;
    for (int r0 = 0; r0 < N; r0 += m->cap) {
        int B = N - r0 < m->cap ? N - r0 : m->cap;
        for (int r = 0; r < B; r++)
            for (int t = 0; t < n; t++) {
                size_t off = ((size_t)r * n + t) * H;
                l2_normalize(H, ctx + (size_t)r0 * n * H + off, m->ctx + off);
            }
        embed_contexts(m, B);
        decoder_greedy(m, B, tok + (size_t)r0 * L);
    }
}
