/* nas_eval._core.MixedModel: the LM of lm.h with the DARTS mixed cell (mixed_cell.h) and the
 * architecture step (darts.h). Arrays cross as NumPy arrays; every argument is checked and a
 * bad one raises ValueError naming it; long calls release the GIL. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>

#include <math.h>

#include "py_darts.h"
#include "py_tokens.h"

#include "darts.h"
#include "lm.h"
#include "mixed_cell.h"

typedef struct {
    PyObject_HEAD
    LM *lm;
    CellArch arch; /* n nodes, node i on matrix i - 1, every node an output */
    int busy;
} MixedObject;

static int enter(MixedObject *self) {
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return -1; }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this model is already running a call in another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static int check_range(const char *name, double x, double lo, double hi, int lo_open) {
    if (!isfinite(x) || x > hi || x < lo || (lo_open && x == lo)) {
        PyErr_Format(PyExc_ValueError, "%s must be a finite number in %s%g, %g], got %g", name,
                     lo_open ? "(" : "[", lo, hi, x);
        return -1;
    }
    return 0;
}

static int Mixed_init(MixedObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"vocab_size", "hidden", "nodes", "seed", "dropout_out", "dropout_h",
                             "dropout_x", "dropout_in", "dropout_emb", "batch_norm", NULL};
    int V, d, n, bn = 1;
    unsigned long long seed = 0;
    double p[5] = {0, 0, 0, 0, 0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iii|Kdddddp", kwlist, &V, &d, &n, &seed, &p[0], &p[1],
                                     &p[2], &p[3], &p[4], &bn))
        return -1;
    if (V < 1) { PyErr_Format(PyExc_ValueError, "vocab_size must be >= 1, got %d", V); return -1; }
    if (d < 1 || d > 65536) { PyErr_Format(PyExc_ValueError, "hidden must be in 1..65536, got %d", d); return -1; }
    if (n < 1 || n > LM_MAX_NODES) {
        PyErr_Format(PyExc_ValueError, "nodes must be in 1..%d, got %d", LM_MAX_NODES, n);
        return -1;
    }
    static const char *names[] = {"dropout_out", "dropout_h", "dropout_x", "dropout_in", "dropout_emb"};
    for (int i = 0; i < 5; i++)
        if (!(p[i] >= 0.0 && p[i] < 1.0)) {
            PyErr_Format(PyExc_ValueError, "%s must be in [0, 1), got %g", names[i], p[i]);
            return -1;
        }
    Dropouts drop = {(float)p[0], (float)p[1], (float)p[2], (float)p[3], (float)p[4]};
    lm_free(self->lm);
    self->lm = lm_create(V, d, 1, n, n, (uint64_t)seed, drop);
    if (self->lm) self->lm->mix = mixed_create(n, d, (uint64_t)seed, bn);
    if (!self->lm || !self->lm->mix) { lm_free(self->lm); self->lm = NULL; PyErr_NoMemory(); return -1; }
    CellArch a = {.n = n, .w0 = 0};
    for (int i = 0; i < n; i++) { a.pred[i] = 0; a.op[i] = 0; a.mat[i] = i; a.out[i] = 1; }
    self->arch = a;
    return 0;
}

static void Mixed_dealloc(MixedObject *self) {
    lm_free(self->lm);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* --- argument conversion ------------------------------------------------------------------ */

/* (B, d) float32 hidden state; None -> zeros */
static PyArrayObject *hidden_state(PyObject *obj, const char *what, npy_intp B, int d) {
    npy_intp dims[2] = {B, d};
    if (obj == Py_None) return (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    PyArrayObject *h = (PyArrayObject *)PyArray_FROMANY(
        obj, NPY_FLOAT32, 2, 2, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    if (!h) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s must be a 2-D float array of shape (%zd, %d)", what, (Py_ssize_t)B, d);
        }
        return NULL;
    }
    if (PyArray_DIM(h, 0) != B || PyArray_DIM(h, 1) != d) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (%zd, %d), got (%zd, %zd)", what, (Py_ssize_t)B, d,
                     (Py_ssize_t)PyArray_DIM(h, 0), (Py_ssize_t)PyArray_DIM(h, 1));
        Py_DECREF(h);
        return NULL;
    }
    const float *x = (const float *)PyArray_DATA(h);
    for (npy_intp i = 0; i < B * d; i++)
        if (!isfinite(x[i])) {
            PyErr_Format(PyExc_ValueError, "%s holds non-finite values", what);
            Py_DECREF(h);
            return NULL;
        }
    return h;
}

