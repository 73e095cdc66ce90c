/* CPython bindings: nas_eval._core.Model wraps one LM; arrays cross as NumPy arrays.
 * Long calls release the GIL; a model refuses to be entered from two threads at once. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <numpy/arrayobject.h>

#include "blas.h"
#include "kernels.h"
#include "lm.h"
#include "mixed_cell.h"
#include "parallel.h"
#include "py_args.h"
#include "py_darts.h"
#include "py_enas.h"
#include "py_lstm_adam.h"
#include "py_model.h"
#include "py_nao.h"
#include "py_xent.h"
#include "rng.h"

/* --- construction ------------------------------------------------------------------------- */

int model_init(ModelObject *self, PyObject *args, PyObject *kw, int mixed) {
    static char *kwlist[] = {"vocab_size", "hidden", "n_mats", "max_nodes", "seed", "dropout_out", "dropout_h",
                             "dropout_x", "dropout_in", "dropout_emb", "n_w0", "batch_norm", NULL};
    int V, d, n_mats, max_nodes, n_w0 = 1, bn = -1;
    uint64_t seed = 0;
    double p[5] = {0, 0, 0, 0, 0};
    static const char *names[] = {"dropout_out", "dropout_h", "dropout_x", "dropout_in", "dropout_emb"};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiii|O&dddddip", kwlist, &V, &d, &n_mats, &max_nodes, arg_seed,
                                     &seed, &p[0], &p[1], &p[2], &p[3], &p[4], &n_w0, &bn))
        return -1;
    if (py_check_int("vocab_size", V, 1, INT_MAX) || py_check_int("hidden", d, 1, 65536) ||
        py_check_int("n_w0", n_w0, 1, INT_MAX) || py_check_int("n_mats", n_mats, 1, INT_MAX) ||
        py_check_int("number of nodes", max_nodes, 1, LM_MAX_NODES))
        return -1;
    for (int i = 0; i < 5; i++)
        if (py_check_range(names[i], p[i], 0, 1, OPEN_HI)) return -1;
    if (mixed && (n_mats != max_nodes || n_w0 != 1)) {
        PyErr_SetString(PyExc_ValueError, "the mixed cell has one matrix per node: n_mats == max_nodes, n_w0 == 1");
        return -1;
    }
    if (!mixed && bn != -1) {
        PyErr_SetString(PyExc_ValueError, "batch_norm belongs to the mixed cell (MixedModel)");
        return -1;
    }
    if (self->busy) { PyErr_SetString(PyExc_RuntimeError, "this model is already running a call in another thread"); return -1; }
    Dropouts drop = {(float)p[0], (float)p[1], (float)p[2], (float)p[3], (float)p[4]};
    lm_free(self->lm);
    self->lm = lm_create(V, d, n_w0, n_mats, max_nodes, seed, drop);
    if (self->lm && mixed) self->lm->mix = mixed_create(max_nodes, d, seed, bn != 0);
    if (!self->lm || (mixed && !self->lm->mix)) { lm_free(self->lm); self->lm = NULL; PyErr_NoMemory(); return -1; }
    CellArch own = {.n = mixed ? max_nodes : 0, .w0 = 0};
    for (int i = 0; i < own.n; i++) { own.pred[i] = 0; own.op[i] = 0; own.mat[i] = i; own.out[i] = 1; }
    self->own = own;
    return 0;
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) { return model_init(self, args, kw, 0); }

