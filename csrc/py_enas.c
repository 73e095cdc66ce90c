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
#include "py_enas.h"
#include "rng.h"

/* exact probabilities are materialised for at most this many architectures */
#define ENAS_MAX_ENUMERATE 10000000

typedef struct {
    PyObject_HEAD
    EnasController *e;
    int busy;
} EnasObject;

static int enter(EnasObject *self) {
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return -1; }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this controller is already running a call in another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* argument conversion                                                                          */

/* A C-contiguous int32 copy/view of an integer array of shape (rows, cols); rows < 0 = any >= 1. */
static PyArrayObject *int_matrix(PyObject *obj, const char *name, npy_intp rows, npy_intp cols) {
    PyArrayObject *probe = (PyArrayObject *)PyArray_FROMANY(obj, NPY_NOTYPE, 0, 0, 0);
    if (!probe) { PyErr_Clear(); PyErr_Format(PyExc_ValueError, "%s must be an integer array", name); return NULL; }
    int ok = PyArray_ISINTEGER(probe) || (PyArray_SIZE(probe) == 0);
    Py_DECREF(probe);
    if (!ok) { PyErr_Format(PyExc_ValueError, "%s must be an integer array", name); return NULL; }
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(obj, NPY_INT32, 2, 2,
                                                        NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    if (!a) { PyErr_Clear(); PyErr_Format(PyExc_ValueError, "%s must be a 2-D integer array", name); return NULL; }
    if ((rows >= 0 && PyArray_DIM(a, 0) != rows) || PyArray_DIM(a, 0) < 1 || PyArray_DIM(a, 1) != cols) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (%s, %zd), got (%zd, %zd)", name,
                     rows >= 0 ? "count" : "count >= 1", (Py_ssize_t)cols, (Py_ssize_t)PyArray_DIM(a, 0),
                     (Py_ssize_t)PyArray_DIM(a, 1));
        Py_DECREF(a);
        return NULL;
    }
    if (PyArray_DIM(a, 0) > (1 << 24)) {
        PyErr_Format(PyExc_ValueError, "%s has too many rows (at most 2^24)", name);
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* A C-contiguous float64 array of exactly `n` elements of shape `ndim` with finite values. */
static PyArrayObject *f64_exact(PyObject *obj, const char *name, int ndim, const npy_intp *shape) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(obj, NPY_FLOAT64, ndim, ndim,
                                                        NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (!a) { PyErr_Clear(); PyErr_Format(PyExc_ValueError, "%s must be a %d-D float array", name, ndim); return NULL; }
    for (int k = 0; k < ndim; k++)
        if (PyArray_DIM(a, k) != shape[k]) {
            PyErr_Format(PyExc_ValueError, "%s has size %zd along axis %d, expected %zd", name,
                         (Py_ssize_t)PyArray_DIM(a, k), k, (Py_ssize_t)shape[k]);
            Py_DECREF(a);
            return NULL;
        }
    const double *p = PyArray_DATA(a);
    for (npy_intp k = 0, n = PyArray_SIZE(a); k < n; k++)
        if (!isfinite(p[k])) {
            PyErr_Format(PyExc_ValueError, "%s contains a non-finite value at flat index %zd", name, (Py_ssize_t)k);
            Py_DECREF(a);
            return NULL;
        }
    return a;
}

/* Checks an actions matrix against the controller's decisions. */
static PyArrayObject *actions_arg(EnasObject *self, PyObject *obj) {
    PyArrayObject *a = int_matrix(obj, "actions", -1, self->e->n_dec);
    if (!a) return NULL;
    int bad = enas_check_actions(self->e, (int)PyArray_DIM(a, 0), PyArray_DATA(a));
    if (bad >= 0) {
        int d = bad % self->e->n_dec;
        const EnasDecision *q = &self->e->dec[d];
        PyErr_Format(PyExc_ValueError, "actions[%d, %d] = %d is not a choice of decision %d (%s of node %d: %s)",
                     bad / self->e->n_dec, d, ((int *)PyArray_DATA(a))[bad], d, q->is_pred ? "predecessor" : "activation",
                     q->node, q->forced >= 0 ? "fixed node, only its fixed choice" : "0 .. n_choices - 1");
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

static PyArrayObject *new_array(int ndim, npy_intp *shape, int type) {
    return (PyArrayObject *)PyArray_ZEROS(ndim, shape, type, 0);
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

static int check_range(const char *name, double v, double lo, double hi, int lo_open, int hi_open) {
    int ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s must be in %c%g, %g%c, got %g", name, lo_open ? '(' : '[', lo, hi,
                     hi_open ? ')' : ']', v);
        return -1;
    }
    return 0;
}

static int Enas_init(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"n_nodes", "n_ops", "hidden", "fixed", "restrict_s0", "temperature", "tanh_c",
                             "baseline_decay", "entropy_weight", "entropy_mode", "lr", "beta1", "beta2",
                             "eps", "weight_decay", "seed", NULL};
    EnasConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.n_ops = 4;
    cfg.hidden = 100;
    cfg.temperature = 5.0;
    cfg.tanh_c = 2.5;
    cfg.baseline_decay = 0.95;
    cfg.entropy_weight = 1e-4;
    cfg.adam = (AdamConfig){3.5e-4, 0.9, 0.999, 1e-8, 0.0};
    PyObject *fixed_obj = Py_None;
    int restrict_s0 = 0;
    const char *mode = "reward";
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|iiOpddddsdddddK", kwlist, &cfg.n_nodes, &cfg.n_ops,
                                     &cfg.hidden, &fixed_obj, &restrict_s0, &cfg.temperature, &cfg.tanh_c,
                                     &cfg.baseline_decay, &cfg.entropy_weight, &mode, &cfg.adam.lr,
                                     &cfg.adam.beta1, &cfg.adam.beta2, &cfg.adam.eps, &cfg.adam.weight_decay, &seed))
        return -1;
    if (cfg.n_nodes < 1 || cfg.n_nodes > ENAS_MAX_NODES) {
        PyErr_Format(PyExc_ValueError, "n_nodes must be in 1..%d, got %d", ENAS_MAX_NODES, cfg.n_nodes);
        return -1;
    }
    if (cfg.n_ops < 1 || cfg.n_ops > 64) { PyErr_Format(PyExc_ValueError, "n_ops must be in 1..64, got %d", cfg.n_ops); return -1; }
    if (cfg.hidden < 1 || cfg.hidden > 4096) {
        PyErr_Format(PyExc_ValueError, "hidden must be in 1..4096, got %d", cfg.hidden);
        return -1;
    }
    if (check_range("temperature", cfg.temperature, 0, 1e6, 1, 0) || check_range("tanh_c", cfg.tanh_c, 0, 1e6, 1, 0) ||
        check_range("baseline_decay", cfg.baseline_decay, 0, 1, 0, 1) ||
        check_range("entropy_weight", cfg.entropy_weight, 0, 1e6, 0, 0) || check_range("lr", cfg.adam.lr, 0, 1e3, 0, 0) ||
        check_range("beta1", cfg.adam.beta1, 0, 1, 0, 1) || check_range("beta2", cfg.adam.beta2, 0, 1, 0, 1) ||
        check_range("eps", cfg.adam.eps, 0, 1, 1, 0) || check_range("weight_decay", cfg.adam.weight_decay, 0, 1e3, 0, 0))
        return -1;
    if (strcmp(mode, "reward") == 0) cfg.entropy_mode = ENAS_ENTROPY_REWARD;
    else if (strcmp(mode, "regularizer") == 0) cfg.entropy_mode = ENAS_ENTROPY_REGULARIZER;
    else {
        PyErr_Format(PyExc_ValueError, "entropy_mode must be 'reward' or 'regularizer', got '%s'", mode);
        return -1;
    }
    cfg.restrict_s0 = restrict_s0;
    cfg.seed = seed;
    for (int i = 0; i < ENAS_MAX_NODES; i++) cfg.fixed[i] = -1;
    if (fixed_obj != Py_None) {
        PyArrayObject *f = (PyArrayObject *)PyArray_FROMANY(fixed_obj, NPY_INT32, 1, 1,
                                                            NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
        if (!f || PyArray_DIM(f, 0) != cfg.n_nodes) {
            Py_XDECREF(f);
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "fixed must be %d integers (-1 = free, else n_ops * pred + op)", cfg.n_nodes);
            return -1;
        }
        const int *fv = PyArray_DATA(f);
        for (int i = 1; i <= cfg.n_nodes; i++) {
            int v = fv[i - 1];
            if (v < -1 || v >= cfg.n_ops * i) {
                PyErr_Format(PyExc_ValueError, "fixed[%d] = %d is outside -1..%d (node %d)", i - 1, v, cfg.n_ops * i - 1, i);
                Py_DECREF(f);
                return -1;
            }
            if (v >= 0 && i >= 2 && restrict_s0 && v / cfg.n_ops == 0) {
                PyErr_Format(PyExc_ValueError, "fixed[%d]: node %d is fixed to predecessor s0, which restrict_s0 forbids",
                             i - 1, i);
                Py_DECREF(f);
                return -1;
            }
            cfg.fixed[i - 1] = v;
        }
        Py_DECREF(f);
    }
    enas_free(self->e);
    self->e = enas_create(&cfg);
    if (!self->e) { PyErr_NoMemory(); return -1; }
    return 0;
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
    if (!PyArg_ParseTupleAndKeywords(args, kw, "nO", kwlist, &count, &stream_obj)) return NULL;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    if (count < 1 || count > (1 << 24)) { PyErr_Format(PyExc_ValueError, "count must be in 1..2^24, got %zd", count); return NULL; }
    int stream = stream_id(stream_obj);
    if (stream < 0) return NULL;
    npy_intp shape[2] = {count, self->e->n_dec};
    PyArrayObject *a = new_array(2, shape, NPY_INT32), *lp = new_array(2, shape, NPY_FLOAT64),
                  *en = new_array(2, shape, NPY_FLOAT64);
    if (!a || !lp || !en || enter(self)) { Py_XDECREF(a); Py_XDECREF(lp); Py_XDECREF(en); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    enas_sample(self->e, stream, (int)count, PyArray_DATA(a), PyArray_DATA(lp), PyArray_DATA(en));
    Py_END_ALLOW_THREADS
    self->busy = 0;
    return Py_BuildValue("(NNN)", a, lp, en);
}