/* A segment: inputs, targets of one shape, its hidden state, and a fresh (B, d) output. */
typedef struct {
    PyArrayObject *in, *tg, *h0, *h1;
} SegmentArrays;

static void segment_release(SegmentArrays *s) {
    Py_XDECREF(s->in); Py_XDECREF(s->tg); Py_XDECREF(s->h0); Py_XDECREF(s->h1);
    s->in = s->tg = s->h0 = s->h1 = NULL;
}

static int segment_parse(MixedObject *self, PyObject *in, PyObject *tg, PyObject *h, const char *prefix,
                         SegmentArrays *s, Segment *seg) {
    LM *m = self->lm;
    char name[64];
    memset(s, 0, sizeof *s);
    snprintf(name, sizeof name, "%sinputs", prefix);
    if (!(s->in = token_array(in, name, m->V, (npy_intp)1 << 26))) goto fail;
    snprintf(name, sizeof name, "%stargets", prefix);
    if (!(s->tg = token_array(tg, name, m->V, (npy_intp)1 << 26))) goto fail;
    npy_intp T = PyArray_DIM(s->in, 0), B = PyArray_DIM(s->in, 1);
    if (PyArray_DIM(s->tg, 0) != T || PyArray_DIM(s->tg, 1) != B) {
        PyErr_Format(PyExc_ValueError, "%stargets shape (%zd, %zd) differs from %sinputs shape (%zd, %zd)", prefix,
                     (Py_ssize_t)PyArray_DIM(s->tg, 0), (Py_ssize_t)PyArray_DIM(s->tg, 1), prefix,
                     (Py_ssize_t)T, (Py_ssize_t)B);
        goto fail;
    }
    snprintf(name, sizeof name, "%shidden", prefix);
    if (!(s->h0 = hidden_state(h, name, B, m->d))) goto fail;
    npy_intp dims[2] = {B, m->d};
    if (!(s->h1 = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_FLOAT32, 0))) goto fail;
    seg->inputs = (const int32_t *)PyArray_DATA(s->in);
    seg->targets = (const int32_t *)PyArray_DATA(s->tg);
    seg->T = (int)T;
    seg->B = (int)B;
    seg->h0 = (const float *)PyArray_DATA(s->h0);
    seg->h_out = (float *)PyArray_DATA(s->h1);
    return 0;
fail:
    segment_release(s);
    return -1;
}

/* batch normalisation with batch statistics needs two rows of a column at least */
static int check_batch(MixedObject *self, const Segment *seg, const char *what) {
    if (self->lm->mix->batch_norm && seg->B < 2) {
        PyErr_Format(PyExc_ValueError, "%s batch size must be >= 2 with batch_norm (got %d)", what, seg->B);
        return -1;
    }
    return 0;
}

/* --- methods -------------------------------------------------------------------------------- */

