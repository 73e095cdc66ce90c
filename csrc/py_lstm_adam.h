/* Module-level functions exposing the shared double-precision LSTM step and Adam update
 * (csrc/lstm.h, csrc/adam.h) to Python, so that their tests and any NumPy-side check can call
 * them directly. */
#ifndef NAS_EVAL_PY_LSTM_ADAM_H
#define NAS_EVAL_PY_LSTM_ADAM_H

#include <Python.h>

int lstm_adam_add_types(PyObject *module);

#endif
