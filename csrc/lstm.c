#include "lstm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "blas.h"

static inline double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

void lstm_forward(int B, int In, int H, const double *x, const double *h_prev,
                  const double *c_prev, const double *W, const double *b,
                  double *gates, double *c, double *h) {
    int G = 4 * H;
    if (B <= 0) return;
    /* gates = b + x . W_x, before activation; lstm_step_forward adds h_prev . W_h */
    for (int r = 0; r < B; r++) memcpy(gates + (size_t)r * G, b, (size_t)G * sizeof(double));
    if (In > 0) gemm_f64(0, 0, B, G, In, 1.0, x, In, W, G, 1.0, gates, G);
    lstm_step_forward(B, H, h_prev, c_prev, W + (size_t)In * G, gates, c, h, NULL);
}

void lstm_step_forward(int B, int H, const double *h_prev, const double *c_prev, const double *W_h,
                       double *gates, double *c, double *h, double *tc) {
    int G = 4 * H;
    if (B <= 0) return;
    gemm_f64(0, 0, B, G, H, 1.0, h_prev, H, W_h, G, 1.0, gates, G);
    for (int r = 0; r < B; r++) {
        double *gi = gates + (size_t)r * G, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const double *cp = c_prev + (size_t)r * H;
        double *cr = c + (size_t)r * H, *hr = h + (size_t)r * H, *tr = tc ? tc + (size_t)r * H : NULL;
        for (int u = 0; u < H; u++) {
            gi[u] = sigmoid(gi[u]);
            gf[u] = sigmoid(gf[u]);
            gg[u] = tanh(gg[u]);
            go[u] = sigmoid(go[u]);
            cr[u] = gf[u] * cp[u] + gi[u] * gg[u];
            double t = tanh(cr[u]);
            hr[u] = go[u] * t;
            if (tr) tr[u] = t;
        }
    }
}

/* The four pre-activation gradients of one row and the total gradient on c, dct = dc + dh o
 * (1 - tanh(c)^2), into dcp (times f when times_f). tanh(c) from tc, or from c when tc is
 * NULL. da may alias g: each unit reads its gates before it writes. */
static inline void row_grads(int H, const double *g, const double *cp, const double *c, const double *tc,
                             const double *dh, const double *dc, double *da, double *dcp, int times_f) {
    for (int u = 0; u < H; u++) {
        double gi = g[u], gf = g[H + u], gg = g[2 * H + u], go = g[3 * H + u];
        double t = tc ? tc[u] : tanh(c[u]), dct = dc[u] + dh[u] * go * (1.0 - t * t);
        da[u] = dct * gg * gi * (1.0 - gi);
        da[H + u] = dct * cp[u] * gf * (1.0 - gf);
        da[2 * H + u] = dct * gi * (1.0 - gg * gg);
        da[3 * H + u] = dh[u] * t * go * (1.0 - go);
        if (dcp) dcp[u] = times_f ? dct * gf : dct;
    }
}

void lstm_step_backward(int B, int H, const double *c_prev, const double *gates, const double *c,
                        const double *tc, const double *dh, const double *dc, const double *W_h,
                        double *da, double *dh_prev, double *dc_prev) {
    int G = 4 * H;
    if (B <= 0) return;
    for (int r = 0; r < B; r++)
        row_grads(H, gates + (size_t)r * G, c_prev + (size_t)r * H, c ? c + (size_t)r * H : NULL,
                  tc ? tc + (size_t)r * H : NULL, dh + (size_t)r * H, dc + (size_t)r * H, da + (size_t)r * G,
                  dc_prev ? dc_prev + (size_t)r * H : NULL, 1);
    if (dh_prev) gemm_f64(0, 1, B, H, G, 1.0, da, G, W_h, G, 0.0, dh_prev, H);
}

void lstm_weight_grads(int rows, int In, int H, const double *x, const double *h_prev, const double *da,
                       double *dW, double *db) {
    int G = 4 * H;
    if (rows <= 0) return;
    if (In > 0) gemm_f64(1, 0, In, G, rows, 1.0, x, In, da, G, 1.0, dW, G);
    gemm_f64(1, 0, H, G, rows, 1.0, h_prev, H, da, G, 1.0, dW + (size_t)In * G, G);
    if (db)
        for (int r = 0; r < rows; r++) {
            const double *d = da + (size_t)r * G;
            for (int j = 0; j < G; j++) db[j] += d[j];
        }
}

/* Gradients on the pre-activations of gate columns j0..j0+nj-1 of one batch row into da, given
 * the total gradient dc_tot on c (from h and from step t+1). */
