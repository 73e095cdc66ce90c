/* nas_eval._core.MixedModel: the Model (py_model.h) with the DARTS mixed cell (mixed_cell.h);
 * the LM owns the cell, so stepping, evaluating, arenas and masks are the Model's. This file
 * adds only what is DARTS's own: the architecture step (darts.h) and the alpha state. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>

#include <math.h>

#include "darts.h"
#include "mixed_cell.h"
#include "py_args.h"
#include "py_darts.h"
#include "py_model.h"

static int Mixed_init(ModelObject *self, PyObject *args, PyObject *kw) { return model_init(self, args, kw, 1); }

/* 1-D view of model memory that keeps the model alive */
static PyObject *view(ModelObject *self, void *ptr, npy_intp n, int type) {
    PyObject *arr = PyArray_SimpleNewFromData(1, &n, type, ptr);
    if (!arr) return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) { Py_DECREF(arr); return NULL; }
    return arr;
}

PyDoc_STRVAR(alpha_step_doc,
"alpha_step(train_inputs, train_targets, train_hidden, valid_inputs, valid_targets, valid_hidden, order,\n"
"           eta, clip, wd, lr, beta1, beta2, eps, alpha_wd, r, apply, per_pass, cache, accumulate,\n"
"           bn_every_pass) -> dict\n\n"
"One architecture step (darts.h): the gradient of the validation loss with respect to alpha,\n"
"first or second order, then (apply) one Adam step on alpha.");

static PyObject *Mixed_alpha_step(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"train_inputs", "train_targets", "train_hidden", "valid_inputs", "valid_targets",
                             "valid_hidden", "order", "eta", "clip", "wd", "lr", "beta1", "beta2", "eps",
                             "alpha_wd", "r", "apply", "per_pass", "cache", "accumulate", "bn_every_pass", NULL};
    if (py_ready(self->lm, "model")) return NULL;
    SegmentArgs tra = SEGMENT_ARGS("train_", self->lm->V), vaa = SEGMENT_ARGS("valid_", self->lm->V);
    int order = 1, apply = 1, per_pass = 0, accumulate = 0, bn_every_pass = 0;
    PyObject *cache = Py_None;
    double eta = 0, clip = 0, wd = 0, r = 1e-2;
    AdamConfig adam = {3e-3, 0.9, 0.999, 1e-8, 1e-3};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&|idddddddddppOpp", kwlist, SEGMENT_CONVERTERS(tra),
                                     SEGMENT_CONVERTERS(vaa), &order, &eta, &clip, &wd, &adam.lr, &adam.beta1,
                                     &adam.beta2, &adam.eps, &adam.weight_decay, &r, &apply, &per_pass, &cache,
                                     &accumulate, &bn_every_pass))
        return NULL;
    double *cache_ptr = NULL; /* the paper code's cached unrolled model (darts.h) */
    if (cache != Py_None) {
        size_t len = DARTS_CACHE_LEN(self->lm->mix->E, self->lm->lay.total);
        if (!PyArray_Check(cache) || PyArray_TYPE((PyArrayObject *)cache) != NPY_FLOAT64 ||
            PyArray_NDIM((PyArrayObject *)cache) != 1 || (size_t)PyArray_SIZE((PyArrayObject *)cache) != len ||
            !PyArray_ISCARRAY((PyArrayObject *)cache)) {
            PyErr_Format(PyExc_ValueError, "cache must be a writable contiguous float64 array of %zu values", len);
            segment_release(&tra);
            segment_release(&vaa);
            return NULL;
        }
        cache_ptr = PyArray_DATA((PyArrayObject *)cache);
    }
    PyObject *result = NULL;
    if (py_check_int("order", order, 1, 2) || py_check_range("eta", eta, 0, INFINITY, 0) ||
        py_check_range("clip", clip, 0, INFINITY, 0) || py_check_range("wd", wd, 0, INFINITY, 0) ||
        py_check_range("lr", adam.lr, 0, INFINITY, OPEN_LO) || py_check_range("beta1", adam.beta1, 0, 1, OPEN_HI) ||
        py_check_range("beta2", adam.beta2, 0, 1, OPEN_HI) || py_check_range("eps", adam.eps, 0, INFINITY, OPEN_LO) ||
        py_check_range("alpha_wd", adam.weight_decay, 0, INFINITY, 0) || py_check_range("r", r, 0, INFINITY, OPEN_LO) ||
        segment_check(self, &tra, "train_", 1) || segment_check(self, &vaa, "valid_", 1) || MODEL_ENTER(self))
        goto done;
    /* the training batch's hidden state is the weight step's to advance */
    Segment tr = {PY_DATA(const int32_t, tra.in.arr), PY_DATA(const int32_t, tra.tg.arr), tra.T, tra.B,
                  PY_DATA(const float, tra.h.arr), NULL};
    Segment va = {PY_DATA(const int32_t, vaa.in.arr), PY_DATA(const int32_t, vaa.tg.arr), vaa.T, vaa.B,
                  PY_DATA(const float, vaa.h.arr), PY_DATA(float, vaa.h1)};
    DartsOptions o = {.order = order, .eta = (float)eta, .clip = (float)clip, .wd = (float)wd, .r = r,
                      .adam = adam, .apply = apply, .per_pass = per_pass, .cache = cache_ptr,
                      .accumulate = accumulate, .bn_every_pass = bn_every_pass};
    DartsStats st;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = darts_alpha_step(self->lm, &self->own, tr, va, o, &st);
    Py_END_ALLOW_THREADS
    MODEL_LEAVE(self);
    if (rc != 0) { PyErr_NoMemory(); goto done; }
    result = Py_BuildValue("{s:d,s:l,s:O,s:O,s:d,s:d}", "valid_loss_sum", st.valid_loss_sum, "tokens", st.tokens,
                           "valid_hidden", (PyObject *)vaa.h1, "ok", st.ok ? Py_True : Py_False,
                           "virtual_grad_norm", st.virtual_grad_norm, "valid_grad_norm", st.valid_grad_norm);
