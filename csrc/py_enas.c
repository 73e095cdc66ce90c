/* Bindings for the ENAS controller (csrc/enas.h). Arrays cross as NumPy arrays: actions are
 * int32 (count, n_decisions) choice indices, log-probabilities and entropies float64 of the
 * same shape. Every argument is validated and named in the ValueError; long calls release
 * the GIL and a controller refuses to be entered from two threads at once. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>

#include <math.h>
#include <string.h>

#include "enas.h"
#include "py_args.h"
#include "py_enas.h"
#include "rng.h"

/* exact probabilities are materialised for at most this many architectures */
#define ENAS_MAX_ENUMERATE 10000000

typedef struct {
    PyObject_HEAD
    EnasController *e;
    int busy;
} EnasObject;

#define READY(self) py_ready((self)->e, "controller")
#define ENTER(self) py_enter((self)->e, &(self)->busy, "controller")
#define LEAVE(self) py_leave(&(self)->busy)

/* ------------------------------------------------------------------------------------------ */
/* argument conversion                                                                          */

/* rows of integer matrices: samples, actions, cells */
#define ENAS_MAX_ROWS (1 << 24)
#define ARG_ROWS(name_, cols) {.name = (name_), .ndim = 2, .shape = {-1, (cols)}, .cap = ENAS_MAX_ROWS}

/* an actions matrix (count, n_decisions), every entry a choice of its decision */
static int check_actions(EnasObject *self, const ArgArray *a) {
    const int *v = PY_DATA(const int, a->arr);
    int bad = enas_check_actions(self->e, (int)PyArray_DIM(a->arr, 0), v);
    if (bad < 0) return 0;
    int d = bad % self->e->n_dec;
    const EnasDecision *q = &self->e->dec[d];
    PyErr_Format(PyExc_ValueError, "actions[%d, %d] = %d is not a choice of decision %d (%s of node %d: %s)",
                 bad / self->e->n_dec, d, v[bad], d, q->is_pred ? "predecessor" : "activation", q->node,
                 q->forced >= 0 ? "fixed node, only its fixed choice" : "0 .. n_choices - 1");
    return -1;
}