static void Model_dealloc(ModelObject *self) {
    lm_free(self->lm);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* --- arguments ------------------------------------------------------------------------------ */

/* the architecture a call names (None: the mixed cell's own), checked against the model */
static int model_arch(ModelObject *self, CellArch *a, int w0) {
    if (a->n == 0) {
        if (!self->own.n) { PyErr_SetString(PyExc_ValueError, "arch is required (only the mixed cell has its own)"); return -1; }
        *a = self->own;
        return 0;
    }
    if (self->own.n) { PyErr_SetString(PyExc_ValueError, "the mixed cell holds every architecture: arch must be None"); return -1; }
    a->w0 = w0;
    const char *err = lm_check_arch(self->lm, a);
    if (err) { PyErr_Format(PyExc_ValueError, "invalid architecture: %s", err); return -1; }
    return 0;
}

int segment_check(ModelObject *self, SegmentArgs *s, const char *prefix, int batch_stats) {
    LM *m = self->lm;
    npy_intp T = PyArray_DIM(s->in.arr, 0), B = PyArray_DIM(s->in.arr, 1);
    if (PyArray_DIM(s->tg.arr, 0) != T || PyArray_DIM(s->tg.arr, 1) != B) {
        PyErr_Format(PyExc_ValueError, "%stargets shape (%zd, %zd) differs from %sinputs shape (%zd, %zd)", prefix,
                     (Py_ssize_t)PyArray_DIM(s->tg.arr, 0), (Py_ssize_t)PyArray_DIM(s->tg.arr, 1), prefix,
                     (Py_ssize_t)T, (Py_ssize_t)B);
        return -1;
    }
    npy_intp hd[2] = {B, m->d};
    if (s->h.arr && (PyArray_DIM(s->h.arr, 0) != B || PyArray_DIM(s->h.arr, 1) != m->d)) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (%zd, %d), got (%zd, %zd)", s->h.name, (Py_ssize_t)B, m->d,
                     (Py_ssize_t)PyArray_DIM(s->h.arr, 0), (Py_ssize_t)PyArray_DIM(s->h.arr, 1));
        return -1;
    }
    /* batch normalisation with batch statistics needs two rows of a column at least */
    if (batch_stats && m->mix && m->mix->batch_norm && B < 2) {
        PyErr_Format(PyExc_ValueError, "%sinputs: the batch size must be >= 2 with batch_norm (got %zd)", prefix, (Py_ssize_t)B);
        return -1;
    }
    if (!s->h.arr && !(s->h.arr = py_zeros(2, hd, NPY_FLOAT32))) return -1;
    if (!(s->h1 = py_zeros(2, hd, NPY_FLOAT32))) return -1;
    s->T = (int)T;
    s->B = (int)B;
    return 0;
}

void segment_release(SegmentArgs *s) { PY_RELEASE(s->in.arr, s->tg.arr, s->h.arr, s->h1); }

/* --- methods -------------------------------------------------------------------------------- */

static PyObject *Model_step(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"arch", "inputs", "targets", "hidden", "lr", "clip", "wd", "tar", "ar", "train",
                             "backward", "update", "asgd", "w0", "alpha_grad", "weight_grad", NULL};
    if (py_ready(self->lm, "model")) return NULL;
    LM *m = self->lm;
    CellArch a;
    SegmentArgs s = SEGMENT_ARGS("", m->V);
    double lr = 0, clip = 0, wd = 0, tar = 0, ar = 0;
    int train = 0, backward = 1, update = 0, asgd = 0, w0 = 0, alpha_grad = 0, weight_grad = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&|O&dddddppppipp", kwlist, arg_arch, &a, SEGMENT_CONVERTERS(s),
                                     &lr, &clip, &wd, &tar, &ar, &train, &backward, &update, &asgd, &w0,
                                     &alpha_grad, &weight_grad))
        return NULL;
    PyObject *result = NULL;
    if (py_check_range("lr", lr, 0, INFINITY, 0) || py_check_range("clip", clip, 0, INFINITY, 0) ||
        py_check_range("wd", wd, 0, INFINITY, 0) || py_check_range("tar", tar, 0, INFINITY, 0) ||
        py_check_range("ar", ar, 0, INFINITY, 0) || model_arch(self, &a, w0))
        goto done;
    if (update && !(backward && weight_grad)) {
        PyErr_SetString(PyExc_ValueError, "update needs backward=True and weight_grad=True");
        goto done;
    }
    if (asgd && !m->avg) {
        PyErr_SetString(PyExc_ValueError, "asgd=True before averaging started: call start_averaging() first");
        goto done;
    }
    if (!m->mix && (alpha_grad || !weight_grad)) {
        PyErr_SetString(PyExc_ValueError, "alpha_grad and weight_grad=False need the mixed cell (MixedModel)");
        goto done;
    }
    if (segment_check(self, &s, "", train || backward) || MODEL_ENTER(self)) goto done;
    StepOptions opt = {(float)lr, (float)clip, (float)wd, (float)tar, (float)ar, train, backward, update, asgd};
    StepStats st;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (m->mix) {
        m->mix->alpha_grad = alpha_grad && backward;
        m->mix->weight_grad = weight_grad;
    }
    rc = lm_reserve(m, s.T, s.B, a.n);
    if (rc == 0)
        st = lm_step(m, &a, PY_DATA(const int32_t, s.in.arr), PY_DATA(const int32_t, s.tg.arr), s.T, s.B,
                     PY_DATA(const float, s.h.arr), PY_DATA(float, s.h1), opt);
    if (m->mix) {
        m->mix->alpha_grad = 0;
        m->mix->weight_grad = 1;
    }
    Py_END_ALLOW_THREADS
    MODEL_LEAVE(self);
    if (rc != 0) { PyErr_NoMemory(); goto done; }
    result = Py_BuildValue("dddlO", st.loss_sum, st.reg, st.grad_norm, st.tokens, (PyObject *)s.h1);
