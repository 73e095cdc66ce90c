#include "cell.h"

#include <math.h>
#include <string.h>

#include "blas.h"
#include "kernels.h"
#include "panel.h"

/* The cell through time, shared by the workers of one pool job as tickets (parallel.h).
 *
 * By rows (small d): a ticket is a chunk of batch rows, run through all T steps alone, so
 * the workers never wait for each other. By columns (large d, where a product over all B
 * rows runs much faster than over a few): a ticket is one 32-column panel of one node at
 * one step: its columns of the node's product and everything elementwise on them; the
 * next node's product reads every column, so each (step, node) is a phase. With panels,
 * the per-step products run through node matrices packed once per step (panel.h), one
 * panel per ticket of a first phase. Every output element is computed the same way
 * whichever worker holds its ticket, so results depend only on the thread count. */

/* the parts of the problem every ticket needs */
typedef struct {
    const CellArch *a;
    const CellBuffers *buf;
    int T, B, d, n_panels;
    size_t bd, s_stride, cf_stride, pf, per_node;
    int n_out, has_child[LM_MAX_NODES + 1];
    int clip_in_node; /* hidden-norm clipping where a block holds whole rows (split by rows) */
} Cell;

/* one ticket's block of every (T*B, d) matrix: rows r0.. (nr) and columns c0.. (nc), `off`
 * into each step's (B, d) slice, and the panels p0..p1 its products cover */
typedef struct {
    int r0, nr, c0, nc, p0, p1;
    size_t off;
    const float *mh; /* this block's corner of the h mask, or NULL */
} Block;

static Cell cell_setup(const CellArch *a, const CellWork *w, const CellBuffers *buf) {
    Cell c = {.a = a, .buf = buf, CELL_SIZES(w),
              .clip_in_node = buf->hidden_clip > 0 && !w->by_cols};
    for (int i = 1; i <= a->n; i++) {
        c.n_out += a->out[i - 1] != 0;
        c.has_child[a->pred[i - 1]] = 1;
    }
    return c;
}

static Block block_of(const Cell *c, int r0, int nr, int c0, int nc, int p0, int p1) {
    Block k = {r0, nr, c0, nc, p0, p1, (size_t)r0 * c->d + c0, NULL};
    if (c->buf->mask_h) k.mh = c->buf->mask_h + k.off;
    return k;
}

/* rows chunk..: all columns, all panels */
static Block row_block(const Cell *c, int chunk, int rows) {
    int r0 = chunk * rows, nr = c->B - r0 < rows ? c->B - r0 : rows;
    return block_of(c, r0, nr, 0, c->d, 0, c->n_panels);
}

/* panel q: all rows, its (up to) 32 columns */
static Block col_block(const Cell *c, int q) {
    int c0 = q * PANEL, nc = c->d - c0 < PANEL ? c->d - c0 : PANEL;
    return block_of(c, 0, c->B, c0, nc, q, q + 1);
}

/* [gate | candidate] (block rows, block panels) = A W (+ beta) for node `node` */
static void product(const Cell *c, const Block *k, const float *A, int node, const float *Wm,
                    float beta, float *C) {
    const int d = c->d;
    const float *Ar = A + (size_t)k->r0 * d;
    float *Cr = C + (size_t)k->r0 * 2 * d;
    if (c->buf->packed) {
        const float *P = c->buf->packed + node * c->per_node;
        panel_gemm(k->nr, d, d, Ar, d, P, k->p0, k->p1, beta, Cr, 2 * d);
        panel_gemm(k->nr, d, d, Ar, d, P + c->pf, k->p0, k->p1, beta, Cr + d, 2 * d);
    } else {
        gemm(0, 0, k->nr, 2 * d, d, 1.0f, Ar, d, Wm, 2 * d, beta, Cr, 2 * d);
    }
}

/* G (block rows, block panels) = dab W^T (+ beta G) for node `node` */
static void product_t(const Cell *c, const Block *k, const float *dab, int node, const float *Wm,
                      float beta, float *G) {
    const int d = c->d;
    const float *Ar = dab + (size_t)k->r0 * 2 * d;
    float *Gr = G + (size_t)k->r0 * d;
    if (c->buf->packed)
        panel_gemm(k->nr, d, 2 * d, Ar, 2 * d, c->buf->packed + node * c->per_node, k->p0, k->p1,
                   beta, Gr, d);
    else
        gemm(0, 1, k->nr, d, 2 * d, 1.0f, Ar, 2 * d, Wm, 2 * d, beta, Gr, d);
}