static int stream_id(PyObject *obj) {
    const char *names[] = {"shared", "controller", "final"};
    if (PyUnicode_Check(obj))
        for (int k = 0; k < 3; k++)
            if (PyUnicode_CompareWithASCIIString(obj, names[k]) == 0) return STREAM_ENAS_SHARED + k;
    PyErr_SetString(PyExc_ValueError, "stream must be 'shared', 'controller' or 'final'");
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* construction                                                                                 */

/* the fixed nodes: -1 = free, else n_ops * pred + op, a choice the node has */
static int check_fixed(EnasConfig *cfg, const ArgArray *f) {
    npy_intp n[1] = {cfg->n_nodes};
    if (py_check_shape(f, n)) return -1;
    const int *fv = PY_DATA(const int, f->arr);
    for (int i = 1; i <= cfg->n_nodes; i++) {
        int v = fv[i - 1];
        if (v < -1 || v >= cfg->n_ops * i) {
            PyErr_Format(PyExc_ValueError, "fixed[%d] = %d is outside -1..%d (node %d)", i - 1, v, cfg->n_ops * i - 1, i);
            return -1;
        }
        if (v >= 0 && i >= 2 && cfg->restrict_s0 && v / cfg->n_ops == 0) {
            PyErr_Format(PyExc_ValueError, "fixed[%d]: node %d is fixed to predecessor s0, which restrict_s0 forbids",
                         i - 1, i);
            return -1;
        }
        cfg->fixed[i - 1] = v;
    }
    return 0;
}

static int Enas_init(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"n_nodes", "n_ops", "hidden", "fixed", "restrict_s0", "temperature", "tanh_c",
                             "baseline_decay", "entropy_weight", "entropy_mode", "lr", "beta1", "beta2",
                             "eps", "weight_decay", "seed", "layers", NULL};
    EnasConfig cfg = {.n_ops = 4, .hidden = 100, .layers = 1, .temperature = 5.0, .tanh_c = 2.5, .baseline_decay = 0.95,
                      .entropy_weight = 1e-4, .adam = {3.5e-4, 0.9, 0.999, 1e-8, 0.0}};
    ArgArray fixed = {.name = "fixed", .ndim = 1, .shape = {-1}, .flags = ARG_OPTIONAL};
    const char *mode = "reward";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|iiO&pddddsdddddO&i", kwlist, &cfg.n_nodes, &cfg.n_ops,
                                     &cfg.hidden, arg_ints, &fixed, &cfg.restrict_s0, &cfg.temperature,
                                     &cfg.tanh_c, &cfg.baseline_decay, &cfg.entropy_weight, &mode, &cfg.adam.lr,
                                     &cfg.adam.beta1, &cfg.adam.beta2, &cfg.adam.eps, &cfg.adam.weight_decay,
                                     arg_seed, &cfg.seed, &cfg.layers))
        return -1;
    int rc = -1;
    for (int i = 0; i < ENAS_MAX_NODES; i++) cfg.fixed[i] = -1;
    if (py_check_int("n_nodes", cfg.n_nodes, 1, ENAS_MAX_NODES) || py_check_int("n_ops", cfg.n_ops, 1, 64) ||
        py_check_int("hidden", cfg.hidden, 1, 4096) || py_check_int("layers", cfg.layers, 1, ENAS_MAX_LAYERS) ||
        py_check_range("temperature", cfg.temperature, 0, 1e6, OPEN_LO) ||
        py_check_range("tanh_c", cfg.tanh_c, 0, 1e6, OPEN_LO) ||
        py_check_range("baseline_decay", cfg.baseline_decay, 0, 1, OPEN_HI) ||
        py_check_range("entropy_weight", cfg.entropy_weight, 0, 1e6, 0) ||
        py_check_range("lr", cfg.adam.lr, 0, 1e3, 0) || py_check_range("beta1", cfg.adam.beta1, 0, 1, OPEN_HI) ||
        py_check_range("beta2", cfg.adam.beta2, 0, 1, OPEN_HI) || py_check_range("eps", cfg.adam.eps, 0, 1, OPEN_LO) ||
        py_check_range("weight_decay", cfg.adam.weight_decay, 0, 1e3, 0) || (fixed.arr && check_fixed(&cfg, &fixed)))
        goto done;
    if (strcmp(mode, "reward") == 0) cfg.entropy_mode = ENAS_ENTROPY_REWARD;
    else if (strcmp(mode, "regularizer") == 0) cfg.entropy_mode = ENAS_ENTROPY_REGULARIZER;
    else {
        PyErr_Format(PyExc_ValueError, "entropy_mode must be 'reward' or 'regularizer', got '%s'", mode);
        goto done;
    }
    if (self->busy) { PyErr_SetString(PyExc_RuntimeError, "this controller is already running a call in another thread"); goto done; }
    enas_free(self->e);
    self->e = enas_create(&cfg);
    if (!self->e) { PyErr_NoMemory(); goto done; }
    rc = 0;
done:
    PY_RELEASE(fixed.arr);
    return rc;
}

static void Enas_dealloc(EnasObject *self) {
    enas_free(self->e);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ------------------------------------------------------------------------------------------ */
/* methods                                                                                      */

PyDoc_STRVAR(sample_doc, "sample(count, stream) -> (actions, logp, entropy)\n\n"
"Draws count sequences from stream 'shared', 'controller' or 'final' (rng streams 17-19),\n"
"continuing that stream's counter; arrays of shape (count, n_decisions).");

static PyObject *Enas_sample(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"count", "stream", NULL};
    Py_ssize_t count;
    PyObject *stream_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "nO", kwlist, &count, &stream_obj) || READY(self)) return NULL;
    int stream = stream_id(stream_obj);
    if (stream < 0 || py_check_int("count", count, 1, ENAS_MAX_ROWS)) return NULL;
    npy_intp shape[2] = {count, self->e->n_dec};
    PyArrayObject *a = py_zeros(2, shape, NPY_INT32), *lp = py_zeros(2, shape, NPY_FLOAT64),
                  *en = py_zeros(2, shape, NPY_FLOAT64);
    PyObject *out = NULL;
    if (!a || !lp || !en || ENTER(self)) goto done;
    Py_BEGIN_ALLOW_THREADS
    enas_sample(self->e, stream, (int)count, PyArray_DATA(a), PyArray_DATA(lp), PyArray_DATA(en));
    Py_END_ALLOW_THREADS
    LEAVE(self);
    out = Py_BuildValue("(OOO)", a, lp, en);
