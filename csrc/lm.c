#include "lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "blas.h"
#include "cell.h"
#include "decoder.h"
#include "embedding.h"
#include "kernels.h"
#include "mixed_cell.h"
#include "optim.h"
#include "panel.h"
#include "parallel.h"
#include "rng.h"

/* rows of logits alive per worker (10 MB at V = 10,000 and 256 rows): small enough to stay
 * in cache for the softmax passes, large enough that the decoder products do not re-pack
 * the embedding too often; small hidden sizes prefer the smaller block (measured) */
#define DECODER_CHUNK(d) ((d) < 128 ? 128 : 256)
/* training steps take the stored-logits decoder from this hidden size (lm.h): at d = 64 the
 * fused pass with its exp tiles kept was faster on 2 threads and level on 1; at d = 256 level
 * (BENCHMARKS.md, 2026-12-07) */
#define LM_STORED_TRAIN_MIN_D 128

enum { DECODER_AUTO, DECODER_FUSED, DECODER_STORED };
static int decoder_mode = DECODER_AUTO;

const char *lm_decoder_init(const char *env_value) {
    decoder_mode = DECODER_AUTO;
    if (!env_value || !*env_value) return NULL;
    if (strcmp(env_value, "fused") == 0) decoder_mode = DECODER_FUSED;
    else if (strcmp(env_value, "stored") == 0) decoder_mode = DECODER_STORED;
    else return "NAS_EVAL_DECODER must be fused, stored or empty";
    return NULL;
}

int lm_decoder_stored(int d, int backward) {
    if (decoder_mode != DECODER_AUTO) return decoder_mode == DECODER_STORED;
    return backward && d >= LM_STORED_TRAIN_MIN_D;
}
#define INIT_RANGE 0.04f

/* The decoder's rows are split into this many slots, each with its own partial embedding
 * gradient: more than one per worker, so a worker the OS keeps off a core hands slots to
 * the others (parallel.h), at the price of a partial dE (V x d) per extra slot. */
static int decoder_slots(int workers) { return workers > 1 ? 2 * workers : 1; }

LM *lm_create(int V, int d, int n_w0, int n_mats, int max_nodes, uint64_t seed, Dropouts drop) {
    LM *m = calloc(1, sizeof(LM));
    if (!m) return NULL;
    m->V = V; m->d = d; m->n_w0 = n_w0; m->n_mats = n_mats; m->max_nodes = max_nodes;
    m->seed = seed; m->drop = drop;
    size_t mat = (size_t)d * 2 * d;
    m->lay.embedding = 0;
    m->lay.w0 = (size_t)V * d;
    m->lay.mats = m->lay.w0 + (size_t)n_w0 * 4 * d * d;
    m->lay.bias = m->lay.mats + (size_t)n_mats * mat;
    m->lay.total = m->lay.bias + (size_t)V;
    m->params = alloc_floats(m->lay.total);
    m->grads = alloc_floats(m->lay.total);
    m->mat_used = calloc(n_mats > 0 ? n_mats : 1, 1);
    if (!m->params || !m->grads || !m->mat_used) { lm_free(m); return NULL; }
    lm_init_params(m);
    return m;
}

void lm_free(LM *m) {
    if (!m) return;
    free(m->params); free(m->grads); free(m->avg); free(m->acts); free(m->mat_used);
    mixed_free(m->mix);
    free(m);
}

/* every matrix uniform in +-0.04, the decoder bias zero (docs/design.md §3) */
void lm_init_params(LM *m) {
    uint64_t key = rng_key(m->seed, STREAM_INIT, 0);
    for (size_t i = 0; i < m->lay.bias; i++)
        m->params[i] = (2.0f * rng_uniform(key, i) - 1.0f) * INIT_RANGE;
    memset(m->params + m->lay.bias, 0, (size_t)m->V * sizeof(float));
}

int lm_start_averaging(LM *m) {
    if (!m->avg) m->avg = alloc_floats(m->lay.total);
    if (!m->avg) return -1;
    /* as torch.optim.ASGD with t0 = 0: the first averaged step copies the weights */
    memcpy(m->avg, m->params, m->lay.total * sizeof(float));
    m->avg_count = 0;
    return 0;
}

/* Lays the activation arena out for a (T, B) segment of an n-node cell; grows it (the
 * only allocation) when a larger shape than any before arrives. */
