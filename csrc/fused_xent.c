#include "fused_xent.h"

#include <math.h>
#include <string.h>

#include "kernels.h"
#include "panel.h"
#include "parallel.h"

/* Vocabulary columns per tile: the tile's packed E (d x vt) and its logits (64 x vt) stay
 * in L2 with the row block. */
int xent_vocab_tile(int d) { return d <= 48 ? 384 : d <= 96 ? 192 : 96; }

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* the parts' sizes in floats, in xent_bind's order */
static void sizes(int N, int d, int V, int workers, int grads, size_t out[7]) {
    size_t nb = (size_t)cdiv(N, XENT_ROWS), npd = (size_t)panel_count(d);
    out[0] = panel_floats(d, V);                                         /* Ep */
    out[1] = grads >= 1 ? (size_t)V * npd * PANEL : 0;                   /* Ed */
    out[2] = grads >= 2 ? nb * panel_floats(d, XENT_ROWS) : 0;           /* Ht */
    out[3] = grads >= 2 ? nb * XENT_ROWS * npd * PANEL : 0;              /* Hp */
    out[4] = (size_t)workers * XENT_ROWS * (size_t)xent_vocab_tile(d);   /* tile */
    out[5] = out[6] = (size_t)N;                                         /* lse, nll */
}

size_t xent_workspace_floats(int N, int d, int V, int workers, int grads) {
    size_t s[7], total = 0;
    sizes(N, d, V, workers, grads, s);
    for (int i = 0; i < 7; i++) total += up16(s[i]);
    return total;
}

void xent_bind(XentWork *w, float *mem, int N, int d, int V, int workers, int grads) {
    size_t s[7];
    sizes(N, d, V, workers, grads, s);
    float **parts[7] = {&w->Ep, &w->Ed, &w->Ht, &w->Hp, &w->tile, &w->lse, &w->nll};
    for (int i = 0; i < 7; i++) {
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
} Job;

/* the [v0, v0 + vt) range of tile t */
static int tile_range(const Job *j, int t, int *v0) {
    *v0 = t * j->vtile;
    return j->V - *v0 < j->vtile ? j->V - *v0 : j->vtile;
}

static int block_range(const Job *j, int b, int *r0) {
    *r0 = b * XENT_ROWS;
    return j->N - *r0 < XENT_ROWS ? j->N - *r0 : XENT_ROWS;
}

/* item t < tiles: pack E's tile t; item tiles + b (with dE wanted): pack H's row block b */
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
    panel_pack(d, rb, Hb, d, 1, 0, panel_count(rb), j->w->Ht + (size_t)b * panel_floats(d, XENT_ROWS));
    panel_pack(rb, d, Hb, d, 0, 0, npd, j->w->Hp + (size_t)b * XENT_ROWS * npd * PANEL);
}

/* pass A over row block b: lse and nll per row, and dH (fused_xent.h) */
static void rows_item(void *ctx, int b, int n, int wk) {
    (void)n;
    const Job *j = ctx;
    const int d = j->d, npd = panel_count(d), tiles = cdiv(j->V, j->vtile);
    int r0, rb = block_range(j, b, &r0);
    const float *Hb = j->H + (size_t)r0 * d;
    const int32_t *tg = j->targets + r0;
    float *tile = j->w->tile + (size_t)wk * XENT_ROWS * j->vtile;
    float *dHb = j->dH ? j->dH + (size_t)r0 * d : NULL;
    float mx[XENT_ROWS], sm[XENT_ROWS], tl[XENT_ROWS];
    for (int t = 0; t < tiles; t++) {
        int v0, vt = tile_range(j, t, &v0);
        panel_gemm(rb, vt, d, Hb, d, j->w->Ep + (size_t)v0 * d, 0, panel_count(vt), 0.0f, tile,
                   j->vtile);
        kern->xent_online(rb, vt, tile, j->vtile, j->bias + v0, tg, v0, mx, sm, tl, dHb, d, t == 0);
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

/* pass B over vocabulary tile t: dE and dbias of its entries (fused_xent.h) */
static void vocab_item(void *ctx, int t, int n, int wk) {
    (void)n;
    const Job *j = ctx;
    const int d = j->d, npd = panel_count(d), blocks = cdiv(j->N, XENT_ROWS);
    int v0, vt = tile_range(j, t, &v0);
    const float *Et = j->E + (size_t)v0 * d;
    float *tile = j->w->tile + (size_t)wk * XENT_ROWS * j->vtile, *dEt = j->dE + (size_t)v0 * d;
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

double xent_run(const XentWork *w, int workers, int N, int d, int V, const float *H,
                const float *E, const float *bias, const int32_t *targets, float scale,
                float *dH, float *dE, float *dbias) {
    Job j = {w, N, d, V, xent_vocab_tile(d), H, E, bias, targets, scale, dH, dE, dbias};
    const int tiles = cdiv(V, j.vtile), blocks = cdiv(N, XENT_ROWS);
    if (N <= 0) {
        if (dE) memset(dE, 0, (size_t)V * d * sizeof(float));
        if (dbias) memset(dbias, 0, (size_t)V * sizeof(float));
        return 0.0;
    }
    pool_for(pack_item, &j, tiles + (dE ? blocks : 0), workers);
    pool_for(rows_item, &j, blocks, workers);
    if (dE) pool_for(vocab_item, &j, tiles, workers);
    double loss = 0.0;
    for (int r = 0; r < N; r++) loss += (double)w->nll[r];
    return loss;
}
