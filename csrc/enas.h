/* The ENAS controller (Pham et al. 2018; the PyTorch reference's settings, DESIGN section 6):
 * a stacked LSTM in double precision (cfg.layers layers: 1 is the paper code's LSTMCell, 2 the
 * paper text's "two-layer LSTM"; layer l > 0 reads layer l - 1's new h, the heads read the top
 * layer's) that writes a recurrent cell decision by decision,
 * node 1's activation, then for each node i >= 2 its predecessor and its activation. Each
 * decision has its own linear head; logits are divided by a temperature and squashed by
 * tanh_c * tanh; the embedding of each decision is the next LSTM input (the first step reads
 * a zero vector, as the reference does; embedding row 0 is kept but unused). REINFORCE with a
 * moving-average baseline and Adam train it. Sampling, teacher-forced scoring, the backward
 * pass, Adam and the exact probability of every architecture of a small space live here. */
#ifndef NAS_EVAL_ENAS_H
#define NAS_EVAL_ENAS_H

#include <stddef.h>
#include <stdint.h>

#include "adam.h"

#define ENAS_MAX_NODES 32
#define ENAS_MAX_DECISIONS (2 * ENAS_MAX_NODES - 1)
#define ENAS_MAX_LAYERS 4
/* sequences per forward/backward pass: the activation buffers hold one chunk */
#define ENAS_CHUNK 64

/* How the entropy bonus enters (the reference's --entropy_mode): added to each decision's
 * reward, or a regulariser whose gradient raises the entropy directly. */
enum { ENAS_ENTROPY_REWARD = 0, ENAS_ENTROPY_REGULARIZER = 1 };

/* Sampling draws from csrc/rng.h's STREAM_ENAS_SHARED, _CONTROLLER and _FINAL (17-19), each
 * with its own counter of sequences drawn; STREAM_ENAS_INIT (16) draws the initial weights. */
#define ENAS_N_SAMPLE_STREAMS 3

typedef struct {
    int n_nodes, n_ops, hidden;
    int layers;                 /* stacked LSTM layers, 1..ENAS_MAX_LAYERS (0 counts as 1) */
    int restrict_s0;            /* nodes >= 2 may not take s0 as predecessor (the original ENAS) */
    int fixed[ENAS_MAX_NODES];  /* per node: -1 = free, else the digit n_ops * pred + op */
    double temperature, tanh_c;
    double baseline_decay, entropy_weight;
    int entropy_mode;
    AdamConfig adam;
    uint64_t seed;
} EnasConfig;

typedef struct {
    int node;         /* 1..n */
    int is_pred;      /* 1: predecessor decision, 0: activation decision */
    int n_choices;    /* width of this decision's head */
    int first_pred;   /* predecessor node of choice 0: 0, or 1 under restrict_s0 */
    int forced;       /* -1, or the one allowed choice when the node is fixed */
    size_t leaves_after; /* architectures of the space below one choice of this decision */
    size_t off_W, off_b; /* head weight (H, n_choices) and bias (n_choices) in params */
} EnasDecision;

typedef struct {
    EnasConfig cfg;
    int H, n_dec, max_choices, emb_rows;
    EnasDecision dec[ENAS_MAX_DECISIONS];
    size_t off_W, off_b, off_emb, n_params;
    /* layer l's LSTM weight (2H, 4H) and bias (4H) in params: layer 0 at off_W / off_b, the
     * layers above after the heads, so a one-layer controller keeps its layout */
    int L;
    size_t off_lW[ENAS_MAX_LAYERS], off_lb[ENAS_MAX_LAYERS];
    double *params, *grads, *adam_m, *adam_v;
    int64_t adam_t;
    double baseline[ENAS_MAX_DECISIONS];
    int has_baseline;
    uint64_t drawn[ENAS_N_SAMPLE_STREAMS]; /* sequences drawn so far from streams 17, 18, 19 */
    /* activations of one chunk, decision-major: x, gates (L, n_dec, C, .), h, c (L, n_dec + 1, C, H);
     * the backward's dh, dc, dh_out, dc_out are (L, C, H) */
    int *rows, *act;
    double *x, *h, *c, *gates, *tanhs, *logp_all;
    double *dh, *dc, *dh_out, *dc_out, *dx;
    double *k_logp, *k_ent, *k_glogp, *k_gent;   /* (C, n_dec) per-chunk REINFORCE terms */
} EnasController;

/* Validates the shape (returns NULL on a bad config or no memory) and draws initial weights:
 * every matrix, embedding and LSTM bias uniform in +-0.1 (every layer), head biases zero
 * (the reference). */
EnasController *enas_create(const EnasConfig *cfg);
void enas_free(EnasController *e);

/* Number of architectures of the space the controller writes (fixed nodes count once),
 * or 0 when it does not fit in size_t. */
size_t enas_space_size(const EnasController *e);

/* Draws `count` sequences from sampling stream `stream` (STREAM_ENAS_SHARED..FINAL), continuing its counter:
 * actions (count, n_dec) choice indices, per-decision log-probabilities and entropies. */
void enas_sample(EnasController *e, int stream, int count, int *actions, double *logp, double *entropy);

/* Teacher-forced log-probabilities and entropies of given action sequences. */
void enas_score(EnasController *e, int count, const int *actions, double *logp, double *entropy);

/* grads += d/dtheta sum_{k,d} (glogp[k,d] * logp[k,d] + gent[k,d] * entropy[k,d]). */
void enas_accumulate_grad(EnasController *e, int count, const int *actions,
                          const double *glogp, const double *gent);
void enas_zero_grad(EnasController *e);
/* One Adam step on params with the accumulated grads. */
void enas_adam_step(EnasController *e);

/* One REINFORCE update from `count` scored samples: per decision reward R_k (+ entropy bonus
 * in reward mode), baseline b <- decay * b + (1 - decay) * r sample by sample (the first
 * reward initialises it), advantage r - b, loss -mean_k sum_d adv * logp (- weight * entropy
 * in regulariser mode), one Adam step. adv (count, n_dec) receives the advantages. */
void enas_reinforce(EnasController *e, int count, const int *actions, const double *rewards, double *adv);

/* Exact log-probability of every architecture of the space in id order (the mixed-radix ids
 * of nas_eval.space, positions in a fixed subspace); -inf where restrict_s0 forbids one.
 * out has enas_space_size() entries. */
void enas_arch_log_probs(EnasController *e, double *out);

/* Architecture <-> action sequence: preds and ops are (count, n_nodes). decode returns 0;
 * encode returns -1 - k when sequence k is not in the space (fixed nodes, restrict_s0). */
void enas_decode(const EnasController *e, int count, const int *actions, int *preds, int *ops);
int enas_encode(const EnasController *e, int count, const int *preds, const int *ops, int *actions);
/* -1 when every action is a valid choice of its decision (and the forced one at fixed nodes),
 * else the flat index of the first bad one. */
int enas_check_actions(const EnasController *e, int count, const int *actions);

#endif
