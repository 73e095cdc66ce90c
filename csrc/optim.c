#include "optim.h"

#include "kernels.h"

void spans_add(Spans *s, size_t off, size_t len) {
    /* merge with the previous span when contiguous: a standalone model is one span */
    if (s->n > 0 && s->off[s->n - 1] + s->len[s->n - 1] == off) {
        s->len[s->n - 1] += len;
        return;
    }
    s->off[s->n] = off;
    s->len[s->n] = len;
    s->n++;
}

double grad_sq_norm(const float *g, const Spans *s) {
    double total = 0.0;
    for (int i = 0; i < s->n; i++) total += kern->sq_norm(g + s->off[i], s->len[i]);
    return total;
}

void sgd_update(float *p, const float *g, const Spans *s, float lr, float scale, float wd) {
    for (int i = 0; i < s->n; i++) kern->sgd(p + s->off[i], g + s->off[i], s->len[i], lr, scale, wd);
}

void average_update(float *avg, const float *p, size_t n, long count) {
    kern->average(avg, p, n, count);
}
