/* The argument layer of the CPython bindings (module.c, py_*.c), written once:
 *   - O& converters for every argument kind: token ids, float32 and float64 arrays, integer
 *     matrices, architecture tables, seeds. Each fills an ArgArray / CellArch / uint64_t the
 *     caller declared; an ArgArray carries what it expects (name, rank, shape, caps) in and
 *     the checked array out. A converter returns Py_CLEANUP_SUPPORTED, so when a later
 *     argument fails PyArg_Parse* releases what the earlier ones made.
 *   - checks of what can only be checked after parsing: shapes against each other, ranges;
 *   - the re-entry guard (py_enter / py_leave) and the not-initialised check (py_ready);
 *   - one allocation helper for results (py_zeros) and one cleanup (PY_RELEASE).
 * Every failure is a ValueError (RuntimeError for the guard) that names the argument.
 * Included by each binding file: each translation unit uses its own NumPy API table,
 * imported in its add_types function. */
#ifndef NAS_EVAL_PY_ARGS_H
#define NAS_EVAL_PY_ARGS_H

#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <numpy/arrayobject.h>

#include "arch.h"

/* --- the re-entry guard ---------------------------------------------------------------------- */

/* `what` ("model", "controller", ...) has been built by its __init__ */
static inline int py_ready(const void *core, const char *what) {
    if (core) return 0;
    PyErr_Format(PyExc_RuntimeError, "%s is not initialised", what);
    return -1;
}

/* Marks the object busy for a call that may release the GIL; another thread's call into the
 * same object is refused instead of racing on its buffers. */
static inline int py_enter(const void *core, int *busy, const char *what) {
    if (py_ready(core, what)) return -1;
    if (*busy) {
        PyErr_Format(PyExc_RuntimeError, "this %s is already running a call in another thread", what);
        return -1;
    }
    *busy = 1;
    return 0;
}

static inline void py_leave(int *busy) { *busy = 0; }

/* --- allocation and cleanup ------------------------------------------------------------------ */

/* a fresh zeroed array for a result */
static inline PyArrayObject *py_zeros(int ndim, const npy_intp *shape, int type) {
    return (PyArrayObject *)PyArray_ZEROS(ndim, (npy_intp *)shape, type, 0);
}

static inline void py_release_n(PyArrayObject **arrs, size_t n) {
    for (size_t k = 0; k < n; k++) Py_XDECREF(arrs[k]);
}

/* PY_RELEASE(a, b, ...): drop the references (NULL ones are skipped) */
#define PY_RELEASE(...)                                                                           \
    py_release_n((PyArrayObject *[]){__VA_ARGS__},                                               \
                 sizeof((PyArrayObject *[]){__VA_ARGS__}) / sizeof(PyArrayObject *))

/* a new reference to o, returned (Py_NewRef before Python 3.10) */
static inline PyObject *py_ref(PyObject *o) {
    Py_INCREF(o);
    return o;
}

#define PY_DATA(type, a) ((type *)PyArray_DATA(a))

/* --- numbers ------------------------------------------------------------------------------- */

enum { OPEN_LO = 1, OPEN_HI = 2 };

/* x finite and within [lo, hi] (OPEN_LO / OPEN_HI exclude an end; hi = INFINITY: no upper end) */
static inline int py_check_range(const char *name, double x, double lo, double hi, int open) {
    int ok = isfinite(x) && ((open & OPEN_LO) ? x > lo : x >= lo) && ((open & OPEN_HI) ? x < hi : x <= hi);
    if (ok) return 0;
    char text[128]; /* PyErr_Format has no %g */
    if (isinf(hi))
        snprintf(text, sizeof text, "a finite number %s %g, got %g", (open & OPEN_LO) ? ">" : ">=", lo, x);
    else
        snprintf(text, sizeof text, "a finite number in %c%g, %g%c, got %g", (open & OPEN_LO) ? '(' : '[', lo, hi,
                 (open & OPEN_HI) ? ')' : ']', x);
    PyErr_Format(PyExc_ValueError, "%s must be %s", name, text);
    return -1;
}

