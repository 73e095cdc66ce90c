#include "fused_xent.h"

#include <math.h>
#include <string.h>

#include "kernels.h"
#include "mathfun.h"
#include "panel.h"
#include "parallel.h"

/* Vocabulary columns per tile: the tile's packed E (d x vt) and its logits (64 x vt) stay
 * in L2 with the row block. */
int xent_vocab_tile(int d) { return d <= 48 ? 384 : d <= 96 ? 192 : 96; }

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static int cdiv(int a, int b) { return (a + b - 1) / b; }

static size_t vocab_padded(int V) { return (size_t)panel_count(V) * PANEL; }

/* worker wk's scratch: a logit tile (XENT_ROWS x vtile), or pass B's left operand (d + 1 rows) */
static size_t scratch_floats(int d, int vtile) { return (size_t)XENT_ROWS * (vtile > d + 1 ? vtile : d + 1); }

/* floats of one row block's stored tiles */
static size_t block_store_floats(int V) { return (size_t)XENT_ROWS * vocab_padded(V); }

int xent_full_mode(int V) {
    return block_store_floats(V) <= XENT_STORE_BLOCK_MAX_FLOATS ? XENT_STORE : XENT_RECOMPUTE;
}

/* row blocks per group of XENT_STORE. One worker: one block, whose stored tiles pass B reads
 * back from the last-level cache (faster than larger groups: BENCHMARKS.md). Several: as many
 * blocks as XENT_STORE_GROUP_MAX_FLOATS holds (at least one per worker), since every group
 * costs two barriers, and a barrier on a shared machine waits for the slowest worker (larger
 * groups measured faster on 2 threads). The group never changes the numbers: every sum runs
 * over the blocks in order. */
static int group_blocks(int N, int V, int workers) {
    size_t nb = (size_t)cdiv(N, XENT_ROWS), fit = XENT_STORE_GROUP_MAX_FLOATS / block_store_floats(V);
    size_t g = workers == 1 ? 1 : fit > (size_t)workers ? fit : (size_t)workers;
    return (int)(g < nb ? g : nb);
}

enum { PARTS = 11 };

/* the parts' sizes in floats, in xent_bind's order */
static void sizes(int N, int d, int V, int workers, int grads, size_t out[PARTS]) {
    size_t nb = (size_t)cdiv(N, XENT_ROWS), npd = (size_t)panel_count(d), vt = (size_t)xent_vocab_tile(d);
    size_t tiles = (size_t)cdiv(V, (int)vt);
    int recompute = grads == XENT_RECOMPUTE, store = grads == XENT_STORE;
    out[0] = panel_floats(d, V);                                         /* Ep */
    out[1] = grads >= XENT_DH ? (size_t)V * npd * PANEL : 0;             /* Ed */
    out[2] = recompute ? nb * panel_floats(d, XENT_ROWS) : 0;            /* Ht */
    out[3] = recompute ? nb * XENT_ROWS * npd * PANEL : 0;               /* Hp */
    out[4] = (size_t)workers * scratch_floats(d, (int)vt);               /* tile */
    out[5] = out[6] = (size_t)N;                                         /* lse, nll */
    out[7] = store ? (size_t)group_blocks(N, V, workers) * block_store_floats(V) : 0; /* S */
    out[8] = store ? (size_t)N * tiles : 0;                              /* mt */
    out[9] = store ? nb * (size_t)d * XENT_ROWS : 0;                     /* Hr */
    out[10] = store ? (size_t)(d + 1) * tiles * vt : 0;                  /* dEt */
}

size_t xent_workspace_floats(int N, int d, int V, int workers, int grads) {
    size_t s[PARTS], total = 0;
    sizes(N, d, V, workers, grads, s);
    for (int i = 0; i < PARTS; i++) total += up16(s[i]);
    return total;
}

void xent_bind(XentWork *w, float *mem, int N, int d, int V, int workers, int grads) {
    size_t s[PARTS];
    sizes(N, d, V, workers, grads, s);
    float **parts[PARTS] = {&w->Ep, &w->Ed, &w->Ht, &w->Hp, &w->tile, &w->lse, &w->nll,
                            &w->S, &w->mt, &w->Hr, &w->dEt};
    for (int i = 0; i < PARTS; i++) {
        *parts[i] = s[i] ? mem : NULL;
        mem += up16(s[i]);
    }
}