int lm_reserve(LM *m, int T, int B, int n) {
    int workers = pool_threads();
    int panels = m->d >= kern->panel_min_d, split_d = kern->column_split_min_d;
    if (m->acts && T == m->act_T && B == m->act_B && n == m->act_nodes && workers == m->act_workers &&
        panels == m->act_panels && split_d == m->act_split_d)
        return 0;
    if (m->mix && mixed_reserve(m->mix, T) != 0) return -1;
    size_t d = m->d, rows = (size_t)T * B, bd = (size_t)B * d, np1 = (size_t)n + 1;
    /* CF blocks: one per node, or for the mixed cell node 0's and one per edge */
    size_t cf_blocks = m->mix ? 1 + np1 * n / 2 : np1;
    size_t nw = (size_t)workers, V = (size_t)m->V, slots = (size_t)decoder_slots(workers);
    size_t chunk = rows < (size_t)DECODER_CHUNK(d) ? rows : (size_t)DECODER_CHUNK(d);
    /* a decoder pass that no step of this model takes gets no buffers */
    int stored = lm_decoder_stored((int)d, 1) || lm_decoder_stored((int)d, 0);
    int fused = !lm_decoder_stored((int)d, 1) || !lm_decoder_stored((int)d, 0);
    /* forward only: no gradient buffers */
    int fused_grads = lm_decoder_stored((int)d, 1) ? XENT_LOSS : xent_full_mode((int)V);
    size_t sizes[] = {
        rows * d,            /* X */
        cf_blocks * rows * 2 * d, /* CF */
        np1 * rows * d,      /* S */
        np1 * rows * d,      /* SM */
        (rows + B) * d,      /* H */
        (rows + B) * d,      /* HM */
        rows * d,            /* HD */
        rows * d,            /* dHD */
        fused ? xent_workspace_floats((int)rows, (int)d, (int)V, workers, fused_grads) : 0, /* xent */
        stored ? nw * chunk * V : 0,      /* logits */
        stored ? (slots - 1) * V * d : 0, /* dE_part */
        stored ? slots * V : 0,           /* dbias_part */
        np1 * bd,            /* dS */
        np1 * bd,            /* G */
        bd, bd,              /* dh, tmp */
        bd, bd, bd,          /* mask_x, mask_h, mask_out */
        (size_t)m->V,        /* mask_emb */
        /* the mixed cell always runs its products through panels */
        panels || m->mix ? np1 * 2 * panel_floats((int)d, (int)d) : 0, /* packed */
        rows,                /* clipf */
    };
    enum { N_BUF = sizeof sizes / sizeof sizes[0] };
    size_t total = 0;
    for (int i = 0; i < N_BUF; i++) total += (sizes[i] + 15) & ~(size_t)15;
    if (total > m->act_floats) {
        free(m->acts);
        m->acts = alloc_floats(total);
        if (!m->acts) { m->act_floats = 0; m->act_T = 0; return -1; }
        m->act_floats = total;
    }
    float *xent = NULL;
    float **ptrs[] = {&m->X, &m->CF, &m->S, &m->SM, &m->H, &m->HM, &m->HD, &m->dHD, &xent, &m->logits, &m->dE_part,
                      &m->dbias_part, &m->dS,
                      &m->G, &m->dh, &m->tmp, &m->mask_x, &m->mask_h, &m->mask_out,
                      &m->mask_emb, &m->packed, &m->clipf};
    float *p = m->acts;
    for (int i = 0; i < N_BUF; i++) { *ptrs[i] = p; p += (sizes[i] + 15) & ~(size_t)15; }
    if (fused) xent_bind(&m->xent, xent, (int)rows, (int)d, (int)V, workers, fused_grads);
    m->act_rows = rows; m->act_T = T; m->act_B = B; m->act_nodes = n; m->act_workers = workers;
    m->act_panels = panels; m->act_split_d = split_d;
    return 0;
}

