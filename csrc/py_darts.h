/* CPython type nas_eval._core.MixedModel: the Model (py_model.h) whose cell is the DARTS mixed cell. */
#ifndef NAS_EVAL_PY_DARTS_H
#define NAS_EVAL_PY_DARTS_H

#include <Python.h>

int darts_add_types(PyObject *module);

#endif