static PyObject *Mixed_step(MixedObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"inputs", "targets", "hidden", "lr", "clip", "wd", "tar", "ar", "train",
                             "backward", "update", "asgd", "alpha_grad", "weight_grad", NULL};
    PyObject *in, *tg, *h = Py_None;
    double lr = 0, clip = 0, wd = 0, tar = 0, ar = 0;
    int train = 0, backward = 1, update = 0, asgd = 0, alpha_grad = 0, weight_grad = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|Odddddpppppp", kwlist, &in, &tg, &h, &lr, &clip, &wd,
                                     &tar, &ar, &train, &backward, &update, &asgd, &alpha_grad, &weight_grad))
        return NULL;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    if (check_range("lr", lr, 0, INFINITY, 0) || check_range("clip", clip, 0, INFINITY, 0) ||
        check_range("wd", wd, 0, INFINITY, 0) || check_range("tar", tar, 0, INFINITY, 0) ||
        check_range("ar", ar, 0, INFINITY, 0))
        return NULL;
    if (update && !(backward && weight_grad)) {
        PyErr_SetString(PyExc_ValueError, "update needs backward=True and weight_grad=True");
        return NULL;
    }
    LM *m = self->lm;
    if (asgd && !m->avg) {
        PyErr_SetString(PyExc_ValueError, "asgd=True before start_averaging()");
        return NULL;
    }
    SegmentArrays arr;
    Segment seg;
    if (segment_parse(self, in, tg, h, "", &arr, &seg)) return NULL;
    PyObject *result = NULL;
    if ((train || backward) && check_batch(self, &seg, "the")) goto done;
    if (enter(self)) goto done;
    StepOptions opt = {(float)lr, (float)clip, (float)wd, (float)tar, (float)ar, train, backward, update, asgd};
    StepStats st;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    m->mix->alpha_grad = alpha_grad && backward;
    m->mix->weight_grad = weight_grad;
    rc = lm_reserve(m, seg.T, seg.B, self->arch.n);
    if (rc == 0) st = lm_step(m, &self->arch, seg.inputs, seg.targets, seg.T, seg.B, seg.h0, seg.h_out, opt);
    m->mix->alpha_grad = 0;
    m->mix->weight_grad = 1;
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (rc != 0) { PyErr_NoMemory(); goto done; }
    result = Py_BuildValue("dddlO", st.loss_sum, st.reg, st.grad_norm, st.tokens, (PyObject *)arr.h1);
done:
    segment_release(&arr);
    return result;
}

static PyObject *Mixed_alpha_step(MixedObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"train_inputs", "train_targets", "train_hidden", "valid_inputs", "valid_targets",
                             "valid_hidden", "order", "eta", "clip", "wd", "lr", "beta1", "beta2", "eps",
                             "alpha_wd", "r", "apply", "per_pass", "cache", "accumulate", NULL};
    PyObject *ti, *tt, *th, *vi, *vt, *vh, *cache = Py_None;
    int order = 1, apply = 1, per_pass = 0, accumulate = 0;
    double eta = 0, clip = 0, wd = 0, lr = 3e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, awd = 1e-3, r = 1e-2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO|idddddddddppOp", kwlist, &ti, &tt, &th, &vi, &vt, &vh,
                                     &order, &eta, &clip, &wd, &lr, &beta1, &beta2, &eps, &awd, &r, &apply,
                                     &per_pass, &cache, &accumulate))
        return NULL;
    double *cache_ptr = NULL; /* the paper code's cached unrolled model (darts.h) */
    if (cache != Py_None && self->lm) {
        size_t len = DARTS_CACHE_LEN(self->lm->mix->E, self->lm->lay.total);
        if (!PyArray_Check(cache) || PyArray_TYPE((PyArrayObject *)cache) != NPY_FLOAT64 ||
            PyArray_NDIM((PyArrayObject *)cache) != 1 || (size_t)PyArray_SIZE((PyArrayObject *)cache) != len ||
            !PyArray_ISCARRAY((PyArrayObject *)cache)) {
            PyErr_Format(PyExc_ValueError, "cache must be a writable contiguous float64 array of %zu values", len);
            return NULL;
        }
        cache_ptr = PyArray_DATA((PyArrayObject *)cache);
    }
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    if (order != 1 && order != 2) {
        PyErr_Format(PyExc_ValueError, "order must be 1 or 2, got %d", order);
        return NULL;
    }
    if (check_range("eta", eta, 0, INFINITY, 0) || check_range("clip", clip, 0, INFINITY, 0) ||
        check_range("wd", wd, 0, INFINITY, 0) || check_range("lr", lr, 0, INFINITY, 1) ||
        check_range("beta1", beta1, 0, 1, 0) || check_range("beta2", beta2, 0, 1, 0) ||
        check_range("eps", eps, 0, INFINITY, 1) || check_range("alpha_wd", awd, 0, INFINITY, 0) ||
        check_range("r", r, 0, INFINITY, 1))
        return NULL;
    if (beta1 >= 1 || beta2 >= 1) {
        PyErr_Format(PyExc_ValueError, "beta1 and beta2 must be < 1, got %g and %g", beta1, beta2);
        return NULL;
    }
    SegmentArrays tra, vaa;
    Segment tr, va;
    if (segment_parse(self, ti, tt, th, "train_", &tra, &tr)) return NULL;
    if (segment_parse(self, vi, vt, vh, "valid_", &vaa, &va)) { segment_release(&tra); return NULL; }
    PyObject *result = NULL;
    if (check_batch(self, &tr, "the training") || check_batch(self, &va, "the validation")) goto done;
    if (enter(self)) goto done;
    DartsOptions o = {.order = order, .eta = (float)eta, .clip = (float)clip, .wd = (float)wd, .r = r,
                      .adam = {lr, beta1, beta2, eps, awd}, .apply = apply,
                      .per_pass = per_pass, .cache = cache_ptr, .accumulate = accumulate};
    tr.h_out = NULL; /* the training batch's hidden state is the weight step's to advance */
    DartsStats st;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = darts_alpha_step(self->lm, &self->arch, tr, va, o, &st);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (rc != 0) { PyErr_NoMemory(); goto done; }
    result = Py_BuildValue("{s:d,s:l,s:O,s:O,s:d,s:d}", "valid_loss_sum", st.valid_loss_sum, "tokens", st.tokens,
                           "valid_hidden", (PyObject *)vaa.h1, "ok", st.ok ? Py_True : Py_False,
                           "virtual_grad_norm", st.virtual_grad_norm, "valid_grad_norm", st.valid_grad_norm);