static inline int py_check_int(const char *name, long long v, long long lo, long long hi) {
    if (v >= lo && v <= hi) return 0;
    PyErr_Format(PyExc_ValueError, "%s must be in %lld..%lld, got %lld", name, lo, hi, v);
    return -1;
}

/* O& converter: a seed, any integer in 0 .. 2^64 - 1 (no silent wrap of a negative one) */
static inline int arg_seed(PyObject *obj, void *out) {
    if (!obj) return 1;
    unsigned long long s = PyLong_Check(obj) ? PyLong_AsUnsignedLongLong(obj) : (unsigned long long)-1;
    if (!PyLong_Check(obj) || PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "seed must be an integer in 0..2^64-1");
        return 0;
    }
    *(uint64_t *)out = (uint64_t)s;
    return 1;
}

/* --- arrays -------------------------------------------------------------------------------- */

enum {
    ARG_OPTIONAL = 1, /* None is accepted and leaves arr NULL */
    ARG_INPLACE = 2,  /* written in place: must already be a C-contiguous writeable float64 array */
};

typedef struct {
    const char *name; /* in: named in every error */
    int ndim;         /* in: required rank */
    npy_intp shape[3];/* in: -1 = any size >= 1 along that axis */
    npy_intp cap;     /* in: tokens: at most this many ids; others: no axis longer (0: no cap) */
    int vocab;        /* in: tokens: ids in [0, vocab) */
    int flags;        /* in: ARG_OPTIONAL, ARG_INPLACE */
    PyArrayObject *arr; /* out: a new reference (NULL for an optional None) */
} ArgArray;

/* ArgArray initialisers: ARG(name, ndim, shape...) and the token form */
#define ARG(name_, ndim_, ...) {.name = (name_), .ndim = (ndim_), .shape = {__VA_ARGS__}}
#define ARG_TOKENS(name_, vocab_, cap_) {.name = (name_), .ndim = 2, .shape = {-1, -1}, .cap = (cap_), .vocab = (vocab_)}

/* arr's sizes against `shape` (-1: any >= 1) and the cap */
static inline int py_check_shape(const ArgArray *a, const npy_intp *shape) {
    for (int k = 0; k < a->ndim; k++) {
        npy_intp got = PyArray_DIM(a->arr, k);
        if (got < 1) {
            PyErr_Format(PyExc_ValueError, "%s must be non-empty, got size 0 along axis %d", a->name, k);
            return -1;
        }
        if (a->cap > 0 && a->vocab == 0 && got > a->cap) {
            PyErr_Format(PyExc_ValueError, "%s has size %zd along axis %d, at most %zd allowed", a->name,
                         (Py_ssize_t)got, k, (Py_ssize_t)a->cap);
            return -1;
        }
        if (shape[k] >= 0 && got != shape[k]) {
            PyErr_Format(PyExc_ValueError, "%s has size %zd along axis %d, expected %zd", a->name, (Py_ssize_t)got, k,
                         (Py_ssize_t)shape[k]);
            return -1;
        }
    }
    return 0;
}

/* the converter's own part: rank, its shape, release on cleanup */
static inline int arg_finish(ArgArray *a, PyArrayObject *arr) {
    a->arr = arr;
    if (!arr) return 0;
    if (PyArray_NDIM(arr) != a->ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, got %d", a->name, a->ndim, PyArray_NDIM(arr));
        Py_CLEAR(a->arr);
        return 0;
    }
    if (py_check_shape(a, a->shape)) { Py_CLEAR(a->arr); return 0; }
    return Py_CLEANUP_SUPPORTED;
}

/* None for an optional argument; on cleanup (obj == NULL) release */
static inline int arg_begin(PyObject *obj, ArgArray *a) {
    if (!obj) { Py_CLEAR(a->arr); return 1; }
    a->arr = NULL;
    return obj == Py_None && (a->flags & ARG_OPTIONAL);
}

static inline int all_finite_f64(const ArgArray *a) {
    const double *p = PY_DATA(const double, a->arr);
    for (npy_intp k = 0, n = PyArray_SIZE(a->arr); k < n; k++)
        if (!isfinite(p[k])) {
            PyErr_Format(PyExc_ValueError, "%s contains a non-finite value at flat index %zd", a->name, (Py_ssize_t)k);
            return 0;
        }
    return 1;
}