void cell_pack_panel(const CellBuffers *buf, int n, int d, int q, int backward) {
    const size_t pf = panel_floats(d, d);
    for (int i = 0; i <= n; i++) {
        const float *W = i ? buf->W[i] : buf->w0h;
        float *P = buf->packed + i * 2 * pf;
        if (backward) {
            panel_pack(2 * d, d, W, 2 * d, 1, q, q + 1, P);
        } else {
            panel_pack(d, d, W, 2 * d, 0, q, q + 1, P);
            panel_pack(d, d, W + d, 2 * d, 0, q, q + 1, P + pf);
        }
    }
}

/* --- hidden-norm clipping ----------------------------------------------------------------- */
/* The paper code's handle_hidden_mode 'NORM' (nas-landmarkreg darts_model.py DARTSCell.forward):
 * after every step, each row of h_t whose L2 norm exceeds hidden_clip is multiplied by
 * hidden_clip / norm, a constant factor (the gradient passes scaled, not through the norm),
 * in training and in evaluation. Rows r0.. (nr) of step t; the factors go to clipf. A row is
 * always summed over all d columns in one order by one ticket, so the result is the same
 * whichever way the step was split. `remask`: also redo the row's h-masked copy (the column
 * split, whose panels masked h_t before the clip). */
static void clip_rows(const Cell *c, int t, int r0, int nr, int remask) {
    const CellBuffers *buf = c->buf;
    const int d = c->d;
    const double limit = buf->hidden_clip;
    const size_t at = (size_t)t * c->bd + c->bd; /* H[t + 1] = h_t */
    for (int r = r0; r < r0 + nr; r++) {
        float *h = buf->H + at + (size_t)r * d;
        double sq = 0.0;
        for (int k = 0; k < d; k++) sq += (double)h[k] * h[k];
        const double norm = sqrt(sq);
        const float f = norm > limit ? (float)(limit / norm) : 1.0f;
        buf->clipf[(size_t)t * c->B + r] = f;
        if (f == 1.0f) continue;
        for (int k = 0; k < d; k++) h[k] *= f;
        if (remask && buf->mask_h)
            kern->block_mul(1, d, d, h, buf->mask_h + (size_t)r * d, buf->HM + at + (size_t)r * d);
    }
}

/* backward: the gradient reaching h_t before the clip is the factor times the one after it;
 * applied to the output nodes' share of it (block rows, block columns) */
static void clip_gradient(const Cell *c, const Block *k, int t) {
    const CellBuffers *buf = c->buf;
    const float *f = buf->clipf + (size_t)t * c->B + k->r0;
    for (int j = 1; j <= c->a->n; j++) {
        if (!c->a->out[j - 1]) continue;
        float *ds = buf->dS + j * c->bd + k->off;
        for (int r = 0; r < k->nr; r++)
            if (f[r] != 1.0f)
                for (int q = 0; q < k->nc; q++) ds[(size_t)r * c->d + q] *= f[r];
    }
}

/* --- forward ------------------------------------------------------------------------------ */
/* node i at step t on a block: its product, activation and state; after the last node h_t */
static void forward_node(const Cell *c, const Block *k, int t, int i) {
    const CellBuffers *buf = c->buf;
    const int d = c->d, nr = k->nr, nc = k->nc;
    const size_t at = (size_t)t * c->bd, off = k->off, cf_off = 2 * (size_t)k->r0 * d + k->c0;
    float *cf = buf->CF + i * c->cf_stride + 2 * at;
    float *s = buf->S + i * c->s_stride + at + off;
    if (i == 0) { /* s0 = h + c0 (tanh(b0) - h), x W0[:d] already in CF */
        product(c, k, buf->HM + at, 0, buf->w0h, 1.0f, cf);
        kern->node_forward(OP_TANH, nr, nc, d, buf->H + at + off, cf + cf_off, s);
    } else {
        const int p = c->a->pred[i - 1];
        product(c, k, buf->SM + p * c->s_stride + at, i, buf->W[i], 0.0f, cf);
        kern->node_forward(c->a->op[i - 1], nr, nc, d, buf->S + p * c->s_stride + at + off,
                           cf + cf_off, s);
    }
    if (k->mh) kern->block_mul(nr, nc, d, s, k->mh, buf->SM + i * c->s_stride + at + off);
    if (i == c->a->n) { /* h_t = mean of the output nodes */
        float *h = buf->H + c->bd + at + off;
        kern->block_mean(c->a->n, c->a->out, nr, nc, d, buf->S + at + off, c->s_stride, h);
        if (c->clip_in_node) clip_rows(c, t, k->r0, nr, 0);
        if (k->mh) kern->block_mul(nr, nc, d, h, k->mh, buf->HM + c->bd + at + off);
    }
}