PyDoc_STRVAR(score_doc, "score(actions) -> (logp, entropy)\n\n"
"Teacher-forced per-decision log-probabilities and entropies of given action sequences.");

static PyObject *Enas_score(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"actions", NULL};
    PyObject *obj;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &obj)) return NULL;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    PyArrayObject *a = actions_arg(self, obj);
    if (!a) return NULL;
    npy_intp shape[2] = {PyArray_DIM(a, 0), self->e->n_dec};
    PyArrayObject *lp = new_array(2, shape, NPY_FLOAT64), *en = new_array(2, shape, NPY_FLOAT64);
    if (!lp || !en || enter(self)) { Py_DECREF(a); Py_XDECREF(lp); Py_XDECREF(en); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    enas_score(self->e, (int)shape[0], PyArray_DATA(a), PyArray_DATA(lp), PyArray_DATA(en));
    Py_END_ALLOW_THREADS
    self->busy = 0;
    Py_DECREF(a);
    return Py_BuildValue("(NN)", lp, en);
}

PyDoc_STRVAR(gradient_doc, "gradient(actions, glogp, gentropy) -> grad\n\n"
"Gradient over all parameters (flat, as params) of sum(glogp * logp + gentropy * entropy)\n"
"for the given action sequences; glogp and gentropy have the shape of actions.");