static void gate_grads(int H, int j0, int nj, const double *g, const double *cp, const double *c,
                       const double *dh, const double *dc_tot, double *da) {
    for (int q = 0; q < 4; q++) {
        int lo = imax(q * H, j0), hi = imin((q + 1) * H, j0 + nj);
        const double *a = g + q * H;
        double *d = da + (q * H - j0);
        int u0 = lo - q * H, u1 = hi - q * H;
        switch (q) {
        case 0: /* input gate */
            for (int u = u0; u < u1; u++) d[u] = dc_tot[u] * g[2 * H + u] * a[u] * (1.0 - a[u]);
            break;
        case 1: /* forget gate */
            for (int u = u0; u < u1; u++) d[u] = dc_tot[u] * cp[u] * a[u] * (1.0 - a[u]);
            break;
        case 2: /* candidate */
            for (int u = u0; u < u1; u++) d[u] = dc_tot[u] * g[u] * (1.0 - a[u] * a[u]);
            break;
        default: /* output gate */
            for (int u = u0; u < u1; u++) d[u] = dh[u] * tanh(c[u]) * a[u] * (1.0 - a[u]);
        }
    }
}

void lstm_backward_ws(int B, int In, int H, const double *x, const double *h_prev,
                      const double *c_prev, const double *W, const double *gates,
                      const double *c, const double *dh, const double *dc,
                      double *dW, double *db, double *dx, double *dh_prev, double *dc_prev,
                      double *work, size_t work_len) {
    int G = 4 * H;
    /* a tile is rows x cols pre-activation gradients: whole rows when one fits in work */
    size_t fit = work_len / (size_t)G;
    int cols = fit ? G : (int)work_len;
    int rows = fit >= (size_t)B ? B : fit ? (int)fit : 1;
    double *dW_h = dW + (size_t)In * G;
    const double *W_h = W + (size_t)In * G;
    for (int r0 = 0; r0 < B; r0 += rows) {
        int nr = imin(rows, B - r0);
        /* dc_prev first holds the total gradient on c; it becomes dc_tot * f at the end */
        for (int r = r0; r < r0 + nr; r++) {
            const double *g = gates + (size_t)r * G, *dhr = dh + (size_t)r * H;
            const double *dcr = dc + (size_t)r * H, *cr = c + (size_t)r * H;
            double *dcp = dc_prev + (size_t)r * H;
            if (cols == G) {
                /* whole rows: the four gate gradients in one pass, one tanh(c) per unit
                 * (the same expressions as gate_grads) */
                row_grads(H, g, c_prev + (size_t)r * H, cr, NULL, dhr, dcr, work + (size_t)(r - r0) * G, dcp, 0);
            } else {
                for (int u = 0; u < H; u++) {
                    double tc = tanh(cr[u]);
                    dcp[u] = dcr[u] + dhr[u] * g[3 * H + u] * (1.0 - tc * tc);
                }
            }
        }
        for (int j0 = 0; j0 < G; j0 += cols) {
            int nj = imin(cols, G - j0);
            for (int r = r0; r < r0 + nr; r++) {
                double *da = work + (size_t)(r - r0) * nj;
                if (cols < G)
                    gate_grads(H, j0, nj, gates + (size_t)r * G, c_prev + (size_t)r * H, c + (size_t)r * H,
                               dh + (size_t)r * H, dc_prev + (size_t)r * H, da);
                for (int j = 0; j < nj; j++) db[j0 + j] += da[j];
            }
            /* dW += [x, h_prev]^T da; d[x, h_prev] (+)= da W^T over this column block */
            double beta = j0 ? 1.0 : 0.0;
            if (In > 0) {
                gemm_f64(1, 0, In, nj, nr, 1.0, x + (size_t)r0 * In, In, work, nj, 1.0, dW + j0, G);
                if (dx) gemm_f64(0, 1, nr, In, nj, 1.0, work, nj, W + j0, G, beta, dx + (size_t)r0 * In, In);
            }
            gemm_f64(1, 0, H, nj, nr, 1.0, h_prev + (size_t)r0 * H, H, work, nj, 1.0, dW_h + j0, G);
            gemm_f64(0, 1, nr, H, nj, 1.0, work, nj, W_h + j0, G, beta, dh_prev + (size_t)r0 * H, H);
        }
        for (int r = r0; r < r0 + nr; r++) {
            const double *gf = gates + (size_t)r * G + H;
            double *dcp = dc_prev + (size_t)r * H;
            for (int u = 0; u < H; u++) dcp[u] *= gf[u];
        }
    }
}

void lstm_backward(int B, int In, int H, const double *x, const double *h_prev,
                   const double *c_prev, const double *W, const double *gates,
                   const double *c, const double *dh, const double *dc,
                   double *dW, double *db, double *dx, double *dh_prev, double *dc_prev) {
    double work[LSTM_STACK_WORK];
    lstm_backward_ws(B, In, H, x, h_prev, c_prev, W, gates, c, dh, dc, dW, db, dx, dh_prev, dc_prev,
                     work, LSTM_STACK_WORK);
}