typedef struct {
    const XentWork *w;
    int N, d, V, vtile;
    const float *H, *E, *bias;
    const int32_t *targets;
    float scale;
    float *dH, *dE, *dbias;
    int g0, g1; /* XENT_STORE: the row blocks [g0, g1) of the group being done */
} Job;

static float *worker_tile(const Job *j, int wk) { return j->w->tile + (size_t)wk * scratch_floats(j->d, j->vtile); }

/* the row stride of [dE^T; dbias] (XENT_STORE): every tile's vtile columns */
static int dEt_stride(const Job *j) { return cdiv(j->V, j->vtile) * j->vtile; }

/* the [v0, v0 + vt) range of tile t */
static int tile_range(const Job *j, int t, int *v0) {
    *v0 = t * j->vtile;
    return j->V - *v0 < j->vtile ? j->V - *v0 : j->vtile;
}

static int block_range(const Job *j, int b, int *r0) {
    *r0 = b * XENT_ROWS;
    return j->N - *r0 < XENT_ROWS ? j->N - *r0 : XENT_ROWS;
}

/* the stored panels of row block b (rb rows) and the vocabulary tile from v0 (XENT_STORE;
 * b in the group being done) */
static float *stored_tile(const Job *j, int b, int rb, int v0) {
    return j->w->S + (size_t)(b - j->g0) * block_store_floats(j->V) + (size_t)rb * v0;
}

/* item t < tiles: pack E's tile t; item tiles + b (with dE wanted): lay out H's row block b
 * for pass B (packed both ways to recompute, transposed to use stored tiles) */
static void pack_item(void *ctx, int i, int n, int wk) {
    (void)n; (void)wk;
    const Job *j = ctx;
    const int d = j->d, npd = panel_count(d), tiles = cdiv(j->V, j->vtile);
    if (i < tiles) {
        int v0, vt = tile_range(j, i, &v0);
        panel_pack(d, j->V, j->E, d, 1, v0 / PANEL, v0 / PANEL + panel_count(vt), j->w->Ep);
        if (j->dH)
            panel_pack(vt, d, j->E + (size_t)v0 * d, d, 0, 0, npd, j->w->Ed + (size_t)v0 * npd * PANEL);
        return;
    }
    int r0, rb = block_range(j, i - tiles, &r0), b = i - tiles;
    const float *Hb = j->H + (size_t)r0 * d;
    if (j->w->Hr) {
        float *Hr = j->w->Hr + (size_t)b * d * XENT_ROWS;
        for (int r = 0; r < rb; r++)
            for (int k = 0; k < d; k++) Hr[(size_t)k * XENT_ROWS + r] = Hb[(size_t)r * d + k];
        return;
    }
    panel_pack(d, rb, Hb, d, 1, 0, panel_count(rb), j->w->Ht + (size_t)b * panel_floats(d, XENT_ROWS));
    panel_pack(rb, d, Hb, d, 0, 0, npd, j->w->Hp + (size_t)b * XENT_ROWS * npd * PANEL);
}

/* XENT_STORE: tile t's exps (rb x vt, stride ld) into its stored panels, the columns past
 * the vocabulary zeroed; each row's running max into mt */
static void store_tile(const Job *j, int b, int r0, int rb, int t, const float *tile, int ld,
                       const float *mx) {
    int v0, vt = tile_range(j, t, &v0);
    float *dst = stored_tile(j, b, rb, v0);
    for (int c0 = 0; c0 < vt; c0 += PANEL, dst += (size_t)rb * PANEL) {
        int w = vt - c0 < PANEL ? vt - c0 : PANEL;
        for (int r = 0; r < rb; r++) {
            memcpy(dst + (size_t)r * PANEL, tile + (size_t)r * ld + c0, (size_t)w * sizeof(float));
            if (w < PANEL) memset(dst + (size_t)r * PANEL + w, 0, (size_t)(PANEL - w) * sizeof(float));
        }
    }
    const int tiles = cdiv(j->V, j->vtile);
    for (int r = 0; r < rb; r++) j->w->mt[(size_t)(r0 + r) * tiles + t] = mx[r];
}

