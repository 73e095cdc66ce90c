/* One step of an LSTM cell in double precision, batch-major, gate order (i, f, g, o) as in
 * torch.nn.LSTM. W packs the input and hidden weights as one (In + H, 4H) row-major matrix:
 * rows 0..In-1 act on x, rows In..In+H-1 on h_prev; b is one (4H) bias (torch's b_ih + b_hh).
 * The input size is called In because I is the imaginary-unit macro of <complex.h>, which the
 * NumPy headers pull into the bindings. Used by the ENAS, DARTS and NAO controllers: small
 * sizes, so plain loops, no BLAS. */
#ifndef NAS_EVAL_LSTM_H
#define NAS_EVAL_LSTM_H

/* gates receives the post-activation gates (sigma(i), sigma(f), tanh(g), sigma(o)); the backward
 * pass needs them together with x, h_prev, c_prev and c. */
void lstm_forward(int B, int In, int H, const double *x, const double *h_prev,
                  const double *c_prev, const double *W, const double *b,
                  double *gates, double *c, double *h);

/* dh is the gradient on h (B,H); dc on input is the gradient reaching c from step t+1 (B,H).
 * dW (In+H,4H) and db (4H) are accumulated into; dx (B,In, may be NULL), dh_prev and dc_prev
 * (B,H) are overwritten. dh_prev and dc_prev must not alias dh or dc. */
void lstm_backward(int B, int In, int H, const double *x, const double *h_prev,
                   const double *c_prev, const double *W, const double *gates,
                   const double *c, const double *dh, const double *dc,
                   double *dW, double *db, double *dx, double *dh_prev, double *dc_prev);

#endif