const char *lm_check_arch(const LM *m, const CellArch *a) {
    if (a->n < 1 || a->n > LM_MAX_NODES || a->n > m->max_nodes)
        return "number of nodes out of range for this model";
    if (a->w0 < 0 || a->w0 >= m->n_w0) return "the input-node matrix index is out of range";
    int n_out = 0;
    for (int i = 1; i <= a->n; i++) {
        if (a->pred[i - 1] < 0 || a->pred[i - 1] >= i) return "a predecessor is not an earlier node";
        if (a->op[i - 1] < 0 || a->op[i - 1] >= N_OPS) return "an operation index is out of range";
        if (a->mat[i - 1] < 0 || a->mat[i - 1] >= m->n_mats) return "a matrix index is out of range";
        n_out += a->out[i - 1] != 0;
    }
    return n_out ? NULL : "no node feeds the output";
}

/* Bernoulli keep-mask with inverted scaling; the mask is the same for every step of a
 * segment (locked / variational dropout). */
static void draw_mask(float *mask, size_t n, float p, uint64_t key) {
    float keep = 1.0f - p, scale = 1.0f / keep;
    for (size_t i = 0; i < n; i++) mask[i] = rng_uniform(key, i) < keep ? scale : 0.0f;
}

static void mul_inplace(size_t n, float *restrict x, const float *restrict m) {
    for (size_t i = 0; i < n; i++) x[i] *= m[i];
}

/* Draws this step's masks; returns the pointers to use (NULL = no dropout). */
static void draw_masks(LM *m, int B, const float **mx, const float **mh, const float **mo,
                       const float **me) {
    size_t bd = (size_t)B * m->d;
    const Dropouts *dr = &m->drop;
    uint64_t s = m->seed, k = m->step;
    *mx = *mh = *mo = *me = NULL;
    if (dr->x > 0 || dr->in > 0) {
        for (size_t i = 0; i < bd; i++) m->mask_x[i] = 1.0f;
        if (dr->x > 0) draw_mask(m->mask_x, bd, dr->x, rng_key(s, STREAM_MASK_X, k));
        if (dr->in > 0) {
            draw_mask(m->tmp, bd, dr->in, rng_key(s, STREAM_MASK_IN, k));
            mul_inplace(bd, m->mask_x, m->tmp);
        }
        *mx = m->mask_x;
    }
    if (dr->h > 0) { draw_mask(m->mask_h, bd, dr->h, rng_key(s, STREAM_MASK_H, k)); *mh = m->mask_h; }
    if (dr->out > 0) { draw_mask(m->mask_out, bd, dr->out, rng_key(s, STREAM_MASK_OUT, k)); *mo = m->mask_out; }
    if (dr->emb > 0) { draw_mask(m->mask_emb, m->V, dr->emb, rng_key(s, STREAM_MASK_EMB, k)); *me = m->mask_emb; }
}

/* Tiles a (B, d) mask over `rows` rows: y[r] = x[r] * mask[r % B]. */
static void apply_tiled(size_t rows, size_t B, size_t d, const float *x, const float *mask,
                        float *y) {
    size_t bd = B * d;
    for (size_t r0 = 0; r0 < rows; r0 += B) {
        const float *xs = x + r0 * d;
        float *ys = y + r0 * d;
        for (size_t i = 0; i < bd; i++) ys[i] = xs[i] * mask[i];
    }
}

/* AR: alpha * mean(hd^2) over the dropped outputs; gradient into dHD when given. */
static double ar_penalty(size_t n, const float *HD, float ar, float *dHD) {
    if (ar <= 0) return 0.0;
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += (double)HD[i] * HD[i];
    if (dHD) {
        float c = (float)(2.0 * ar / (double)n);
        for (size_t i = 0; i < n; i++) dHD[i] += c * HD[i];
    }
    return ar * acc / (double)n;
}

/* TAR: beta * mean((h_{t+1} - h_t)^2) over the raw outputs; gradient into dH when given. */
static double tar_penalty(int T, size_t bd, const float *Hout, float tar, float *dH) {
    if (tar <= 0 || T < 2) return 0.0;
    size_t n = (size_t)(T - 1) * bd;
    float c = (float)(2.0 * tar / (double)n);
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        float diff = Hout[i + bd] - Hout[i];
        acc += (double)diff * diff;
        if (dH) { dH[i + bd] += c * diff; dH[i] -= c * diff; }
    }
    return tar * acc / (double)n;
}