done:
    segment_release(&s);
    return result;
}

static PyObject *Model_evaluate(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"arch", "data", "bptt", "w0", NULL};
    if (py_ready(self->lm, "model")) return NULL;
    CellArch a;
    ArgArray data = ARG_TOKENS("data", self->lm->V, 0);
    int bptt, w0 = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&i|i", kwlist, arg_arch, &a, arg_ints, &data, &bptt, &w0))
        return NULL;
    PyObject *result = NULL;
    if (py_check_int("bptt", bptt, 1, INT_MAX) || model_arch(self, &a, w0)) goto done;
    int N = (int)PyArray_DIM(data.arr, 0), B = (int)PyArray_DIM(data.arr, 1);
    if (N < 2) {
        PyErr_SetString(PyExc_ValueError, "evaluation stream needs at least 2 rows after batchifying");
        goto done;
    }
    if (MODEL_ENTER(self)) goto done;
    long tokens = 0;
    double loss;
    Py_BEGIN_ALLOW_THREADS
    loss = lm_evaluate(self->lm, &a, PY_DATA(const int32_t, data.arr), N, B, bptt, &tokens);
    Py_END_ALLOW_THREADS
    MODEL_LEAVE(self);
    result = Py_BuildValue("dl", loss, tokens);
done:
    PY_RELEASE(data.arr);
    return result;
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
    if (!PyArg_ParseTuple(args, "s", &which) || py_ready(self->lm, "model")) return NULL;
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
    if (py_ready(self->lm, "model")) return NULL;
    ParamLayout *l = &self->lm->lay;
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n}", "embedding", (Py_ssize_t)l->embedding, "w0",
                         (Py_ssize_t)l->w0, "mats", (Py_ssize_t)l->mats, "bias", (Py_ssize_t)l->bias,
                         "total", (Py_ssize_t)l->total);
}

static PyObject *Model_start_averaging(ModelObject *self, PyObject *Py_UNUSED(unused)) {
    if (py_ready(self->lm, "model")) return NULL;
    if (lm_start_averaging(self->lm)) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* The dropout masks of the last training step (for reference checks), or None each. */
static PyObject *Model_last_masks(ModelObject *self, PyObject *Py_UNUSED(unused)) {
    if (py_ready(self->lm, "model")) return NULL;
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
        PyObject *val = Py_None;
        if (items[i].on) {
            val = (PyObject *)py_zeros(items[i].nd, items[i].dims, NPY_FLOAT32);
            if (val) memcpy(PyArray_DATA((PyArrayObject *)val), items[i].ptr, PyArray_NBYTES((PyArrayObject *)val));
        } else {
            Py_INCREF(val);
        }
        if (!val || PyDict_SetItemString(d, items[i].name, val) < 0) { Py_XDECREF(val); Py_DECREF(d); return NULL; }
        Py_DECREF(val);
    }
    return d;
}

/* --- attributes ----------------------------------------------------------------------------- */

/* The model's scalar attributes, read through one getter: the getset entry's closure says
   where the field lies in the LM and its C type. */
typedef struct {
    size_t offset;
    char type; /* 'u': uint64_t, 'i': int64_t, 'f': float */
} ScalarField;
static const ScalarField FIELD_STEP = {offsetof(LM, step), 'u'};
static const ScalarField FIELD_AVG_COUNT = {offsetof(LM, avg_count), 'i'};
static const ScalarField FIELD_HIDDEN_CLIP = {offsetof(LM, hidden_clip), 'f'};