static long claim(TaskQueue *q, unsigned long long base, unsigned count) {
    long long t = queue_claim(q, base + count);
    return t < 0 ? -1 : (long)(t - (long long)base);
}

/* rows per ticket of the clipping phase of the column split */
#define CLIP_ROWS 8

/* the column split's clipping of step t: a phase after the last node's, whole rows per
 * ticket; returns the next phase's base */
static unsigned long long clip_phase(const Cell *c, TaskQueue *q, unsigned long long base, int t) {
    const int chunks = (c->B + CLIP_ROWS - 1) / CLIP_ROWS;
    long task;
    queue_wait(q, base);
    for (; (task = claim(q, base, chunks)) >= 0; queue_finish(q)) {
        const int r0 = (int)task * CLIP_ROWS;
        clip_rows(c, t, r0, c->B - r0 < CLIP_ROWS ? c->B - r0 : CLIP_ROWS, 1);
    }
    return base + chunks;
}

static void row_chunks(const Cell *c, const CellWork *w, unsigned long long base, int backward);

void cell_forward(const CellArch *a, const CellWork *w, const CellBuffers *buf) {
    const Cell c = cell_setup(a, w, buf);
    TaskQueue *q = w->queue;
    unsigned long long base = 0;
    long task;
    if (buf->packed) { /* phase: pack every node's panels; by columns, mask h_{-1} too */
        for (; (task = claim(q, base, c.n_panels)) >= 0; queue_finish(q)) {
            cell_pack_panel(buf, a->n, c.d, (int)task, 0);
            Block k = col_block(&c, (int)task);
            if (w->by_cols && k.mh) kern->block_mul(k.nr, k.nc, c.d, buf->H + k.off, k.mh, buf->HM + k.off);
        }
        base += c.n_panels;
    }
    if (!w->by_cols) {
        row_chunks(&c, w, base, 0);
        return;
    }
    for (int t = 0; t < c.T; t++) { /* a phase per node and step: panels */
        for (int i = 0; i <= a->n; i++, base += c.n_panels) {
            queue_wait(q, base);
            for (; (task = claim(q, base, c.n_panels)) >= 0; queue_finish(q)) {
                Block k = col_block(&c, (int)task);
                forward_node(&c, &k, t, i);
            }
        }
        if (buf->hidden_clip > 0) base = clip_phase(&c, q, base, t);
    }
}

/* --- backward ----------------------------------------------------------------------------- */
/* G_0 = dab_0 W0h^T of step t (the gradient into h_{t-1} through node 0's product), added
 * into dh */
static void backward_input(const Cell *c, const Block *k, int t) {
    const CellBuffers *buf = c->buf;
    product_t(c, k, buf->CF + 2 * (size_t)t * c->bd, 0, buf->w0h, 0.0f, buf->G);
    kern->block_add(k->nr, k->nc, c->d, buf->G + k->off, k->mh, buf->dh + k->off);
}

/* Node i at step t on a block; first the product of the node after it (i + 1, or node 0 of
 * step t + 1 before the last node), which the previous phase's elementwise work fed: its
 * columns of G are the ones this block reads next. */