/* O& converter: float64 values with only finite entries. Any array-like converts (a copy
 * where needed), except an ARG_INPLACE argument, which must be the float64 array itself. */
static inline int arg_f64(PyObject *obj, void *out) {
    ArgArray *a = out;
    if (arg_begin(obj, a)) return obj ? Py_CLEANUP_SUPPORTED : 1;
    PyArrayObject *arr;
    if (a->flags & ARG_INPLACE) {
        arr = (PyArrayObject *)obj;
        if (!PyArray_Check(obj) || PyArray_TYPE(arr) != NPY_FLOAT64 || !PyArray_IS_C_CONTIGUOUS(arr) ||
            !PyArray_ISALIGNED(arr) || !PyArray_ISWRITEABLE(arr)) {
            PyErr_Format(PyExc_ValueError, "%s is updated in place: it must be a writeable C-contiguous float64 "
                         "NumPy array", a->name);
            return 0;
        }
        Py_INCREF(arr);
    } else {
        arr = (PyArrayObject *)PyArray_FROMANY(obj, NPY_FLOAT64, 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
        if (!arr) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s must be a %d-D array of float64 values", a->name, a->ndim);
            return 0;
        }
    }
    int rc = arg_finish(a, arr);
    if (rc && !all_finite_f64(a)) { Py_CLEAR(a->arr); return 0; }
    return rc;
}

/* O& converter: float32 values (other real dtypes are cast) with only finite entries, e.g. a
 * hidden state; ARG_OPTIONAL: None leaves arr NULL (the caller's zeros). */
static inline int arg_f32(PyObject *obj, void *out) {
    ArgArray *a = out;
    if (arg_begin(obj, a)) return obj ? Py_CLEANUP_SUPPORTED : 1;
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROMANY(
        obj, NPY_FLOAT32, 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    if (!arr) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be a %d-D float array", a->name, a->ndim);
        return 0;
    }
    int rc = arg_finish(a, arr);
    if (!rc) return 0;
    const float *p = PY_DATA(const float, a->arr);
    for (npy_intp k = 0, n = PyArray_SIZE(a->arr); k < n; k++)
        if (!isfinite(p[k])) {
            PyErr_Format(PyExc_ValueError, "%s holds a non-finite value (NaN or inf)", a->name);
            Py_CLEAR(a->arr);
            return 0;
        }
    return rc;
}

/* an integer (not bool, not float) array, or an empty one, as int64; NULL with ValueError */
static inline PyArrayObject *integer_array(PyObject *obj, const char *name) {
    PyArrayObject *raw = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!raw) { PyErr_Clear(); PyErr_Format(PyExc_ValueError, "%s must be an integer array", name); return NULL; }
    if ((!PyArray_ISINTEGER(raw) || PyArray_ISBOOL(raw)) && PyArray_SIZE(raw) > 0) {
        PyErr_Format(PyExc_ValueError, "%s must hold integer token ids, got dtype %s", name,
                     PyArray_DESCR(raw)->typeobj->tp_name);
        Py_DECREF(raw);
        return NULL;
    }
    /* uint64 values >= 2^63 become negative here and fail every range check */
    PyArrayObject *wide = (PyArrayObject *)PyArray_FROMANY((PyObject *)raw, NPY_INT64, 0, 0,
                                                           NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(raw);
    return wide;
}

/* O& converter: integers as int32, each checked in int64 *before* the cast so that a value
 * >= 2^31 is refused instead of wrapping; a float array is refused instead of truncated.
 * With vocab > 0 the values are token ids in [0, vocab) and cap (0: none) bounds their
 * number; otherwise cap bounds every axis and the values are the caller's to check. */
