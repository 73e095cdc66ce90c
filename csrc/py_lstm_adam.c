/* Bindings: nas_eval._core.lstm_forward / lstm_backward / adam_update over float64 NumPy arrays.
 * Every argument is checked (dtype, shape, finiteness) and named in the error (py_args.h). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>

#include <math.h>

#include "adam.h"
#include "lstm.h"
#include "py_args.h"
#include "py_lstm_adam.h"

#define D(a) PY_DATA(double, (a).arr)

/* x (B, I) and h_prev (B, H) within the sizes lstm.c is written for; the (B, H), (I + H, 4H),
 * (4H,) and (B, 4H) shapes the other arguments must have */
typedef struct { npy_intp B, In, H, BH[2], BI[2], W[2], b[1], G[2]; } LstmShapes;

static int lstm_shapes(const ArgArray *x, const ArgArray *h, LstmShapes *s) {
    npy_intp B = PyArray_DIM(x->arr, 0), In = PyArray_DIM(x->arr, 1), H = PyArray_DIM(h->arr, 1);
    if (B > 1 << 20 || In > 1 << 16 || H > 1 << 16) {
        PyErr_SetString(PyExc_ValueError, "x and h_prev are too large (B <= 2^20, I and H <= 2^16)");
        return -1;
    }
    *s = (LstmShapes){B, In, H, {B, H}, {B, In}, {In + H, 4 * H}, {4 * H}, {B, 4 * H}};
    return 0;
}

PyDoc_STRVAR(lstm_forward_doc,
"lstm_forward(x, h_prev, c_prev, W, b) -> (gates, c, h)\n\n"
"One LSTM step in float64: x (B, I), h_prev and c_prev (B, H), W (I + H, 4H), b (4H,).\n"
"Gate order i, f, g, o (torch.nn.LSTM); gates are post-activation.");

static PyObject *py_lstm_forward(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", "h_prev", "c_prev", "W", "b", NULL};
    ArgArray x = ARG("x", 2, -1, -1), h = ARG("h_prev", 2, -1, -1), c = ARG("c_prev", 2, -1, -1),
             W = ARG("W", 2, -1, -1), b = ARG("b", 1, -1);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&", kwlist, arg_f64, &x, arg_f64, &h, arg_f64, &c,
                                     arg_f64, &W, arg_f64, &b))
        return NULL;
    PyArrayObject *gates = NULL, *c1 = NULL, *h1 = NULL;
    PyObject *out = NULL;
    LstmShapes s;
    if (lstm_shapes(&x, &h, &s) || py_check_shape(&h, s.BH) || py_check_shape(&c, s.BH) ||
        py_check_shape(&W, s.W) || py_check_shape(&b, s.b))
        goto done;
    if (!(gates = py_zeros(2, s.G, NPY_FLOAT64)) || !(c1 = py_zeros(2, s.BH, NPY_FLOAT64)) ||
        !(h1 = py_zeros(2, s.BH, NPY_FLOAT64)))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    lstm_forward((int)s.B, (int)s.In, (int)s.H, D(x), D(h), D(c), D(W), D(b), PY_DATA(double, gates),
                 PY_DATA(double, c1), PY_DATA(double, h1));
    Py_END_ALLOW_THREADS
    out = Py_BuildValue("(OOO)", gates, c1, h1);
done:
    PY_RELEASE(x.arr, h.arr, c.arr, W.arr, b.arr, gates, c1, h1);
    return out;
}

PyDoc_STRVAR(lstm_backward_doc,
"lstm_backward(x, h_prev, c_prev, W, gates, c, dh, dc) -> (dW, db, dx, dh_prev, dc_prev)\n\n"
"Backward of one LSTM step: dh, dc (B, H) are the gradients on h and (from step t+1) on c;\n"
"returns fresh gradient arrays (dW, db start from zero).");