done:
    PY_RELEASE(a, lp, en);
    return out;
}

PyDoc_STRVAR(score_doc, "score(actions) -> (logp, entropy)\n\n"
"Teacher-forced per-decision log-probabilities and entropies of given action sequences.");

static PyObject *Enas_score(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"actions", NULL};
    if (READY(self)) return NULL;
    ArgArray a = ARG_ROWS("actions", self->e->n_dec);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&", kwlist, arg_ints, &a)) return NULL;
    npy_intp shape[2] = {PyArray_DIM(a.arr, 0), self->e->n_dec};
    PyArrayObject *lp = NULL, *en = NULL;
    PyObject *out = NULL;
    if (check_actions(self, &a) || !(lp = py_zeros(2, shape, NPY_FLOAT64)) || !(en = py_zeros(2, shape, NPY_FLOAT64)) ||
        ENTER(self))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    enas_score(self->e, (int)shape[0], PyArray_DATA(a.arr), PyArray_DATA(lp), PyArray_DATA(en));
    Py_END_ALLOW_THREADS
    LEAVE(self);
    out = Py_BuildValue("(OO)", lp, en);
done:
    PY_RELEASE(a.arr, lp, en);
    return out;
}

PyDoc_STRVAR(gradient_doc, "gradient(actions, glogp, gentropy) -> grad\n\n"
"Gradient over all parameters (flat, as params) of sum(glogp * logp + gentropy * entropy)\n"
"for the given action sequences; glogp and gentropy have the shape of actions.");

static PyObject *Enas_gradient(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"actions", "glogp", "gentropy", NULL};
    if (READY(self)) return NULL;
    int n_dec = self->e->n_dec;
    ArgArray a = ARG_ROWS("actions", n_dec), g = ARG("glogp", 2, -1, n_dec), en = ARG("gentropy", 2, -1, n_dec);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&", kwlist, arg_ints, &a, arg_f64, &g, arg_f64, &en))
        return NULL;
    npy_intp shape[2] = {PyArray_DIM(a.arr, 0), n_dec}, np_[1] = {(npy_intp)self->e->n_params};
    PyArrayObject *grad = NULL;
    PyObject *out = NULL;
    if (check_actions(self, &a) || py_check_shape(&g, shape) || py_check_shape(&en, shape) ||
        !(grad = py_zeros(1, np_, NPY_FLOAT64)) || ENTER(self))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    enas_zero_grad(self->e);
    enas_accumulate_grad(self->e, (int)shape[0], PyArray_DATA(a.arr), PyArray_DATA(g.arr), PyArray_DATA(en.arr));
    memcpy(PyArray_DATA(grad), self->e->grads, sizeof(double) * self->e->n_params);
    Py_END_ALLOW_THREADS
    LEAVE(self);
    out = py_ref((PyObject *)grad);
done:
    PY_RELEASE(a.arr, g.arr, en.arr, grad);
    return out;
}

PyDoc_STRVAR(adam_step_doc, "adam_step(grad)\n\nOne Adam step on the parameters with the given flat gradient.");

static PyObject *Enas_adam_step(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"grad", NULL};
    if (READY(self)) return NULL;
    ArgArray g = ARG("grad", 1, (npy_intp)self->e->n_params);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&", kwlist, arg_f64, &g)) return NULL;
    PyObject *out = NULL;
    if (ENTER(self)) goto done;
    memcpy(self->e->grads, PyArray_DATA(g.arr), sizeof(double) * self->e->n_params);
    enas_adam_step(self->e);
    LEAVE(self);
    out = py_ref(Py_None);
done:
    PY_RELEASE(g.arr);
    return out;
}

PyDoc_STRVAR(reinforce_doc, "reinforce(actions, rewards) -> advantages\n\n"
"One REINFORCE update from scored samples (rewards: one per row of actions, e.g. 80 / valid\n"
"ppl): moving-average baseline per decision, sample by sample; loss -mean over samples of\n"
"sum over decisions of advantage * logp (entropy bonus per entropy_mode); one Adam step.");

