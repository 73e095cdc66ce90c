/* Binding: nas_eval._core.xent, the decoder + softmax cross-entropy on its own (tests and
 * benchmarks): the fused pass (fused_xent.h) or the row-chunk pass with stored logits
 * (decoder.h) on the same inputs. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "decoder.h"
#include "fused_xent.h"
#include "parallel.h"
#include "py_xent.h"

/* a C-contiguous array of `type` with `ndim` dimensions, or NULL with a ValueError */
static PyArrayObject *as_array(PyObject *o, const char *name, int type, int ndim) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(o, type, 0, 0, NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST);
    if (!a) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be a numeric array", name);
        return NULL;
    }
    if (PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimension(s), got %d", name, ndim, PyArray_NDIM(a));
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

static int all_finite(PyArrayObject *a, const char *name) {
    const float *p = PyArray_DATA(a);
    for (npy_intp k = 0, n = PyArray_SIZE(a); k < n; k++)
        if (!isfinite(p[k])) {
            PyErr_Format(PyExc_ValueError, "%s contains a non-finite value at flat index %zd", name, (Py_ssize_t)k);
            return 0;
        }
    return 1;
}

PyDoc_STRVAR(xent_doc,
"xent(H, E, bias, targets, scale=1.0, grads=2, method='fused') -> (loss, dH, dE, dbias)\n\n"
"Summed softmax cross-entropy of the rows of H (N, d) against targets (N,) with the tied\n"
"decoder E (V, d) and bias (V,), all float32 (targets int32). grads 0: loss only (the\n"
"gradients are None), 1: dH too, 2: dH, dE and dbias, of scale * loss. method 'fused'\n"
"(the core's pass, on the core's threads) or 'stored' (logits stored per 128-row chunk,\n"
"one thread; the core's decoder before the fused pass, kept as a reference).");

static PyObject *py_xent(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"H", "E", "bias", "targets", "scale", "grads", "method", NULL};
    PyObject *oH, *oE, *ob, *ot;
    float scale = 1.0f;
    int grads = 2;
    const char *method = "fused";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO|fis", kwlist, &oH, &oE, &ob, &ot, &scale, &grads, &method))
        return NULL;
    int fused = strcmp(method, "fused") == 0;
    if (!fused && strcmp(method, "stored") != 0) {
        PyErr_Format(PyExc_ValueError, "method must be 'fused' or 'stored', got %s", method);
        return NULL;
    }
    if (grads < 0 || grads > 2 || !isfinite(scale)) {
        PyErr_SetString(PyExc_ValueError, "grads must be 0, 1 or 2 and scale finite");
        return NULL;
    }
    PyArrayObject *in[4] = {NULL}, *out[3] = {NULL};
    float *ws = NULL;
    double loss = 0.0;
    if (!(in[0] = as_array(oH, "H", NPY_FLOAT32, 2)) || !(in[1] = as_array(oE, "E", NPY_FLOAT32, 2)) ||
        !(in[2] = as_array(ob, "bias", NPY_FLOAT32, 1)) || !(in[3] = as_array(ot, "targets", NPY_INT32, 1)))
        goto fail;
    npy_intp N = PyArray_DIM(in[0], 0), d = PyArray_DIM(in[0], 1), V = PyArray_DIM(in[1], 0);
    if (N < 1 || d < 1 || V < 1 || N > 1 << 20 || d > 1 << 14 || V > 1 << 20) {
        PyErr_SetString(PyExc_ValueError, "H and E must be non-empty (N <= 2^20, d <= 2^14, V <= 2^20)");
        goto fail;
    }
    if (PyArray_DIM(in[1], 1) != d || PyArray_DIM(in[2], 0) != V || PyArray_DIM(in[3], 0) != N) {
        PyErr_SetString(PyExc_ValueError, "shapes must be H (N, d), E (V, d), bias (V,), targets (N,)");
        goto fail;
    }
    const int32_t *tg = PyArray_DATA(in[3]);
    for (npy_intp r = 0; r < N; r++)
        if (tg[r] < 0 || tg[r] >= V) {
            PyErr_Format(PyExc_ValueError, "targets[%zd] = %d is outside 0..V-1 (V = %zd)", (Py_ssize_t)r, tg[r], (Py_ssize_t)V);
            goto fail;
        }
    if (!all_finite(in[0], "H") || !all_finite(in[1], "E") || !all_finite(in[2], "bias")) goto fail;
    npy_intp sH[2] = {N, d}, sE[2] = {V, d}, sb[1] = {V};
    if (grads >= 1 && !(out[0] = (PyArrayObject *)PyArray_ZEROS(2, sH, NPY_FLOAT32, 0))) goto fail;
    if (grads >= 2 && (!(out[1] = (PyArrayObject *)PyArray_ZEROS(2, sE, NPY_FLOAT32, 0)) ||
                       !(out[2] = (PyArrayObject *)PyArray_ZEROS(1, sb, NPY_FLOAT32, 0))))
        goto fail;
    int workers = fused ? pool_threads() : 1, chunk = N < 128 ? (int)N : 128;
    size_t n_ws = fused ? xent_workspace_floats((int)N, (int)d, (int)V, workers, grads)
                        : (size_t)chunk * V;
    if (!(ws = alloc_floats(n_ws))) { PyErr_NoMemory(); goto fail; }
    float *dH = out[0] ? PyArray_DATA(out[0]) : NULL, *dE = out[1] ? PyArray_DATA(out[1]) : NULL;
    float *db = out[2] ? PyArray_DATA(out[2]) : NULL;
    const float *H = PyArray_DATA(in[0]), *E = PyArray_DATA(in[1]), *bias = PyArray_DATA(in[2]);
    Py_BEGIN_ALLOW_THREADS
    if (fused) {
        XentWork w;
        xent_bind(&w, ws, (int)N, (int)d, (int)V, workers, grads);
        loss = xent_run(&w, workers, (int)N, (int)d, (int)V, H, E, bias, tg, scale, dH, dE, db);
    } else {
        loss = decoder_rows((int)N, (int)d, (int)V, H, E, bias, tg, ws, chunk, scale, dH, dE, db);
    }
    Py_END_ALLOW_THREADS
    free(ws);
    for (int k = 0; k < 4; k++) Py_DECREF(in[k]);
    for (int k = 0; k < 3; k++)
        if (!out[k]) { Py_INCREF(Py_None); out[k] = (PyArrayObject *)Py_None; }
    return Py_BuildValue("(dNNN)", loss, out[0], out[1], out[2]);
fail:
    for (int k = 0; k < 4; k++) Py_XDECREF(in[k]);
    for (int k = 0; k < 3; k++) Py_XDECREF(out[k]);
    return NULL;
}

static PyMethodDef xent_methods[] = {
    {"xent", (PyCFunction)(void (*)(void))py_xent, METH_VARARGS | METH_KEYWORDS, xent_doc},
    {NULL, NULL, 0, NULL}};

int xent_add_functions(PyObject *module) {
    /* without PY_ARRAY_UNIQUE_SYMBOL each translation unit holds its own NumPy API table */
    if (_import_array() < 0) return -1;
    return PyModule_AddFunctions(module, xent_methods);
}
