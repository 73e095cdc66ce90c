/* NAO's encoder-predictor-decoder (Luo et al. 2018; the PTB search version of NAO-WS) in double
 * precision: the controller of the NAO search policy (DESIGN §6).
 *
 * An architecture of n nodes over K ops is a sequence of L = 2n tokens: node i (1..n)
 * contributes pred_i + 1 (in 1..i) at position 2(i-1) and op_i + n + 1 (in n+1..n+K) at
 * position 2i-1; token 0 is the start/end symbol, so the vocabulary has V = n + K + 1 tokens
 * (n + 5 for the paper's four activations).
 *
 * encoder   : token embedding (V, E); the two tokens of a node are concatenated into one
 *             (2E) input, so a 1-layer LSTM (2E -> H) runs n steps; every output h_t is
 *             L2-normalised (the context ctx_t), and the architecture embedding is
 *             emb = normalise(mean_t ctx_t). Dropout on the token embeddings when training.
 * predictor : `mlp_layers` ReLU layers of width M on emb, then one unit and a sigmoid: the
 *             predicted normalised score (0 = best in the search policy).
 * decoder   : LSTM (H -> H) started from (h, c) = (emb, emb), fed the previous token's
 *             embedding (V, H) (teacher forcing in training: start symbol, then tokens
 *             0..L-2); at every step dot-product attention of h over the n contexts, then
 *             o = tanh([mix, h] W_att + b_att), logits = o W_out + b_out over V tokens.
 * loss      : trade_off * MSE(pred, target) + (1 - trade_off) * NLL(tokens), both means
 *             (reference: trade_off = 0.8); Adam with L2 weight decay after clipping the
 *             global gradient norm (torch's clip_grad_norm: scale by max / (norm + 1e-6)).
 *
 * Greedy decoding is constrained to valid tokens (position 2(i-1) may only emit 1..i,
 * position 2i-1 only n+1..n+K), so every decoded sequence is an architecture of the space.
 * Everything is deterministic for a seed: initial weights from RNG stream 24, dropout masks
 * from stream 25 keyed by the step counter, the epoch shuffles of nao_fit from stream 26.
 * Every call runs on the core's pool threads (pool_threads() at the call): a batch is cut into
 * slices of rows fixed by its size alone (nao.c), so the results are the same bits for any
 * thread count. */
#ifndef NAS_EVAL_NAO_H
#define NAS_EVAL_NAO_H

#include <stddef.h>
#include <stdint.h>

#include "adam.h"

#define NAO_MAX_NODES 64
#define NAO_MAX_MLP 8
#define NAO_NORM_EPS 1e-12 /* torch.nn.functional.normalize's eps */

typedef struct {
    int nodes;      /* n: L = 2n tokens, n encoder steps */
    int ops;        /* K: number of activations (4 in the paper's space) */
    int emb;        /* E: encoder token embedding size */
    int hidden;     /* H: encoder and decoder LSTM size (the decoder starts from emb) */
    int mlp_layers; /* ReLU layers of the predictor (0..NAO_MAX_MLP) */
    int mlp_hidden; /* M: their width */
    double dropout; /* encoder embedding dropout when training, in [0, 1) */
} NaoShape;

/* Views of one flat arena (parameters, gradients and Adam moments share the layout). */
typedef struct {
    double *enc_emb;                /* (V, E) */
    double *enc_W, *enc_b;          /* (2E + H, 4H), (4H) */
    double *mlp_W[NAO_MAX_MLP + 1]; /* layer k: (in_k, M); the last one is the (in, 1) regressor */
    double *mlp_b[NAO_MAX_MLP + 1]; /* (M) ..., (1) */
    double *dec_emb;                /* (V, H) */
    double *dec_W, *dec_b;          /* (2H, 4H), (4H) */
    double *att_W, *att_b;          /* (2H, H), (H): rows 0..H-1 act on the mix, H..2H-1 on h */
    double *out_W, *out_b;          /* (H, V), (V) */
} NaoTensors;

#define NAO_MAX_TENSORS (2 * NAO_MAX_MLP + 12)

typedef struct {
    const char *name;
    size_t offset, rows, cols; /* a vector has rows = 1 */
} NaoTensorInfo;

typedef struct {
    AdamConfig adam;
    double max_grad_norm; /* <= 0: no clipping */
    double trade_off;     /* weight of the MSE term, in [0, 1] */
} NaoOptim;

typedef struct NaoModel NaoModel;

/* Sizes are validated by the caller (the bindings); NULL when out of memory. Activation
 * buffers hold `max_batch` rows: training batches may not be larger, inference calls walk
 * their input in chunks of that size. */
NaoModel *nao_create(NaoShape shape, int max_batch, uint64_t seed);
void nao_free(NaoModel *m);

NaoShape nao_shape(const NaoModel *m);
int nao_max_batch(const NaoModel *m);
size_t nao_num_params(const NaoModel *m);
int nao_tensors(const NaoModel *m, NaoTensorInfo *info); /* fills up to NAO_MAX_TENSORS, returns count */
double *nao_params(NaoModel *m);  /* flat arena of nao_num_params doubles */
double *nao_grads(NaoModel *m);   /* gradient of the last nao_loss_grad / train step */
double *nao_adam_m(NaoModel *m);
double *nao_adam_v(NaoModel *m);
int64_t *nao_step(NaoModel *m);    /* Adam steps taken (also keys the dropout masks) */
uint64_t *nao_shuffles(NaoModel *m); /* epoch shuffles drawn by nao_fit */

/* Tokens are (B, 2n) row-major and must be valid (checked by the caller). */

/* Loss of a batch of B <= max_batch rows and its gradient into nao_grads (overwritten).
 * train != 0 applies encoder dropout with the masks of `step`. mse and nll may be NULL. */
double nao_loss_grad(NaoModel *m, int B, const int *tok, const double *target, double trade_off,
                     int train, uint64_t step, double *mse, double *nll);

/* One optimiser step on a batch (dropout on, masks keyed by the new step count): loss and
 * gradient, clipping, Adam. Returns the loss; *grad_norm gets the norm before clipping. */
double nao_train_step(NaoModel *m, int B, const int *tok, const double *target, NaoOptim o,
                      double *mse, double *nll, double *grad_norm);

/* `epochs` passes over N rows in mini-batches of `batch` (the last one partial), reshuffled
 * every epoch when `shuffle`; out[0..1] get the mean MSE and NLL of the last epoch. */
void nao_fit(NaoModel *m, int N, const int *tok, const double *target, int epochs, int batch,
             int shuffle, NaoOptim o, double out[2]);

/* Evaluation-mode encoder: ctx (N, n, H), emb (N, H), pred (N); any output may be NULL. */
void nao_encode(NaoModel *m, int N, const int *tok, double *ctx, double *emb, double *pred);

/* Predictor on given embeddings emb (N, H): pred (N) and, if grad != NULL, d pred / d emb. */
void nao_predict_emb(NaoModel *m, int N, const double *emb, double *pred, double *grad);

/* Predictor on given contexts (N, n, H) through emb = normalise(mean_t ctx_t): pred (N) and,
 * if grad != NULL, d pred / d ctx (N, n, H) -- the direction NAO moves an architecture in. */
void nao_predict_ctx(NaoModel *m, int N, const double *ctx, double *pred, double *grad);

/* Greedy constrained decoding from contexts (N, n, H): each context row is L2-normalised
 * first and emb = normalise(mean_t ctx_t) starts the decoder. tok gets (N, 2n) tokens. */
void nao_decode(NaoModel *m, int N, const double *ctx, int *tok);

#endif