static PyObject *Enas_reinforce(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"actions", "rewards", NULL};
    if (READY(self)) return NULL;
    ArgArray a = ARG_ROWS("actions", self->e->n_dec), r = ARG("rewards", 1, -1);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&", kwlist, arg_ints, &a, arg_f64, &r)) return NULL;
    npy_intp n[1] = {PyArray_DIM(a.arr, 0)}, shape[2] = {n[0], self->e->n_dec};
    PyArrayObject *adv = NULL;
    PyObject *out = NULL;
    if (check_actions(self, &a) || py_check_shape(&r, n) || !(adv = py_zeros(2, shape, NPY_FLOAT64)) || ENTER(self))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    enas_reinforce(self->e, (int)n[0], PyArray_DATA(a.arr), PyArray_DATA(r.arr), PyArray_DATA(adv));
    Py_END_ALLOW_THREADS
    LEAVE(self);
    out = py_ref((PyObject *)adv);
done:
    PY_RELEASE(a.arr, r.arr, adv);
    return out;
}

PyDoc_STRVAR(arch_log_probs_doc, "arch_log_probs() -> array\n\n"
"Exact log-probability of every architecture of the space, in id order (-inf where\n"
"restrict_s0 forbids one). For spaces of at most 10**7 architectures.");

static PyObject *Enas_arch_log_probs(EnasObject *self, PyObject *Py_UNUSED(noargs)) {
    if (READY(self)) return NULL;
    size_t size = enas_space_size(self->e);
    if (size == 0 || size > ENAS_MAX_ENUMERATE) {
        PyErr_Format(PyExc_ValueError, "the space is too large to enumerate (more than %d architectures)", ENAS_MAX_ENUMERATE);
        return NULL;
    }
    npy_intp shape[1] = {(npy_intp)size};
    PyArrayObject *out = py_zeros(1, shape, NPY_FLOAT64);
    if (!out || ENTER(self)) { PY_RELEASE(out); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    enas_arch_log_probs(self->e, PyArray_DATA(out));
    Py_END_ALLOW_THREADS
    LEAVE(self);
    return (PyObject *)out;
}

PyDoc_STRVAR(decode_doc, "decode(actions) -> (preds, ops)\n\nPredecessor and op index of every node, (count, n_nodes) int32.");

static PyObject *Enas_decode(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"actions", NULL};
    if (READY(self)) return NULL;
    ArgArray a = ARG_ROWS("actions", self->e->n_dec);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&", kwlist, arg_ints, &a)) return NULL;
    npy_intp shape[2] = {PyArray_DIM(a.arr, 0), self->e->cfg.n_nodes};
    PyArrayObject *p = NULL, *o = NULL;
    PyObject *out = NULL;
    if (check_actions(self, &a) || !(p = py_zeros(2, shape, NPY_INT32)) || !(o = py_zeros(2, shape, NPY_INT32)))
        goto done;
    enas_decode(self->e, (int)shape[0], PyArray_DATA(a.arr), PyArray_DATA(p), PyArray_DATA(o));
    out = Py_BuildValue("(OO)", p, o);
done:
    PY_RELEASE(a.arr, p, o);
    return out;
}

PyDoc_STRVAR(encode_doc, "encode(preds, ops) -> actions\n\nInverse of decode; ValueError for a cell outside the space.");

static PyObject *Enas_encode(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"preds", "ops", NULL};
    if (READY(self)) return NULL;
    int n = self->e->cfg.n_nodes;
    ArgArray p = ARG_ROWS("preds", n), o = ARG_ROWS("ops", n);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&", kwlist, arg_ints, &p, arg_ints, &o)) return NULL;
    npy_intp shape[2] = {PyArray_DIM(p.arr, 0), self->e->n_dec};
    PyArrayObject *a = NULL;
    PyObject *out = NULL;
    if (py_check_shape(&o, (npy_intp[]){shape[0], n}) || !(a = py_zeros(2, shape, NPY_INT32))) goto done;
    int rc = enas_encode(self->e, (int)shape[0], PyArray_DATA(p.arr), PyArray_DATA(o.arr), PyArray_DATA(a));
    if (rc < 0) {
        PyErr_Format(PyExc_ValueError, "row %d of preds/ops is not a cell of this controller's space "
                     "(predecessor out of range, op out of range, a fixed node changed, or s0 under restrict_s0)", -1 - rc);
        goto done;
    }
    out = py_ref((PyObject *)a);