static PyObject *Enas_gradient(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"actions", "glogp", "gentropy", NULL};
    PyObject *oa, *og, *oe;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", kwlist, &oa, &og, &oe)) return NULL;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    PyArrayObject *a = actions_arg(self, oa), *g = NULL, *en = NULL, *out = NULL;
    if (!a) return NULL;
    npy_intp shape[2] = {PyArray_DIM(a, 0), self->e->n_dec}, np_[1] = {(npy_intp)self->e->n_params};
    if (!(g = f64_exact(og, "glogp", 2, shape)) || !(en = f64_exact(oe, "gentropy", 2, shape)) ||
        !(out = new_array(1, np_, NPY_FLOAT64)) || enter(self))
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    enas_zero_grad(self->e);
    enas_accumulate_grad(self->e, (int)shape[0], PyArray_DATA(a), PyArray_DATA(g), PyArray_DATA(en));
    memcpy(PyArray_DATA(out), self->e->grads, sizeof(double) * self->e->n_params);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    Py_DECREF(a); Py_DECREF(g); Py_DECREF(en);
    return (PyObject *)out;
fail:
    Py_XDECREF(a); Py_XDECREF(g); Py_XDECREF(en); Py_XDECREF(out);
    return NULL;
}

PyDoc_STRVAR(adam_step_doc, "adam_step(grad)\n\nOne Adam step on the parameters with the given flat gradient.");

