/* Bindings: nas_eval._core.NAO wraps one NAO encoder-predictor-decoder (csrc/nao.h).
 * Arrays cross as NumPy arrays: tokens as any integer dtype (copied to int), everything else
 * float64 and C-contiguous. Every argument is checked and named in the ValueError; long calls
 * release the GIL and an object refuses to be entered from two threads at once. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>

#include <math.h>
#include <string.h>

#include "nao.h"
#include "py_f64.h"
#include "py_nao.h"

#define NAO_MAX_SIZE 4096     /* cap on E, H and M: far above the reference's 96 / 200 */
#define NAO_MAX_CAP (1 << 16) /* cap on max_batch */

typedef struct {
    PyObject_HEAD
    NaoModel *m;
    int busy;
} NaoObject;

static int enter(NaoObject *self) {
    if (!self->m) { PyErr_SetString(PyExc_RuntimeError, "NAO object is not initialised"); return -1; }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this NAO object is already running a call in another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static void leave(NaoObject *self) { self->busy = 0; }

/* ---------------------------------------------------------------------------------------
 * Argument checks */

static int check_range_int(const char *name, long long v, long long lo, long long hi) {
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s must be in %lld..%lld, got %lld", name, lo, hi, v);
        return -1;
    }
    return 0;
}

/* Tokens of architectures: an integer array of shape (N, 2n), N >= 1, every entry a valid
 * token of its position. Returns a malloc'd int copy (N read into *N) or NULL with ValueError. */
static int *tokens_arg(NaoObject *self, PyObject *obj, const char *name, int *N) {
    NaoShape s = nao_shape(self->m);
    int L = 2 * s.nodes;
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!a) return NULL;
    if (!PyArray_ISINTEGER(a) || PyArray_ISBOOL(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be an integer array of shape (N, %d)", name, L);
        Py_DECREF(a);
        return NULL;
    }
    if (PyArray_NDIM(a) != 2 || PyArray_DIM(a, 1) != L || PyArray_DIM(a, 0) < 1 || PyArray_DIM(a, 0) > INT_MAX / L) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (N, %d) with N >= 1, got %d dimensions", name, L,
                     PyArray_NDIM(a));
        Py_DECREF(a);
        return NULL;
    }
    PyArrayObject *b = (PyArrayObject *)PyArray_FromArray(
        a, PyArray_DescrFromType(NPY_INT64), NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(a);
    if (!b) return NULL;
    npy_intp rows = PyArray_DIM(b, 0);
    const npy_int64 *src = (const npy_int64 *)PyArray_DATA(b);
    int *out = PyMem_Malloc((size_t)rows * L * sizeof(int));
    if (!out) { Py_DECREF(b); PyErr_NoMemory(); return NULL; }
    for (npy_intp r = 0; r < rows; r++)
        for (int t = 0; t < L; t++) {
            npy_int64 v = src[r * L + t];
            long long lo = t % 2 == 0 ? 1 : s.nodes + 1, hi = t % 2 == 0 ? t / 2 + 1 : s.nodes + s.ops;
            if (v < lo || v > hi) {
                PyErr_Format(PyExc_ValueError,
                             "%s[%zd, %d] = %lld is not a valid %s token (must be in %lld..%lld)", name,
                             (Py_ssize_t)r, t, (long long)v, t % 2 == 0 ? "predecessor" : "op", lo, hi);
                PyMem_Free(out);
                Py_DECREF(b);
                return NULL;
            }
            out[r * L + t] = (int)v;
        }
    Py_DECREF(b);
    *N = (int)rows;
    return out;
}

/* Targets: float64 (N,) in [0, 1] (the predictor ends in a sigmoid). */
static PyArrayObject *targets_arg(PyObject *obj, int N) {
    npy_intp shape[1] = {N};
    PyArrayObject *a = f64_array(obj, "targets", 1, shape, INT_MAX / 64);
    if (!a) return NULL;
    const double *p = (const double *)PyArray_DATA(a);
    for (int k = 0; k < N; k++)
        if (p[k] < 0.0 || p[k] > 1.0) {
            PyErr_Format(PyExc_ValueError, "targets[%d] = %g is outside [0, 1] (normalise the scores)", k, p[k]);
            Py_DECREF(a);
            return NULL;
        }
    return a;
}

