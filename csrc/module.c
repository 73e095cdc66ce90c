/* CPython bindings: nas_eval._core.Model wraps one LM; arrays cross as NumPy arrays.
 * Long calls release the GIL; a model refuses to be entered from two threads at once. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdio.h>
#include <numpy/arrayobject.h>

#include "blas.h"
#include "kernels.h"
#include "lm.h"
#include "parallel.h"
#include "py_darts.h"
#include "rng.h"
#include "py_enas.h"
#include "py_lstm_adam.h"
#include "py_tokens.h"
#include "py_nao.h"

typedef struct {
    PyObject_HEAD
    LM *lm;
    int busy;
} ModelObject;

static int model_enter(ModelObject *self) {
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return -1; }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this model is already running a call in another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static int check_prob(const char *name, double p) {
    if (!(p >= 0.0 && p < 1.0)) {
        PyErr_Format(PyExc_ValueError, "dropout %s must be in [0, 1), got %g", name, p);
        return -1;
    }
    return 0;
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"vocab_size", "hidden", "n_mats", "max_nodes", "seed",
                             "dropout_out", "dropout_h", "dropout_x", "dropout_in",
                             "dropout_emb", "n_w0", NULL};
    int V, d, n_mats, max_nodes, n_w0 = 1;
    unsigned long long seed = 0;
    double p_out = 0, p_h = 0, p_x = 0, p_in = 0, p_emb = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiii|Kdddddi", kwlist, &V, &d, &n_mats,
                                     &max_nodes, &seed, &p_out, &p_h, &p_x, &p_in, &p_emb, &n_w0))
        return -1;
    if (V < 1) { PyErr_Format(PyExc_ValueError, "vocab_size must be >= 1, got %d", V); return -1; }
    if (d < 1 || d > 65536) { PyErr_Format(PyExc_ValueError, "hidden must be in 1..65536, got %d", d); return -1; }
    if (n_w0 < 1) { PyErr_Format(PyExc_ValueError, "n_w0 must be >= 1, got %d", n_w0); return -1; }
    if (n_mats < 1) { PyErr_Format(PyExc_ValueError, "n_mats must be >= 1, got %d", n_mats); return -1; }
    if (max_nodes < 1 || max_nodes > LM_MAX_NODES) {
        PyErr_Format(PyExc_ValueError, "number of nodes must be in 1..%d, got %d", LM_MAX_NODES, max_nodes);
        return -1;
    }
    if (check_prob("out", p_out) || check_prob("h", p_h) || check_prob("x", p_x) ||
        check_prob("in", p_in) || check_prob("emb", p_emb))
        return -1;
    Dropouts drop = {(float)p_out, (float)p_h, (float)p_x, (float)p_in, (float)p_emb};
    lm_free(self->lm);
    self->lm = lm_create(V, d, n_w0, n_mats, max_nodes, (uint64_t)seed, drop);
    if (!self->lm) { PyErr_NoMemory(); return -1; }
    return 0;
}

static void Model_dealloc(ModelObject *self) {
    lm_free(self->lm);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A (4, n) int32 array: predecessors, op indices, matrix indices, output flags. */