static PyObject *Enas_adam_step(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"grad", NULL};
    PyObject *og;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &og)) return NULL;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    npy_intp np_[1] = {(npy_intp)self->e->n_params};
    PyArrayObject *g = f64_exact(og, "grad", 1, np_);
    if (!g || enter(self)) { Py_XDECREF(g); return NULL; }
    memcpy(self->e->grads, PyArray_DATA(g), sizeof(double) * self->e->n_params);
    enas_adam_step(self->e);
    self->busy = 0;
    Py_DECREF(g);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(reinforce_doc, "reinforce(actions, rewards) -> advantages\n\n"
"One REINFORCE update from scored samples (rewards: one per row of actions, e.g. 80 / valid\n"
"ppl): moving-average baseline per decision, sample by sample; loss -mean over samples of\n"
"sum over decisions of advantage * logp (entropy bonus per entropy_mode); one Adam step.");

static PyObject *Enas_reinforce(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"actions", "rewards", NULL};
    PyObject *oa, *orw;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO", kwlist, &oa, &orw)) return NULL;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    PyArrayObject *a = actions_arg(self, oa), *r = NULL, *adv = NULL;
    if (!a) return NULL;
    npy_intp n[1] = {PyArray_DIM(a, 0)}, shape[2] = {PyArray_DIM(a, 0), self->e->n_dec};
    if (!(r = f64_exact(orw, "rewards", 1, n)) || !(adv = new_array(2, shape, NPY_FLOAT64)) || enter(self)) {
        Py_XDECREF(a); Py_XDECREF(r); Py_XDECREF(adv);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    enas_reinforce(self->e, (int)n[0], PyArray_DATA(a), PyArray_DATA(r), PyArray_DATA(adv));
    Py_END_ALLOW_THREADS
    self->busy = 0;
    Py_DECREF(a); Py_DECREF(r);
    return (PyObject *)adv;
}

PyDoc_STRVAR(arch_log_probs_doc, "arch_log_probs() -> array\n\n"
"Exact log-probability of every architecture of the space, in id order (-inf where\n"
"restrict_s0 forbids one). For spaces of at most 10**7 architectures.");

static PyObject *Enas_arch_log_probs(EnasObject *self, PyObject *noargs) {
    (void)noargs;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    size_t size = enas_space_size(self->e);
    if (size == 0 || size > ENAS_MAX_ENUMERATE) {
        PyErr_Format(PyExc_ValueError, "the space is too large to enumerate (more than %d architectures)", ENAS_MAX_ENUMERATE);
        return NULL;
    }
    npy_intp shape[1] = {(npy_intp)size};
    PyArrayObject *out = new_array(1, shape, NPY_FLOAT64);
    if (!out || enter(self)) { Py_XDECREF(out); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    enas_arch_log_probs(self->e, PyArray_DATA(out));
    Py_END_ALLOW_THREADS
    self->busy = 0;
    return (PyObject *)out;
}

PyDoc_STRVAR(decode_doc, "decode(actions) -> (preds, ops)\n\nPredecessor and op index of every node, (count, n_nodes) int32.");

static PyObject *Enas_decode(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"actions", NULL};
    PyObject *obj;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &obj)) return NULL;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    PyArrayObject *a = actions_arg(self, obj);
    if (!a) return NULL;
    npy_intp shape[2] = {PyArray_DIM(a, 0), self->e->cfg.n_nodes};
    PyArrayObject *p = new_array(2, shape, NPY_INT32), *o = new_array(2, shape, NPY_INT32);
    if (!p || !o) { Py_DECREF(a); Py_XDECREF(p); Py_XDECREF(o); return NULL; }
    enas_decode(self->e, (int)shape[0], PyArray_DATA(a), PyArray_DATA(p), PyArray_DATA(o));
    Py_DECREF(a);
    return Py_BuildValue("(NN)", p, o);
}