done:
    segment_release(&tra);
    segment_release(&vaa);
    return result;
}

static PyObject *Mixed_evaluate(MixedObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"data", "bptt", NULL};
    PyObject *data_obj;
    int bptt;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oi", kwlist, &data_obj, &bptt)) return NULL;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    if (bptt < 1) { PyErr_Format(PyExc_ValueError, "bptt must be >= 1, got %d", bptt); return NULL; }
    PyArrayObject *data = token_array(data_obj, "data", self->lm->V, (npy_intp)1 << 26);
    if (!data) return NULL;
    int N = (int)PyArray_DIM(data, 0), B = (int)PyArray_DIM(data, 1);
    if (N < 2) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_ValueError, "evaluation stream needs at least 2 rows after batchifying");
        return NULL;
    }
    if (enter(self)) { Py_DECREF(data); return NULL; }
    long count = 0;
    double loss;
    Py_BEGIN_ALLOW_THREADS
    loss = lm_evaluate(self->lm, &self->arch, (const int32_t *)PyArray_DATA(data), N, B, bptt, &count);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    Py_DECREF(data);
    return Py_BuildValue("dl", loss, count);
}

/* 1-D view of model memory that keeps the model alive */
static PyObject *view(MixedObject *self, void *ptr, npy_intp n, int type) {
    PyObject *arr = PyArray_SimpleNewFromData(1, &n, type, ptr);
    if (!arr) return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) { Py_DECREF(arr); return NULL; }
    return arr;
}

static PyObject *Mixed_arena(MixedObject *self, PyObject *args) {
    const char *which;
    if (!PyArg_ParseTuple(args, "s", &which)) return NULL;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    npy_intp n = (npy_intp)self->lm->lay.total;
    if (!strcmp(which, "params")) return view(self, self->lm->params, n, NPY_FLOAT32);
    if (!strcmp(which, "grads")) return view(self, self->lm->grads, n, NPY_FLOAT32);
    if (!strcmp(which, "avg")) {
        if (!self->lm->avg) Py_RETURN_NONE;
        return view(self, self->lm->avg, n, NPY_FLOAT32);
    }
    PyErr_Format(PyExc_ValueError, "unknown arena %s (params, grads or avg)", which);
    return NULL;
}

static PyObject *Mixed_layout(MixedObject *self, PyObject *unused) {
    (void)unused;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    ParamLayout *l = &self->lm->lay;
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n}", "embedding", (Py_ssize_t)l->embedding, "w0",
                         (Py_ssize_t)l->w0, "mats", (Py_ssize_t)l->mats, "bias", (Py_ssize_t)l->bias,
                         "total", (Py_ssize_t)l->total);
}