/* pass A over row block g0 + i: lse and nll per row, and dH (fused_xent.h) */
static void rows_item(void *ctx, int i, int n, int wk) {
    (void)n;
    const Job *j = ctx;
    const int b = j->g0 + i;
    const int d = j->d, npd = panel_count(d), tiles = cdiv(j->V, j->vtile);
    int r0, rb = block_range(j, b, &r0);
    const float *Hb = j->H + (size_t)r0 * d;
    const int32_t *tg = j->targets + r0;
    float *tile = worker_tile(j, wk);
    float *dHb = j->dH ? j->dH + (size_t)r0 * d : NULL;
    float mx[XENT_ROWS], sm[XENT_ROWS], tl[XENT_ROWS];
    for (int t = 0; t < tiles; t++) {
        int v0, vt = tile_range(j, t, &v0);
        panel_gemm(rb, vt, d, Hb, d, j->w->Ep + (size_t)v0 * d, 0, panel_count(vt), 0.0f, tile,
                   j->vtile);
        kern->xent_online(rb, vt, tile, j->vtile, j->bias + v0, tg, v0, mx, sm, tl, dHb, d, t == 0);
        if (j->dE && j->w->S) store_tile(j, b, r0, rb, t, tile, j->vtile, mx);
        if (dHb)
            panel_gemm(rb, d, vt, tile, j->vtile, j->w->Ed + (size_t)v0 * npd * PANEL, 0, npd,
                       t == 0 ? 0.0f : 1.0f, dHb, d);
    }
    for (int r = 0; r < rb; r++) {
        float lse = mx[r] + logf(sm[r]);
        j->w->lse[r0 + r] = lse;
        j->w->nll[r0 + r] = lse - tl[r];
        if (!dHb) continue;
        /* d(scale * nll)/dh = scale * (sum_v p_v E_v - E_target) */
        float inv = j->scale / sm[r], *g = dHb + (size_t)r * d;
        const float *et = j->E + (size_t)tg[r] * d;
        for (int k = 0; k < d; k++) g[k] = g[k] * inv - j->scale * et[k];
    }
}

/* pass B over vocabulary tile t, recomputing its logits: dE and dbias of its entries */
static void vocab_item_recompute(const Job *j, int t, float *tile) {
    const int d = j->d, npd = panel_count(d), blocks = cdiv(j->N, XENT_ROWS);
    int v0, vt = tile_range(j, t, &v0);
    const float *Et = j->E + (size_t)v0 * d;
    float *dEt = j->dE + (size_t)v0 * d;
    for (int b = 0; b < blocks; b++) {
        int r0, rb = block_range(j, b, &r0);
        panel_gemm(vt, rb, d, Et, d, j->w->Ht + (size_t)b * panel_floats(d, XENT_ROWS), 0,
                   panel_count(rb), 0.0f, tile, XENT_ROWS);
        kern->xent_grad(vt, rb, tile, XENT_ROWS, j->bias + v0, j->w->lse + r0, j->targets + r0, v0,
                        j->scale, j->dbias + v0, b == 0);
        panel_gemm(vt, d, rb, tile, XENT_ROWS, j->w->Hp + (size_t)b * XENT_ROWS * npd * PANEL, 0,
                   npd, b == 0 ? 0.0f : 1.0f, dEt, d);
    }
}

/* pass B over vocabulary tile t from the stored exps of the group's blocks. G = scale
 * (softmax - onehot) = f_r exp(l - m) less the onehot, f_r = scale exp(m - lse_r) per row, so
 * per row block one product over the stored panels as they lie, with f folded into the left
 * operand, gives the tile's dE^T and (from a row of f alone) its dbias:
 *   [dE_tile^T; dbias_tile] += [H_rows^T diag(f); f^T] exp-tile,
 * then the onehot's share, -scale [H_r; 1] for each row r whose target is in the tile, in row
 * order. Transposed into dE and dbias after the last group. */
