#include "lstm.h"

#include <math.h>
#include <stddef.h>

/* Gate columns handled per block in the backward pass: the pre-activation gradients of one
 * block live on the stack, so the step allocates nothing. */
#define LSTM_COL_BLOCK 256

static inline double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* row k of [x, h_prev] for batch row r */
static inline double xh_at(int In, int H, const double *x, const double *h_prev, int r, int k) {
    return k < In ? x[(size_t)r * In + k] : h_prev[(size_t)r * H + (k - In)];
}

/* gates = [x, h_prev] . W + b, before activation */
static void lstm_preactivations(int B, int In, int H, const double *x, const double *h_prev,
                                const double *W, const double *b, double *gates) {
    int G = 4 * H;
    for (int r = 0; r < B; r++) {
        double *gr = gates + (size_t)r * G;
        for (int j = 0; j < G; j++) gr[j] = b[j];
        for (int k = 0; k < In + H; k++) {
            double a = xh_at(In, H, x, h_prev, r, k);
            const double *wk = W + (size_t)k * G;
            for (int j = 0; j < G; j++) gr[j] += a * wk[j];
        }
    }
}

void lstm_forward(int B, int In, int H, const double *x, const double *h_prev,
                  const double *c_prev, const double *W, const double *b,
                  double *gates, double *c, double *h) {
    lstm_preactivations(B, In, H, x, h_prev, W, b, gates);
    for (int r = 0; r < B; r++) {
        double *gi = gates + (size_t)r * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
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

/* Gradient on the pre-activation of gate column j (0..4H-1) of one batch row, given the total
 * gradient dc_tot on c (from h and from step t+1). */
static inline double gate_grad(int H, int j, const double *g, const double *cp, const double *c,
                               const double *dh, const double *dc_tot) {
    int u = j % H;
    double a = g[j];
    switch (j / H) {
    case 0: return dc_tot[u] * g[2 * H + u] * a * (1.0 - a);   /* input gate */
    case 1: return dc_tot[u] * cp[u] * a * (1.0 - a);          /* forget gate */
    case 2: return dc_tot[u] * g[u] * (1.0 - a * a);           /* candidate */
    default: return dh[u] * tanh(c[u]) * a * (1.0 - a);        /* output gate */
    }
}

void lstm_backward(int B, int In, int H, const double *x, const double *h_prev,
                   const double *c_prev, const double *W, const double *gates,
                   const double *c, const double *dh, const double *dc,
                   double *dW, double *db, double *dx, double *dh_prev, double *dc_prev) {
    int G = 4 * H;
    double da[LSTM_COL_BLOCK];
    for (int r = 0; r < B; r++) {
        const double *g = gates + (size_t)r * G, *cp = c_prev + (size_t)r * H;
        const double *dhr = dh + (size_t)r * H, *dcr = dc + (size_t)r * H, *cr = c + (size_t)r * H;
        double *dhp = dh_prev + (size_t)r * H, *dcp = dc_prev + (size_t)r * H;
        double *dxr = dx ? dx + (size_t)r * In : NULL;
        /* dc_prev first holds the total gradient on c; it becomes dc_tot * f at the end */
        for (int u = 0; u < H; u++) {
            double tc = tanh(cr[u]);
            dcp[u] = dcr[u] + dhr[u] * g[3 * H + u] * (1.0 - tc * tc);
            dhp[u] = 0.0;
        }
        if (dxr) for (int k = 0; k < In; k++) dxr[k] = 0.0;
        for (int j0 = 0; j0 < G; j0 += LSTM_COL_BLOCK) {
            int nj = G - j0 < LSTM_COL_BLOCK ? G - j0 : LSTM_COL_BLOCK;
            for (int j = 0; j < nj; j++) da[j] = gate_grad(H, j0 + j, g, cp, cr, dhr, dcp);
            for (int j = 0; j < nj; j++) db[j0 + j] += da[j];
            for (int k = 0; k < In + H; k++) {
                /* dW[k] += [x,h_prev][k] * da;  d[x,h_prev][k] += W[k] . da */
                double a = xh_at(In, H, x, h_prev, r, k), s = 0.0;
                const double *wk = W + (size_t)k * G + j0;
                double *dwk = dW + (size_t)k * G + j0;
                for (int j = 0; j < nj; j++) { dwk[j] += a * da[j]; s += wk[j] * da[j]; }
                if (k >= In) dhp[k - In] += s;
                else if (dxr) dxr[k] += s;
            }
        }
        for (int u = 0; u < H; u++) dcp[u] *= g[H + u];
    }
}
