#include "darts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mixed_cell.h"
#include "optim.h"

/* y = x + a v (memory-bound: the baseline instruction set is enough) */
static void shifted(size_t n, const float *restrict x, float a, const float *restrict v,
                                float *restrict y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] + a * v[i];
}

static int all_finite(size_t n, const double *x) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* One forward + backward in training mode (dropout on, batch statistics), masks keyed by
 * `counter`, no TAR/AR (the reference's Architect uses the plain cross-entropy), no update. */
static int pass(LM *m, const CellArch *a, Segment s, int alpha_grad, int weight_grad, int freeze,
                uint64_t counter, StepStats *out) {
    MixedCell *mc = m->mix;
    mc->alpha_grad = alpha_grad;
    mc->weight_grad = weight_grad;
    mc->freeze_running = freeze;
    m->step = counter;
    if (lm_reserve(m, s.T, s.B, a->n) != 0) return -1;
    float *h_out = s.h_out;
    if (!h_out) {
        size_t need = (size_t)s.B * m->d;
        if (mc->sink_floats < need) {
            free(mc->sink);
            mc->sink = alloc_floats(need);
            mc->sink_floats = mc->sink ? need : 0;
        }
        if (!mc->sink) return -1;
        h_out = mc->sink;
    }
    StepOptions opt = {.train = 1, .backward = 1};
    *out = lm_step(m, a, s.inputs, s.targets, s.T, s.B, s.h0, h_out, opt);
    return 0;
}

/* the validation pass of the paper code's cached unrolled model: at alpha0, not alpha */
static int pass_at(LM *m, const CellArch *a, Segment s, const double *alpha_at, uint64_t counter,
                   StepStats *out) {
    MixedCell *mc = m->mix;
    const size_t na = (size_t)mc->E * MIXED_OPS;
    double *kept = mc->dwork + 2 * na;
    if (alpha_at) {
        memcpy(kept, mc->alpha, na * sizeof(double));
        memcpy(mc->alpha, alpha_at, na * sizeof(double));
        mixed_update_probs(mc);
    }
    int rc = pass(m, a, s, 1, 1, 1, counter, out);
    if (alpha_at) {
        memcpy(mc->alpha, kept, na * sizeof(double));
        mixed_update_probs(mc);
    }
    return rc;
}

/* the paper code's v: the cached model's weight gradients summed over steps, clipped in place
 * (Architect._clip on gradients nobody zeroes); v and its norm out, the sum kept in `sum` */
static double accumulate_v(size_t total, double *sum, const float *grads, float clip, float *v) {
    double norm = 0.0;
    for (size_t i = 0; i < total; i++) {
        sum[i] += grads[i];
        norm += sum[i] * sum[i];
    }
    norm = sqrt(norm);
    double coef = clip > 0 ? clip / (norm + 1e-6) : 1.0;
    if (coef < 1.0) {
        for (size_t i = 0; i < total; i++) sum[i] *= coef;
        norm *= coef;
    }
    for (size_t i = 0; i < total; i++) v[i] = (float)sum[i];
    return norm;
}

/* the second-order gradient into mc->dalpha; 0 ok, 1 non-finite, -1 out of memory */
static int second_order(LM *m, const CellArch *a, Segment tr, Segment va, DartsOptions o,
                        uint64_t k, DartsStats *st) {
    MixedCell *mc = m->mix;
    const size_t total = m->lay.total, na = (size_t)mc->E * MIXED_OPS;
    double *dval = mc->dwork, *dplus = dval + na;
    /* the masks of each training-batch pass: fresh per pass (the reference), or step k's */
    const uint64_t c_virtual = o.per_pass ? DARTS_PASS_COUNTER(k, 1) : k;
    const uint64_t c_plus = o.per_pass ? DARTS_PASS_COUNTER(k, 2) : k;
    const uint64_t c_minus = o.per_pass ? DARTS_PASS_COUNTER(k, 3) : k;
    double *alpha0 = o.cache, *gsum = o.cache ? o.cache + na : NULL, *vsum = o.cache ? o.cache + 2 * na : NULL;
    if (mc->arena_floats < total) {
        free(mc->saved); free(mc->vec);
        mc->saved = alloc_floats(total);
        mc->vec = alloc_floats(total);
        mc->arena_floats = mc->saved && mc->vec ? total : 0;
        if (!mc->arena_floats) return -1;
    }
    float *w = m->params;
    memcpy(mc->saved, w, total * sizeof(float));
    StepStats s;
    /* virtual step w' = w - eta (clipped g + wd w) on the training batch; this pass, at the
     * model's own weights, is the one whose batch statistics enter the running ones */
    if (pass(m, a, tr, 0, 1, 0, c_virtual, &s)) return -1;
    st->virtual_grad_norm = s.grad_norm;
    if (!isfinite(s.loss_sum) || !isfinite(s.grad_norm)) return 1;
    /* the reference scales the implicit term by clip / (norm + 1e-6) even when that exceeds 1
     * (Architect._clip returns the raw coefficient): kept as is */
    double coef = o.clip > 0 ? o.clip / (s.grad_norm + 1e-6) : 1.0;
    Spans all = {.n = 0};
    spans_add(&all, 0, total);
    sgd_update(w, m->grads, &all, o.eta, coef < 1.0 ? (float)coef : 1.0f, o.wd);
    /* the validation loss at w' (at alpha0 for the cached model): d/dalpha, and v = its
     * weight gradient, clipped */
    int rc = pass_at(m, a, va, alpha0, DARTS_PASS_COUNTER(k, 0), &s);
    if (rc == 0) {
        st->valid_loss_sum = s.loss_sum;
        st->tokens = s.tokens;
        st->valid_grad_norm = s.grad_norm;
        memcpy(dval, mc->dalpha, na * sizeof(double));
    }
    double vnorm = s.grad_norm;
    if (rc == 0 && !(isfinite(s.loss_sum) && isfinite(vnorm) && all_finite(na, dval))) rc = 1;
    double vscale = 1.0;
    if (rc == 0 && vsum) {
        vnorm = accumulate_v(total, vsum, m->grads, o.clip, mc->vec);
        if (!isfinite(vnorm)) rc = 1;
    } else if (rc == 0) {
        memcpy(mc->vec, m->grads, total * sizeof(float));
        vscale = o.clip > 0 && vnorm + 1e-6 > o.clip ? o.clip / (vnorm + 1e-6) : 1.0;
    }
    if (rc == 0 && vnorm > 0) {
        double R = o.r / (vscale * vnorm); /* R = r / ||v|| for the clipped v */
        float step = (float)(R * vscale);
        /* (d/dalpha L_train(w + R v) - d/dalpha L_train(w - R v)) / 2R */
        shifted(total, mc->saved, step, mc->vec, w);
        const int freeze = !o.bn_every_pass;
        rc = pass(m, a, tr, 1, 0, freeze, c_plus, &s);
        if (rc == 0) {
            memcpy(dplus, mc->dalpha, na * sizeof(double));
            shifted(total, mc->saved, -step, mc->vec, w);
            rc = pass(m, a, tr, 1, 0, freeze, c_minus, &s);
        }
        if (rc == 0) {
            double scale = (double)o.eta * coef / (2.0 * R);
            for (size_t i = 0; i < na; i++) mc->dalpha[i] = dval[i] - scale * (dplus[i] - mc->dalpha[i]);
        }
    } else if (rc == 0) {
        memcpy(mc->dalpha, dval, na * sizeof(double)); /* v = 0: no implicit term */
    }
    if (rc == 0 && gsum && o.accumulate) { /* the cached model's alpha gradient, never zeroed */
        for (size_t i = 0; i < na; i++) mc->dalpha[i] = gsum[i] += mc->dalpha[i];
    }
    memcpy(w, mc->saved, total * sizeof(float));
    return rc;
}

int darts_alpha_step(LM *m, const CellArch *a, Segment tr, Segment va, DartsOptions o,
                     DartsStats *st) {
    MixedCell *mc = m->mix;
    const uint64_t k = m->step;
    const size_t na = (size_t)mc->E * MIXED_OPS;
    memset(st, 0, sizeof *st);
    int rc;
    if (o.order == 1) {
        StepStats s;
        rc = pass(m, a, va, 1, 0, 0, DARTS_PASS_COUNTER(k, 0), &s);
        if (rc == 0) {
            st->valid_loss_sum = s.loss_sum;
            st->tokens = s.tokens;
            rc = isfinite(s.loss_sum) ? 0 : 1;
        }
    } else {
        rc = second_order(m, a, tr, va, o, k, st);
    }
    m->step = k;
    mc->alpha_grad = 0;
    mc->weight_grad = 1;
    mc->freeze_running = 0;
    if (rc < 0) return -1;
    st->ok = rc == 0 && all_finite(na, mc->dalpha);
    if (st->ok && o.apply) {
        mc->adam_t++;
        adam_update(na, mc->alpha, mc->dalpha, mc->adam_m, mc->adam_v, mc->adam_t, o.adam);
        mixed_update_probs(mc);
    }
    return 0;
}