done:
    segment_release(&tra);
    segment_release(&vaa);
    return result;
}

/* writable views of the architecture state: alpha, its gradient, Adam's moments, and the
 * running batch-norm statistics (probabilities are refreshed by refresh()) */
static PyObject *Mixed_state_view(ModelObject *self, PyObject *args) {
    const char *which;
    if (!PyArg_ParseTuple(args, "s", &which) || py_ready(self->lm, "model")) return NULL;
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
static PyObject *Mixed_refresh(ModelObject *self, PyObject *Py_UNUSED(unused)) {
    if (py_ready(self->lm, "model")) return NULL;
    MixedCell *mc = self->lm->mix;
    for (int i = 0; i < mc->E * MIXED_OPS; i++)
        if (!isfinite(mc->alpha[i])) {
            PyErr_SetString(PyExc_ValueError, "alpha holds non-finite values");
            return NULL;
        }
    mixed_update_probs(mc);
    Py_RETURN_NONE;
}

static PyObject *Mixed_get_adam_t(ModelObject *self, void *Py_UNUSED(c)) {
    if (py_ready(self->lm, "model")) return NULL;
    return PyLong_FromLongLong(self->lm->mix->adam_t);
}
static int Mixed_set_adam_t(ModelObject *self, PyObject *v, void *Py_UNUSED(c)) {
    if (py_ready(self->lm, "model")) return -1;
    long long t = PyLong_AsLongLong(v);
    if (PyErr_Occurred() || py_check_int("adam_t", t, 0, LLONG_MAX)) return -1;
    self->lm->mix->adam_t = t;
    return 0;
}
static PyObject *Mixed_get_batch_norm(ModelObject *self, void *Py_UNUSED(c)) {
    if (py_ready(self->lm, "model")) return NULL;
    return PyBool_FromLong(self->lm->mix->batch_norm);
}

static PyMethodDef Mixed_methods[] = {
    PY_METHOD("alpha_step", Mixed_alpha_step, alpha_step_doc),
    {"state", (PyCFunction)Mixed_state_view, METH_VARARGS,
     "state('alpha'|'alpha_grad'|'prob'|'adam_m'|'adam_v'|'running_mean'|'running_var') -> 1-D view"},
    {"refresh", (PyCFunction)Mixed_refresh, METH_NOARGS, "check alpha and recompute its softmax"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Mixed_getset[] = {
    {"adam_t", (getter)Mixed_get_adam_t, (setter)Mixed_set_adam_t, "Adam steps taken on alpha", NULL},
    {"batch_norm", (getter)Mixed_get_batch_norm, NULL, "whether nodes are batch-normalised", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject MixedType = PY_TYPE(
    "MixedModel", ModelObject,
    "MixedModel(vocab_size, hidden, n_mats, max_nodes, seed=0, dropout_out=0, ..., batch_norm=True)\n\n"
    "The Model with the DARTS mixed cell of max_nodes nodes (n_mats == max_nodes).",
    Mixed_init, NULL, Mixed_methods, Mixed_getset);

int darts_add_types(PyObject *module) {
    if (_import_array() < 0) return -1; /* this file's own pointer to NumPy's C API */
    MixedType.tp_base = &ModelType;
    if (py_add_type(module, "MixedModel", &MixedType) < 0) return -1;
    return PyModule_AddIntConstant(module, "MIXED_OPS", MIXED_OPS);
}
