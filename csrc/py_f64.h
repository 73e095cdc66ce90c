/* Float64 array arguments of the CPython bindings (py_nao.c, py_lstm_adam.c), checked in one
 * place. Included by each binding file: each translation unit uses its own NumPy API table. */
#ifndef NAS_EVAL_PY_F64_H
#define NAS_EVAL_PY_F64_H

#include <Python.h>
#include <math.h>
#include <numpy/arrayobject.h>

/* A C-contiguous float64 array of the given shape (-1: any size >= 1 along that axis) with
 * only finite values, no axis longer than max_dim (0: no cap); a new reference, or NULL with
 * a ValueError naming `name`. */
static inline PyArrayObject *f64_array(PyObject *obj, const char *name, int ndim, const npy_intp *shape,
                                       npy_intp max_dim) {
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_FLOAT64) {
        PyErr_Format(PyExc_ValueError, "%s must be a float64 NumPy array", name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous and aligned", name);
        return NULL;
    }
    if (PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, got %d", name, ndim, PyArray_NDIM(a));
        return NULL;
    }
    for (int k = 0; k < ndim; k++) {
        npy_intp got = PyArray_DIM(a, k);
        if ((shape[k] >= 0 && got != shape[k]) || got < 1 || (max_dim > 0 && got > max_dim)) {
            PyErr_Format(PyExc_ValueError, "%s has size %zd along axis %d, expected %zd", name,
                         (Py_ssize_t)got, k, (Py_ssize_t)shape[k]);
            return NULL;
        }
    }
    const double *p = (const double *)PyArray_DATA(a);
    for (npy_intp k = 0, n = PyArray_SIZE(a); k < n; k++)
        if (!isfinite(p[k])) {
            PyErr_Format(PyExc_ValueError, "%s contains a non-finite value at flat index %zd", name, (Py_ssize_t)k);
            return NULL;
        }
    Py_INCREF(a);
    return a;
}

#endif
