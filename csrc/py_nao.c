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
#include "py_args.h"
#include "py_lstm_adam.h"
#include "py_nao.h"

#define NAO_MAX_SIZE 4096     /* cap on E, H and M: far above the reference's 96 / 200 */
#define NAO_MAX_CAP (1 << 16) /* cap on max_batch */

typedef struct {
    PyObject_HEAD
    NaoModel *m;
    int busy;
} NaoObject;

#define READY(self) py_ready((self)->m, "NAO object")
#define ENTER(self) py_enter((self)->m, &(self)->busy, "NAO object")
#define LEAVE(self) py_leave(&(self)->busy)
#define F64(a) PY_DATA(double, a)
#define NAO_MAX_ROWS (INT_MAX / 64) /* rows of any array argument */

/* ---------------------------------------------------------------------------------------
 * Argument checks */

/* Tokens of architectures (N, 2n): every entry a valid token of its position. */
static int check_tokens(NaoObject *self, const ArgArray *a) {
    NaoShape s = nao_shape(self->m);
    int L = 2 * s.nodes;
    const int *t = PY_DATA(const int, a->arr);
    for (npy_intp r = 0, rows = PyArray_DIM(a->arr, 0); r < rows; r++)
        for (int k = 0; k < L; k++) {
            long long v = t[r * L + k], lo = k % 2 == 0 ? 1 : s.nodes + 1, hi = k % 2 == 0 ? k / 2 + 1 : s.nodes + s.ops;
            if (v < lo || v > hi) {
                PyErr_Format(PyExc_ValueError, "%s[%zd, %d] = %lld is not a valid %s token (must be in %lld..%lld)",
                             a->name, (Py_ssize_t)r, k, v, k % 2 == 0 ? "predecessor" : "op", lo, hi);
                return -1;
            }
        }
    return 0;
}

/* A batch: tokens (N, 2n) of valid architectures, N at most `max_rows` (0: any), and float64
 * targets (N,) in [0, 1] (the predictor ends in a sigmoid). */
static int check_batch(NaoObject *self, const ArgArray *tok, const ArgArray *tgt, int max_rows) {
    npy_intp N = PyArray_DIM(tok->arr, 0), n[1] = {N};
    if (max_rows && N > max_rows) {
        PyErr_Format(PyExc_ValueError, "tokens has %zd rows, more than max_batch = %d", (Py_ssize_t)N, max_rows);
        return -1;
    }
    if (check_tokens(self, tok) || py_check_shape(tgt, n)) return -1;
    const double *p = PY_DATA(const double, tgt->arr);
    for (npy_intp k = 0; k < N; k++)
        if (py_check_range("targets (normalise the scores)", p[k], 0, 1, 0)) return -1;
    return 0;
}

#define ARG_TOKENS_OF(self) {.name = "tokens", .ndim = 2, .shape = {-1, 2 * nao_shape((self)->m).nodes}, .cap = INT_MAX / (2 * NAO_MAX_NODES)}
#define ARG_TARGETS {.name = "targets", .ndim = 1, .shape = {-1}, .cap = NAO_MAX_ROWS}

/* Optimiser keywords shared by train_step and fit. */
static int check_optim(NaoOptim *o) {
    return adam_check(&o->adam) || py_check_range("max_grad_norm (0 = no clipping)", o->max_grad_norm, 0, INFINITY, 0) ||
                   py_check_range("trade_off", o->trade_off, 0, 1, 0)
               ? -1
               : 0;
}

/* ---------------------------------------------------------------------------------------
 * Construction */

static int Nao_init(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"nodes", "ops", "emb_size", "hidden_size", "mlp_layers", "mlp_hidden_size",
                             "dropout", "seed", "max_batch", NULL};
    int nodes, ops = 4, E = 48, H = 96, nl = 0, M = 200, cap = 256;
    double dropout = 0.1;
    uint64_t seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|iiiiidO&i", kwlist, &nodes, &ops, &E, &H, &nl, &M,
                                     &dropout, arg_seed, &seed, &cap))
        return -1;
    if (py_check_int("nodes", nodes, 1, NAO_MAX_NODES) || py_check_int("ops", ops, 1, 64) ||
        py_check_int("emb_size", E, 1, NAO_MAX_SIZE) || py_check_int("hidden_size", H, 1, NAO_MAX_SIZE) ||
        py_check_int("mlp_layers", nl, 0, NAO_MAX_MLP) || py_check_int("mlp_hidden_size", M, 1, NAO_MAX_SIZE) ||
        py_check_int("max_batch", cap, 1, NAO_MAX_CAP) || py_check_range("dropout", dropout, 0, 1, OPEN_HI))
        return -1;
    NaoShape s = {nodes, ops, E, H, nl, M, dropout};
    if (self->busy) { PyErr_SetString(PyExc_RuntimeError, "this NAO object is already running a call in another thread"); return -1; }
    nao_free(self->m);
    self->m = nao_create(s, cap, seed);
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
    PyArrayObject *a = py_zeros(1, &n, NPY_FLOAT64);
    if (a) memcpy(F64(a), src, (size_t)n * sizeof(double));
    return (PyObject *)a;
}

