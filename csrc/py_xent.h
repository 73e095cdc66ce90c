/* nas_eval._core.xent: the decoder + softmax cross-entropy on its own (py_xent.c). */
#ifndef NAS_EVAL_PY_XENT_H
#define NAS_EVAL_PY_XENT_H

#include <Python.h>

int xent_add_functions(PyObject *module);

#endif
