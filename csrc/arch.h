/* One architecture as the core sees it, and the operation codes: the bottom layer that the
 * cell (cell.h), its elementwise loops (elementwise.h) and the model (lm.h) all read. */
#ifndef NAS_EVAL_ARCH_H
#define NAS_EVAL_ARCH_H

#define LM_MAX_NODES 32

enum { OP_TANH = 0, OP_RELU = 1, OP_SIGMOID = 2, OP_IDENTITY = 3, N_OPS = 4 };

/* Node i (1..n) reads node pred[i-1], applies op[i-1] and uses bank matrix mat[i-1]; the
 * output h_t is the mean of the nodes with out[i-1] != 0. */
typedef struct {
    int n;
    int pred[LM_MAX_NODES];
    int op[LM_MAX_NODES];
    int mat[LM_MAX_NODES];
    int out[LM_MAX_NODES];
    int w0;  /* which input-node matrix W0 of the bank (one per architecture when nothing is shared) */
} CellArch;

#endif