PyDoc_STRVAR(tensors_doc, "tensors() -> list of (name, offset, rows, cols): the flat parameter layout.");

static PyObject *Nao_tensors(NaoObject *self, PyObject *Py_UNUSED(unused)) {
    if (READY(self)) return NULL;
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
    if (ENTER(self)) return NULL;
    PyObject *p = copy_arena(self, nao_params(self->m)), *g = copy_arena(self, nao_grads(self->m));
    PyObject *mm = copy_arena(self, nao_adam_m(self->m)), *vv = copy_arena(self, nao_adam_v(self->m));
    PyObject *out = NULL;
    if (p && g && mm && vv)
        out = Py_BuildValue("{sOsOsOsOsLsK}", "params", p, "grads", g, "adam_m", mm, "adam_v", vv, "step",
                            (long long)*nao_step(self->m), "shuffles", (unsigned long long)*nao_shuffles(self->m));
    Py_XDECREF(p); Py_XDECREF(g); Py_XDECREF(mm); Py_XDECREF(vv);
    LEAVE(self);
    return out;
}

PyDoc_STRVAR(set_state_doc,
"set_state(params, adam_m=None, adam_v=None, step=None, shuffles=None)\n\n"
"Overwrite the parameters (and, when given, the Adam moments and counters).");

static PyObject *Nao_set_state(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"params", "adam_m", "adam_v", "step", "shuffles", NULL};
    if (READY(self)) return NULL;
    npy_intp n[1] = {(npy_intp)nao_num_params(self->m)};
    ArgArray p = ARG("params", 1, n[0]), mm = {.name = "adam_m", .ndim = 1, .shape = {n[0]}, .flags = ARG_OPTIONAL},
             vv = {.name = "adam_v", .ndim = 1, .shape = {n[0]}, .flags = ARG_OPTIONAL};
    PyObject *ostep = Py_None, *oshuf = Py_None, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O&O&OO", kwlist, arg_f64, &p, arg_f64, &mm, arg_f64, &vv, &ostep,
                                     &oshuf))
        return NULL;
    long long step = 0;
    unsigned long long shuf = 0;
    if (ENTER(self)) goto done;
    if (vv.arr)
        for (npy_intp k = 0; k < n[0]; k++)
            if (F64(vv.arr)[k] < 0) { PyErr_SetString(PyExc_ValueError, "adam_v must be >= 0"); goto leave; }
    if (ostep != Py_None) {
        step = PyLong_AsLongLong(ostep);
        if ((step == -1 && PyErr_Occurred()) || py_check_int("step", step, 0, LLONG_MAX)) goto leave;
    }
    if (oshuf != Py_None) {
        shuf = PyLong_AsUnsignedLongLong(oshuf);
        if (PyErr_Occurred()) { PyErr_SetString(PyExc_ValueError, "shuffles must be an integer >= 0"); goto leave; }
    }
    memcpy(nao_params(self->m), F64(p.arr), (size_t)n[0] * sizeof(double));
    if (mm.arr) memcpy(nao_adam_m(self->m), F64(mm.arr), (size_t)n[0] * sizeof(double));
    if (vv.arr) memcpy(nao_adam_v(self->m), F64(vv.arr), (size_t)n[0] * sizeof(double));
    if (ostep != Py_None) *nao_step(self->m) = step;
    if (oshuf != Py_None) *nao_shuffles(self->m) = shuf;
    out = py_ref(Py_None);
leave:
    LEAVE(self);
done:
    PY_RELEASE(p.arr, mm.arr, vv.arr);
    return out;
}

