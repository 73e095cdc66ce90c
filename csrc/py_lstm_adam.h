/* Module-level functions exposing the shared double-precision LSTM step and Adam update
 * (csrc/lstm.h, csrc/adam.h) to Python, so that their tests and any NumPy-side check can call
 * them directly. */
#ifndef NAS_EVAL_PY_LSTM_ADAM_H
#define NAS_EVAL_PY_LSTM_ADAM_H

#include <Python.h>

#include "adam.h"

int lstm_adam_add_types(PyObject *module);

/* Adam's hyper-parameters checked once for every binding that takes them: 0, or -1 with a
 * ValueError naming the bad one */
int adam_check(const AdamConfig *c);

#endif
