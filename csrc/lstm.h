/* One step of an LSTM cell in double precision, batch-major, gate order (i, f, g, o) as in
 * torch.nn.LSTM. W packs the input and hidden weights as one (In + H, 4H) row-major matrix:
 * rows 0..In-1 act on x, rows In..In+H-1 on h_prev; b is one (4H) bias (torch's b_ih + b_hh).
 * The input size is called In because I is the imaginary-unit macro of <complex.h>, which the
 * NumPy headers pull into the bindings. Used by the ENAS, DARTS and NAO controllers.
 *
 * The gate products run over the whole batch as double-precision gemms (one per weight block:
 * x . W_x and h_prev . W_h forward; the weight gradients, dx and dh_prev backward), the
 * elementwise gate maths as plain loops. Results are deterministic for a given BLAS thread
 * count and, in the backward pass, workspace size. */
#ifndef NAS_EVAL_LSTM_H
#define NAS_EVAL_LSTM_H

#include <stddef.h>

/* gates receives the post-activation gates (sigma(i), sigma(f), tanh(g), sigma(o)); the backward
 * pass needs them together with x, h_prev, c_prev and c. */
void lstm_forward(int B, int In, int H, const double *x, const double *h_prev,
                  const double *c_prev, const double *W, const double *b,
                  double *gates, double *c, double *h);

/* dh is the gradient on h (B,H); dc on input is the gradient reaching c from step t+1 (B,H).
 * dW (In+H,4H) and db (4H) are accumulated into; dx (B,In, may be NULL), dh_prev and dc_prev
 * (B,H) are overwritten. dh_prev and dc_prev must not alias dh or dc.
 * The pre-activation gradients go through `work` (work_len >= 1 doubles): with
 * lstm_backward_work(B, H) doubles the whole batch is one tile (one gemm per weight block);
 * less walks the batch in tiles of rows (or of gate columns when one row does not fit). */
void lstm_backward_ws(int B, int In, int H, const double *x, const double *h_prev,
                      const double *c_prev, const double *W, const double *gates,
                      const double *c, const double *dh, const double *dc,
                      double *dW, double *db, double *dx, double *dh_prev, double *dc_prev,
                      double *work, size_t work_len);

/* --- sequences, step by step -----------------------------------------------------------
 * When every step's input is known up front (teacher forcing, an encoder), the input part
 * b + x W_x of all T steps is one (T B, 4H) product and the weight gradients of all steps one
 * product over K = T B rows (lstm_weight_grads); only h_prev W_h and its backward stay per
 * step. These two functions are that per-step remainder. */

/* On entry gates (B, 4H) holds the input part b + x W_x of this step; adds h_prev W_h (W_h is
 * (H, 4H)), activates in place and writes c, h and, when tc != NULL, tanh(c) for the backward.
 * lstm_forward is this after its own input part: the same bits. */
void lstm_step_forward(int B, int H, const double *h_prev, const double *c_prev, const double *W_h,
                       double *gates, double *c, double *h, double *tc);

/* Backward of lstm_step_forward: from dh (the whole gradient on h) and dc (on c, from step
 * t+1), the pre-activation gradients da (B, 4H), dc_prev = (dc + dh o (1 - tanh(c)^2)) f and
 * dh_prev = da W_h^T (overwritten; skipped when NULL, as dc_prev). tanh(c) is read from tc
 * when given, else recomputed from c. da may be `gates` itself (each unit reads its four gates
 * before writing). dh_prev and dc_prev must not alias dh or dc. */
void lstm_step_backward(int B, int H, const double *c_prev, const double *gates, const double *c,
                        const double *tc, const double *dh, const double *dc, const double *W_h,
                        double *da, double *dh_prev, double *dc_prev);

/* Weight gradients of `rows` (step, row) pairs at once: dW[0:In] += x^T da, dW[In:In+H] +=
 * h_prev^T da, db += the column sums of da (db may be NULL; In = 0 skips x). */
void lstm_weight_grads(int rows, int In, int H, const double *x, const double *h_prev, const double *da,
                       double *dW, double *db);

/* The workspace that makes a batch of B rows one tile. */
static inline size_t lstm_backward_work(int B, int H) { return (size_t)B * 4 * (size_t)H; }

/* lstm_backward_ws with a fixed workspace on the stack (LSTM_STACK_WORK doubles). */
#define LSTM_STACK_WORK 4096
void lstm_backward(int B, int In, int H, const double *x, const double *h_prev,
                   const double *c_prev, const double *W, const double *gates,
                   const double *c, const double *dh, const double *dc,
                   double *dW, double *db, double *dx, double *dh_prev, double *dc_prev);

#endif