static int parse_arch(ModelObject *self, PyObject *obj, int w0, CellArch *a) {
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROMANY(obj, NPY_INT32, 2, 2,
                                                          NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (!arr) return -1;
    npy_intp *shape = PyArray_DIMS(arr);
    if (shape[0] != 4 || shape[1] < 1 || shape[1] > LM_MAX_NODES) {
        PyErr_Format(PyExc_ValueError, "architecture table must have shape (4, n) with 1 <= n <= %d, got (%zd, %zd)",
                     LM_MAX_NODES, (Py_ssize_t)shape[0], (Py_ssize_t)shape[1]);
        Py_DECREF(arr);
        return -1;
    }
    int n = (int)shape[1];
    const int32_t *t = (const int32_t *)PyArray_DATA(arr);
    a->n = n;
    a->w0 = w0;
    for (int i = 0; i < n; i++) {
        a->pred[i] = t[i]; a->op[i] = t[n + i]; a->mat[i] = t[2 * n + i]; a->out[i] = t[3 * n + i];
    }
    Py_DECREF(arr);
    const char *err = lm_check_arch(self->lm, a);
    if (err) { PyErr_Format(PyExc_ValueError, "invalid architecture: %s", err); return -1; }
    return 0;
}

/* A finite, non-negative hyper-parameter, or a ValueError naming it. */
static int check_rate(const char *name, double value) {
    if (!isfinite(value) || value < 0) {
        char text[32];
        snprintf(text, sizeof text, "%g", value);
        PyErr_Format(PyExc_ValueError, "%s must be a finite number >= 0, got %s", name, text);
        return -1;
    }
    return 0;
}

static PyObject *Model_step(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"arch", "inputs", "targets", "hidden", "lr", "clip", "wd", "tar", "ar",
                             "train", "backward", "update", "asgd", "w0", NULL};
    PyObject *arch_obj, *in_obj, *tg_obj, *h_obj = Py_None;
    double lr = 0, clip = 0, wd = 0, tar = 0, ar = 0;
    int train = 0, backward = 1, update = 0, asgd = 0, w0 = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|Odddddppppi", kwlist, &arch_obj, &in_obj,
                                     &tg_obj, &h_obj, &lr, &clip, &wd, &tar, &ar, &train,
                                     &backward, &update, &asgd, &w0))
        return NULL;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    LM *m = self->lm;
    if (check_rate("lr", lr) || check_rate("clip", clip) || check_rate("wd", wd) || check_rate("tar", tar) ||
        check_rate("ar", ar))
        return NULL;
    CellArch a;
    if (parse_arch(self, arch_obj, w0, &a)) return NULL;
    PyArrayObject *in = token_array(in_obj, "inputs", m->V, 0);
    if (!in) return NULL;
    PyArrayObject *tg = token_array(tg_obj, "targets", m->V, 0);
    if (!tg) { Py_DECREF(in); return NULL; }
    PyArrayObject *h0 = NULL, *h1 = NULL;
    PyObject *result = NULL;
    npy_intp T = PyArray_DIM(in, 0), B = PyArray_DIM(in, 1);
    if (PyArray_DIM(tg, 0) != T || PyArray_DIM(tg, 1) != B) {
        PyErr_Format(PyExc_ValueError, "targets shape (%zd, %zd) differs from inputs shape (%zd, %zd)",
                     (Py_ssize_t)PyArray_DIM(tg, 0), (Py_ssize_t)PyArray_DIM(tg, 1), (Py_ssize_t)T, (Py_ssize_t)B);
        goto done;
    }
    if (T * B > 1L << 26) { PyErr_SetString(PyExc_ValueError, "segment too large (T*B > 2^26)"); goto done; }
    npy_intp hdims[2] = {B, m->d};
    if (h_obj == Py_None) {
        h0 = (PyArrayObject *)PyArray_ZEROS(2, hdims, NPY_FLOAT32, 0);
    } else {
        /* float64 states are accepted (cast); values are checked for NaN/inf below */
        h0 = (PyArrayObject *)PyArray_FROMANY(h_obj, NPY_FLOAT32, 2, 2,
                                              NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
        if (h0 && (PyArray_DIM(h0, 0) != B || PyArray_DIM(h0, 1) != m->d)) {
            PyErr_Format(PyExc_ValueError, "hidden must have shape (%zd, %d), got (%zd, %zd)", (Py_ssize_t)B,
                         m->d, (Py_ssize_t)PyArray_DIM(h0, 0), (Py_ssize_t)PyArray_DIM(h0, 1));
            goto done;
        }
    }
    if (!h0) goto done;
    {
        const float *hv = (const float *)PyArray_DATA(h0);
        for (npy_intp i = 0; i < B * m->d; i++)
            if (!isfinite(hv[i])) {
                PyErr_SetString(PyExc_ValueError, "hidden holds a non-finite value (NaN or inf)");
                goto done;
            }
    }
    h1 = (PyArrayObject *)PyArray_EMPTY(2, hdims, NPY_FLOAT32, 0);
    if (!h1 || model_enter(self)) goto done;
    StepOptions opt = {(float)lr, (float)clip, (float)wd, (float)tar, (float)ar, train, backward, update, asgd};
    StepStats st;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lm_reserve(m, (int)T, (int)B, a.n);
    if (rc == 0)
        st = lm_step(m, &a, (const int32_t *)PyArray_DATA(in), (const int32_t *)PyArray_DATA(tg),
                     (int)T, (int)B, (const float *)PyArray_DATA(h0), (float *)PyArray_DATA(h1), opt);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (rc != 0) { PyErr_NoMemory(); goto done; }
    result = Py_BuildValue("dddlO", st.loss_sum, st.reg, st.grad_norm, st.tokens, (PyObject *)h1);
done:
    Py_DECREF(in); Py_DECREF(tg); Py_XDECREF(h0); Py_XDECREF(h1);
    return result;
}