static PyObject *py_lstm_backward(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", "h_prev", "c_prev", "W", "gates", "c", "dh", "dc", NULL};
    ArgArray in[8] = {ARG("x", 2, -1, -1), ARG("h_prev", 2, -1, -1), ARG("c_prev", 2, -1, -1), ARG("W", 2, -1, -1),
                      ARG("gates", 2, -1, -1), ARG("c", 2, -1, -1), ARG("dh", 2, -1, -1), ARG("dc", 2, -1, -1)};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&O&O&O&O&", kwlist, arg_f64, &in[0], arg_f64, &in[1],
                                     arg_f64, &in[2], arg_f64, &in[3], arg_f64, &in[4], arg_f64, &in[5],
                                     arg_f64, &in[6], arg_f64, &in[7]))
        return NULL;
    PyArrayObject *g[5] = {NULL};
    PyObject *out = NULL;
    LstmShapes s;
    if (lstm_shapes(&in[0], &in[1], &s)) goto done;
    const npy_intp *want[8] = {s.BI, s.BH, s.BH, s.W, s.G, s.BH, s.BH, s.BH};
    for (int k = 1; k < 8; k++)
        if (py_check_shape(&in[k], want[k])) goto done;
    const npy_intp *gshape[5] = {s.W, s.b, s.BI, s.BH, s.BH};
    for (int k = 0; k < 5; k++)
        if (!(g[k] = py_zeros(k == 1 ? 1 : 2, gshape[k], NPY_FLOAT64))) goto done;
    Py_BEGIN_ALLOW_THREADS
    lstm_backward((int)s.B, (int)s.In, (int)s.H, D(in[0]), D(in[1]), D(in[2]), D(in[3]), D(in[4]), D(in[5]),
                  D(in[6]), D(in[7]), PY_DATA(double, g[0]), PY_DATA(double, g[1]), PY_DATA(double, g[2]),
                  PY_DATA(double, g[3]), PY_DATA(double, g[4]));
    Py_END_ALLOW_THREADS
    out = Py_BuildValue("(OOOOO)", g[0], g[1], g[2], g[3], g[4]);
done:
    for (int k = 0; k < 8; k++) PY_RELEASE(in[k].arr);
    PY_RELEASE(g[0], g[1], g[2], g[3], g[4]);
    return out;
}

PyDoc_STRVAR(adam_update_doc,
"adam_update(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)\n\n"
"One Adam step in place on float64 1-D arrays param, m, v (torch.optim.Adam semantics: L2 weight\n"
"decay added to the gradient, bias-corrected moments); t is the 1-based step count.");

/* Adam's hyper-parameters, checked once for every binding that takes them (NAO's too) */
int adam_check(const AdamConfig *c) {
    return py_check_range("lr", c->lr, 0, INFINITY, 0) || py_check_range("beta1", c->beta1, 0, 1, OPEN_HI) ||
                   py_check_range("beta2", c->beta2, 0, 1, OPEN_HI) || py_check_range("eps", c->eps, 0, INFINITY, OPEN_LO) ||
                   py_check_range("weight_decay", c->weight_decay, 0, INFINITY, 0)
               ? -1
               : 0;
}

static PyObject *py_adam_update(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"param", "grad", "m", "v", "t", "lr", "beta1", "beta2", "eps", "weight_decay", NULL};
    ArgArray p = {.name = "param", .ndim = 1, .shape = {-1}, .flags = ARG_INPLACE}, g = ARG("grad", 1, -1),
             m = {.name = "m", .ndim = 1, .shape = {-1}, .flags = ARG_INPLACE},
             v = {.name = "v", .ndim = 1, .shape = {-1}, .flags = ARG_INPLACE};
    long long t;
    AdamConfig c = {1e-3, 0.9, 0.999, 1e-8, 0.0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O&O&L|ddddd", kwlist, arg_f64, &p, arg_f64, &g, arg_f64, &m,
                                     arg_f64, &v, &t, &c.lr, &c.beta1, &c.beta2, &c.eps, &c.weight_decay))
        return NULL;
    PyObject *out = NULL;
    npy_intp n[1] = {PyArray_DIM(p.arr, 0)};
    if (py_check_int("t", t, 1, LLONG_MAX) || adam_check(&c) || py_check_shape(&g, n) || py_check_shape(&m, n) ||
        py_check_shape(&v, n))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    adam_update((size_t)n[0], D(p), D(g), D(m), D(v), (int64_t)t, c);
    Py_END_ALLOW_THREADS
    out = py_ref(Py_None);
done:
    PY_RELEASE(p.arr, g.arr, m.arr, v.arr);
    return out;
}

static PyMethodDef lstm_adam_methods[] = {
    PY_METHOD("lstm_forward", py_lstm_forward, lstm_forward_doc),
    PY_METHOD("lstm_backward", py_lstm_backward, lstm_backward_doc),
    PY_METHOD("adam_update", py_adam_update, adam_update_doc),
    {NULL, NULL, 0, NULL},
};

int lstm_adam_add_types(PyObject *module) {
    /* without PY_ARRAY_UNIQUE_SYMBOL each translation unit holds its own NumPy API table */
    if (_import_array() < 0) return -1;
    return PyModule_AddFunctions(module, lstm_adam_methods);
}