done:
    PY_RELEASE(p.arr, o.arr, a);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* state                                                                                        */

static PyObject *copy_doubles(const double *src, size_t n) {
    npy_intp shape[1] = {(npy_intp)n};
    PyArrayObject *a = py_zeros(1, shape, NPY_FLOAT64);
    if (a) memcpy(PyArray_DATA(a), src, sizeof(double) * n);
    return (PyObject *)a;
}

PyDoc_STRVAR(state_doc, "state() -> dict\n\n"
"Everything that the next calls depend on: params, Adam moments and step count, baseline,\n"
"and the three sampling streams' counters (drawn).");

static PyObject *Enas_state(EnasObject *self, PyObject *Py_UNUSED(noargs)) {
    if (READY(self)) return NULL;
    EnasController *e = self->e;
    PyObject *drawn = Py_BuildValue("[KKK]", (unsigned long long)e->drawn[0], (unsigned long long)e->drawn[1],
                                    (unsigned long long)e->drawn[2]);
    return Py_BuildValue("{sNsNsNsLsNsOsN}", "params", copy_doubles(e->params, e->n_params),
                         "adam_m", copy_doubles(e->adam_m, e->n_params), "adam_v", copy_doubles(e->adam_v, e->n_params),
                         "adam_t", (long long)e->adam_t, "baseline", copy_doubles(e->baseline, e->n_dec),
                         "has_baseline", e->has_baseline ? Py_True : Py_False, "drawn", drawn);
}

/* n finite float64 values into dst */
static int fill(PyObject *v, const char *name, double *dst, size_t n) {
    ArgArray a = ARG(name, 1, (npy_intp)n);
    if (!arg_f64(v, &a)) return -1;
    memcpy(dst, PyArray_DATA(a.arr), sizeof(double) * n);
    PY_RELEASE(a.arr);
    return 0;
}

static int fill_doubles(PyObject *state, const char *key, double *dst, size_t n) {
    PyObject *v = PyDict_GetItemString(state, key);
    if (!v) { PyErr_Format(PyExc_ValueError, "state is missing %s", key); return -1; }
    return fill(v, key, dst, n);
}

/* state['drawn']: the three streams' counters */
static int fill_drawn(PyObject *od, unsigned long long drawn[3]) {
    PyObject *seq = od ? PySequence_Fast(od, "drawn") : NULL;
    int ok = seq && PySequence_Fast_GET_SIZE(seq) == 3;
    for (int k = 0; ok && k < 3; k++) {
        drawn[k] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, k));
        ok = !PyErr_Occurred();
    }
    Py_XDECREF(seq);
    if (ok) return 0;
    PyErr_Clear();
    PyErr_SetString(PyExc_ValueError, "state['drawn'] must be three non-negative ints");
    return -1;
}

PyDoc_STRVAR(restore_doc, "restore(state)\n\nInverse of state(); the controller then continues bitwise identically.");