static PyObject *Model_evaluate(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"arch", "data", "bptt", "w0", NULL};
    PyObject *arch_obj, *data_obj;
    int bptt, w0 = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOi|i", kwlist, &arch_obj, &data_obj, &bptt, &w0)) return NULL;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    if (bptt < 1) { PyErr_Format(PyExc_ValueError, "bptt must be >= 1, got %d", bptt); return NULL; }
    CellArch a;
    if (parse_arch(self, arch_obj, w0, &a)) return NULL;
    PyArrayObject *data = token_array(data_obj, "data", self->lm->V, 0);
    if (!data) return NULL;
    int N = (int)PyArray_DIM(data, 0), B = (int)PyArray_DIM(data, 1);
    if (N < 2) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_ValueError, "evaluation stream needs at least 2 rows after batchifying");
        return NULL;
    }
    if (model_enter(self)) { Py_DECREF(data); return NULL; }
    long tokens = 0;
    double loss;
    Py_BEGIN_ALLOW_THREADS
    loss = lm_evaluate(self->lm, &a, (const int32_t *)PyArray_DATA(data), N, B, bptt, &tokens);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    Py_DECREF(data);
    return Py_BuildValue("dl", loss, tokens);
}

/* 1-D float32 view of an arena that keeps the model alive */
static PyObject *arena_view(ModelObject *self, float *ptr) {
    npy_intp n = (npy_intp)self->lm->lay.total;
    PyObject *arr = PyArray_SimpleNewFromData(1, &n, NPY_FLOAT32, ptr);
    if (!arr) return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) { Py_DECREF(arr); return NULL; }
    return arr;
}

static PyObject *Model_arena(ModelObject *self, PyObject *args) {
    const char *which;
    if (!PyArg_ParseTuple(args, "s", &which)) return NULL;
    if (!self->lm) { PyErr_SetString(PyExc_RuntimeError, "model is not initialised"); return NULL; }
    if (!strcmp(which, "params")) return arena_view(self, self->lm->params);
    if (!strcmp(which, "grads")) return arena_view(self, self->lm->grads);
    if (!strcmp(which, "avg")) {
        if (!self->lm->avg) Py_RETURN_NONE;
        return arena_view(self, self->lm->avg);
    }
    PyErr_Format(PyExc_ValueError, "unknown arena %s (params, grads or avg)", which);
    return NULL;
}

static PyObject *Model_layout(ModelObject *self, PyObject *Py_UNUSED(unused)) {
    ParamLayout *l = &self->lm->lay;
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n}", "embedding", (Py_ssize_t)l->embedding, "w0",
                         (Py_ssize_t)l->w0, "mats", (Py_ssize_t)l->mats, "bias", (Py_ssize_t)l->bias,
                         "total", (Py_ssize_t)l->total);
}

static PyObject *Model_start_averaging(ModelObject *self, PyObject *Py_UNUSED(unused)) {
    if (lm_start_averaging(self->lm)) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *Model_get_step(ModelObject *self, void *Py_UNUSED(c)) { return PyLong_FromUnsignedLongLong(self->lm->step); }
static int Model_set_step(ModelObject *self, PyObject *v, void *Py_UNUSED(c)) {
    unsigned long long s = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) return -1;
    self->lm->step = s;
    return 0;
}
static PyObject *Model_get_avg_count(ModelObject *self, void *Py_UNUSED(c)) { return PyLong_FromLongLong(self->lm->avg_count); }
/* restoring a checkpoint puts the averaged-step count back with the average itself */
static int Model_set_avg_count(ModelObject *self, PyObject *v, void *Py_UNUSED(c)) {
    long long n = PyLong_AsLongLong(v);
    if (PyErr_Occurred()) return -1;
    if (n < 0) { PyErr_Format(PyExc_ValueError, "avg_count must be >= 0, got %lld", n); return -1; }
    self->lm->avg_count = n;
    return 0;
}
static PyObject *Model_get_mat_used(ModelObject *self, void *Py_UNUSED(c)) {
    npy_intp n = self->lm->n_mats;
    PyObject *arr = PyArray_SimpleNew(1, &n, NPY_BOOL);
    if (arr) memcpy(PyArray_DATA((PyArrayObject *)arr), self->lm->mat_used, (size_t)n);
    return arr;
}
static PyObject *Model_get_activation_bytes(ModelObject *self, void *Py_UNUSED(c)) {
    return PyLong_FromSize_t(self->lm->act_floats * sizeof(float));
}