static PyArrayObject *new_f64(int ndim, npy_intp *shape) {
    return (PyArrayObject *)PyArray_ZEROS(ndim, shape, NPY_FLOAT64, 0);
}

#define F64(a) ((double *)PyArray_DATA(a))

/* Optimiser keywords shared by train_step and fit. */
static int check_optim(NaoOptim *o) {
    AdamConfig *c = &o->adam;
    if (!(c->lr >= 0 && isfinite(c->lr))) { PyErr_Format(PyExc_ValueError, "lr must be finite and >= 0, got %g", c->lr); return -1; }
    if (!(c->beta1 >= 0 && c->beta1 < 1)) { PyErr_Format(PyExc_ValueError, "beta1 must be in [0, 1), got %g", c->beta1); return -1; }
    if (!(c->beta2 >= 0 && c->beta2 < 1)) { PyErr_Format(PyExc_ValueError, "beta2 must be in [0, 1), got %g", c->beta2); return -1; }
    if (!(c->eps > 0 && isfinite(c->eps))) { PyErr_Format(PyExc_ValueError, "eps must be finite and > 0, got %g", c->eps); return -1; }
    if (!(c->weight_decay >= 0 && isfinite(c->weight_decay))) {
        PyErr_Format(PyExc_ValueError, "weight_decay must be finite and >= 0, got %g", c->weight_decay);
        return -1;
    }
    if (!(o->max_grad_norm >= 0 && isfinite(o->max_grad_norm))) {
        PyErr_Format(PyExc_ValueError, "max_grad_norm must be finite and >= 0 (0 = no clipping), got %g", o->max_grad_norm);
        return -1;
    }
    if (!(o->trade_off >= 0 && o->trade_off <= 1)) {
        PyErr_Format(PyExc_ValueError, "trade_off must be in [0, 1], got %g", o->trade_off);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Construction */

static int Nao_init(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"nodes", "ops", "emb_size", "hidden_size", "mlp_layers", "mlp_hidden_size",
                             "dropout", "seed", "max_batch", NULL};
    int nodes, ops = 4, E = 48, H = 96, nl = 0, M = 200, cap = 256;
    double dropout = 0.1;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|iiiiidKi", kwlist, &nodes, &ops, &E, &H, &nl, &M,
                                     &dropout, &seed, &cap))
        return -1;
    if (check_range_int("nodes", nodes, 1, NAO_MAX_NODES) || check_range_int("ops", ops, 1, 64) ||
        check_range_int("emb_size", E, 1, NAO_MAX_SIZE) || check_range_int("hidden_size", H, 1, NAO_MAX_SIZE) ||
        check_range_int("mlp_layers", nl, 0, NAO_MAX_MLP) ||
        check_range_int("mlp_hidden_size", M, 1, NAO_MAX_SIZE) || check_range_int("max_batch", cap, 1, NAO_MAX_CAP))
        return -1;
    if (!(dropout >= 0.0 && dropout < 1.0)) {
        PyErr_Format(PyExc_ValueError, "dropout must be in [0, 1), got %g", dropout);
        return -1;
    }
    NaoShape s = {nodes, ops, E, H, nl, M, dropout};
    if (self->busy) { PyErr_SetString(PyExc_RuntimeError, "NAO object is busy"); return -1; }
    nao_free(self->m);
    self->m = nao_create(s, cap, (uint64_t)seed);
    if (!self->m) { PyErr_NoMemory(); return -1; }
    return 0;
}