PyDoc_STRVAR(encode_doc, "encode(preds, ops) -> actions\n\nInverse of decode; ValueError for a cell outside the space.");

static PyObject *Enas_encode(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"preds", "ops", NULL};
    PyObject *op_, *oo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO", kwlist, &op_, &oo)) return NULL;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    int n = self->e->cfg.n_nodes;
    PyArrayObject *p = int_matrix(op_, "preds", -1, n);
    if (!p) return NULL;
    PyArrayObject *o = int_matrix(oo, "ops", PyArray_DIM(p, 0), n);
    if (!o) { Py_DECREF(p); return NULL; }
    npy_intp shape[2] = {PyArray_DIM(p, 0), self->e->n_dec};
    PyArrayObject *a = new_array(2, shape, NPY_INT32);
    int rc = a ? enas_encode(self->e, (int)shape[0], PyArray_DATA(p), PyArray_DATA(o), PyArray_DATA(a)) : 0;
    Py_DECREF(p); Py_DECREF(o);
    if (!a) return NULL;
    if (rc < 0) {
        PyErr_Format(PyExc_ValueError, "row %d of preds/ops is not a cell of this controller's space "
                     "(predecessor out of range, op out of range, a fixed node changed, or s0 under restrict_s0)", -1 - rc);
        Py_DECREF(a);
        return NULL;
    }
    return (PyObject *)a;
}

/* ------------------------------------------------------------------------------------------ */
/* state                                                                                        */

static PyObject *copy_doubles(const double *src, size_t n) {
    npy_intp shape[1] = {(npy_intp)n};
    PyArrayObject *a = new_array(1, shape, NPY_FLOAT64);
    if (a) memcpy(PyArray_DATA(a), src, sizeof(double) * n);
    return (PyObject *)a;
}

PyDoc_STRVAR(state_doc, "state() -> dict\n\n"
"Everything that the next calls depend on: params, Adam moments and step count, baseline,\n"
"and the three sampling streams' counters (drawn).");