/* The dropout masks of the last training step (for reference checks), or None each. */
static PyObject *Model_last_masks(ModelObject *self, PyObject *Py_UNUSED(unused)) {
    LM *m = self->lm;
    if (!m->acts) Py_RETURN_NONE;
    const Dropouts *dr = &m->drop;
    npy_intp bd[2] = {m->act_B, m->d}, v = m->V;
    struct { const char *name; int on; float *ptr; int nd; npy_intp *dims; } items[] = {
        {"x", dr->x > 0 || dr->in > 0, m->mask_x, 2, bd},
        {"h", dr->h > 0, m->mask_h, 2, bd},
        {"out", dr->out > 0, m->mask_out, 2, bd},
        {"emb", dr->emb > 0, m->mask_emb, 1, &v},
    };
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < 4; i++) {
        PyObject *val;
        if (items[i].on) {
            val = PyArray_SimpleNew(items[i].nd, items[i].dims, NPY_FLOAT32);
            if (val) memcpy(PyArray_DATA((PyArrayObject *)val), items[i].ptr,
                            PyArray_NBYTES((PyArrayObject *)val));
        } else {
            val = Py_None;
            Py_INCREF(val);
        }
        if (!val || PyDict_SetItemString(d, items[i].name, val) < 0) { Py_XDECREF(val); Py_DECREF(d); return NULL; }
        Py_DECREF(val);
    }
    return d;
}

static PyMethodDef Model_methods[] = {
    {"last_masks", (PyCFunction)Model_last_masks, METH_NOARGS, "dropout masks of the last training step"},
    {"step", (PyCFunction)(void (*)(void))Model_step, METH_VARARGS | METH_KEYWORDS,
     "step(arch, inputs, targets, hidden=None, lr, clip, wd, tar, ar, train, backward, update, asgd)"
     " -> (loss_sum, reg, grad_norm, tokens, new_hidden)"},
    {"evaluate", (PyCFunction)(void (*)(void))Model_evaluate, METH_VARARGS | METH_KEYWORDS,
     "evaluate(arch, data, bptt) -> (loss_sum, tokens)"},
    {"arena", (PyCFunction)Model_arena, METH_VARARGS, "arena('params'|'grads'|'avg') -> float32 view"},
    {"layout", (PyCFunction)Model_layout, METH_NOARGS, "offsets of the tensors in the arenas"},
    {"start_averaging", (PyCFunction)Model_start_averaging, METH_NOARGS, "begin ASGD averaging"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Model_getset[] = {
    {"step_count", (getter)Model_get_step, (setter)Model_set_step, "training steps taken (keys dropout masks)", NULL},
    {"avg_count", (getter)Model_get_avg_count, (setter)Model_set_avg_count, "steps in the ASGD average", NULL},
    {"mat_used", (getter)Model_get_mat_used, NULL, "matrices touched by the last backward", NULL},
    {"activation_bytes", (getter)Model_get_activation_bytes, NULL, "size of the activation arena", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nas_eval._core.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Recurrent-cell language model over a bank of node matrices (C core).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
};

static PyObject *py_set_num_threads(PyObject *Py_UNUSED(self), PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (PyErr_Occurred()) return NULL;
    if (n < 1) { PyErr_Format(PyExc_ValueError, "threads must be >= 1, got %ld", n); return NULL; }
    pool_set_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused)) {
    return PyLong_FromLong(pool_threads());
}

static PyObject *py_openblas_info(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused)) {
    return Py_BuildValue("{s:s,s:s,s:i,s:i}", "corename", blas_get_corename(), "config",
                         blas_get_config(), "blas_threads", blas_get_num_threads(),
                         "threads", pool_threads());
}

/* setup.py passes the SHA-256 of csrc/ (16 hex digits); other builds say "unknown" */
#ifndef NAS_EVAL_SOURCE_SHA
#define NAS_EVAL_SOURCE_SHA "unknown"
#endif

/* The instruction-set levels: the one in use, those this CPU runs, those compiled in. */
static PyObject *py_isa_info(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused)) {
    PyObject *supported = PyList_New(0), *compiled = PyList_New(0);
    if (!supported || !compiled) goto fail;
    for (int isa = N_ISA - 1; isa >= 0; isa--) {
        PyObject *name = PyUnicode_FromString(isa_name(isa));
        if (!name) goto fail;
        int rc = (isa_compiled(isa) ? PyList_Append(compiled, name) : 0) |
                 (isa_supported(isa) ? PyList_Append(supported, name) : 0);
        Py_DECREF(name);
        if (rc) goto fail;
    }
    return Py_BuildValue("{s:s,s:s,s:N,s:N,s:(ii),s:s,s:s}", "isa", kern->name, "best",
                         isa_name(isa_best()), "supported", supported, "compiled", compiled,
                         "tile", kern->tile_rows, kern->tile_cols, "compiler", isa_compiler(),
                         "source", NAS_EVAL_SOURCE_SHA);
fail:
    Py_XDECREF(supported);
    Py_XDECREF(compiled);
    return NULL;
}