PyDoc_STRVAR(loss_grad_doc,
"loss_grad(tokens, targets, trade_off=0.8, train=False, step=0) -> (loss, mse, nll, grad)\n\n"
"Loss of one batch (N <= max_batch) and its gradient over the flat parameters; train=True\n"
"applies encoder dropout with the masks of `step`. For checks: nothing is updated.");

static PyObject *Nao_loss_grad(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"tokens", "targets", "trade_off", "train", "step", NULL};
    if (READY(self)) return NULL;
    ArgArray tok = ARG_TOKENS_OF(self), tgt = ARG_TARGETS;
    double trade_off = 0.8;
    int train = 0;
    unsigned long long step = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&|dpK", kwlist, arg_ints, &tok, arg_f64, &tgt, &trade_off, &train,
                                     &step))
        return NULL;
    PyObject *out = NULL;
    if (py_check_range("trade_off", trade_off, 0, 1, 0) || check_batch(self, &tok, &tgt, nao_max_batch(self->m)) ||
        ENTER(self))
        goto done;
    double loss, mse, nll;
    int N = (int)PyArray_DIM(tok.arr, 0);
    Py_BEGIN_ALLOW_THREADS
    loss = nao_loss_grad(self->m, N, PY_DATA(const int, tok.arr), F64(tgt.arr), trade_off, train, (uint64_t)step,
                         &mse, &nll);
    Py_END_ALLOW_THREADS
    PyObject *g = copy_arena(self, nao_grads(self->m));
    if (g) out = Py_BuildValue("(dddN)", loss, mse, nll, g);
    LEAVE(self);
done:
    PY_RELEASE(tok.arr, tgt.arr);
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
    if (READY(self)) return NULL;
    ArgArray tok = ARG_TOKENS_OF(self), tgt = ARG_TARGETS;
    NaoOptim o = OPTIM_DEFAULTS;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&|ddddddd", kwlist, arg_ints, &tok, arg_f64, &tgt, OPTIM_PTRS))
        return NULL;
    PyObject *out = NULL;
    if (check_optim(&o) || check_batch(self, &tok, &tgt, nao_max_batch(self->m)) || ENTER(self)) goto done;
    double loss, mse, nll, gn;
    int N = (int)PyArray_DIM(tok.arr, 0);
    Py_BEGIN_ALLOW_THREADS
    loss = nao_train_step(self->m, N, PY_DATA(const int, tok.arr), F64(tgt.arr), o, &mse, &nll, &gn);
    Py_END_ALLOW_THREADS
    LEAVE(self);
    out = Py_BuildValue("(dddd)", loss, mse, nll, gn);
done:
    PY_RELEASE(tok.arr, tgt.arr);
    return out;
}

PyDoc_STRVAR(fit_doc,
"fit(tokens, targets, epochs, batch_size, shuffle=True, lr=1e-3, weight_decay=1e-4,\n"
"    max_grad_norm=5.0, trade_off=0.8, beta1=0.9, beta2=0.999, eps=1e-8) -> (mse, nll)\n\n"
"`epochs` passes over all rows in mini-batches (the last one partial), reshuffled every epoch\n"
"from the object's RNG stream; returns the mean MSE and NLL of the last epoch.");

static PyObject *Nao_fit(NaoObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"tokens", "targets", "epochs", "batch_size", "shuffle", OPTIM_KWARGS, NULL};
    if (READY(self)) return NULL;
    ArgArray tok = ARG_TOKENS_OF(self), tgt = ARG_TARGETS;
    int epochs, batch, shuffle = 1;
    NaoOptim o = OPTIM_DEFAULTS;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&ii|pddddddd", kwlist, arg_ints, &tok, arg_f64, &tgt, &epochs,
                                     &batch, &shuffle, OPTIM_PTRS))
        return NULL;
    PyObject *out = NULL;
    if (py_check_int("epochs", epochs, 0, 100000000) || check_optim(&o) ||
        py_check_int("batch_size", batch, 1, nao_max_batch(self->m)) || check_batch(self, &tok, &tgt, 0) ||
        ENTER(self))
        goto done;
    double res[2] = {NAN, NAN};
    int N = (int)PyArray_DIM(tok.arr, 0);
    Py_BEGIN_ALLOW_THREADS
    nao_fit(self->m, N, PY_DATA(const int, tok.arr), F64(tgt.arr), epochs, batch, shuffle, o, res);
    Py_END_ALLOW_THREADS
    LEAVE(self);
    if (epochs > 0 && isnan(res[0])) { PyErr_NoMemory(); goto done; }
    out = Py_BuildValue("(dd)", res[0], res[1]);