static void Nao_dealloc(NaoObject *self) {
    nao_free(self->m);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---------------------------------------------------------------------------------------
 * Parameters and state */

static PyObject *copy_arena(NaoObject *self, const double *src) {
    npy_intp n = (npy_intp)nao_num_params(self->m);
    PyArrayObject *a = new_f64(1, &n);
    if (a) memcpy(F64(a), src, (size_t)n * sizeof(double));
    return (PyObject *)a;
}

PyDoc_STRVAR(tensors_doc, "tensors() -> list of (name, offset, rows, cols): the flat parameter layout.");

static PyObject *Nao_tensors(NaoObject *self, PyObject *Py_UNUSED(unused)) {
    if (!self->m) { PyErr_SetString(PyExc_RuntimeError, "NAO object is not initialised"); return NULL; }
    NaoTensorInfo info[NAO_MAX_TENSORS];
    int k = nao_tensors(self->m, info);
    PyObject *list = PyList_New(k);
    if (!list) return NULL;
    for (int i = 0; i < k; i++) {
        PyObject *t = Py_BuildValue("(snnn)", info[i].name, (Py_ssize_t)info[i].offset, (Py_ssize_t)info[i].rows,
                                    (Py_ssize_t)info[i].cols);
        if (!t) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

PyDoc_STRVAR(get_state_doc,
"get_state() -> dict(params, grads, adam_m, adam_v, step, shuffles)\n\n"
"Copies of everything that determines later results (grads: of the last loss_grad / step).");

static PyObject *Nao_get_state(NaoObject *self, PyObject *Py_UNUSED(unused)) {
    if (enter(self)) return NULL;
    PyObject *p = copy_arena(self, nao_params(self->m)), *g = copy_arena(self, nao_grads(self->m));
    PyObject *mm = copy_arena(self, nao_adam_m(self->m)), *vv = copy_arena(self, nao_adam_v(self->m));
    PyObject *out = NULL;
    if (p && g && mm && vv)
        out = Py_BuildValue("{sOsOsOsOsLsK}", "params", p, "grads", g, "adam_m", mm, "adam_v", vv, "step",
                            (long long)*nao_step(self->m), "shuffles", (unsigned long long)*nao_shuffles(self->m));
    Py_XDECREF(p); Py_XDECREF(g); Py_XDECREF(mm); Py_XDECREF(vv);
    leave(self);
    return out;
}

PyDoc_STRVAR(set_state_doc,
"set_state(params, adam_m=None, adam_v=None, step=None, shuffles=None)\n\n"
"Overwrite the parameters (and, when given, the Adam moments and counters).");

static PyObject *Nao_set_state(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"params", "adam_m", "adam_v", "step", "shuffles", NULL};
    PyObject *op, *om = Py_None, *ov = Py_None, *ostep = Py_None, *oshuf = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOOO", kwlist, &op, &om, &ov, &ostep, &oshuf)) return NULL;
    if (enter(self)) return NULL;
    npy_intp shape[1] = {(npy_intp)nao_num_params(self->m)};
    PyArrayObject *p = NULL, *mm = NULL, *vv = NULL;
    long long step = 0;
    unsigned long long shuf = 0;
    if (!(p = f64_array(op, "params", 1, shape, INT_MAX / 64))) goto fail;
    if (om != Py_None && !(mm = f64_array(om, "adam_m", 1, shape, INT_MAX / 64))) goto fail;
    if (ov != Py_None && !(vv = f64_array(ov, "adam_v", 1, shape, INT_MAX / 64))) goto fail;
    if (vv)
        for (npy_intp k = 0; k < shape[0]; k++)
            if (F64(vv)[k] < 0) { PyErr_SetString(PyExc_ValueError, "adam_v must be >= 0"); goto fail; }
    if (ostep != Py_None) {
        step = PyLong_AsLongLong(ostep);
        if (step == -1 && PyErr_Occurred()) goto fail;
        if (step < 0) { PyErr_Format(PyExc_ValueError, "step must be >= 0, got %lld", step); goto fail; }
    }
    if (oshuf != Py_None) {
        shuf = PyLong_AsUnsignedLongLong(oshuf);
        if (PyErr_Occurred()) { PyErr_SetString(PyExc_ValueError, "shuffles must be an integer >= 0"); goto fail; }
    }
    memcpy(nao_params(self->m), F64(p), (size_t)shape[0] * sizeof(double));
    if (mm) memcpy(nao_adam_m(self->m), F64(mm), (size_t)shape[0] * sizeof(double));
    if (vv) memcpy(nao_adam_v(self->m), F64(vv), (size_t)shape[0] * sizeof(double));
    if (ostep != Py_None) *nao_step(self->m) = step;
    if (oshuf != Py_None) *nao_shuffles(self->m) = shuf;
    Py_DECREF(p); Py_XDECREF(mm); Py_XDECREF(vv);
    leave(self);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(p); Py_XDECREF(mm); Py_XDECREF(vv);
    leave(self);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Training */

PyDoc_STRVAR(loss_grad_doc,
"loss_grad(tokens, targets, trade_off=0.8, train=False, step=0) -> (loss, mse, nll, grad)\n\n"
"Loss of one batch (N <= max_batch) and its gradient over the flat parameters; train=True\n"
"applies encoder dropout with the masks of `step`. For checks: nothing is updated.");

static PyObject *Nao_loss_grad(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"tokens", "targets", "trade_off", "train", "step", NULL};
    PyObject *otok, *otgt;
    double trade_off = 0.8;
    int train = 0;
    unsigned long long step = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|dpK", kwlist, &otok, &otgt, &trade_off, &train, &step)) return NULL;
    if (!(trade_off >= 0 && trade_off <= 1)) {
        PyErr_Format(PyExc_ValueError, "trade_off must be in [0, 1], got %g", trade_off);
        return NULL;
    }
    if (enter(self)) return NULL;
    int N = 0;
    int *tok = tokens_arg(self, otok, "tokens", &N);
    PyArrayObject *tgt = NULL;
    PyObject *out = NULL;
    if (!tok) goto done;
    if (N > nao_max_batch(self->m)) {
        PyErr_Format(PyExc_ValueError, "tokens has %d rows, more than max_batch = %d", N, nao_max_batch(self->m));
        goto done;
    }
    if (!(tgt = targets_arg(otgt, N))) goto done;
    double loss, mse, nll;
    Py_BEGIN_ALLOW_THREADS
    loss = nao_loss_grad(self->m, N, tok, F64(tgt), trade_off, train, (uint64_t)step, &mse, &nll);
    Py_END_ALLOW_THREADS
    PyObject *g = copy_arena(self, nao_grads(self->m));
    if (g) out = Py_BuildValue("(dddN)", loss, mse, nll, g);
done:
    PyMem_Free(tok);
    Py_XDECREF(tgt);
    leave(self);
    return out;
}

#define OPTIM_KWARGS "lr", "weight_decay", "max_grad_norm", "trade_off", "beta1", "beta2", "eps"
#define OPTIM_DEFAULTS {{1e-3, 0.9, 0.999, 1e-8, 1e-4}, 5.0, 0.8}
#define OPTIM_PTRS &o.adam.lr, &o.adam.weight_decay, &o.max_grad_norm, &o.trade_off, &o.adam.beta1, \
                   &o.adam.beta2, &o.adam.eps

PyDoc_STRVAR(train_step_doc,
"train_step(tokens, targets, lr=1e-3, weight_decay=1e-4, max_grad_norm=5.0, trade_off=0.8,\n"
"           beta1=0.9, beta2=0.999, eps=1e-8) -> (loss, mse, nll, grad_norm)\n\n"
"One Adam step on a batch (N <= max_batch) after clipping the gradient norm.");

static PyObject *Nao_train_step(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"tokens", "targets", OPTIM_KWARGS, NULL};
    PyObject *otok, *otgt;
    NaoOptim o = OPTIM_DEFAULTS;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|ddddddd", kwlist, &otok, &otgt, OPTIM_PTRS)) return NULL;
    if (check_optim(&o)) return NULL;
    if (enter(self)) return NULL;
    int N = 0;
    int *tok = tokens_arg(self, otok, "tokens", &N);
    PyArrayObject *tgt = NULL;
    PyObject *out = NULL;
    if (!tok) goto done;
    if (N > nao_max_batch(self->m)) {
        PyErr_Format(PyExc_ValueError, "tokens has %d rows, more than max_batch = %d", N, nao_max_batch(self->m));
        goto done;
    }
    if (!(tgt = targets_arg(otgt, N))) goto done;
    double loss, mse, nll, gn;
    Py_BEGIN_ALLOW_THREADS
    loss = nao_train_step(self->m, N, tok, F64(tgt), o, &mse, &nll, &gn);
    Py_END_ALLOW_THREADS
    out = Py_BuildValue("(dddd)", loss, mse, nll, gn);
done:
    PyMem_Free(tok);
    Py_XDECREF(tgt);
    leave(self);
    return out;
}

PyDoc_STRVAR(fit_doc,
"fit(tokens, targets, epochs, batch_size, shuffle=True, lr=1e-3, weight_decay=1e-4,\n"
"    max_grad_norm=5.0, trade_off=0.8, beta1=0.9, beta2=0.999, eps=1e-8) -> (mse, nll)\n\n"
"`epochs` passes over all rows in mini-batches (the last one partial), reshuffled every epoch\n"
"from the object's RNG stream; returns the mean MSE and NLL of the last epoch.");

static PyObject *Nao_fit(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"tokens", "targets", "epochs", "batch_size", "shuffle", OPTIM_KWARGS, NULL};
    PyObject *otok, *otgt;
    int epochs, batch, shuffle = 1;
    NaoOptim o = OPTIM_DEFAULTS;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOii|pddddddd", kwlist, &otok, &otgt, &epochs, &batch, &shuffle,
                                     OPTIM_PTRS))
        return NULL;
    if (check_range_int("epochs", epochs, 0, 100000000) || check_optim(&o)) return NULL;
    if (enter(self)) return NULL;
    if (check_range_int("batch_size", batch, 1, nao_max_batch(self->m))) { leave(self); return NULL; }
    int N = 0;
    int *tok = tokens_arg(self, otok, "tokens", &N);
    PyArrayObject *tgt = NULL;
    PyObject *out = NULL;
    if (!tok || !(tgt = targets_arg(otgt, N))) goto done;
    double res[2] = {NAN, NAN};
    Py_BEGIN_ALLOW_THREADS
    nao_fit(self->m, N, tok, F64(tgt), epochs, batch, shuffle, o, res);
    Py_END_ALLOW_THREADS
    if (epochs > 0 && isnan(res[0])) { PyErr_NoMemory(); goto done; }
    out = Py_BuildValue("(dd)", res[0], res[1]);
