/* Counter-based random numbers: every draw is a pure function of (seed, stream, counter,
 * index), so dropout masks and initial weights do not depend on thread count or call order. */
#ifndef NAS_EVAL_RNG_H
#define NAS_EVAL_RNG_H

#include <stdint.h>
#include <math.h>

static inline uint64_t rng_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Key for one stream of draws: mixes seed, stream id and a step counter once. */
static inline uint64_t rng_key(uint64_t seed, uint64_t stream, uint64_t counter) {
    return rng_mix64(rng_mix64(seed ^ (stream * 0xd1b54a32d192ed03ULL)) + counter);
}

/* Uniform in [0, 1) with 24 random bits (exact in float32). */
static inline float rng_uniform(uint64_t key, uint64_t i) {
    return (float)(rng_mix64(key + i * 0x9e3779b97f4a7c15ULL) >> 40) * (1.0f / 16777216.0f);
}

/* Standard normal by Box-Muller from two independent uniforms. */
static inline double rng_normal(uint64_t key, uint64_t i) {
    double u1 = ((rng_mix64(key + 2 * i * 0x9e3779b97f4a7c15ULL) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (rng_mix64(key + (2 * i + 1) * 0x9e3779b97f4a7c15ULL) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Streams: one id per kind of draw, so masks never reuse each other's numbers. The ids that
 * Python draws from (those marked "drawn in Python" here, and 32-34) are in nas_eval/rng.py. */
enum {
    /* the language model (csrc/lm.c): its initial weights, then its dropout masks (docs/design.md
     * §4.2), each keyed by the training step */
    STREAM_INIT = 1,
    STREAM_MASK_X = 2,   /* dropoutx: x_t inside the cell */
    STREAM_MASK_H = 3,   /* dropouth: every input of a recurrent product */
    STREAM_MASK_OUT = 4, /* dropout: h_t before the decoder */
    STREAM_MASK_EMB = 5, /* dropoute: whole embedding rows (word types) */
    STREAM_MASK_IN = 6,  /* dropouti: the embedded sequence (multiplied into the x mask) */
    STREAM_BPTT = 7,     /* drawn in Python (nas_eval/engine/loop.py): the segment lengths */
    /* ENAS controller (csrc/enas.c): initial weights, then one stream per phase that samples */
    STREAM_ENAS_INIT = 16,
    STREAM_ENAS_SHARED = 17,
    STREAM_ENAS_CONTROLLER = 18,
    STREAM_ENAS_FINAL = 19,
    /* DARTS (20-23): the initial architecture weights alpha (csrc/mixed_cell.c) */
    STREAM_DARTS_ALPHA = 20,
    /* NAO controller (csrc/nao.c): 24-27 */
    STREAM_NAO_INIT = 24,    /* initial weights, one key per tensor */
    STREAM_NAO_DROPOUT = 25, /* encoder embedding dropout, keyed by the Adam step */
    STREAM_NAO_SHUFFLE = 26, /* epoch shuffles of nao_fit, keyed by a shuffle counter */
    STREAM_NAO_POOL = 27,    /* drawn in Python (nas_eval/policies/nao.py): the architecture pool,
                              * counter 0 the initial pool, counter r the random additions of round r */
    STREAM_NAO_DROP = 28,    /* drawn in Python (nas_eval/engine/nao.py): the epoch shuffles of a
                              * controller fit that drops partial batches, keyed by an epoch counter */
};

#endif