static void backward_node(const Cell *c, const Block *k, int t, int i) {
    const CellBuffers *buf = c->buf;
    const CellArch *a = c->a;
    const int d = c->d, nr = k->nr, nc = k->nc;
    const size_t at = (size_t)t * c->bd, off = k->off, bd = c->bd;
    const size_t cf_off = 2 * (size_t)k->r0 * d + k->c0;
    float *dS = buf->dS, *G = buf->G, *dh = buf->dh + off;
    if (i == a->n) {
        if (t + 1 < c->T) backward_input(c, k, t + 1);
        /* gradient reaching each node's state at step t: h_t = mean of output nodes */
        for (int j = 0; j <= a->n; j++) {
            int out = j > 0 && a->out[j - 1];
            kern->block_set(nr, nc, d, out ? buf->dH + at + off : NULL, dh, 1.0f / (float)c->n_out,
                            dS + j * bd + off);
            if (c->has_child[j]) kern->block_set(nr, nc, d, NULL, NULL, 0.0f, G + j * bd + off);
        }
        if (buf->hidden_clip > 0) clip_gradient(c, k, t);
    } else { /* G_p += dab_{i+1} W_{i+1}^T */
        product_t(c, k, buf->CF + (i + 1) * c->cf_stride + 2 * at, i + 1, buf->W[i + 1], 1.0f,
                  G + a->pred[i] * bd);
    }
    float *ds = dS + i * bd + off, *cf = buf->CF + i * c->cf_stride + 2 * at + cf_off;
    if (c->has_child[i]) kern->block_add(nr, nc, d, G + i * bd + off, k->mh, ds);
    if (i == 0) { /* s0 = h + c0 (tanh(b0) - h) with h = h_{t-1}: the carry goes to dh */
        kern->node_backward(OP_TANH, nr, nc, d, ds, buf->H + at + off, cf, dh, 0);
    } else {
        const int p = a->pred[i - 1];
        kern->node_backward(a->op[i - 1], nr, nc, d, ds, buf->S + p * c->s_stride + at + off, cf,
                            dS + p * bd + off, 1);
    }
}

/* By rows: the phase of row-chunk tickets, each through all steps, forward (h_{-1} masked
 * first) or backward (dh cleared first, the gradient into h_{-1} last) */
static void row_chunks(const Cell *c, const CellWork *w, unsigned long long base, int backward) {
    const CellBuffers *buf = c->buf;
    const int chunks = (c->B + w->row_chunk - 1) / w->row_chunk, n = c->a->n;
    TaskQueue *q = w->queue;
    long task;
    queue_wait(q, base);
    for (; (task = claim(q, base, chunks)) >= 0; queue_finish(q)) {
        Block k = row_block(c, (int)task, w->row_chunk);
        if (backward) {
            kern->block_set(k.nr, k.nc, c->d, NULL, NULL, 0.0f, buf->dh + k.off);
            for (int t = c->T - 1; t >= 0; t--)
                for (int i = n; i >= 0; i--) backward_node(c, &k, t, i);
            backward_input(c, &k, 0);
        } else {
            if (k.mh) kern->block_mul(k.nr, k.nc, c->d, buf->H + k.off, k.mh, buf->HM + k.off);
            for (int t = 0; t < c->T; t++)
                for (int i = 0; i <= n; i++) forward_node(c, &k, t, i);
        }
    }
}

void cell_backward(const CellArch *a, const CellWork *w, const CellBuffers *buf) {
    const Cell c = cell_setup(a, w, buf);
    TaskQueue *q = w->queue;
    unsigned long long base = 0;
    long task;
    if (buf->packed) { /* phase: pack every node's transposed panels (the forward's are done) */
        for (; (task = claim(q, base, c.n_panels)) >= 0; queue_finish(q)) {
            cell_pack_panel(buf, a->n, c.d, (int)task, 1);
            if (w->by_cols) {
                Block k = col_block(&c, (int)task);
                kern->block_set(k.nr, k.nc, c.d, NULL, NULL, 0.0f, buf->dh + k.off);
            }
        }
        base += c.n_panels;
    }
    if (!w->by_cols) {
        row_chunks(&c, w, base, 1);
        return;
    }
    for (int t = c.T - 1; t >= 0; t--) /* a phase per node and step: panels */
        for (int i = a->n; i >= 0; i--, base += c.n_panels) {
            queue_wait(q, base);
            for (; (task = claim(q, base, c.n_panels)) >= 0; queue_finish(q)) {
                Block k = col_block(&c, (int)task);
                backward_node(&c, &k, t, i);
            }
        }
    queue_wait(q, base);
    for (; (task = claim(q, base, c.n_panels)) >= 0; queue_finish(q)) {
        Block k = col_block(&c, (int)task);
        backward_input(&c, &k, 0);
    }
}