static PyObject *Enas_restore(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"state", NULL};
    PyObject *st;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!", kwlist, &PyDict_Type, &st) || ENTER(self)) return NULL;
    EnasController *e = self->e;
    PyObject *out = NULL;
    double *tmp = NULL;
    /* validate everything into temporaries first, so a bad state leaves the controller untouched */
    PyObject *ot = PyDict_GetItemString(st, "adam_t"), *ob = PyDict_GetItemString(st, "has_baseline");
    long long t = ot ? PyLong_AsLongLong(ot) : -1;
    unsigned long long drawn[3];
    if (!ot || t < 0) { PyErr_Clear(); PyErr_SetString(PyExc_ValueError, "state['adam_t'] must be an int >= 0"); goto done; }
    if (!ob) { PyErr_SetString(PyExc_ValueError, "state is missing has_baseline"); goto done; }
    int hb = PyObject_IsTrue(ob);
    if (hb < 0 || fill_drawn(PyDict_GetItemString(st, "drawn"), drawn)) goto done;
    size_t n = e->n_params;
    if (!(tmp = PyMem_Malloc(sizeof(double) * (3 * n + e->n_dec)))) { PyErr_NoMemory(); goto done; }
    if (fill_doubles(st, "params", tmp, n) || fill_doubles(st, "adam_m", tmp + n, n) ||
        fill_doubles(st, "adam_v", tmp + 2 * n, n) || fill_doubles(st, "baseline", tmp + 3 * n, e->n_dec))
        goto done;
    memcpy(e->params, tmp, sizeof(double) * n);
    memcpy(e->adam_m, tmp + n, sizeof(double) * n);
    memcpy(e->adam_v, tmp + 2 * n, sizeof(double) * n);
    memcpy(e->baseline, tmp + 3 * n, sizeof(double) * e->n_dec);
    e->adam_t = t;
    e->has_baseline = hb;
    for (int k = 0; k < 3; k++) e->drawn[k] = drawn[k];
    out = py_ref(Py_None);
done:
    PyMem_Free(tmp);
    LEAVE(self);
    return out;
}

PyDoc_STRVAR(layout_doc, "layout() -> dict name -> (offset, shape)\n\n"
"Where each parameter lives in the flat params vector: lstm_W (2H, 4H), lstm_b (4H,),\n"
"embedding (1 + n_ops + n_nodes, H) (row 0 = start, then ops, then predecessor nodes),\n"
"head{d}_W (H, n_choices) and head{d}_b for decision d; with layers > 1, lstm_l{l}_W (2H, 4H)\n"
"and lstm_l{l}_b (4H,) for the stacked layer l >= 1 (it reads layer l - 1's h).");

/* layout entries "<base><k>_W" (offset off_W, shape (rows, cols)) and "<base><k>_b" (off_b,
 * (cols,)); -1 with an exception set on failure */
static int layout_pair(PyObject *d, const char *base, int k, size_t off_W, int rows, int cols, size_t off_b) {
    char name[32];
    for (int bias = 0; bias < 2; bias++) {
        snprintf(name, sizeof name, "%s%d_%s", base, k, bias ? "b" : "W");
        PyObject *v = bias ? Py_BuildValue("(n(i))", (Py_ssize_t)off_b, cols)
                           : Py_BuildValue("(n(ii))", (Py_ssize_t)off_W, rows, cols);
        int rc = v ? PyDict_SetItemString(d, name, v) : -1;
        Py_XDECREF(v);
        if (rc) return -1;
    }
    return 0;
}

static PyObject *Enas_layout(EnasObject *self, PyObject *Py_UNUSED(noargs)) {
    if (READY(self)) return NULL;
    EnasController *e = self->e;
    int H = e->H;
    PyObject *d = Py_BuildValue("{s(n(ii))s(n(i))s(n(ii))}", "lstm_W", (Py_ssize_t)e->off_W, 2 * H, 4 * H,
                                "lstm_b", (Py_ssize_t)e->off_b, 4 * H, "embedding", (Py_ssize_t)e->off_emb, e->emb_rows, H);
    if (!d) return NULL;
    for (int q = 0; q < e->n_dec; q++)
        if (layout_pair(d, "head", q, e->dec[q].off_W, H, e->dec[q].n_choices, e->dec[q].off_b)) goto fail;
    for (int l = 1; l < e->L; l++)
        if (layout_pair(d, "lstm_l", l, e->off_lW[l], 2 * H, 4 * H, e->off_lb[l])) goto fail;
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static PyObject *Enas_get_decisions(EnasObject *self, void *Py_UNUSED(unused)) {
    if (READY(self)) return NULL;
    EnasController *e = self->e;
    PyObject *list = PyList_New(e->n_dec);
    if (!list) return NULL;
    for (int q = 0; q < e->n_dec; q++) {
        const EnasDecision *d = &e->dec[q];
        PyObject *v = Py_BuildValue("{sisssisi}", "node", d->node, "kind", d->is_pred ? "pred" : "op",
                                    "n_choices", d->n_choices, "forced", d->forced);
        if (!v) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, q, v);
    }
    return list;
}

