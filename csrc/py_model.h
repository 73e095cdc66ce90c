/* nas_eval._core.Model, the one binding of the LM (lm.h), shared by module.c (the type: a
 * discrete cell, a super-net, or with the DARTS mixed cell) and py_darts.c (its subtype
 * MixedModel, which adds only what is DARTS's own: the alpha step and the alpha state). */
#ifndef NAS_EVAL_PY_MODEL_H
#define NAS_EVAL_PY_MODEL_H

#include <Python.h>

#include "lm.h"
#include "py_args.h"

typedef struct {
    PyObject_HEAD
    LM *lm;
    CellArch own; /* with the mixed cell: its n nodes, node i on matrix i - 1, all outputs */
    int busy;
} ModelObject;

extern PyTypeObject ModelType;

/* __init__ of Model (mixed = 0) and of MixedModel (mixed = 1) */
int model_init(ModelObject *self, PyObject *args, PyObject *kw, int mixed);

#define MODEL_ENTER(self) py_enter((self)->lm, &(self)->busy, "model")
#define MODEL_LEAVE(self) py_leave(&(self)->busy)

/* One (T, B) segment: token inputs and targets, the incoming hidden state (None: zeros) and,
 * once checked, a fresh (B, d) array for the outgoing one. */
typedef struct {
    ArgArray in, tg, h;
    PyArrayObject *h1;
    int T, B;
} SegmentArgs;

#define SEGMENT_ARGS(prefix, vocab)                                                              \
    {ARG_TOKENS(prefix "inputs", vocab, (npy_intp)1 << 26), ARG_TOKENS(prefix "targets", vocab, (npy_intp)1 << 26), \
     {.name = prefix "hidden", .ndim = 2, .shape = {-1, -1}, .flags = ARG_OPTIONAL}, NULL, 0, 0}

/* the converters of a segment's three arguments, for "O&O&O&" */
#define SEGMENT_CONVERTERS(s) arg_ints, &(s).in, arg_ints, &(s).tg, arg_f32, &(s).h

/* shapes against each other and the model, the zero state for None, the outgoing array; with
 * batch normalisation (`batch_stats`) at least two rows */
int segment_check(ModelObject *self, SegmentArgs *s, const char *prefix, int batch_stats);
void segment_release(SegmentArgs *s);

#endif
