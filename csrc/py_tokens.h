/* Token-id arguments of the CPython bindings, checked once for every C object that takes
 * them (module.c's Model, py_darts.c's MixedModel). Included by each binding file: each
 * translation unit uses its own NumPy API table, imported in its add_types function. */
#ifndef NAS_EVAL_PY_TOKENS_H
#define NAS_EVAL_PY_TOKENS_H

#include <Python.h>
#include <numpy/arrayobject.h>

/* Token ids as (T, B) int32. The ids are range-checked in int64 *before* the cast to int32,
 * so an id >= 2^31 is refused instead of wrapping onto a valid one; a float array is refused
 * instead of being truncated. max_size (0: none) caps T*B; the only cap a caller names is 2^26. */
static inline PyArrayObject *token_array(PyObject *obj, const char *what, int V, npy_intp max_size) {
    PyArrayObject *raw = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!raw) return NULL;
    if (!PyArray_ISINTEGER(raw)) {
        PyErr_Format(PyExc_ValueError, "%s must hold integer token ids, got dtype %s", what,
                     PyArray_DESCR(raw)->typeobj->tp_name);
        Py_DECREF(raw);
        return NULL;
    }
    if (PyArray_NDIM(raw) != 2) {
        PyErr_Format(PyExc_ValueError, "%s must be a (T, B) array, got %d dimension(s)", what, PyArray_NDIM(raw));
        Py_DECREF(raw);
        return NULL;
    }
    /* uint64 ids >= 2^63 become negative here and are refused below */
    PyArrayObject *wide = (PyArrayObject *)PyArray_FROMANY((PyObject *)raw, NPY_INT64, 2, 2,
                                                           NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(raw);
    if (!wide) return NULL;
    const int64_t *w = (const int64_t *)PyArray_DATA(wide);
    npy_intp n = PyArray_SIZE(wide);
    if (n == 0) {
        PyErr_Format(PyExc_ValueError, "%s is empty", what);
        Py_DECREF(wide);
        return NULL;
    }
    if (max_size && n > max_size) {
        PyErr_Format(PyExc_ValueError, "%s is too large (T*B > 2^26)", what);
        Py_DECREF(wide);
        return NULL;
    }
    for (npy_intp i = 0; i < n; i++)
        if (w[i] < 0 || w[i] >= V) {
            PyErr_Format(PyExc_ValueError, "%s holds token id %lld outside the vocabulary [0, %d)", what,
                         (long long)w[i], V);
            Py_DECREF(wide);
            return NULL;
        }
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROMANY((PyObject *)wide, NPY_INT32, 2, 2,
                                                          NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(wide);
    return arr;
}

#endif