static inline int arg_ints(PyObject *obj, void *out) {
    ArgArray *a = out;
    if (arg_begin(obj, a)) return obj ? Py_CLEANUP_SUPPORTED : 1;
    PyArrayObject *wide = integer_array(obj, a->name);
    if (!wide) return 0;
    if (PyArray_NDIM(wide) != a->ndim) {
        char want[16] = "(T, B)";
        if (!a->vocab) snprintf(want, sizeof want, "%d-D", a->ndim);
        PyErr_Format(PyExc_ValueError, "%s must be a %s array, got %d dimension(s)", a->name, want, PyArray_NDIM(wide));
        Py_DECREF(wide);
        return 0;
    }
    const int64_t *w = PY_DATA(const int64_t, wide);
    npy_intp n = PyArray_SIZE(wide);
    const char *bad = n == 0 ? "%s is empty" : (a->vocab && a->cap && n > a->cap) ? "%s is too large (T*B > 2^26)" : NULL;
    for (npy_intp i = 0; !bad && i < n; i++)
        if (a->vocab ? (w[i] < 0 || w[i] >= a->vocab) : (w[i] < INT32_MIN || w[i] > INT32_MAX)) {
            PyErr_Format(PyExc_ValueError, a->vocab ? "%s holds token id %lld outside the vocabulary [0, %d)"
                                                    : "%s holds %lld, outside the int32 range", a->name,
                         (long long)w[i], a->vocab);
            Py_DECREF(wide);
            return 0;
        }
    if (bad) {
        PyErr_Format(PyExc_ValueError, bad, a->name);
        Py_DECREF(wide);
        return 0;
    }
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROMANY((PyObject *)wide, NPY_INT32, 0, 0,
                                                          NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(wide);
    return arg_finish(a, arr);
}

/* O& converter: an architecture table, a (4, n) integer array of predecessors, op indices,
 * matrix indices and output flags, into a CellArch (w0 = 0; the caller sets it and checks the
 * whole against its model). None leaves n = 0: the model's own architecture. */
static inline int arg_arch(PyObject *obj, void *out) {
    CellArch *c = out;
    if (!obj) return 1;
    c->n = 0;
    c->w0 = 0;
    if (obj == Py_None) return 1;
    ArgArray a = ARG("architecture table", 2, -1, -1);
    if (!arg_ints(obj, &a)) return 0;
    npy_intp rows = PyArray_DIM(a.arr, 0), n = PyArray_DIM(a.arr, 1);
    if (rows != 4 || n > LM_MAX_NODES) {
        PyErr_Format(PyExc_ValueError, "architecture table must have shape (4, n) with 1 <= n <= %d, got (%zd, %zd)",
                     LM_MAX_NODES, (Py_ssize_t)rows, (Py_ssize_t)n);
        Py_DECREF(a.arr);
        return 0;
    }
    const int32_t *t = PY_DATA(const int32_t, a.arr);
    c->n = (int)n;
    for (npy_intp i = 0; i < n; i++) {
        c->pred[i] = t[i]; c->op[i] = t[n + i]; c->mat[i] = t[2 * n + i]; c->out[i] = t[3 * n + i];
    }
    Py_DECREF(a.arr);
    return 1;
}

/* --- types --------------------------------------------------------------------------------- */

/* Readies `type` and adds it to the module under `name`. */
static inline int py_add_type(PyObject *module, const char *name, PyTypeObject *type) {
    if (PyType_Ready(type) < 0) return -1;
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* A binding type: `pyname` under nas_eval._core, objects of C type `objtype`; init, dealloc
 * (NULL: inherited), method and attribute tables. */
#define PY_TYPE(pyname, objtype, doc, init, dealloc, methods, getset)                                   \
    {PyVarObject_HEAD_INIT(NULL, 0).tp_name = "nas_eval._core." pyname, .tp_basicsize = sizeof(objtype), \
     .tp_flags = Py_TPFLAGS_DEFAULT, .tp_doc = (doc), .tp_new = PyType_GenericNew, .tp_init = (initproc)(init), \
     .tp_dealloc = (destructor)(dealloc), .tp_methods = (methods), .tp_getset = (getset)}

/* an entry of a method table for a function taking (self, args, kwargs) */
#define PY_METHOD(name, fn, doc) {name, (PyCFunction)(void (*)(void))(fn), METH_VARARGS | METH_KEYWORDS, doc}

#endif