static PyObject *Mixed_start_averaging(MixedObject *self, PyObject *unused) {
    (void)unused;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    if (lm_start_averaging(self->lm)) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* writable views of the architecture state: alpha, its gradient, Adam's moments, and the
 * running batch-norm statistics (probabilities are refreshed by refresh()) */
static PyObject *Mixed_state_view(MixedObject *self, PyObject *args) {
    const char *which;
    if (!PyArg_ParseTuple(args, "s", &which)) return NULL;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    MixedCell *mc = self->lm->mix;
    npy_intp na = (npy_intp)mc->E * MIXED_OPS, d = mc->d;
    struct { const char *name; void *ptr; npy_intp n; int type; } items[] = {
        {"alpha", mc->alpha, na, NPY_FLOAT64}, {"alpha_grad", mc->dalpha, na, NPY_FLOAT64},
        {"prob", mc->prob, na, NPY_FLOAT64},   {"adam_m", mc->adam_m, na, NPY_FLOAT64},
        {"adam_v", mc->adam_v, na, NPY_FLOAT64}, {"running_mean", mc->running_mean, d, NPY_FLOAT32},
        {"running_var", mc->running_var, d, NPY_FLOAT32},
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        if (!strcmp(which, items[i].name)) return view(self, items[i].ptr, items[i].n, items[i].type);
    PyErr_Format(PyExc_ValueError, "unknown state %s (alpha, alpha_grad, prob, adam_m, adam_v, running_mean, "
                 "running_var)", which);
    return NULL;
}

/* after writing alpha through its view: check it and recompute the probabilities */
static PyObject *Mixed_refresh(MixedObject *self, PyObject *unused) {
    (void)unused;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    MixedCell *mc = self->lm->mix;
    for (int i = 0; i < mc->E * MIXED_OPS; i++)
        if (!isfinite(mc->alpha[i])) {
            PyErr_SetString(PyExc_ValueError, "alpha holds non-finite values");
            return NULL;
        }
    mixed_update_probs(mc);
    Py_RETURN_NONE;
}

static PyObject *Mixed_last_masks(MixedObject *self, PyObject *unused) {
    (void)unused;
    LM *m = self->lm;
    if (!m || !m->acts) Py_RETURN_NONE;
    const Dropouts *dr = &m->drop;
    npy_intp bd[2] = {m->act_B, m->d}, v = m->V;
    struct { const char *name; int on; float *ptr; int nd; npy_intp *dims; } items[] = {
        {"x", dr->x > 0 || dr->in > 0, m->mask_x, 2, bd},
        {"h", dr->h > 0, m->mask_h, 2, bd},
        {"out", dr->out > 0, m->mask_out, 2, bd},
        {"emb", dr->emb > 0, m->mask_emb, 1, &v},
    };
    PyObject *dict = PyDict_New();
    if (!dict) return NULL;
    for (int i = 0; i < 4; i++) {
        PyObject *val;
        if (items[i].on) {
            val = PyArray_SimpleNew(items[i].nd, items[i].dims, NPY_FLOAT32);
            if (val) memcpy(PyArray_DATA((PyArrayObject *)val), items[i].ptr, PyArray_NBYTES((PyArrayObject *)val));
        } else {
            val = Py_None;
            Py_INCREF(val);
        }
        if (!val || PyDict_SetItemString(dict, items[i].name, val) < 0) { Py_XDECREF(val); Py_DECREF(dict); return NULL; }
        Py_DECREF(val);
    }
    return dict;
}

static PyObject *Mixed_get_step(MixedObject *self, void *c) {
    (void)c;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    return PyLong_FromUnsignedLongLong(self->lm->step);
}
static int Mixed_set_step(MixedObject *self, PyObject *v, void *c) {
    (void)c;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return -1; }
    unsigned long long s = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) return -1;
    if (s >= DARTS_MAX_STEP) { PyErr_SetString(PyExc_ValueError, "step_count must be < 2^61"); return -1; }
    self->lm->step = s;
    return 0;
}
static PyObject *Mixed_get_adam_t(MixedObject *self, void *c) {
    (void)c;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    return PyLong_FromLongLong(self->lm->mix->adam_t);
}
static int Mixed_set_adam_t(MixedObject *self, PyObject *v, void *c) {
    (void)c;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return -1; }
    long long t = PyLong_AsLongLong(v);
    if (PyErr_Occurred()) return -1;
    if (t < 0) { PyErr_Format(PyExc_ValueError, "adam_t must be >= 0, got %lld", t); return -1; }
    self->lm->mix->adam_t = t;
    return 0;
}
static PyObject *Mixed_get_avg_count(MixedObject *self, void *c) {
    (void)c;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    return PyLong_FromLongLong(self->lm->avg_count);
}
static PyObject *Mixed_get_batch_norm(MixedObject *self, void *c) {
    (void)c;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    return PyBool_FromLong(self->lm->mix->batch_norm);
}