static PyObject *Model_get_scalar(ModelObject *self, void *closure) {
    if (py_ready(self->lm, "model")) return NULL;
    const ScalarField *f = closure;
    const char *p = (const char *)self->lm + f->offset;
    switch (f->type) {
    case 'u': return PyLong_FromUnsignedLongLong(*(const uint64_t *)p);
    case 'i': return PyLong_FromLongLong(*(const int64_t *)p);
    default: return PyFloat_FromDouble(*(const float *)p);
    }
}
/* every setter's first checks: a live model, and no `del model.name` */
static int settable(ModelObject *self, PyObject *v, const char *name) {
    if (py_ready(self->lm, "model")) return -1;
    if (!v) { PyErr_Format(PyExc_TypeError, "%s cannot be deleted", name); return -1; }
    return 0;
}
/* below 2^63: DARTS keys its validation passes' masks with the top bit (darts.h) */
static int Model_set_step(ModelObject *self, PyObject *v, void *Py_UNUSED(c)) {
    if (settable(self, v, "step_count")) return -1;
    unsigned long long s = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) return -1;
    if (s >= 1ULL << 63) { PyErr_SetString(PyExc_ValueError, "step_count must be < 2^63"); return -1; }
    self->lm->step = s;
    return 0;
}
/* restoring a checkpoint puts the averaged-step count back with the average itself */
static int Model_set_avg_count(ModelObject *self, PyObject *v, void *Py_UNUSED(c)) {
    if (settable(self, v, "avg_count")) return -1;
    long long n = PyLong_AsLongLong(v);
    if (PyErr_Occurred() || py_check_int("avg_count", n, 0, LLONG_MAX)) return -1;
    self->lm->avg_count = n;
    return 0;
}
/* the paper code's hidden-norm clipping (cell.h); the discrete cell only */
static int Model_set_hidden_clip(ModelObject *self, PyObject *v, void *Py_UNUSED(c)) {
    if (settable(self, v, "hidden_clip")) return -1;
    double x = PyFloat_AsDouble(v);
    if (PyErr_Occurred() || py_check_range("hidden_clip", x, 0, FLT_MAX, 0)) return -1;
    if (self->lm->mix && x > 0) {
        PyErr_SetString(PyExc_ValueError, "hidden_clip belongs to the discrete cell, not the mixed cell");
        return -1;
    }
    if (self->busy) { PyErr_SetString(PyExc_RuntimeError, "this model is already running a call in another thread"); return -1; }
    self->lm->hidden_clip = (float)x;
    return 0;
}
static PyObject *Model_get_mat_used(ModelObject *self, void *Py_UNUSED(c)) {
    if (py_ready(self->lm, "model")) return NULL;
    npy_intp n = self->lm->n_mats;
    PyArrayObject *arr = py_zeros(1, &n, NPY_BOOL);
    if (arr) memcpy(PyArray_DATA(arr), self->lm->mat_used, (size_t)n);
    return (PyObject *)arr;
}
static PyObject *Model_get_activation_bytes(ModelObject *self, void *Py_UNUSED(c)) {
    if (py_ready(self->lm, "model")) return NULL;
    return PyLong_FromSize_t(self->lm->act_floats * sizeof(float));
}

