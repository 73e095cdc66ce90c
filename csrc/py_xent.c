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
#include "py_args.h"
#include "py_xent.h"

PyDoc_STRVAR(xent_doc,
"xent(H, E, bias, targets, scale=1.0, grads=2, method='fused') -> (loss, dH, dE, dbias)\n\n"
"Summed softmax cross-entropy of the rows of H (N, d) against targets (N,) with the tied\n"
"decoder E (V, d) and bias (V,), all float32 (targets int32). grads 0: loss only (the\n"
"gradients are None), 1: dH too, 2: dH, dE and dbias, of scale * loss. method 'fused'\n"
"(the core's pass, on the core's threads: with grads=2 it keeps its exp tiles when one\n"
"96-row block of them fits 64 MiB, as a training step does), 'fused-store' or\n"
"'fused-recompute' (that pass with the tiles kept, or recomputed), or 'stored' (logits\n"
"stored per 128-row chunk, one thread; the core's decoder before the fused pass, kept as a\n"
"reference).");

/* N, d and V within the sizes the passes are written for, and the shapes of E, bias and targets
 * against H's and E's */
static int xent_shapes(const ArgArray *H, const ArgArray *E, const ArgArray *bias, const ArgArray *tg) {
    npy_intp N = PyArray_DIM(H->arr, 0), d = PyArray_DIM(H->arr, 1), V = PyArray_DIM(E->arr, 0);
    if (N > 1 << 20 || d > 1 << 14 || V > 1 << 20) {
        PyErr_SetString(PyExc_ValueError, "H and E are too large (N <= 2^20, d <= 2^14, V <= 2^20)");
        return -1;
    }
    if (PyArray_DIM(E->arr, 1) != d || PyArray_DIM(bias->arr, 0) != V || PyArray_DIM(tg->arr, 0) != N) {
        PyErr_SetString(PyExc_ValueError, "shapes must be H (N, d), E (V, d), bias (V,), targets (N,)");
        return -1;
    }
    const int32_t *t = PY_DATA(const int32_t, tg->arr);
    for (npy_intp r = 0; r < N; r++)
        if (t[r] < 0 || t[r] >= V) {
            PyErr_Format(PyExc_ValueError, "targets[%zd] = %d is outside 0..V-1 (V = %zd)", (Py_ssize_t)r, t[r],
                         (Py_ssize_t)V);
            return -1;
        }
    return 0;
}

static PyObject *py_xent(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"H", "E", "bias", "targets", "scale", "grads", "method", NULL};
    ArgArray H = ARG("H", 2, -1, -1), E = ARG("E", 2, -1, -1), bias = ARG("bias", 1, -1),
             tg = ARG("targets", 1, -1);
    float scale = 1.0f;
    int grads = 2;
    const char *method = "fused";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&|fis", kwlist, arg_f32, &H, arg_f32, &E, arg_f32, &bias,
                                     arg_ints, &tg, &scale, &grads, &method))
        return NULL;
    PyArrayObject *dH = NULL, *dE = NULL, *db = NULL;
    PyObject *result = NULL;
    float *ws = NULL;
    static const char *methods[] = {"fused", "fused-store", "fused-recompute", "stored"};
    const int n_methods = (int)(sizeof methods / sizeof *methods);
    int how = 0;
    while (how < n_methods && strcmp(method, methods[how]) != 0) how++;
    if (how == n_methods) {
        PyErr_Format(PyExc_ValueError,
                     "method must be 'fused', 'fused-store', 'fused-recompute' or 'stored', got %s", method);
        goto done;
    }
    const int fused = how < 3;
    if (!isfinite(scale)) {
        PyErr_SetString(PyExc_ValueError, "scale must be a finite number");
        goto done;
    }
    if (py_check_int("grads", grads, 0, 2) || xent_shapes(&H, &E, &bias, &tg)) goto done;
    const int N = (int)PyArray_DIM(H.arr, 0), d = (int)PyArray_DIM(H.arr, 1), V = (int)PyArray_DIM(E.arr, 0);
    const npy_intp sH[2] = {N, d}, sE[2] = {V, d}, sb[1] = {V};
    if ((grads >= 1 && !(dH = py_zeros(2, sH, NPY_FLOAT32))) ||
        (grads >= 2 && (!(dE = py_zeros(2, sE, NPY_FLOAT32)) || !(db = py_zeros(1, sb, NPY_FLOAT32)))))
        goto done;
    const int workers = fused ? pool_threads() : 1, chunk = N < 128 ? N : 128;
    const int pass = grads < 2 ? grads : how == 1 ? XENT_STORE : how == 2 ? XENT_RECOMPUTE : xent_full_mode(V);
    if (!(ws = alloc_floats(fused ? xent_workspace_floats(N, d, V, workers, pass) : (size_t)chunk * V))) {
        PyErr_NoMemory();
        goto done;
    }
    float *gH = dH ? PY_DATA(float, dH) : NULL, *gE = dE ? PY_DATA(float, dE) : NULL;
    float *gb = db ? PY_DATA(float, db) : NULL;
    const float *h = PY_DATA(const float, H.arr), *e = PY_DATA(const float, E.arr), *b = PY_DATA(const float, bias.arr);
    const int32_t *t = PY_DATA(const int32_t, tg.arr);
    double loss;
    Py_BEGIN_ALLOW_THREADS
    if (fused) {
        XentWork w;
        xent_bind(&w, ws, N, d, V, workers, pass);
        loss = xent_run(&w, workers, N, d, V, h, e, b, t, scale, gH, gE, gb);
    } else {
        loss = decoder_rows(N, d, V, h, e, b, t, ws, chunk, scale, gH, gE, gb);
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(dOOO)", loss, dH ? (PyObject *)dH : Py_None, dE ? (PyObject *)dE : Py_None,
                           db ? (PyObject *)db : Py_None);
done:
    free(ws);
    PY_RELEASE(H.arr, E.arr, bias.arr, tg.arr, dH, dE, db);
    return result;
}

static PyMethodDef xent_methods[] = {PY_METHOD("xent", py_xent, xent_doc), {NULL, NULL, 0, NULL}};

int xent_add_functions(PyObject *module) {
    /* without PY_ARRAY_UNIQUE_SYMBOL each translation unit holds its own NumPy API table */
    if (_import_array() < 0) return -1;
    return PyModule_AddFunctions(module, xent_methods);
}