done:
    PY_RELEASE(tok.arr, tgt.arr);
    return out;
}

/* The one array argument of encode, predict_emb, predict_ctx and decode (named `name`):
 * tokens (N, 2n), emb (N, H) or ctx (N, n, H). */
static int one_array(NaoObject *self, PyObject *args, PyObject *kw, const char *name, ArgArray *a) {
    if (READY(self)) return -1;
    NaoShape s = nao_shape(self->m);
    char *kwlist[] = {(char *)name, NULL};
    int tokens = strcmp(name, "tokens") == 0, emb = strcmp(name, "emb") == 0;
    *a = tokens ? (ArgArray)ARG_TOKENS_OF(self)
                : (ArgArray){.name = name, .ndim = emb ? 2 : 3, .shape = {-1, emb ? s.hidden : s.nodes, s.hidden},
                             .cap = NAO_MAX_ROWS};
    return PyArg_ParseTupleAndKeywords(args, kw, "O&", kwlist, tokens ? arg_ints : arg_f64, a) ? 0 : -1;
}

PyDoc_STRVAR(encode_doc,
"encode(tokens) -> (ctx, emb, pred)\n\n"
"Evaluation-mode encoder: contexts (N, n, H), embeddings (N, H), predicted scores (N,).");

static PyObject *Nao_encode(NaoObject *self, PyObject *args, PyObject *kw) {
    ArgArray tok;
    if (one_array(self, args, kw, "tokens", &tok)) return NULL;
    NaoShape s = nao_shape(self->m);
    npy_intp N = PyArray_DIM(tok.arr, 0), sc[3] = {N, s.nodes, s.hidden}, se[2] = {N, s.hidden}, sp[1] = {N};
    PyArrayObject *ctx = NULL, *emb = NULL, *pred = NULL;
    PyObject *out = NULL;
    if (check_tokens(self, &tok) || !(ctx = py_zeros(3, sc, NPY_FLOAT64)) || !(emb = py_zeros(2, se, NPY_FLOAT64)) ||
        !(pred = py_zeros(1, sp, NPY_FLOAT64)) || ENTER(self))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    nao_encode(self->m, (int)N, PY_DATA(const int, tok.arr), F64(ctx), F64(emb), F64(pred));
    Py_END_ALLOW_THREADS
    LEAVE(self);
    out = Py_BuildValue("(OOO)", ctx, emb, pred);
done:
    PY_RELEASE(tok.arr, ctx, emb, pred);
    return out;
}

/* the predictor on float64 inputs of shape (N, ...) `in` (emb or ctx): scores (N,) and
 * d score / d input (the input's shape) */
static PyObject *predict(NaoObject *self, PyObject *args, PyObject *kw, const char *name,
                         void (*fn)(NaoModel *, int, const double *, double *, double *)) {
    ArgArray a, *in = &a;
    if (one_array(self, args, kw, name, in)) return NULL;
    npy_intp N = PyArray_DIM(in->arr, 0);
    PyArrayObject *pred = NULL, *grad = NULL;
    PyObject *out = NULL;
    if (!(pred = py_zeros(1, &N, NPY_FLOAT64)) || !(grad = py_zeros(in->ndim, PyArray_DIMS(in->arr), NPY_FLOAT64)) ||
        ENTER(self))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    fn(self->m, (int)N, F64(in->arr), F64(pred), F64(grad));
    Py_END_ALLOW_THREADS
    LEAVE(self);
    out = Py_BuildValue("(OO)", pred, grad);
done:
    PY_RELEASE(in->arr, pred, grad);
    return out;
}

PyDoc_STRVAR(predict_emb_doc,
"predict_emb(emb) -> (pred, grad)\n\n"
"Predictor on architecture embeddings (N, H): scores (N,) and d score / d emb (N, H).");
PyDoc_STRVAR(predict_ctx_doc,
"predict_ctx(ctx) -> (pred, grad)\n\n"
"Predictor on contexts (N, n, H) through emb = normalise(mean_t ctx_t): scores (N,) and\n"
"d score / d ctx (N, n, H), the direction in which NAO moves an architecture.");

static PyObject *Nao_predict_emb(NaoObject *self, PyObject *args, PyObject *kw) {
    return predict(self, args, kw, "emb", nao_predict_emb);
}
static PyObject *Nao_predict_ctx(NaoObject *self, PyObject *args, PyObject *kw) {
    return predict(self, args, kw, "ctx", nao_predict_ctx);
}

