/* The recurrent cell through time: forward over T steps, backward through time.
 * Per-step work is only what the recurrence forces (one (B,d)x(d,2d) product per node
 * and step); everything that can be batched over all T*B rows lives in lm.c. */
#ifndef NAS_EVAL_CELL_H
#define NAS_EVAL_CELL_H

#include "arch.h"
#include "parallel.h"

/* How the workers of one pool job share the cell (cell.c): by batch rows, in chunks of
 * row_chunk rows (all B rows with one worker), or by 32-column panels (by_cols), each piece
 * a ticket of the shared queue. */
typedef struct {
    int T, B, d;
    int by_cols, row_chunk;
    TaskQueue *queue;
} CellWork;

/* Designated initialisers of the sizes that the passes of both cells (cell.c, mixed_cell.c)
 * index by, from the CellWork *w: members T, B, d, n_panels (of 32 columns), bd (one step's
 * (B, d)), s_stride (a node's (T*B, d)), cf_stride (a node's (T*B, 2d)), pf (one packed
 * (d, d) matrix, panel.h) and per_node (a node's two). */
#define CELL_SIZES(w)                                                                         \
    .T = (w)->T, .B = (w)->B, .d = (w)->d, .n_panels = panel_count((w)->d),                     \
    .bd = (size_t)(w)->B * (w)->d, .s_stride = (size_t)(w)->T * (w)->B * (w)->d,               \
    .cf_stride = 2 * (size_t)(w)->T * (w)->B * (w)->d, .pf = panel_floats((w)->d, (w)->d),     \
    .per_node = 2 * panel_floats((w)->d, (w)->d)

/* Buffers, all (T*B)-row blocks per node (see LM): CF (n+1) x (T*B, 2d) holds on entry
 * x_t W0[:d] in block 0 and receives [gate | candidate], later [da | db]; S, SM (n+1) x
 * (T*B, d) node states and their h-masked copies (SM == S without h dropout); H, HM
 * ((T+1)*B, d) with H[0] = h_{-1} on entry; dH (T*B, d) the gradient with respect to
 * h_0..h_{T-1}; dS, G (n+1) x (B, d) and dh (B, d) per-step scratch; dh ends as the
 * gradient with respect to h_{-1}. W[i] is node i's matrix (1..n), w0h = W0[d:]. */
typedef struct {
    const float *w0h;
    float *const *W;
    const float *mask_h;
    float *CF, *S, *SM, *H, *HM;
    const float *dH;
    float *dS, *G, *dh;
    float *packed; /* NULL, or products through panels: (n+1) x 2 panel_floats(d, d) */
    /* > 0: the paper code's hidden-norm clipping (cell.c clip_rows): every row of h_t whose
     * L2 norm exceeds it is rescaled to it at every step; clipf (T*B) receives each row's
     * factor (1: left alone), which the backward applies to the gradient reaching h_t */
    float hidden_clip;
    float *clipf;
} CellBuffers;

/* Panel q of every node matrix 0..n (w0h, W[1..n]) into buf->packed (panel.h), as each
 * pass's products read them: for the forward the gate and candidate halves of W apart, for
 * the backward W^T. For cell.c and mixed_cell.c, whose first phase calls it per panel. */
void cell_pack_panel(const CellBuffers *buf, int n, int d, int q, int backward);

/* every worker of the job calls these with the same work and buffers */
void cell_forward(const CellArch *a, const CellWork *w, const CellBuffers *buf);
void cell_backward(const CellArch *a, const CellWork *w, const CellBuffers *buf);

#endif
