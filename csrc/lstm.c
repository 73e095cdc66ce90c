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
    /* gates = b + x . W_x + h_prev . W_h, before activation */
    for (int r = 0; r < B; r++) memcpy(gates + (size_t)r * G, b, (size_t)G * sizeof(double));
    if (In > 0) gemm_f64(0, 0, B, G, In, 1.0, x, In, W, G, 1.0, gates, G);
    gemm_f64(0, 0, B, G, H, 1.0, h_prev, H, W + (size_t)In * G, G, 1.0, gates, G);
    for (int r = 0; r < B; r++) {
        double *gi = gates + (size_t)r * G, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const double *cp = c_prev + (size_t)r * H;
        double *cr = c + (size_t)r * H, *hr = h + (size_t)r * H;
        for (int u = 0; u < H; u++) {
            gi[u] = sigmoid(gi[u]);
            gf[u] = sigmoid(gf[u]);
            gg[u] = tanh(gg[u]);
            go[u] = sigmoid(go[u]);
            cr[u] = gf[u] * cp[u] + gi[u] * gg[u];
            hr[u] = go[u] * tanh(cr[u]);
        }
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
                const double *cp = c_prev + (size_t)r * H, *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
                double *da = work + (size_t)(r - r0) * G;
                for (int u = 0; u < H; u++) {
                    double tc = tanh(cr[u]), dct = dcr[u] + dhr[u] * go[u] * (1.0 - tc * tc);
                    dcp[u] = dct;
                    da[u] = dct * gg[u] * gi[u] * (1.0 - gi[u]);
                    da[H + u] = dct * cp[u] * gf[u] * (1.0 - gf[u]);
                    da[2 * H + u] = dct * gi[u] * (1.0 - gg[u] * gg[u]);
                    da[3 * H + u] = dhr[u] * tc * go[u] * (1.0 - go[u]);
                }
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
