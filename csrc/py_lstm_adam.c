/* Bindings: nas_eval._core.lstm_forward / lstm_backward / adam_update over float64 NumPy arrays.
 * Every argument is checked (dtype, shape, contiguity, finiteness) and named in the error. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>

#include <math.h>

#include "adam.h"
#include "lstm.h"
#include "py_f64.h"
#include "py_lstm_adam.h"

static PyArrayObject *new_f64(int ndim, const npy_intp *shape) {
    return (PyArrayObject *)PyArray_ZEROS(ndim, (npy_intp *)shape, NPY_FLOAT64, 0);
}

#define DATA(a) ((double *)PyArray_DATA(a))

static void release(PyArrayObject **arrs, int n) {
    for (int k = 0; k < n; k++) Py_XDECREF(arrs[k]);
}

PyDoc_STRVAR(lstm_forward_doc,
"lstm_forward(x, h_prev, c_prev, W, b) -> (gates, c, h)\n\n"
"One LSTM step in float64: x (B, I), h_prev and c_prev (B, H), W (I + H, 4H), b (4H,).\n"
"Gate order i, f, g, o (torch.nn.LSTM); gates are post-activation.");

static PyObject *py_lstm_forward(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"x", "h_prev", "c_prev", "W", "b", NULL};
    PyObject *ox, *oh, *oc, *oW, *ob;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOO", kwlist, &ox, &oh, &oc, &oW, &ob)) return NULL;
    PyArrayObject *in[5] = {NULL}, *out[3] = {NULL};
    npy_intp any2[2] = {-1, -1};
    if (!(in[0] = f64_array(ox, "x", 2, any2, 0)) || !(in[1] = f64_array(oh, "h_prev", 2, any2, 0))) goto fail;
    npy_intp B = PyArray_DIM(in[0], 0), In = PyArray_DIM(in[0], 1), H = PyArray_DIM(in[1], 1);
    if (B > 1 << 20 || In > 1 << 16 || H > 1 << 16) {
        PyErr_SetString(PyExc_ValueError, "x and h_prev are too large (B <= 2^20, I and H <= 2^16)");
        goto fail;
    }
    npy_intp sBH[2] = {B, H}, sW[2] = {In + H, 4 * H}, sb[1] = {4 * H}, sG[2] = {B, 4 * H};
    if (!(in[1] = (Py_DECREF(in[1]), f64_array(oh, "h_prev", 2, sBH, 0))) ||
        !(in[2] = f64_array(oc, "c_prev", 2, sBH, 0)) || !(in[3] = f64_array(oW, "W", 2, sW, 0)) ||
        !(in[4] = f64_array(ob, "b", 1, sb, 0)))
        goto fail;
    if (!(out[0] = new_f64(2, sG)) || !(out[1] = new_f64(2, sBH)) || !(out[2] = new_f64(2, sBH))) goto fail;
    Py_BEGIN_ALLOW_THREADS
    lstm_forward((int)B, (int)In, (int)H, DATA(in[0]), DATA(in[1]), DATA(in[2]), DATA(in[3]), DATA(in[4]),
                 DATA(out[0]), DATA(out[1]), DATA(out[2]));
    Py_END_ALLOW_THREADS
    release(in, 5);
    return Py_BuildValue("(NNN)", out[0], out[1], out[2]);
fail:
    release(in, 5);
    release(out, 3);
    return NULL;
}

PyDoc_STRVAR(lstm_backward_doc,
"lstm_backward(x, h_prev, c_prev, W, gates, c, dh, dc) -> (dW, db, dx, dh_prev, dc_prev)\n\n"
"Backward of one LSTM step: dh, dc (B, H) are the gradients on h and (from step t+1) on c;\n"
"returns fresh gradient arrays (dW, db start from zero).");

static PyObject *py_lstm_backward(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"x", "h_prev", "c_prev", "W", "gates", "c", "dh", "dc", NULL};
    PyObject *o[8];
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOO", kwlist, &o[0], &o[1], &o[2], &o[3], &o[4],
                                     &o[5], &o[6], &o[7]))
        return NULL;
    PyArrayObject *in[8] = {NULL}, *out[5] = {NULL};
    npy_intp any2[2] = {-1, -1};
    if (!(in[0] = f64_array(o[0], "x", 2, any2, 0)) || !(in[1] = f64_array(o[1], "h_prev", 2, any2, 0))) goto fail;
    npy_intp B = PyArray_DIM(in[0], 0), In = PyArray_DIM(in[0], 1), H = PyArray_DIM(in[1], 1);
    if (B > 1 << 20 || In > 1 << 16 || H > 1 << 16) {
        PyErr_SetString(PyExc_ValueError, "x and h_prev are too large (B <= 2^20, I and H <= 2^16)");
        goto fail;
    }
    npy_intp sBH[2] = {B, H}, sBI[2] = {B, In}, sW[2] = {In + H, 4 * H}, sb[1] = {4 * H}, sG[2] = {B, 4 * H};
    Py_DECREF(in[1]);
    if (!(in[1] = f64_array(o[1], "h_prev", 2, sBH, 0)) || !(in[2] = f64_array(o[2], "c_prev", 2, sBH, 0)) ||
        !(in[3] = f64_array(o[3], "W", 2, sW, 0)) || !(in[4] = f64_array(o[4], "gates", 2, sG, 0)) ||
        !(in[5] = f64_array(o[5], "c", 2, sBH, 0)) || !(in[6] = f64_array(o[6], "dh", 2, sBH, 0)) ||
        !(in[7] = f64_array(o[7], "dc", 2, sBH, 0)))
        goto fail;
    if (!(out[0] = new_f64(2, sW)) || !(out[1] = new_f64(1, sb)) || !(out[2] = new_f64(2, sBI)) ||
        !(out[3] = new_f64(2, sBH)) || !(out[4] = new_f64(2, sBH)))
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    lstm_backward((int)B, (int)In, (int)H, DATA(in[0]), DATA(in[1]), DATA(in[2]), DATA(in[3]), DATA(in[4]),
                  DATA(in[5]), DATA(in[6]), DATA(in[7]), DATA(out[0]), DATA(out[1]), DATA(out[2]),
                  DATA(out[3]), DATA(out[4]));
    Py_END_ALLOW_THREADS
    release(in, 8);
    return Py_BuildValue("(NNNNN)", out[0], out[1], out[2], out[3], out[4]);
fail:
    release(in, 8);
    release(out, 5);
    return NULL;
}

PyDoc_STRVAR(adam_update_doc,
"adam_update(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)\n\n"
"One Adam step in place on float64 1-D arrays param, m, v (torch.optim.Adam semantics: L2 weight\n"
"decay added to the gradient, bias-corrected moments); t is the 1-based step count.");

static PyObject *py_adam_update(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"param", "grad", "m", "v", "t", "lr", "beta1", "beta2", "eps", "weight_decay", NULL};
    PyObject *op, *og, *om, *ov;
    long long t;
    AdamConfig c = {1e-3, 0.9, 0.999, 1e-8, 0.0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOL|ddddd", kwlist, &op, &og, &om, &ov, &t, &c.lr,
                                     &c.beta1, &c.beta2, &c.eps, &c.weight_decay))
        return NULL;
    if (t < 1) { PyErr_Format(PyExc_ValueError, "t must be >= 1, got %lld", t); return NULL; }
    if (!(c.lr >= 0 && isfinite(c.lr))) { PyErr_Format(PyExc_ValueError, "lr must be finite and >= 0, got %g", c.lr); return NULL; }
    if (!(c.beta1 >= 0 && c.beta1 < 1)) { PyErr_Format(PyExc_ValueError, "beta1 must be in [0, 1), got %g", c.beta1); return NULL; }
    if (!(c.beta2 >= 0 && c.beta2 < 1)) { PyErr_Format(PyExc_ValueError, "beta2 must be in [0, 1), got %g", c.beta2); return NULL; }
    if (!(c.eps > 0 && isfinite(c.eps))) { PyErr_Format(PyExc_ValueError, "eps must be finite and > 0, got %g", c.eps); return NULL; }
    if (!(c.weight_decay >= 0 && isfinite(c.weight_decay))) {
        PyErr_Format(PyExc_ValueError, "weight_decay must be finite and >= 0, got %g", c.weight_decay);
        return NULL;
    }
    PyArrayObject *in[4] = {NULL};
    npy_intp any1[1] = {-1};
    if (!(in[0] = f64_array(op, "param", 1, any1, 0))) goto fail;
    npy_intp sn[1] = {PyArray_DIM(in[0], 0)};
    if (!(in[1] = f64_array(og, "grad", 1, sn, 0)) || !(in[2] = f64_array(om, "m", 1, sn, 0)) ||
        !(in[3] = f64_array(ov, "v", 1, sn, 0)))
        goto fail;
    for (int k = 0; k < 4; k++)
        if (k != 1 && !PyArray_ISWRITEABLE(in[k])) {
            PyErr_Format(PyExc_ValueError, "%s must be writeable", k == 0 ? "param" : k == 2 ? "m" : "v");
            goto fail;
        }
    Py_BEGIN_ALLOW_THREADS
    adam_update((size_t)sn[0], DATA(in[0]), DATA(in[1]), DATA(in[2]), DATA(in[3]), (int64_t)t, c);
    Py_END_ALLOW_THREADS
    release(in, 4);
    Py_RETURN_NONE;
fail:
    release(in, 4);
    return NULL;
}

static PyMethodDef lstm_adam_methods[] = {
    {"lstm_forward", (PyCFunction)(void (*)(void))py_lstm_forward, METH_VARARGS | METH_KEYWORDS, lstm_forward_doc},
    {"lstm_backward", (PyCFunction)(void (*)(void))py_lstm_backward, METH_VARARGS | METH_KEYWORDS, lstm_backward_doc},
    {"adam_update", (PyCFunction)(void (*)(void))py_adam_update, METH_VARARGS | METH_KEYWORDS, adam_update_doc},
    {NULL, NULL, 0, NULL},
};

int lstm_adam_add_types(PyObject *module) {
    /* without PY_ARRAY_UNIQUE_SYMBOL each translation unit holds its own NumPy API table */
    if (_import_array() < 0) return -1;
    return PyModule_AddFunctions(module, lstm_adam_methods);
}
