#include "enas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"
#include "rng.h"

/* Uniform in [0, 1) with 53 random bits: sampling reads exact cumulative sums in double. */
static inline double uniform53(uint64_t key, uint64_t i) {
    return (double)(rng_mix64(key + i * 0x9e3779b97f4a7c15ULL) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------------------------------- */
/* layout                                                                                    */

/* Decision d's place in the cell: node 1 has only its activation (its predecessor is s0);
 * node i >= 2 has its predecessor at d = 2i - 3 and its activation at d = 2i - 2. */
static void plan_decisions(EnasController *e) {
    const EnasConfig *cfg = &e->cfg;
    int K = cfg->n_ops, H = e->H, d = 0;
    e->off_W = 0;
    e->off_b = e->off_W + (size_t)2 * H * 4 * H;
    e->off_emb = e->off_b + (size_t)4 * H;
    e->emb_rows = 1 + K + cfg->n_nodes;   /* start row, one per op, one per predecessor node */
    size_t off = e->off_emb + (size_t)e->emb_rows * H;
    e->max_choices = K;
    for (int i = 1; i <= cfg->n_nodes; i++) {
        int fixed = cfg->fixed[i - 1];
        for (int is_pred = (i >= 2); is_pred >= 0; is_pred--) {
            EnasDecision *q = &e->dec[d++];
            q->node = i;
            q->is_pred = is_pred;
            q->first_pred = is_pred && cfg->restrict_s0 ? 1 : 0;
            q->n_choices = is_pred ? i - q->first_pred : K;
            q->forced = fixed < 0 ? -1 : is_pred ? fixed / K - q->first_pred : fixed % K;
            q->off_W = off;
            q->off_b = off + (size_t)H * q->n_choices;
            off = q->off_b + q->n_choices;
            if (q->n_choices > e->max_choices) e->max_choices = q->n_choices;
        }
    }
    e->n_dec = d;
    /* the stacked layers above layer 0 come last: a one-layer controller keeps its layout */
    e->off_lW[0] = e->off_W;
    e->off_lb[0] = e->off_b;
    for (int l = 1; l < e->L; l++) {
        e->off_lW[l] = off;
        e->off_lb[l] = off + (size_t)2 * H * 4 * H;
        off = e->off_lb[l] + (size_t)4 * H;
    }
    e->n_params = off;
    /* leaves below one choice of decision d: the rest of node i (its op after its pred)
     * times every later node's number of (pred, op) digits in the space */
    for (int q = e->n_dec - 1; q >= 0; q--) {
        EnasDecision *dq = &e->dec[q];
        size_t below = 1;
        if (dq->is_pred) below = cfg->fixed[dq->node - 1] >= 0 ? 1 : (size_t)K;
        for (int j = dq->node + 1; j <= cfg->n_nodes; j++)
            below *= cfg->fixed[j - 1] >= 0 ? 1 : (size_t)K * j;
        dq->leaves_after = below;
    }
}

size_t enas_space_size(const EnasController *e) {
    size_t n = 1;
    int K = e->cfg.n_ops;
    for (int i = 1; i <= e->cfg.n_nodes; i++) {
        size_t r = e->cfg.fixed[i - 1] >= 0 ? 1 : (size_t)K * i;
        if (n > SIZE_MAX / r) return 0;
        n *= r;
    }
    return n;
}

static void init_params(EnasController *e) {
    uint64_t key = rng_key(e->cfg.seed, STREAM_ENAS_INIT, 0);
    for (size_t k = 0; k < e->n_params; k++) e->params[k] = 0.1 * (2.0 * uniform53(key, k) - 1.0);
    for (int d = 0; d < e->n_dec; d++)
        memset(e->params + e->dec[d].off_b, 0, sizeof(double) * e->dec[d].n_choices);
    memset(e->params + e->off_emb, 0, sizeof(double) * e->H);   /* row 0: unused (step_input) */
}

EnasController *enas_create(const EnasConfig *cfg) {
    if (cfg->n_nodes < 1 || cfg->n_nodes > ENAS_MAX_NODES || cfg->n_ops < 1 || cfg->n_ops > 64 ||
        cfg->hidden < 1 || cfg->hidden > 4096 || !(cfg->temperature > 0) || !(cfg->tanh_c > 0) ||
        cfg->layers < 0 || cfg->layers > ENAS_MAX_LAYERS)
        return NULL;
    for (int i = 1; i <= cfg->n_nodes; i++) {
        int f = cfg->fixed[i - 1];
        if (f >= cfg->n_ops * i || f < -1) return NULL;
        if (f >= 0 && i >= 2 && cfg->restrict_s0 && f / cfg->n_ops == 0) return NULL;
    }
    EnasController *e = calloc(1, sizeof(EnasController));
    if (!e) return NULL;
    e->cfg = *cfg;
    e->H = cfg->hidden;
    e->L = cfg->layers > 0 ? cfg->layers : 1;
    plan_decisions(e);
    size_t C = ENAS_CHUNK, H = e->H, D = e->n_dec, M = e->max_choices, L = e->L;
    e->params = calloc(e->n_params, sizeof(double));
    e->grads = calloc(e->n_params, sizeof(double));
    e->adam_m = calloc(e->n_params, sizeof(double));
    e->adam_v = calloc(e->n_params, sizeof(double));
    e->rows = calloc(D * C, sizeof(int));
    e->act = calloc(D * C, sizeof(int));
    e->x = calloc(D * C * H, sizeof(double));
    e->h = calloc(L * (D + 1) * C * H, sizeof(double));
    e->c = calloc(L * (D + 1) * C * H, sizeof(double));
    e->gates = calloc(L * D * C * 4 * H, sizeof(double));
    e->tanhs = calloc(D * C * M, sizeof(double));
    e->logp_all = calloc(D * C * M, sizeof(double));
    e->dh = calloc(L * C * H, sizeof(double));
    e->dc = calloc(L * C * H, sizeof(double));
    e->dh_out = calloc(L * C * H, sizeof(double));
    e->dc_out = calloc(L * C * H, sizeof(double));
    e->dx = calloc(C * H, sizeof(double));
    e->k_logp = calloc(C * D, sizeof(double));
    e->k_ent = calloc(C * D, sizeof(double));
    e->k_glogp = calloc(C * D, sizeof(double));
    e->k_gent = calloc(C * D, sizeof(double));
    if (!e->params || !e->grads || !e->adam_m || !e->adam_v || !e->rows || !e->act || !e->x || !e->h ||
        !e->c || !e->gates || !e->tanhs || !e->logp_all || !e->dh || !e->dc || !e->dh_out ||
        !e->dc_out || !e->dx || !e->k_logp || !e->k_ent || !e->k_glogp || !e->k_gent) {
        enas_free(e);
        return NULL;
    }
    init_params(e);
    return e;
}

void enas_free(EnasController *e) {
    if (!e) return;
    double *bufs[] = {e->params, e->grads, e->adam_m, e->adam_v, e->x, e->h, e->c, e->gates,
                      e->tanhs, e->logp_all, e->dh, e->dc, e->dh_out, e->dc_out, e->dx,
                      e->k_logp, e->k_ent, e->k_glogp, e->k_gent};
    for (size_t k = 0; k < sizeof(bufs) / sizeof(bufs[0]); k++) free(bufs[k]);
    free(e->rows);
    free(e->act);
    free(e);
}

/* Embedding row that carries decision d's choice a into the next LSTM step. */
static inline int choice_row(const EnasController *e, int d, int a) {
    const EnasDecision *q = &e->dec[d];
    return q->is_pred ? 1 + e->cfg.n_ops + q->first_pred + a : 1 + a;
}

/* Layer l's chunk buffers at state (h, c) or step (gates) d; layer 0's are where a one-layer
 * controller keeps them. */
static inline double *layer_h(const EnasController *e, int l, int d) {
    return e->h + ((size_t)l * (e->n_dec + 1) + d) * ENAS_CHUNK * e->H;
}
static inline double *layer_c(const EnasController *e, int l, int d) {
    return e->c + ((size_t)l * (e->n_dec + 1) + d) * ENAS_CHUNK * e->H;
}
static inline double *layer_gates(const EnasController *e, int l, int d) {
    return e->gates + ((size_t)l * e->n_dec + d) * ENAS_CHUNK * 4 * e->H;
}
/* the state the heads read: the top layer's h */
static inline const double *top_h(const EnasController *e, int d) { return layer_h(e, e->L - 1, d); }

/* The zero initial state of every layer for B sequences. */
static void stack_reset(EnasController *e, int B) {
    for (int l = 0; l < e->L; l++) {
        memset(layer_h(e, l, 0), 0, sizeof(double) * B * e->H);
        memset(layer_c(e, l, 0), 0, sizeof(double) * B * e->H);
    }
}

/* One step of the stacked LSTM for B sequences, state d -> d + 1: layer 0 reads x, layer l > 0
 * reads layer l - 1's new h (torch.nn.LSTM's stacking, without dropout between layers). */
static void stack_forward(EnasController *e, int d, int B, const double *x) {
    int H = e->H;
    for (int l = 0; l < e->L; l++) {
        const double *in = l == 0 ? x : layer_h(e, l - 1, d + 1);
        lstm_forward(B, H, H, in, layer_h(e, l, d), layer_c(e, l, d), e->params + e->off_lW[l],
                     e->params + e->off_lb[l], layer_gates(e, l, d), layer_c(e, l, d + 1), layer_h(e, l, d + 1));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* forward                                                                                   */

/* The LSTM input of a step: the embedding row of the previous choice, or a zero vector at the
 * first step (row 0), as the reference feeds its controller (ENAS-pytorch's static zero input;
 * the paper's nasws/rnn/enas_policy/models/controller.py). Row 0 of the embedding is therefore
 * unused: it stays in the layout so that states keep their size. */
static inline void step_input(const EnasController *e, int row, const double *emb, double *x) {
    size_t H = e->H;
    if (row == 0) memset(x, 0, sizeof(double) * H);
    else memcpy(x, emb + (size_t)row * H, sizeof(double) * H);
}

/* Head of decision d on h (B, H): tanhs = tanh(z / T) and log-softmax of tanh_c * tanhs,
 * both (B, n_choices) with row stride max_choices. */
static void head_forward(const EnasController *e, int d, int B, const double *h, double *tanhs, double *logp) {
    const EnasDecision *q = &e->dec[d];
    int H = e->H, K = q->n_choices, M = e->max_choices;
    const double *W = e->params + q->off_W, *b = e->params + q->off_b;
    double inv_T = 1.0 / e->cfg.temperature, tc = e->cfg.tanh_c;
    for (int r = 0; r < B; r++) {
        double *t = tanhs + (size_t)r * M, *lp = logp + (size_t)r * M;
        const double *hr = h + (size_t)r * H;
        for (int k = 0; k < K; k++) t[k] = b[k];
        for (int u = 0; u < H; u++)
            for (int k = 0; k < K; k++) t[k] += hr[u] * W[(size_t)u * K + k];
        double mx = -INFINITY;
        for (int k = 0; k < K; k++) {
            t[k] = tanh(t[k] * inv_T);
            lp[k] = tc * t[k];
            if (lp[k] > mx) mx = lp[k];
        }
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp(lp[k] - mx);
        double lse = mx + log(s);
        for (int k = 0; k < K; k++) lp[k] -= lse;
    }
}

/* Inverse-CDF draw from a log-probability row; the last choice with mass catches rounding. */
static int draw(const double *lp, int K, double u) {
    double acc = 0.0;
    int last = 0;
    for (int k = 0; k < K; k++) {
        double p = exp(lp[k]);
        if (p > 0) last = k;
        acc += p;
        if (u < acc) return k;
    }
    return last;
}

/* Runs B <= ENAS_CHUNK sequences through every decision, saving the activations the backward
 * needs. Each decision's choice is forced (fixed node), given (teacher forcing, `given`
 * non-NULL), or drawn with uniform index d under keys[r]. */
static void chunk_forward(EnasController *e, int B, const int *given, const uint64_t *keys,
                          int *actions, double *logp, double *entropy) {
    size_t H = e->H, C = ENAS_CHUNK, M = e->max_choices;
    int D = e->n_dec;
    const double *emb = e->params + e->off_emb;
    stack_reset(e, B);
    for (int d = 0; d < D; d++) {
        const EnasDecision *q = &e->dec[d];
        int *rows = e->rows + d * C, *act = e->act + d * C;
        double *x = e->x + d * C * H;
        double *tanhs = e->tanhs + d * C * M, *lp = e->logp_all + d * C * M;
        for (int r = 0; r < B; r++) {
            rows[r] = d == 0 ? 0 : choice_row(e, d - 1, e->act[(d - 1) * C + r]);
            step_input(e, rows[r], emb, x + r * H);
        }
        stack_forward(e, d, B, x);
        if (q->forced < 0) head_forward(e, d, B, top_h(e, d + 1), tanhs, lp);
        for (int r = 0; r < B; r++) {
            const double *lpr = lp + r * M;
            int a;
            if (q->forced >= 0) a = q->forced;
            else if (given) a = given[(size_t)r * D + d];
            else a = draw(lpr, q->n_choices, uniform53(keys[r], (uint64_t)d));
            act[r] = a;
            double ent = 0.0;
            if (q->forced < 0)
                for (int k = 0; k < q->n_choices; k++) ent -= exp(lpr[k]) * lpr[k];
            if (actions) actions[(size_t)r * D + d] = a;
            if (logp) logp[(size_t)r * D + d] = q->forced >= 0 ? 0.0 : lpr[a];
            if (entropy) entropy[(size_t)r * D + d] = ent;
        }
    }
}

void enas_sample(EnasController *e, int stream, int count, int *actions, double *logp, double *entropy) {
    uint64_t keys[ENAS_CHUNK];
    uint64_t *drawn = &e->drawn[stream - STREAM_ENAS_SHARED];
    size_t D = e->n_dec;
    for (int k0 = 0; k0 < count; k0 += ENAS_CHUNK) {
        int B = count - k0 < ENAS_CHUNK ? count - k0 : ENAS_CHUNK;
        for (int r = 0; r < B; r++) keys[r] = rng_key(e->cfg.seed, (uint64_t)stream, *drawn + r);
        *drawn += B;
        chunk_forward(e, B, NULL, keys, actions + k0 * D, logp ? logp + k0 * D : NULL,
                      entropy ? entropy + k0 * D : NULL);
    }
}

void enas_score(EnasController *e, int count, const int *actions, double *logp, double *entropy) {
    size_t D = e->n_dec;
    for (int k0 = 0; k0 < count; k0 += ENAS_CHUNK) {
        int B = count - k0 < ENAS_CHUNK ? count - k0 : ENAS_CHUNK;
        chunk_forward(e, B, actions + k0 * D, NULL, NULL, logp + k0 * D, entropy + k0 * D);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* backward                                                                                  */

/* Head of decision d: from the coefficients on log p(chosen) and on the entropy to the head's
 * weights and to dh (accumulated). With l = tanh_c * tanh(z / T) and p = softmax(l):
 * d log p_a / d l_k = [k = a] - p_k and d entropy / d l_k = -p_k (log p_k + entropy). */
static void head_backward(EnasController *e, int d, int B, const double *glogp, const double *gent,
                          const double *h, double *dh) {
    const EnasDecision *q = &e->dec[d];
    size_t C = ENAS_CHUNK, M = e->max_choices;
    int H = e->H, K = q->n_choices, D = e->n_dec;
    const double *W = e->params + q->off_W;
    double *dW = e->grads + q->off_W, *db = e->grads + q->off_b;
    const double *tanhs = e->tanhs + d * C * M, *lp = e->logp_all + d * C * M;
    const int *act = e->act + d * C;
    double scale = e->cfg.tanh_c / e->cfg.temperature;
    double dz[64];   /* n_choices <= max(n_ops <= 64, n_nodes <= 32) */
    for (int r = 0; r < B; r++) {
        const double *lpr = lp + r * M, *t = tanhs + r * M, *hr = h + (size_t)r * H;
        double g = glogp[(size_t)r * D + d], ge = gent[(size_t)r * D + d], ent = 0.0;
        for (int k = 0; k < K; k++) ent -= exp(lpr[k]) * lpr[k];
        for (int k = 0; k < K; k++) {
            double p = exp(lpr[k]);
            double dl = g * ((k == act[r]) - p) - ge * p * (lpr[k] + ent);
            dz[k] = dl * scale * (1.0 - t[k] * t[k]);
            db[k] += dz[k];
        }
        double *dhr = dh + (size_t)r * H;
        for (int u = 0; u < H; u++) {
            const double *wu = W + (size_t)u * K;
            double *dwu = dW + (size_t)u * K, s = 0.0;
            for (int k = 0; k < K; k++) { dwu[k] += hr[u] * dz[k]; s += wu[k] * dz[k]; }
            dhr[u] += s;
        }
    }
}

/* Backward through step d of the stacked LSTM, top layer first. dh[l], dc[l] hold the gradients
 * on layer l's state d + 1 (from the heads and from step d + 1) and receive, through dh_out[l],
 * dc_out[l], those on state d; a layer's input gradient joins dh of the layer below. On return
 * e->dx holds the gradient on layer 0's input x (B, H). */
static void stack_backward(EnasController *e, int d, int B, double **dh, double **dc, double **dh_out,
                           double **dc_out) {
    int H = e->H;
    for (int l = e->L - 1; l >= 0; l--) {
        const double *in = l == 0 ? e->x + (size_t)d * ENAS_CHUNK * H : layer_h(e, l - 1, d + 1);
        lstm_backward(B, H, H, in, layer_h(e, l, d), layer_c(e, l, d), e->params + e->off_lW[l],
                      layer_gates(e, l, d), layer_c(e, l, d + 1), dh[l], dc[l], e->grads + e->off_lW[l],
                      e->grads + e->off_lb[l], e->dx, dh_out[l], dc_out[l]);
        if (l > 0)
            for (size_t k = 0; k < (size_t)B * H; k++) dh[l - 1][k] += e->dx[k];
    }
}

/* Backward through the chunk that chunk_forward just ran (teacher-forced on the same actions). */
static void chunk_backward(EnasController *e, int B, const double *glogp, const double *gent) {
    size_t H = e->H, C = ENAS_CHUNK;
    int L = e->L;
    double *demb = e->grads + e->off_emb;
    double *dh[ENAS_MAX_LAYERS], *dc[ENAS_MAX_LAYERS], *dh_out[ENAS_MAX_LAYERS], *dc_out[ENAS_MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        dh[l] = e->dh + l * C * H, dc[l] = e->dc + l * C * H;
        dh_out[l] = e->dh_out + l * C * H, dc_out[l] = e->dc_out + l * C * H;
        memset(dh[l], 0, sizeof(double) * B * H);
        memset(dc[l], 0, sizeof(double) * B * H);
    }
    for (int d = e->n_dec - 1; d >= 0; d--) {
        if (e->dec[d].forced < 0) head_backward(e, d, B, glogp, gent, top_h(e, d + 1), dh[L - 1]);
        stack_backward(e, d, B, dh, dc, dh_out, dc_out);
        const int *rows = e->rows + d * C;
        for (int r = 0; r < B; r++) {
            if (rows[r] == 0) continue;   /* the zero first input has no parameter */
            double *g = demb + (size_t)rows[r] * H;
            const double *dxr = e->dx + r * H;
            for (size_t u = 0; u < H; u++) g[u] += dxr[u];
        }
        for (int l = 0; l < L; l++) {
            double *t = dh[l]; dh[l] = dh_out[l]; dh_out[l] = t;
            t = dc[l]; dc[l] = dc_out[l]; dc_out[l] = t;
        }
    }
}

void enas_zero_grad(EnasController *e) { memset(e->grads, 0, sizeof(double) * e->n_params); }

void enas_accumulate_grad(EnasController *e, int count, const int *actions,
                          const double *glogp, const double *gent) {
    size_t D = e->n_dec;
    for (int k0 = 0; k0 < count; k0 += ENAS_CHUNK) {
        int B = count - k0 < ENAS_CHUNK ? count - k0 : ENAS_CHUNK;
        chunk_forward(e, B, actions + k0 * D, NULL, NULL, NULL, NULL);
        chunk_backward(e, B, glogp + k0 * D, gent + k0 * D);
    }
}

void enas_adam_step(EnasController *e) {
    e->adam_t += 1;
    adam_update(e->n_params, e->params, e->grads, e->adam_m, e->adam_v, e->adam_t, e->cfg.adam);
}

/* ---------------------------------------------------------------------------------------- */
/* REINFORCE                                                                                 */

/* Rewards, baseline and advantages of one chunk (in sample order), then the loss's
 * coefficients on log p and entropy: L = -(1/count) sum_k sum_d (adv logp + [reg] w entropy). */
static void chunk_advantages(EnasController *e, int B, const double *rewards, const double *entropy,
                             double *adv, double *glogp, double *gent, int count) {
    int D = e->n_dec;
    double decay = e->cfg.baseline_decay, w = e->cfg.entropy_weight;
    int in_reward = e->cfg.entropy_mode == ENAS_ENTROPY_REWARD;
    for (int r = 0; r < B; r++)
        for (int d = 0; d < D; d++) {
            size_t i = (size_t)r * D + d;
            double reward = rewards[r] + (in_reward ? w * entropy[i] : 0.0);
            e->baseline[d] = e->has_baseline ? decay * e->baseline[d] + (1.0 - decay) * reward : reward;
            if (d == D - 1) e->has_baseline = 1;
            adv[i] = reward - e->baseline[d];
            glogp[i] = -adv[i] / count;
            gent[i] = in_reward ? 0.0 : -w / count;
        }
}

void enas_reinforce(EnasController *e, int count, const int *actions, const double *rewards, double *adv) {
    size_t D = e->n_dec;
    enas_zero_grad(e);
    for (int k0 = 0; k0 < count; k0 += ENAS_CHUNK) {
        int B = count - k0 < ENAS_CHUNK ? count - k0 : ENAS_CHUNK;
        chunk_forward(e, B, actions + k0 * D, NULL, NULL, e->k_logp, e->k_ent);
        chunk_advantages(e, B, rewards + k0, e->k_ent, adv + k0 * D, e->k_glogp, e->k_gent, count);
        chunk_backward(e, B, e->k_glogp, e->k_gent);
    }
    enas_adam_step(e);
}

/* ---------------------------------------------------------------------------------------- */
/* exact architecture probabilities                                                          */

/* One LSTM step and head of decision d for a single sequence, state d -> d + 1 (row 0 of the
 * chunk buffers); log-probabilities land in logp_all row 0 of decision d. */
static void single_step(EnasController *e, int d, int row) {
    size_t H = e->H, C = ENAS_CHUNK, M = e->max_choices;
    double *x = e->x + d * C * H;
    step_input(e, row, e->params + e->off_emb, x);
    stack_forward(e, d, 1, x);
    if (e->dec[d].forced < 0)
        head_forward(e, d, 1, top_h(e, d + 1), e->tanhs + d * C * M, e->logp_all + d * C * M);
}

/* Depth-first over decisions in id order: a node's digit n_ops * pred + op grows with (pred, op)
 * and the predecessor is decided first, so the leaves come out in increasing id. Each prefix
 * costs one LSTM step, shared by all architectures below it. */
static void dfs(EnasController *e, int d, int row, double acc, double *out, size_t *pos) {
    if (d == e->n_dec) { out[(*pos)++] = acc; return; }
    const EnasDecision *q = &e->dec[d];
    single_step(e, d, row);
    const double *lp = e->logp_all + (size_t)d * ENAS_CHUNK * e->max_choices;
    int lo = 0, hi = q->is_pred ? q->node : e->cfg.n_ops;   /* preds 0..i-1, ops 0..K-1 */
    int fixed = e->cfg.fixed[q->node - 1];
    if (fixed >= 0) {
        lo = q->is_pred ? fixed / e->cfg.n_ops : fixed % e->cfg.n_ops;
        hi = lo + 1;
    }
    for (int v = lo; v < hi; v++) {
        int a = q->is_pred ? v - q->first_pred : v;
        if (a < 0) {   /* s0 under restrict_s0: the whole subtree has probability zero */
            for (size_t k = 0; k < q->leaves_after; k++) out[(*pos)++] = -INFINITY;
            continue;
        }
        dfs(e, d + 1, choice_row(e, d, a), acc + (q->forced >= 0 ? 0.0 : lp[a]), out, pos);
    }
}

void enas_arch_log_probs(EnasController *e, double *out) {
    stack_reset(e, 1);
    size_t pos = 0;
    dfs(e, 0, 0, 0.0, out, &pos);
}

/* ---------------------------------------------------------------------------------------- */
/* encoding                                                                                  */

void enas_decode(const EnasController *e, int count, const int *actions, int *preds, int *ops) {
    int D = e->n_dec, n = e->cfg.n_nodes;
    for (int k = 0; k < count; k++) {
        const int *a = actions + (size_t)k * D;
        int *p = preds + (size_t)k * n, *o = ops + (size_t)k * n;
        p[0] = 0;
        for (int d = 0; d < D; d++) {
            const EnasDecision *q = &e->dec[d];
            if (q->is_pred) p[q->node - 1] = q->first_pred + a[d];
            else o[q->node - 1] = a[d];
        }
    }
}

int enas_encode(const EnasController *e, int count, const int *preds, const int *ops, int *actions) {
    int D = e->n_dec, n = e->cfg.n_nodes, K = e->cfg.n_ops;
    for (int k = 0; k < count; k++) {
        const int *p = preds + (size_t)k * n, *o = ops + (size_t)k * n;
        int *a = actions + (size_t)k * D;
        for (int i = 1; i <= n; i++) {
            int fixed = e->cfg.fixed[i - 1];
            if (p[i - 1] < 0 || p[i - 1] >= i || o[i - 1] < 0 || o[i - 1] >= K) return -1 - k;
            if (fixed >= 0 && fixed != K * p[i - 1] + o[i - 1]) return -1 - k;
        }
        for (int d = 0; d < D; d++) {
            const EnasDecision *q = &e->dec[d];
            a[d] = q->is_pred ? p[q->node - 1] - q->first_pred : o[q->node - 1];
            if (a[d] < 0) return -1 - k;
        }
    }
    return 0;
}

int enas_check_actions(const EnasController *e, int count, const int *actions) {
    int D = e->n_dec;
    for (int k = 0; k < count; k++)
        for (int d = 0; d < D; d++) {
            int a = actions[(size_t)k * D + d];
            const EnasDecision *q = &e->dec[d];
            if (a < 0 || a >= q->n_choices || (q->forced >= 0 && a != q->forced)) return k * D + d;
        }
    return -1;
}