static void weight_gradients(LM *m, const CellArch *a, int T, int B, const float *mask_x,
                             const float *mask_h, const float *mask_emb,
                             const int32_t *inputs) {
    const int d = m->d;
    const size_t rows = (size_t)T * B;
    const float *w0 = m->params + m->lay.w0 + (size_t)a->w0 * 4 * d * d;
    float *gw0 = m->grads + m->lay.w0 + (size_t)a->w0 * 4 * d * d;
    float *dab0 = m->CF;
    /* input half of W0, and the embedding gradient through the input */
    par_gemm(m->act_workers, 1, 0, d, 2 * d, (int)rows, 1.0f, m->X, d, dab0, 2 * d, 0.0f, gw0, 2 * d);
    par_gemm(m->act_workers, 0, 1, (int)rows, d, 2 * d, 1.0f, dab0, 2 * d, w0, 2 * d, 0.0f, m->dHD, d);
    embedding_backward((int)rows, B, d, inputs, m->dHD, mask_emb, mask_x,
                       m->grads + m->lay.embedding);
    /* the recurrent half of W0 and the node matrices saw the h-masked states */
    const float *HM = mask_h ? m->HM : m->H, *SM = mask_h ? m->SM : m->S;
    par_gemm(m->act_workers, 1, 0, d, 2 * d, (int)rows, 1.0f, HM, d, dab0, 2 * d, 0.0f, gw0 + (size_t)2 * d * d, 2 * d);
    if (m->mix) {  /* every node matrix, through every edge */
        mixed_weight_gradients(m->mix, m->act_workers, d, rows, SM, m->CF, m->grads + m->lay.mats);
        memset(m->mat_used, 1, (size_t)m->n_mats);
        return;
    }
    memset(m->mat_used, 0, (size_t)m->n_mats);
    for (int i = 1; i <= a->n; i++) {
        int k = a->mat[i - 1];
        float *gw = m->grads + m->lay.mats + (size_t)k * d * 2 * d;
        const float *s = SM + (size_t)a->pred[i - 1] * rows * d;
        const float *dab = m->CF + (size_t)i * rows * 2 * d;
        par_gemm(m->act_workers, 1, 0, d, 2 * d, (int)rows, 1.0f, s, d, dab, 2 * d, m->mat_used[k] ? 1.0f : 0.0f, gw, 2 * d);
        m->mat_used[k] = 1;
    }
}

static void touched_spans(const LM *m, const CellArch *a, Spans *sp) {
    size_t mat = (size_t)m->d * 2 * m->d;
    sp->n = 0;
    spans_add(sp, m->lay.embedding, (size_t)m->V * m->d);
    spans_add(sp, m->lay.w0 + (size_t)a->w0 * 2 * mat, 2 * mat);
    for (int k = 0; k < m->n_mats; k++)
        if (m->mat_used[k]) spans_add(sp, m->lay.mats + k * mat, mat);
    spans_add(sp, m->lay.bias, (size_t)m->V);
}

/* What the parallel phases of one step share; each worker takes its own rows. */
typedef struct {
    LM *m;
    const CellArch *a;
    int T, B, backward;
    const float *w0h, *mh, *HD;
    float *const *W;
    const int32_t *targets;
    TaskQueue queue;
    int cell_backward; /* which way cell_task runs */
    double loss[2 * 64]; /* per decoder slot */
} StepJob;


/* batch-row chunks per worker when the cell is split by rows: more than one, so that a
 * worker the OS keeps off a core hands its share to the others, few enough that each
 * product still has many rows (OpenBLAS re-packs the matrix on every call below
 * panel_min_d) */
#define ROW_CHUNKS_PER_WORKER 2

static CellWork cell_work(StepJob *j, int n) {
    const LM *m = j->m;
    CellWork w = {j->T, j->B, m->d, 0, j->B, &j->queue};
    w.by_cols = m->act_panels && n > 1 && m->d >= m->act_split_d;
    if (n > 1) {
        int chunks = ROW_CHUNKS_PER_WORKER * n;
        w.row_chunk = (j->B + chunks - 1) / chunks;
    }
    return w;
}

static CellBuffers cell_buffers(const StepJob *j) {
    LM *m = j->m;
    CellBuffers b = {j->w0h, j->W, j->mh, m->CF, m->S, j->mh ? m->SM : m->S, m->H,
                     j->mh ? m->HM : m->H, m->dHD, m->dS, m->G, m->dh,
                     m->act_panels ? m->packed : NULL, m->hidden_clip, m->clipf};
    return b;
}