done:
    PyMem_Free(tok);
    Py_XDECREF(tgt);
    leave(self);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * Inference */

PyDoc_STRVAR(encode_doc,
"encode(tokens) -> (ctx, emb, pred)\n\n"
"Evaluation-mode encoder: contexts (N, n, H), architecture embeddings (N, H) and predicted\n"
"scores (N,).");

static PyObject *Nao_encode(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"tokens", NULL};
    PyObject *otok;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &otok)) return NULL;
    if (enter(self)) return NULL;
    NaoShape s = nao_shape(self->m);
    int N = 0;
    int *tok = tokens_arg(self, otok, "tokens", &N);
    PyArrayObject *ctx = NULL, *emb = NULL, *pred = NULL;
    PyObject *out = NULL;
    if (!tok) goto done;
    npy_intp sc[3] = {N, s.nodes, s.hidden}, se[2] = {N, s.hidden}, sp[1] = {N};
    if (!(ctx = new_f64(3, sc)) || !(emb = new_f64(2, se)) || !(pred = new_f64(1, sp))) goto done;
    Py_BEGIN_ALLOW_THREADS
    nao_encode(self->m, N, tok, F64(ctx), F64(emb), F64(pred));
    Py_END_ALLOW_THREADS
    out = Py_BuildValue("(OOO)", ctx, emb, pred);
