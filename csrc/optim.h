/* Gradient-norm clipping, SGD with weight decay, and the ASGD running average. */
#ifndef NAS_EVAL_OPTIM_H
#define NAS_EVAL_OPTIM_H

#include <stddef.h>

/* A list of (offset, length) spans of the arena that one step touched. */
typedef struct {
    size_t off[64 + 4];
    size_t len[64 + 4];
    int n;
} Spans;

void spans_add(Spans *s, size_t off, size_t len);
double grad_sq_norm(const float *g, const Spans *s);
/* p -= lr * (scale * g + wd * p) over the spans */
void sgd_update(float *p, const float *g, const Spans *s, float lr, float scale, float wd);
/* avg += (p - avg) / count over the whole arena */
void average_update(float *avg, const float *p, size_t n, long count);

#endif