static PyObject *Enas_state(EnasObject *self, PyObject *noargs) {
    (void)noargs;
    EnasController *e = self->e;
    if (!e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    PyObject *drawn = Py_BuildValue("[KKK]", (unsigned long long)e->drawn[0], (unsigned long long)e->drawn[1],
                                    (unsigned long long)e->drawn[2]);
    return Py_BuildValue("{sNsNsNsLsNsOsN}", "params", copy_doubles(e->params, e->n_params),
                         "adam_m", copy_doubles(e->adam_m, e->n_params), "adam_v", copy_doubles(e->adam_v, e->n_params),
                         "adam_t", (long long)e->adam_t, "baseline", copy_doubles(e->baseline, e->n_dec),
                         "has_baseline", e->has_baseline ? Py_True : Py_False, "drawn", drawn);
}

static int fill_doubles(PyObject *state, const char *key, double *dst, size_t n) {
    PyObject *v = PyDict_GetItemString(state, key);
    if (!v) { PyErr_Format(PyExc_ValueError, "state is missing %s", key); return -1; }
    npy_intp shape[1] = {(npy_intp)n};
    PyArrayObject *a = f64_exact(v, key, 1, shape);
    if (!a) return -1;
    memcpy(dst, PyArray_DATA(a), sizeof(double) * n);
    Py_DECREF(a);
    return 0;
}

PyDoc_STRVAR(restore_doc, "restore(state)\n\nInverse of state(); the controller then continues bitwise identically.");

static PyObject *Enas_restore(EnasObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"state", NULL};
    PyObject *st;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!", kwlist, &PyDict_Type, &st)) return NULL;
    EnasController *e = self->e;
    if (!e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    if (self->busy) { PyErr_SetString(PyExc_RuntimeError, "this controller is running a call in another thread"); return NULL; }
    /* validate everything into temporaries first, so a bad state leaves the controller untouched */
    PyObject *ot = PyDict_GetItemString(st, "adam_t"), *ob = PyDict_GetItemString(st, "has_baseline"),
             *od = PyDict_GetItemString(st, "drawn");
    long long t = ot ? PyLong_AsLongLong(ot) : -1;
    if (!ot || t < 0) { PyErr_Clear(); PyErr_SetString(PyExc_ValueError, "state['adam_t'] must be an int >= 0"); return NULL; }
    if (!ob) { PyErr_SetString(PyExc_ValueError, "state is missing has_baseline"); return NULL; }
    int hb = PyObject_IsTrue(ob);
    if (hb < 0) return NULL;
    unsigned long long drawn[3];
    PyObject *seq = od ? PySequence_Fast(od, "drawn") : NULL;
    if (!seq || PySequence_Fast_GET_SIZE(seq) != 3) {
        Py_XDECREF(seq);
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "state['drawn'] must be three non-negative ints");
        return NULL;
    }
    for (int k = 0; k < 3; k++) {
        drawn[k] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, k));
        if (PyErr_Occurred()) {
            Py_DECREF(seq);
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "state['drawn'] must be three non-negative ints");
            return NULL;
        }
    }
    Py_DECREF(seq);
    size_t n = e->n_params;
    double *tmp = PyMem_Malloc(sizeof(double) * (3 * n + e->n_dec));
    if (!tmp) return PyErr_NoMemory();
    if (fill_doubles(st, "params", tmp, n) || fill_doubles(st, "adam_m", tmp + n, n) ||
        fill_doubles(st, "adam_v", tmp + 2 * n, n) || fill_doubles(st, "baseline", tmp + 3 * n, e->n_dec)) {
        PyMem_Free(tmp);
        return NULL;
    }
    memcpy(e->params, tmp, sizeof(double) * n);
    memcpy(e->adam_m, tmp + n, sizeof(double) * n);
    memcpy(e->adam_v, tmp + 2 * n, sizeof(double) * n);
    memcpy(e->baseline, tmp + 3 * n, sizeof(double) * e->n_dec);
    PyMem_Free(tmp);
    e->adam_t = t;
    e->has_baseline = hb;
    for (int k = 0; k < 3; k++) e->drawn[k] = drawn[k];
    Py_RETURN_NONE;
}

PyDoc_STRVAR(layout_doc, "layout() -> dict name -> (offset, shape)\n\n"
"Where each parameter lives in the flat params vector: lstm_W (2H, 4H), lstm_b (4H,),\n"
"embedding (1 + n_ops + n_nodes, H) (row 0 = start, then ops, then predecessor nodes),\n"
"head{d}_W (H, n_choices) and head{d}_b for decision d.");