/* the cell through time, forward (j->cell_backward == 0) or backward; every worker takes
 * tickets of the job's queue (queue_init before each pool_run) */
static void cell_task(void *ctx, int w, int n) {
    (void)w;
    StepJob *j = ctx;
    CellWork work = cell_work(j, n);
    CellBuffers buf = cell_buffers(j);
    if (j->m->mix) {  /* by 32-column panels always, through packed matrices */
        buf.packed = j->m->packed;
        if (j->cell_backward) mixed_cell_backward(j->m->mix, &work, &buf);
        else mixed_cell_forward(j->m->mix, &work, &buf);
    } else if (j->cell_backward) {
        cell_backward(j->a, &work, &buf);
    } else {
        cell_forward(j->a, &work, &buf);
    }
}

/* decoder + softmax over slot s of the rows; slot 0 writes dE into the gradient arena, the
 * others into their own partial buffers (summed in slot order by reduce_decoder_item), so
 * the sums do not depend on which worker ran which slot; logits are the worker's scratch */
static void decoder_item(void *ctx, int s, int n, int w) {
    StepJob *j = ctx;
    LM *m = j->m;
    const size_t d = m->d, V = m->V, rows = (size_t)j->T * j->B;
    const size_t chunk = rows < (size_t)DECODER_CHUNK(d) ? rows : (size_t)DECODER_CHUNK(d);
    int r0, r1;
    pool_range((int)rows, s, n, &r0, &r1);
    float *dE = s == 0 ? m->grads + m->lay.embedding : m->dE_part + (size_t)(s - 1) * V * d;
    j->loss[s] = decoder_rows(r1 - r0, (int)d, (int)V, j->HD + (size_t)r0 * d, m->params + m->lay.embedding,
                              m->params + m->lay.bias, j->targets + r0, m->logits + (size_t)w * chunk * V,
                              (int)chunk, 1.0f / (float)rows, j->backward ? m->dHD + (size_t)r0 * d : NULL,
                              dE, m->dbias_part + (size_t)s * V);
}

static void reduce_decoder_item(void *ctx, int i, int n, int w) {
    (void)w;
    StepJob *j = ctx;
    LM *m = j->m;
    const size_t d = m->d, V = m->V;
    const int slots = decoder_slots(m->act_workers);
    int v0, v1;
    pool_range((int)V, i, n, &v0, &v1);
    float *dE = m->grads + m->lay.embedding, *db = m->grads + m->lay.bias;
    for (int v = v0; v < v1; v++) {
        float *row = dE + (size_t)v * d;
        float b = 0.0f;
        for (int k = 1; k < slots; k++) {
            const float *part = m->dE_part + (size_t)(k - 1) * V * d + (size_t)v * d;
            for (size_t c = 0; c < d; c++) row[c] += part[c];
        }
        for (int k = 0; k < slots; k++) b += m->dbias_part[(size_t)k * V + v];
        db[v] = b;
    }
}

