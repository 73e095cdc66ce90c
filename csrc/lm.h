/* The recurrent-cell language model of docs/design.md §3: tied embedding/decoder, a cell of n
 * nodes over a bank of node matrices, softmax cross-entropy, the five dropouts, TAR/AR.
 * One model object serves a standalone cell (n matrices) and every weight-sharing
 * super-net (any number of matrices; an architecture says which matrix each node uses). */
#ifndef NAS_EVAL_LM_H
#define NAS_EVAL_LM_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "fused_xent.h"

typedef struct {
    float out, h, x, in, emb; /* dropout probabilities (docs/design.md §4) */
} Dropouts;

/* Offsets (in floats) of each tensor inside the parameter arena; the gradient and the
 * ASGD average arenas use the same layout. */
typedef struct {
    size_t embedding; /* (V, d) */
    size_t w0;        /* n_w0 x (2d, 2d) */
    size_t mats;      /* n_mats x (d, 2d) */
    size_t bias;      /* (V,) */
    size_t total;
} ParamLayout;

struct MixedCell; /* mixed_cell.h */

typedef struct {
    int V, d, n_w0, n_mats, max_nodes;
    uint64_t seed;
    Dropouts drop;
    ParamLayout lay;
    float *params, *grads, *avg;  /* arenas of lay.total floats; avg is NULL until ASGD */
    int64_t avg_count;            /* number of averaged steps since ASGD started */
    unsigned char *mat_used;      /* (n_mats,) matrices touched by the last backward */
    uint64_t step;                /* training-step counter: keys the dropout masks */
    float hidden_clip;            /* > 0: every step's h_t rows clipped to this L2 norm (cell.h) */

    /* activation arena, sized for `rows` = T*B rows and the last shape it was laid for */
    size_t act_rows, act_floats;
    int act_B, act_T, act_nodes, act_workers;
    int act_panels, act_split_d;  /* the cell's switches (kernels.h) when the arena was laid */
    float *acts;
    float *X;       /* (T*B, d)   embedded input after every input-side mask */
    float *CF;      /* (n+1) x (T*B, 2d): [gate | candidate] per node, then [da | db] */
    float *S;       /* (n+1) x (T*B, d): node states */
    float *SM;      /* (n+1) x (T*B, d): node states times m_h, the inputs of the node products */
    float *H;       /* ((T+1)*B, d): H[0] = h_{-1}, H[t+1] = h_t */
    float *HM;      /* ((T+1)*B, d): H times m_h */
    float *HD;      /* (T*B, d): h after output dropout, the decoder's input */
    float *dHD;     /* (T*B, d): gradient of the loss with respect to HD, then to H */
    /* the decoder + softmax cross-entropy: fused (fused_xent.h), or with stored logits
     * (decoder.h; lm_decoder_stored says when); a pass's unused buffers are empty */
    XentWork xent;  /* the fused pass's workspace */
    float *logits;  /* workers x (chunk, V) */
    float *dE_part; /* (workers - 1) x (V, d): other workers' partial embedding gradients */
    float *dbias_part; /* workers x (V,) */
    float *dS;      /* (n+1) x (B, d) per-step state gradients */
    float *G;       /* (n+1) x (B, d) per-step sum of dab_i W_i^T over children of a node */
    float *dh;      /* (B, d) gradient carried into h_{t-1} */
    float *tmp;     /* (B, d) scratch: the input-dropout mask before it joins mask_x */
    float *mask_x;  /* (B, d) input * x locked masks */
    float *mask_h;  /* (B, d) */
    float *mask_out;/* (B, d) */
    float *mask_emb;/* (V,) */
    float *packed;  /* node matrices packed in panels for the by-column cell (panel.h) */
    float *clipf;   /* (T*B): each row's hidden-norm clipping factor per step (cell.h) */
    /* NULL: the discrete cell. Otherwise the DARTS mixed cell (mixed_cell.h) replaces it:
     * n_mats = n node matrices, every node reads every earlier node, CF holds one block
     * per edge after node 0's; the model owns it (lm_free frees it). */
    struct MixedCell *mix;
} LM;

typedef struct {
    double loss_sum;   /* summed token cross-entropy (nats) */
    double reg;        /* TAR + AR penalty added to the objective (mean-based) */
    double grad_norm;  /* global L2 norm of the gradient before clipping */
    long tokens;
} StepStats;

typedef struct {
    float lr, clip, wd, tar, ar;
    int train;    /* 1: dropouts on and the step counter advances */
    int backward; /* 1: compute gradients into the gradient arena */
    int update;   /* 1: clip + SGD (+ averaging) after the backward; 0: keep grads */
    int asgd;    /* 1: update the running average after the SGD step */
} StepOptions;

LM *lm_create(int V, int d, int n_w0, int n_mats, int max_nodes, uint64_t seed, Dropouts drop);
void lm_free(LM *m);
int lm_reserve(LM *m, int T, int B, int n_nodes);
void lm_init_params(LM *m);
int lm_start_averaging(LM *m);

/* checks an architecture against this model; returns NULL or a static message */
const char *lm_check_arch(const LM *m, const CellArch *a);

/* One forward (+ backward and optional update) over a (T, B) segment of tokens.
 * h0 (B, d) is the incoming hidden state; h_out (B, d) receives h_T. */
StepStats lm_step(LM *m, const CellArch *a, const int32_t *inputs, const int32_t *targets,
                  int T, int B, const float *h0, float *h_out, StepOptions opt);

/* Which decoder pass a step takes: $NAS_EVAL_DECODER = "fused" (always fused_xent.h),
 * "stored" (always decoder.h's stored logits: the core before the fused pass) or unset/""
 * (fused for forward passes, and for training steps below d = LM_STORED_TRAIN_MIN_D, which
 * lm.c sets from measurements: both do 6NVd FLOPs in training, the fused pass with its exp
 * tiles kept; fused_xent.h). lm_decoder_init reads the variable once (import); returns
 * NULL or a static message for an unknown value (then the default is used). */
const char *lm_decoder_init(const char *env_value);
int lm_decoder_stored(int d, int backward);

/* Sum of token cross-entropy over a batchified stream data (N, B): windows of bptt,
 * hidden carried from zero, no dropout (the DARTS evaluation protocol). */
double lm_evaluate(LM *m, const CellArch *a, const int32_t *data, int N, int B, int bptt,
                   long *tokens);

#endif