done:
    PyMem_Free(tok);
    Py_XDECREF(ctx); Py_XDECREF(emb); Py_XDECREF(pred);
    leave(self);
    return out;
}

PyDoc_STRVAR(predict_emb_doc,
"predict_emb(emb) -> (pred, grad)\n\n"
"Predictor on architecture embeddings (N, H): scores (N,) and d score / d emb (N, H).");

static PyObject *Nao_predict_emb(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"emb", NULL};
    PyObject *oe;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &oe)) return NULL;
    if (enter(self)) return NULL;
    NaoShape s = nao_shape(self->m);
    npy_intp se[2] = {-1, s.hidden};
    PyArrayObject *emb = NULL, *pred = NULL, *grad = NULL;
    PyObject *out = NULL;
    if (!(emb = f64_array(oe, "emb", 2, se, INT_MAX / 64))) goto done;
    npy_intp N = PyArray_DIM(emb, 0), sp[1] = {N}, sg[2] = {N, s.hidden};
    if (!(pred = new_f64(1, sp)) || !(grad = new_f64(2, sg))) goto done;
    Py_BEGIN_ALLOW_THREADS
    nao_predict_emb(self->m, (int)N, F64(emb), F64(pred), F64(grad));
    Py_END_ALLOW_THREADS
    out = Py_BuildValue("(OO)", pred, grad);