/* Switches the kernels for every model of this process (tests and benchmarks; the usual
 * way is $NAS_EVAL_ISA at import). Safe between calls: all levels share the data layout. */
static PyObject *py_set_isa(PyObject *Py_UNUSED(self), PyObject *arg) {
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    int isa = isa_from_name(name);
    if (isa < 0) {
        PyErr_Format(PyExc_ValueError, "isa must be one of generic, neon, avx2, avx512, got %R", arg);
        return NULL;
    }
    if (isa_select(isa) != 0) {
        PyErr_Format(PyExc_ValueError, "isa %s is not supported on this machine (best: %s)", name,
                     isa_name(isa_best()));
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The first n numbers under one key of the counter-based RNG (rng.h), so that tests can check
 * that nas_eval.rng computes exactly the same draws in Python. */
static PyObject *py_rng_draws(PyObject *Py_UNUSED(self), PyObject *args) {
    unsigned long long seed, stream, counter;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "KKKn", &seed, &stream, &counter, &n)) return NULL;
    if (n < 0 || n > (1 << 24)) { PyErr_Format(PyExc_ValueError, "n must be in 0..2^24, got %zd", n); return NULL; }
    npy_intp dims[1] = {n};
    PyArrayObject *u = (PyArrayObject *)PyArray_EMPTY(1, dims, NPY_FLOAT32, 0);
    PyArrayObject *g = (PyArrayObject *)PyArray_EMPTY(1, dims, NPY_FLOAT64, 0);
    if (!u || !g) { Py_XDECREF(u); Py_XDECREF(g); return NULL; }
    uint64_t key = rng_key(seed, stream, counter);
    float *up = PyArray_DATA(u);
    double *gp = PyArray_DATA(g);
    for (Py_ssize_t i = 0; i < n; i++) { up[i] = rng_uniform(key, (uint64_t)i); gp[i] = rng_normal(key, (uint64_t)i); }
    return Py_BuildValue("NN", (PyObject *)u, (PyObject *)g);
}

static PyMethodDef module_methods[] = {
    {"isa_info", py_isa_info, METH_NOARGS, "instruction-set level in use, supported, compiled; compiler"},
    {"set_isa", py_set_isa, METH_O, "set_isa(name): switch the kernels' instruction-set level"},
    {"rng_draws", py_rng_draws, METH_VARARGS, "rng_draws(seed, stream, counter, n) -> (uniform, normal)"},
    {"set_num_threads", py_set_num_threads, METH_O, "set the number of threads of the core's own pool (OpenBLAS stays single-threaded inside it)"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "threads of the core's own pool"},
    {"openblas_info", py_openblas_info, METH_NOARGS, "OpenBLAS core name, config, threads"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef core_module = {PyModuleDef_HEAD_INIT, "_core", "nas_eval C core", -1,
                                          module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__core(void) {
    import_array();
    /* kernels for the best instruction set, or the one $NAS_EVAL_ISA asks for */
    const char *isa_error = isa_init(getenv("NAS_EVAL_ISA"));
    if (isa_error) {
        PyErr_SetString(PyExc_ValueError, isa_error);
        return NULL;
    }
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&core_module);
    if (!mod) return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(mod, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(mod);
        return NULL;
    }
    PyModule_AddIntConstant(mod, "MAX_NODES", LM_MAX_NODES);
    if (lstm_adam_add_types(mod) < 0) { Py_DECREF(mod); return NULL; }
    if (enas_add_types(mod) < 0) { Py_DECREF(mod); return NULL; }
    if (nao_add_types(mod) < 0) { Py_DECREF(mod); return NULL; }
    if (darts_add_types(mod) < 0) { Py_DECREF(mod); return NULL; }
    /* the core's own pool does all its parallelism; OpenBLAS stays on the calling thread */
    blas_set_num_threads(1);
    return mod;
}
