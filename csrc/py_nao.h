/* Bindings of the NAO controller (csrc/nao.h): the type nas_eval._core.NAO. */
#ifndef NAS_EVAL_PY_NAO_H
#define NAS_EVAL_PY_NAO_H

#include <Python.h>

int nao_add_types(PyObject *module);

#endif