static PyObject *Enas_get_params(EnasObject *self, void *Py_UNUSED(unused)) {
    if (READY(self)) return NULL;
    return copy_doubles(self->e->params, self->e->n_params);
}

static int Enas_set_params(EnasObject *self, PyObject *value, void *Py_UNUSED(unused)) {
    if (!value) { PyErr_SetString(PyExc_AttributeError, "params cannot be deleted"); return -1; }
    if (ENTER(self)) return -1;
    int rc = fill(value, "params", self->e->params, self->e->n_params);
    LEAVE(self);
    return rc;
}

static PyObject *Enas_get_baseline(EnasObject *self, void *Py_UNUSED(unused)) {
    if (READY(self)) return NULL;
    if (!self->e->has_baseline) Py_RETURN_NONE;
    return copy_doubles(self->e->baseline, self->e->n_dec);
}

static PyObject *Enas_get_int(EnasObject *self, void *which) {
    if (READY(self)) return NULL;
    switch ((int)(intptr_t)which) {
    case 0: return PyLong_FromLong(self->e->n_dec);
    case 1: return PyLong_FromSize_t(self->e->n_params);
    case 2: return PyLong_FromSize_t(enas_space_size(self->e));
    case 4: return PyLong_FromLong(self->e->L);
    default: return PyLong_FromLongLong(self->e->adam_t);
    }
}

static PyMethodDef Enas_methods[] = {
    PY_METHOD("sample", Enas_sample, sample_doc),
    PY_METHOD("score", Enas_score, score_doc),
    PY_METHOD("gradient", Enas_gradient, gradient_doc),
    PY_METHOD("adam_step", Enas_adam_step, adam_step_doc),
    PY_METHOD("reinforce", Enas_reinforce, reinforce_doc),
    {"arch_log_probs", (PyCFunction)Enas_arch_log_probs, METH_NOARGS, arch_log_probs_doc},
    PY_METHOD("decode", Enas_decode, decode_doc),
    PY_METHOD("encode", Enas_encode, encode_doc),
    {"state", (PyCFunction)Enas_state, METH_NOARGS, state_doc},
    PY_METHOD("restore", Enas_restore, restore_doc),
    {"layout", (PyCFunction)Enas_layout, METH_NOARGS, layout_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Enas_getset[] = {
    {"params", (getter)Enas_get_params, (setter)Enas_set_params, "flat parameter vector (a copy; assignable)", NULL},
    {"decisions", (getter)Enas_get_decisions, NULL, "per decision: node, kind ('pred'/'op'), n_choices, forced", NULL},
    {"baseline", (getter)Enas_get_baseline, NULL, "moving-average baseline per decision (None before the first update)", NULL},
    {"n_decisions", (getter)Enas_get_int, NULL, "number of decisions per architecture", (void *)0},
    {"n_params", (getter)Enas_get_int, NULL, "number of parameters", (void *)1},
    {"space_size", (getter)Enas_get_int, NULL, "architectures in the space (0 if it overflows)", (void *)2},
    {"adam_t", (getter)Enas_get_int, NULL, "Adam steps taken", (void *)3},
    {"layers", (getter)Enas_get_int, NULL, "stacked LSTM layers", (void *)4},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EnasType = PY_TYPE(
    "EnasController", EnasObject,
    "EnasController(n_nodes, n_ops=4, hidden=100, fixed=None, restrict_s0=False, temperature=5.0,\n"
    "               tanh_c=2.5, baseline_decay=0.95, entropy_weight=1e-4, entropy_mode='reward',\n"
    "               lr=3.5e-4, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, seed=0, layers=1)\n\n"
    "The ENAS controller (csrc/enas.h) in double precision; layers stacks LSTM layers (1..4).",
    Enas_init, Enas_dealloc, Enas_methods, Enas_getset);

int enas_add_types(PyObject *module) {
    /* without PY_ARRAY_UNIQUE_SYMBOL each translation unit holds its own NumPy API table */
    if (_import_array() < 0) return -1;
    return py_add_type(module, "EnasController", &EnasType);
}