static PyObject *Enas_layout(EnasObject *self, PyObject *noargs) {
    (void)noargs;
    EnasController *e = self->e;
    if (!e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    int H = e->H;
    PyObject *d = Py_BuildValue("{s(n(ii))s(n(i))s(n(ii))}", "lstm_W", (Py_ssize_t)e->off_W, 2 * H, 4 * H,
                                "lstm_b", (Py_ssize_t)e->off_b, 4 * H, "embedding", (Py_ssize_t)e->off_emb, e->emb_rows, H);
    if (!d) return NULL;
    for (int q = 0; q < e->n_dec; q++) {
        char name[32];
        snprintf(name, sizeof name, "head%d_W", q);
        PyObject *v = Py_BuildValue("(n(ii))", (Py_ssize_t)e->dec[q].off_W, H, e->dec[q].n_choices);
        if (!v || PyDict_SetItemString(d, name, v)) { Py_XDECREF(v); Py_DECREF(d); return NULL; }
        Py_DECREF(v);
        snprintf(name, sizeof name, "head%d_b", q);
        v = Py_BuildValue("(n(i))", (Py_ssize_t)e->dec[q].off_b, e->dec[q].n_choices);
        if (!v || PyDict_SetItemString(d, name, v)) { Py_XDECREF(v); Py_DECREF(d); return NULL; }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *Enas_get_decisions(EnasObject *self, void *unused) {
    (void)unused;
    EnasController *e = self->e;
    if (!e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
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

static PyObject *Enas_get_params(EnasObject *self, void *unused) {
    (void)unused;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    return copy_doubles(self->e->params, self->e->n_params);
}

static int Enas_set_params(EnasObject *self, PyObject *value, void *unused) {
    (void)unused;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return -1; }
    if (!value) { PyErr_SetString(PyExc_AttributeError, "params cannot be deleted"); return -1; }
    if (self->busy) { PyErr_SetString(PyExc_RuntimeError, "this controller is running a call in another thread"); return -1; }
    npy_intp shape[1] = {(npy_intp)self->e->n_params};
    PyArrayObject *a = f64_exact(value, "params", 1, shape);
    if (!a) return -1;
    memcpy(self->e->params, PyArray_DATA(a), sizeof(double) * self->e->n_params);
    Py_DECREF(a);
    return 0;
}

static PyObject *Enas_get_baseline(EnasObject *self, void *unused) {
    (void)unused;
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    if (!self->e->has_baseline) Py_RETURN_NONE;
    return copy_doubles(self->e->baseline, self->e->n_dec);
}

static PyObject *Enas_get_int(EnasObject *self, void *which) {
    if (!self->e) { PyErr_SetString(PyExc_RuntimeError, "controller is not initialised"); return NULL; }
    switch ((int)(intptr_t)which) {
    case 0: return PyLong_FromLong(self->e->n_dec);
    case 1: return PyLong_FromSize_t(self->e->n_params);
    case 2: return PyLong_FromSize_t(enas_space_size(self->e));
    default: return PyLong_FromLongLong(self->e->adam_t);
    }
}

static PyMethodDef Enas_methods[] = {
    {"sample", (PyCFunction)(void (*)(void))Enas_sample, METH_VARARGS | METH_KEYWORDS, sample_doc},
    {"score", (PyCFunction)(void (*)(void))Enas_score, METH_VARARGS | METH_KEYWORDS, score_doc},
    {"gradient", (PyCFunction)(void (*)(void))Enas_gradient, METH_VARARGS | METH_KEYWORDS, gradient_doc},
    {"adam_step", (PyCFunction)(void (*)(void))Enas_adam_step, METH_VARARGS | METH_KEYWORDS, adam_step_doc},
    {"reinforce", (PyCFunction)(void (*)(void))Enas_reinforce, METH_VARARGS | METH_KEYWORDS, reinforce_doc},
    {"arch_log_probs", (PyCFunction)Enas_arch_log_probs, METH_NOARGS, arch_log_probs_doc},
    {"decode", (PyCFunction)(void (*)(void))Enas_decode, METH_VARARGS | METH_KEYWORDS, decode_doc},
    {"encode", (PyCFunction)(void (*)(void))Enas_encode, METH_VARARGS | METH_KEYWORDS, encode_doc},
    {"state", (PyCFunction)Enas_state, METH_NOARGS, state_doc},
    {"restore", (PyCFunction)(void (*)(void))Enas_restore, METH_VARARGS | METH_KEYWORDS, restore_doc},
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
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EnasType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nas_eval._core.EnasController",
    .tp_basicsize = sizeof(EnasObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "EnasController(n_nodes, n_ops=4, hidden=100, fixed=None, restrict_s0=False, temperature=5.0,\n"
              "               tanh_c=2.5, baseline_decay=0.95, entropy_weight=1e-4, entropy_mode='reward',\n"
              "               lr=3.5e-4, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, seed=0)\n\n"
              "The ENAS controller (csrc/enas.h) in double precision.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Enas_init,
    .tp_dealloc = (destructor)Enas_dealloc,
    .tp_methods = Enas_methods,
    .tp_getset = Enas_getset,
};

int enas_add_types(PyObject *module) {
    /* without PY_ARRAY_UNIQUE_SYMBOL each translation unit holds its own NumPy API table */
    if (_import_array() < 0) return -1;
    if (PyType_Ready(&EnasType) < 0) return -1;
    Py_INCREF(&EnasType);
    if (PyModule_AddObject(module, "EnasController", (PyObject *)&EnasType) < 0) {
        Py_DECREF(&EnasType);
        return -1;
    }
    return 0;
}