done:
    Py_XDECREF(emb); Py_XDECREF(pred); Py_XDECREF(grad);
    leave(self);
    return out;
}

PyDoc_STRVAR(predict_ctx_doc,
"predict_ctx(ctx) -> (pred, grad)\n\n"
"Predictor on contexts (N, n, H) through emb = normalise(mean_t ctx_t): scores (N,) and\n"
"d score / d ctx (N, n, H), the direction in which NAO moves an architecture.");

static PyObject *Nao_predict_ctx(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"ctx", NULL};
    PyObject *oc;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &oc)) return NULL;
    if (enter(self)) return NULL;
    NaoShape s = nao_shape(self->m);
    npy_intp sc[3] = {-1, s.nodes, s.hidden};
    PyArrayObject *ctx = NULL, *pred = NULL, *grad = NULL;
    PyObject *out = NULL;
    if (!(ctx = f64_array(oc, "ctx", 3, sc, INT_MAX / 64))) goto done;
    npy_intp N = PyArray_DIM(ctx, 0), sp[1] = {N}, sg[3] = {N, s.nodes, s.hidden};
    if (!(pred = new_f64(1, sp)) || !(grad = new_f64(3, sg))) goto done;
    Py_BEGIN_ALLOW_THREADS
    nao_predict_ctx(self->m, (int)N, F64(ctx), F64(pred), F64(grad));
    Py_END_ALLOW_THREADS
    out = Py_BuildValue("(OO)", pred, grad);
done:
    Py_XDECREF(ctx); Py_XDECREF(pred); Py_XDECREF(grad);
    leave(self);
    return out;
}

PyDoc_STRVAR(decode_doc,
"decode(ctx) -> tokens\n\n"
"Greedy decoding constrained to valid tokens from contexts (N, n, H) (each row normalised\n"
"first); returns int64 tokens (N, 2n), always an architecture of the space.");

static PyObject *Nao_decode(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"ctx", NULL};
    PyObject *oc;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &oc)) return NULL;
    if (enter(self)) return NULL;
    NaoShape s = nao_shape(self->m);
    int L = 2 * s.nodes;
    npy_intp sc[3] = {-1, s.nodes, s.hidden};
    PyArrayObject *ctx = NULL, *res = NULL;
    int *tok = NULL;
    PyObject *out = NULL;
    if (!(ctx = f64_array(oc, "ctx", 3, sc, INT_MAX / 64))) goto done;
    npy_intp N = PyArray_DIM(ctx, 0), st[2] = {N, L};
    if (!(tok = PyMem_Malloc((size_t)N * L * sizeof(int)))) { PyErr_NoMemory(); goto done; }
    if (!(res = (PyArrayObject *)PyArray_ZEROS(2, st, NPY_INT64, 0))) goto done;
    Py_BEGIN_ALLOW_THREADS
    nao_decode(self->m, (int)N, F64(ctx), tok);
    Py_END_ALLOW_THREADS
    npy_int64 *dst = (npy_int64 *)PyArray_DATA(res);
    for (npy_intp k = 0; k < N * L; k++) dst[k] = tok[k];
    out = (PyObject *)res;
    res = NULL;