static void vocab_item_stored(const Job *j, int t, float *A) {
    const int d = j->d, tiles = cdiv(j->V, j->vtile), ldc = dEt_stride(j);
    int v0, vt = tile_range(j, t, &v0);
    float *C = j->w->dEt + v0, f[XENT_ROWS];
    for (int b = j->g0; b < j->g1; b++) {
        int r0, rb = block_range(j, b, &r0);
        for (int r = 0; r < rb; r++)
            f[r] = j->scale * fast_expf(j->w->mt[(size_t)(r0 + r) * tiles + t] - j->w->lse[r0 + r]);
        const float *Hr = j->w->Hr + (size_t)b * d * XENT_ROWS;
        for (int k = 0; k < d; k++)
            for (int r = 0; r < rb; r++) A[(size_t)k * XENT_ROWS + r] = f[r] * Hr[(size_t)k * XENT_ROWS + r];
        memcpy(A + (size_t)d * XENT_ROWS, f, (size_t)rb * sizeof(float));
        panel_gemm(d + 1, vt, rb, A, XENT_ROWS, stored_tile(j, b, rb, v0), 0, panel_count(vt),
                   b == 0 ? 0.0f : 1.0f, C, ldc);
        for (int r = 0; r < rb; r++) {
            int c = j->targets[r0 + r] - v0;
            if (c < 0 || c >= vt) continue;
            for (int k = 0; k < d; k++) C[(size_t)k * ldc + c] -= j->scale * Hr[(size_t)k * XENT_ROWS + r];
            C[(size_t)d * ldc + c] -= j->scale;
        }
    }
}

/* XENT_STORE: tile t's columns of [dE^T; dbias] into its rows of dE and entries of dbias */
static void transpose_item(void *ctx, int t, int n, int wk) {
    (void)n; (void)wk;
    const Job *j = ctx;
    const int d = j->d, ldc = dEt_stride(j);
    int v0, vt = tile_range(j, t, &v0);
    const float *C = j->w->dEt + v0;
    float *dE = j->dE + (size_t)v0 * d;
    for (int v = 0; v < vt; v++)
        for (int k = 0; k < d; k++) dE[(size_t)v * d + k] = C[(size_t)k * ldc + v];
    memcpy(j->dbias + v0, C + (size_t)d * ldc, (size_t)vt * sizeof(float));
}

/* pass B over vocabulary tile t: dE and dbias of its entries (fused_xent.h) */
static void vocab_item(void *ctx, int t, int n, int wk) {
    (void)n;
    const Job *j = ctx;
    float *tile = worker_tile(j, wk);
    if (j->w->S) vocab_item_stored(j, t, tile);
    else vocab_item_recompute(j, t, tile);
}

double xent_run(const XentWork *w, int workers, int N, int d, int V, const float *H,
                const float *E, const float *bias, const int32_t *targets, float scale,
                float *dH, float *dE, float *dbias) {
    Job j = {w, N, d, V, xent_vocab_tile(d), H, E, bias, targets, scale, dH, dE, dbias, 0, 0};
    const int tiles = cdiv(V, j.vtile), blocks = cdiv(N, XENT_ROWS);
    if (N <= 0) {
        if (dE) memset(dE, 0, (size_t)V * d * sizeof(float));
        if (dbias) memset(dbias, 0, (size_t)V * sizeof(float));
        return 0.0;
    }
    pool_for(pack_item, &j, tiles + (dE ? blocks : 0), workers);
    if (dE && w->S) {
        /* in groups of row blocks: pass A stores the group's tiles, pass B takes them */
        const int g = group_blocks(N, V, workers);
        for (j.g0 = 0; j.g0 < blocks; j.g0 = j.g1) {
            j.g1 = blocks - j.g0 < g ? blocks : j.g0 + g;
            pool_for(rows_item, &j, j.g1 - j.g0, workers);
            pool_for(vocab_item, &j, tiles, workers);
        }
        pool_for(transpose_item, &j, tiles, workers);
    } else {
        pool_for(rows_item, &j, blocks, workers);
        if (dE) pool_for(vocab_item, &j, tiles, workers);
    }
    double loss = 0.0;
    for (int r = 0; r < N; r++) loss += (double)w->nll[r];
    return loss;
}
