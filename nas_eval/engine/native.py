"""Loads the C core, the only module that imports ``nas_eval._core``.

OpenBLAS comes from the scipy-openblas32 wheel: the extension carries an rpath to it, and we
also preload it by absolute path so that the dynamic loader already holds it when the rpath
does not match (an unusual site-packages layout).
"""
import ctypes
import os

import scipy_openblas32

_lib_dir = scipy_openblas32.get_lib_dir()
_lib = scipy_openblas32.get_library(fullname=True)
ctypes.CDLL(os.path.join(_lib_dir, _lib), mode=ctypes.RTLD_GLOBAL)

try:
    from .. import _core as core  # noqa: E402  (must follow the preload)
except ImportError as e:
    from .._source_tree import core_missing_message

    why = core_missing_message()
    if why is None:
        raise
    raise ImportError(why) from e

__all__ = ["core", "openblas_info", "isa_info", "set_isa", "xent"]


def openblas_info():
    """The OpenBLAS the core links: core name chosen at run time, build config, threads."""
    return core.openblas_info()


def isa_info():
    """The instruction-set levels of the core's kernels: ``isa`` (in use), ``best``,
    ``supported`` (this CPU runs them, best first), ``emulated`` (test levels this CPU runs:
    another level's code compiled for this one, e.g. ``avx512-emu``), ``compiled``; ``tile``;
    ``compiler``."""
    return core.isa_info()


def set_isa(name):
    """Switch every model of this process to the kernels of level ``name`` (tests and
    benchmarks; ``$NAS_EVAL_ISA`` at import is the usual way). Only between calls: every level
    computes the same to rounding, each deterministically. ValueError for an unknown level or
    one this CPU cannot run."""
    core.set_isa(name)


def xent(H, E, bias, targets, scale=1.0, grads=2, method="fused"):
    """The core's tied decoder + softmax cross-entropy on its own (tests, benchmarks):
    ``(loss, dH, dE, dbias)``, the summed loss of the rows of ``H`` (N, d) against
    ``targets`` with embedding ``E`` (V, d) and ``bias`` (V,), and the gradients of
    ``scale * loss`` (None beyond ``grads``: 0 none, 1 dH, 2 all). ``method``: "fused"
    (csrc/fused_xent.h, the core's threads) or "stored" (csrc/decoder.h, one thread)."""
    return core.xent(H, E, bias, targets, scale=scale, grads=grads, method=method)