StepStats lm_step(LM *m, const CellArch *a, const int32_t *inputs, const int32_t *targets,
                  int T, int B, const float *h0, float *h_out, StepOptions opt) {
    StepStats st = {0};
    const int d = m->d;
    const size_t rows = (size_t)T * B, bd = (size_t)B * d;
    const float *mx = NULL, *mh = NULL, *mo = NULL, *me = NULL;
    if (opt.train) draw_masks(m, B, &mx, &mh, &mo, &me);
    if (m->mix) mixed_begin_pass(m->mix, opt.train, opt.backward);
    float *E = m->params + m->lay.embedding;
    float *w0 = m->params + m->lay.w0 + (size_t)a->w0 * 4 * d * d;
    const float *w0h = w0 + (size_t)2 * d * d;
    float *W[LM_MAX_NODES + 1] = {0};
    for (int i = 1; i <= a->n; i++)
        W[i] = m->params + m->lay.mats + (size_t)a->mat[i - 1] * d * 2 * d;

    /* forward: the input-side product for all T*B rows at once, then the recurrence */
    embedding_forward((int)rows, B, d, inputs, E, me, mx, m->X);
    par_gemm(m->act_workers, 0, 0, (int)rows, 2 * d, d, 1.0f, m->X, d, w0, 2 * d, 0.0f, m->CF, 2 * d);
    memcpy(m->H, h0, bd * sizeof(float));
    StepJob job = {.m = m, .a = a, .T = T, .B = B, .backward = opt.backward, .w0h = w0h,
                   .mh = mh, .W = W, .targets = targets};
    queue_init(&job.queue);
    pool_run(cell_task, &job, m->act_workers);
    const float *Hout = m->H + bd;
    memcpy(h_out, m->H + rows * d, bd * sizeof(float));
    const float *HD = Hout;
    if (mo) { apply_tiled(rows, B, d, Hout, mo, m->HD); HD = m->HD; }
    float *dHD = opt.backward ? m->dHD : NULL;
    job.HD = HD;
    const int slots = decoder_slots(m->act_workers), workers = m->act_workers;
    if (!lm_decoder_stored(d, opt.backward)) {
        /* a pass for d loss / d alpha only needs no embedding or bias gradient */
        int weights = opt.backward && !(m->mix && !m->mix->weight_grad);
        st.loss_sum = xent_run(&m->xent, workers, (int)rows, d, m->V, HD, E, m->params + m->lay.bias,
                               targets, 1.0f / (float)rows, dHD, weights ? m->grads + m->lay.embedding : NULL,
                               weights ? m->grads + m->lay.bias : NULL);
    } else {
        pool_for(decoder_item, &job, slots, workers);
        for (int s = 0; s < slots; s++) st.loss_sum += job.loss[s];
        if (opt.backward) pool_for(reduce_decoder_item, &job, workers > 1 ? 2 * workers : 1, workers);
    }
    st.tokens = (long)rows;
    st.reg = ar_penalty(rows * d, HD, opt.ar, dHD);
    /* dHD -> gradient with respect to the raw outputs h_0..h_{T-1} */
    if (dHD && mo) apply_tiled(rows, B, d, dHD, mo, dHD);
    st.reg += tar_penalty(T, bd, Hout, opt.tar, dHD);
    if (!opt.backward) return st;

    job.cell_backward = 1;
    queue_init(&job.queue);
    pool_run(cell_task, &job, m->act_workers);
    if (m->mix && m->mix->alpha_grad) mixed_alpha_gradient(m->mix);
    if (m->mix && !m->mix->weight_grad) {  /* a pass for d loss / d alpha only */
        if (opt.train) m->step++;
        return st;
    }
    weight_gradients(m, a, T, B, mx, mh, me, inputs);
    Spans sp;
    touched_spans(m, a, &sp);
    st.grad_norm = sqrt(grad_sq_norm(m->grads, &sp));
    if (opt.train) m->step++;
    if (!opt.update || !isfinite(st.loss_sum) || !isfinite(st.grad_norm)) return st;
    /* the same rule as torch.nn.utils.clip_grad_norm_; weight decay is not clipped */
    float clip_scale = 1.0f;
    if (opt.clip > 0 && st.grad_norm + 1e-6 > opt.clip) clip_scale = opt.clip / (float)(st.grad_norm + 1e-6);
    sgd_update(m->params, m->grads, &sp, opt.lr, clip_scale, opt.wd);
    if (opt.asgd && m->avg) average_update(m->avg, m->params, m->lay.total, ++m->avg_count);
    return st;
}

double lm_evaluate(LM *m, const CellArch *a, const int32_t *data, int N, int B, int bptt,
                   long *tokens) {
    /* two hidden buffers ping-pong between windows; allocated once per call */
    float *h = alloc_floats((size_t)2 * B * m->d);
    if (!h) return NAN;
    StepOptions opt = {0};
    double total = 0.0;
    long count = 0;
    float *hin = h, *hout = h + (size_t)B * m->d;
    if (bptt > N - 1) bptt = N - 1;  /* one window covers it; keeps i + bptt from overflowing */
    for (int i = 0; i + 1 < N; i += bptt) {
        int T = N - 1 - i < bptt ? N - 1 - i : bptt;
        if (lm_reserve(m, T, B, a->n) != 0) { total = NAN; break; }
        StepStats st = lm_step(m, a, data + (size_t)i * B, data + (size_t)(i + 1) * B, T, B,
                               hin, hout, opt);
        total += st.loss_sum;
        count += st.tokens;
        float *t = hin; hin = hout; hout = t;
    }
    free(h);
    *tokens = count;
    return total;
}