PyDoc_STRVAR(decode_doc,
"decode(ctx) -> tokens\n\n"
"Greedy decoding constrained to valid tokens from contexts (N, n, H) (each row normalised\n"
"first); returns int64 tokens (N, 2n), always an architecture of the space.");

static PyObject *Nao_decode(NaoObject *self, PyObject *args, PyObject *kw) {
    ArgArray ctx;
    if (one_array(self, args, kw, "ctx", &ctx)) return NULL;
    npy_intp N = PyArray_DIM(ctx.arr, 0), st[2] = {N, 2 * nao_shape(self->m).nodes};
    PyArrayObject *tok = NULL, *res = NULL;
    PyObject *out = NULL;
    if (!(tok = py_zeros(2, st, NPY_INT32)) || !(res = py_zeros(2, st, NPY_INT64)) || ENTER(self)) goto done;
    Py_BEGIN_ALLOW_THREADS
    nao_decode(self->m, (int)N, F64(ctx.arr), PY_DATA(int, tok));
    Py_END_ALLOW_THREADS
    LEAVE(self);
    for (npy_intp k = 0; k < st[0] * st[1]; k++) PY_DATA(npy_int64, res)[k] = PY_DATA(int, tok)[k];
    out = py_ref((PyObject *)res);
done:
    PY_RELEASE(ctx.arr, tok, res);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * Attributes and type */

static PyObject *Nao_get_shape(NaoObject *self, void *Py_UNUSED(closure)) {
    if (READY(self)) return NULL;
    NaoShape s = nao_shape(self->m);
    return Py_BuildValue("{sisisisisisisd}", "nodes", s.nodes, "ops", s.ops, "emb_size", s.emb, "hidden_size",
                         s.hidden, "mlp_layers", s.mlp_layers, "mlp_hidden_size", s.mlp_hidden, "dropout", s.dropout);
}

static PyObject *Nao_get_num_params(NaoObject *self, void *Py_UNUSED(closure)) {
    if (READY(self)) return NULL;
    return PyLong_FromSize_t(nao_num_params(self->m));
}

static PyObject *Nao_get_max_batch(NaoObject *self, void *Py_UNUSED(closure)) {
    if (READY(self)) return NULL;
    return PyLong_FromLong(nao_max_batch(self->m));
}

static PyGetSetDef Nao_getset[] = {
    {"shape", (getter)Nao_get_shape, NULL, "dict of the sizes the object was built with", NULL},
    {"num_params", (getter)Nao_get_num_params, NULL, "number of parameters", NULL},
    {"max_batch", (getter)Nao_get_max_batch, NULL, "rows of the activation buffers", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Nao_methods[] = {
    {"tensors", (PyCFunction)Nao_tensors, METH_NOARGS, tensors_doc},
    {"get_state", (PyCFunction)Nao_get_state, METH_NOARGS, get_state_doc},
    PY_METHOD("set_state", Nao_set_state, set_state_doc),
    PY_METHOD("loss_grad", Nao_loss_grad, loss_grad_doc),
    PY_METHOD("train_step", Nao_train_step, train_step_doc),
    PY_METHOD("fit", Nao_fit, fit_doc),
    PY_METHOD("encode", Nao_encode, encode_doc),
    PY_METHOD("predict_emb", Nao_predict_emb, predict_emb_doc),
    PY_METHOD("predict_ctx", Nao_predict_ctx, predict_ctx_doc),
    PY_METHOD("decode", Nao_decode, decode_doc),
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Nao_doc,
"NAO(nodes, ops=4, emb_size=48, hidden_size=96, mlp_layers=0, mlp_hidden_size=200,\n"
"    dropout=0.1, seed=0, max_batch=256)\n\n"
"NAO's encoder-predictor-decoder in float64 over architectures of `nodes` nodes, as 2n\n"
"tokens (pred + 1, op + nodes + 1; 0 = start). See csrc/nao.h.");

static PyTypeObject NaoType = PY_TYPE("NAO", NaoObject, Nao_doc, Nao_init, Nao_dealloc, Nao_methods, Nao_getset);

int nao_add_types(PyObject *module) {
    /* without PY_ARRAY_UNIQUE_SYMBOL each translation unit holds its own NumPy API table */
    if (_import_array() < 0) return -1;
    return py_add_type(module, "NAO", &NaoType);
}