static PyMethodDef Model_methods[] = {
    {"last_masks", (PyCFunction)Model_last_masks, METH_NOARGS, "dropout masks of the last training step"},
    PY_METHOD("step", Model_step,
              "step(arch, inputs, targets, hidden=None, lr, clip, wd, tar, ar, train, backward, update, asgd, w0,"
              " alpha_grad, weight_grad) -> (loss_sum, reg, grad_norm, tokens, new_hidden); arch None: the"
              " mixed cell's own"),
    PY_METHOD("evaluate", Model_evaluate, "evaluate(arch, data, bptt, w0=0) -> (loss_sum, tokens)"),
    {"arena", (PyCFunction)Model_arena, METH_VARARGS, "arena('params'|'grads'|'avg') -> float32 view"},
    {"layout", (PyCFunction)Model_layout, METH_NOARGS, "offsets of the tensors in the arenas"},
    {"start_averaging", (PyCFunction)Model_start_averaging, METH_NOARGS, "begin ASGD averaging"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Model_getset[] = {
    {"step_count", (getter)Model_get_scalar, (setter)Model_set_step, "training steps taken (keys dropout masks)",
     (void *)&FIELD_STEP},
    {"avg_count", (getter)Model_get_scalar, (setter)Model_set_avg_count, "steps in the ASGD average",
     (void *)&FIELD_AVG_COUNT},
    {"hidden_clip", (getter)Model_get_scalar, (setter)Model_set_hidden_clip,
     "> 0: every step's hidden-state rows clipped to this L2 norm (0: off)", (void *)&FIELD_HIDDEN_CLIP},
    {"mat_used", (getter)Model_get_mat_used, NULL, "matrices touched by the last backward", NULL},
    {"activation_bytes", (getter)Model_get_activation_bytes, NULL, "size of the activation arena", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject ModelType = PY_TYPE(
    "Model", ModelObject,
    "Model(vocab_size, hidden, n_mats, max_nodes, seed=0, dropout_out=0, dropout_h=0, dropout_x=0,\n"
    "      dropout_in=0, dropout_emb=0, n_w0=1)\n\n"
    "Recurrent-cell language model over a bank of node matrices (C core).",
    Model_init, Model_dealloc, Model_methods, Model_getset);

static PyObject *py_set_num_threads(PyObject *Py_UNUSED(self), PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (PyErr_Occurred() || py_check_int("threads", n, 1, INT_MAX)) return NULL;
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

/* The instruction-set levels: the one in use, those this CPU runs (natives best first, and
 * the emulations apart), those compiled in. */
static PyObject *py_isa_info(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused)) {
    PyObject *supported = PyList_New(0), *emulated = PyList_New(0), *compiled = PyList_New(0);
    if (!supported || !emulated || !compiled) goto fail;
    for (int i = 0; i < N_ISA; i++) {
        int isa = isa_listed(i);
        PyObject *name = PyUnicode_FromString(isa_name(isa));
        if (!name) goto fail;
        int rc = (isa_compiled(isa) ? PyList_Append(compiled, name) : 0) |
                 (isa_supported(isa) ? PyList_Append(isa_emulated(isa) ? emulated : supported, name) : 0);
        Py_DECREF(name);
        if (rc) goto fail;
    }
    return Py_BuildValue("{s:s,s:s,s:N,s:N,s:N,s:(ii),s:s,s:s}", "isa", kern->name, "best",
                         isa_name(isa_best()), "supported", supported, "emulated", emulated,
                         "compiled", compiled, "tile", kern->tile_rows, kern->tile_cols,
                         "compiler", isa_compiler(), "source", NAS_EVAL_SOURCE_SHA);
fail:
    Py_XDECREF(supported);
    Py_XDECREF(emulated);
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
        char names[96] = "";
        for (int i = 0; i < N_ISA; i++) {
            if (i) strcat(names, ", ");
            strcat(names, isa_name(i));
        }
        PyErr_Format(PyExc_ValueError, "isa must be one of %s, got %R", names, arg);
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
    uint64_t seed;
    unsigned long long stream, counter;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O&KKn", arg_seed, &seed, &stream, &counter, &n) || py_check_int("n", n, 0, 1 << 24))
        return NULL;
    npy_intp dims[1] = {n};
    PyArrayObject *u = py_zeros(1, dims, NPY_FLOAT32), *g = py_zeros(1, dims, NPY_FLOAT64);
    if (!u || !g) { PY_RELEASE(u, g); return NULL; }
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
    const char *decoder_error = lm_decoder_init(getenv("NAS_EVAL_DECODER"));
    if (decoder_error) {
        PyErr_SetString(PyExc_ValueError, decoder_error);
        return NULL;
    }
    PyObject *mod = PyModule_Create(&core_module);
    if (!mod) return NULL;
    ModelType.tp_flags |= Py_TPFLAGS_BASETYPE; /* MixedModel (py_darts.c) extends it */
    if (py_add_type(mod, "Model", &ModelType) < 0 || PyModule_AddIntConstant(mod, "MAX_NODES", LM_MAX_NODES) < 0 ||
        lstm_adam_add_types(mod) < 0 || enas_add_types(mod) < 0 || nao_add_types(mod) < 0 ||
        darts_add_types(mod) < 0 || xent_add_functions(mod) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    /* the core's own pool does all its parallelism; OpenBLAS stays on the calling thread */
    blas_set_num_threads(1);
    return mod;
}
