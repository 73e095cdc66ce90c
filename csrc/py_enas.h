/* nas_eval._core.EnasController: the ENAS controller of csrc/enas.h as a Python type. */
#ifndef NAS_EVAL_PY_ENAS_H
#define NAS_EVAL_PY_ENAS_H

#include <Python.h>

int enas_add_types(PyObject *module);

#endif