static PyMethodDef Mixed_methods[] = {
    {"step", (PyCFunction)(void (*)(void))Mixed_step, METH_VARARGS | METH_KEYWORDS,
     "step(inputs, targets, hidden=None, lr, clip, wd, tar, ar, train, backward, update, asgd, alpha_grad,"
     " weight_grad) -> (loss_sum, reg, grad_norm, tokens, new_hidden)"},
    {"alpha_step", (PyCFunction)(void (*)(void))Mixed_alpha_step, METH_VARARGS | METH_KEYWORDS,
     "alpha_step(train_inputs, train_targets, train_hidden, valid_inputs, valid_targets, valid_hidden, order,"
     " eta, clip, wd, lr, beta1, beta2, eps, alpha_wd, r, apply, per_pass, cache, accumulate) -> dict"},
    {"evaluate", (PyCFunction)(void (*)(void))Mixed_evaluate, METH_VARARGS | METH_KEYWORDS,
     "evaluate(data, bptt) -> (loss_sum, tokens)"},
    {"arena", (PyCFunction)Mixed_arena, METH_VARARGS, "arena('params'|'grads'|'avg') -> float32 view"},
    {"layout", (PyCFunction)Mixed_layout, METH_NOARGS, "offsets of the tensors in the arenas"},
    {"start_averaging", (PyCFunction)Mixed_start_averaging, METH_NOARGS, "begin ASGD averaging"},
    {"state", (PyCFunction)Mixed_state_view, METH_VARARGS,
     "state('alpha'|'alpha_grad'|'prob'|'adam_m'|'adam_v'|'running_mean'|'running_var') -> 1-D view"},
    {"refresh", (PyCFunction)Mixed_refresh, METH_NOARGS, "check alpha and recompute its softmax"},
    {"last_masks", (PyCFunction)Mixed_last_masks, METH_NOARGS, "dropout masks of the last training pass"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Mixed_getset[] = {
    {"step_count", (getter)Mixed_get_step, (setter)Mixed_set_step, "training steps taken (keys dropout masks)", NULL},
    {"adam_t", (getter)Mixed_get_adam_t, (setter)Mixed_set_adam_t, "Adam steps taken on alpha", NULL},
    {"avg_count", (getter)Mixed_get_avg_count, NULL, "steps in the ASGD average", NULL},
    {"batch_norm", (getter)Mixed_get_batch_norm, NULL, "whether nodes are batch-normalised", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject MixedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nas_eval._core.MixedModel",
    .tp_basicsize = sizeof(MixedObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Language model with the DARTS mixed cell (C core).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Mixed_init,
    .tp_dealloc = (destructor)Mixed_dealloc,
    .tp_methods = Mixed_methods,
    .tp_getset = Mixed_getset,
};

int darts_add_types(PyObject *module) {
    if (_import_array() < 0) return -1; /* this file's own pointer to NumPy's C API */
    if (PyType_Ready(&MixedType) < 0) return -1;
    Py_INCREF(&MixedType);
    if (PyModule_AddObject(module, "MixedModel", (PyObject *)&MixedType) < 0) {
        Py_DECREF(&MixedType);
        return -1;
    }
    return PyModule_AddIntConstant(module, "MIXED_OPS", MIXED_OPS);
}