done:
    PyMem_Free(tok);
    Py_XDECREF(ctx); Py_XDECREF(res);
    leave(self);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * Attributes and type */

static PyObject *Nao_get_shape(NaoObject *self, void *closure) {
    (void)closure;
    if (!self->m) { PyErr_SetString(PyExc_RuntimeError, "NAO object is not initialised"); return NULL; }
    NaoShape s = nao_shape(self->m);
    return Py_BuildValue("{sisisisisisisd}", "nodes", s.nodes, "ops", s.ops, "emb_size", s.emb, "hidden_size",
                         s.hidden, "mlp_layers", s.mlp_layers, "mlp_hidden_size", s.mlp_hidden, "dropout", s.dropout);
}

static PyObject *Nao_get_num_params(NaoObject *self, void *closure) {
    (void)closure;
    if (!self->m) { PyErr_SetString(PyExc_RuntimeError, "NAO object is not initialised"); return NULL; }
    return PyLong_FromSize_t(nao_num_params(self->m));
}

static PyObject *Nao_get_max_batch(NaoObject *self, void *closure) {
    (void)closure;
    if (!self->m) { PyErr_SetString(PyExc_RuntimeError, "NAO object is not initialised"); return NULL; }
    return PyLong_FromLong(nao_max_batch(self->m));
}

static PyGetSetDef Nao_getset[] = {
    {"shape", (getter)Nao_get_shape, NULL, "dict of the sizes the object was built with", NULL},
    {"num_params", (getter)Nao_get_num_params, NULL, "number of parameters", NULL},
    {"max_batch", (getter)Nao_get_max_batch, NULL, "rows of the activation buffers", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define METHOD(name, fn, doc) {name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, doc}

static PyMethodDef Nao_methods[] = {
    {"tensors", (PyCFunction)Nao_tensors, METH_NOARGS, tensors_doc},
    {"get_state", (PyCFunction)Nao_get_state, METH_NOARGS, get_state_doc},
    METHOD("set_state", Nao_set_state, set_state_doc),
    METHOD("loss_grad", Nao_loss_grad, loss_grad_doc),
    METHOD("train_step", Nao_train_step, train_step_doc),
    METHOD("fit", Nao_fit, fit_doc),
    METHOD("encode", Nao_encode, encode_doc),
    METHOD("predict_emb", Nao_predict_emb, predict_emb_doc),
    METHOD("predict_ctx", Nao_predict_ctx, predict_ctx_doc),
    METHOD("decode", Nao_decode, decode_doc),
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Nao_doc,
"NAO(nodes, ops=4, emb_size=48, hidden_size=96, mlp_layers=0, mlp_hidden_size=200,\n"
"    dropout=0.1, seed=0, max_batch=256)\n\n"
"NAO's encoder-predictor-decoder in float64 over architectures of `nodes` nodes, as 2n\n"
"tokens (pred + 1, op + nodes + 1; 0 = start). See csrc/nao.h.");

static PyTypeObject NaoType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nas_eval._core.NAO",
    .tp_basicsize = sizeof(NaoObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Nao_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Nao_init,
    .tp_dealloc = (destructor)Nao_dealloc,
    .tp_methods = Nao_methods,
    .tp_getset = Nao_getset,
};

int nao_add_types(PyObject *module) {
    /* without PY_ARRAY_UNIQUE_SYMBOL each translation unit holds its own NumPy API table */
    if (_import_array() < 0) return -1;
    if (PyType_Ready(&NaoType) < 0) return -1;
    Py_INCREF(&NaoType);
    if (PyModule_AddObject(module, "NAO", (PyObject *)&NaoType) < 0) {
        Py_DECREF(&NaoType);
        return -1;
    }
    return 0;
}
