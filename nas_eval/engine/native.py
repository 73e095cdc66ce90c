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

from .. import _core as core  # noqa: E402  (must follow the preload)

__all__ = ["core", "openblas_info"]


def openblas_info():
    """The OpenBLAS the core links: core name chosen at run time, build config, threads."""
    return core.openblas_info()
