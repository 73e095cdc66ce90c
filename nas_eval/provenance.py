"""Provenance: what produced a result (package, Python, NumPy, OpenBLAS, threads, host).

Stored with every job so that a number in a table can be traced to the build and machine
that computed it. Everything here is best effort: a missing library is recorded as None,
never an error, because provenance must not make a finished job fail.
"""
from __future__ import annotations

import datetime
import functools
import os
import platform
import socket
import sys

__all__ = ["collect"]


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    # Versions and host do not change within a process; computed once per worker.
    from . import __version__

    info = {"nas_eval": __version__, "python": platform.python_version(),
            "implementation": sys.implementation.name, "platform": platform.platform(),
            "machine": platform.machine(), "hostname": socket.gethostname(),
            "cpu_count": os.cpu_count(), "numpy": None, "numpy_blas": None,
            "openblas": None, "openblas_core": None}
    try:
        import numpy
        info["numpy"] = numpy.__version__
        try:  # NumPy >= 1.25; NumPy's own BLAS, distinct from the one the C core uses
            blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
            info["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
        except Exception:
            pass
    except ImportError:
        pass
    try:  # the OpenBLAS wheel the C core links against
        import scipy_openblas32
        info["openblas"] = scipy_openblas32.__version__
    except Exception:
        pass
    try:  # what the C core reports at run time (config string, core chosen by DYNAMIC_ARCH)
        from .engine.native import openblas_info
        core = openblas_info()
        info["openblas_core"] = core if isinstance(core, (str, dict, list)) else str(core)
    except Exception:
        pass
    return info


def _threads_now():
    try:
        from .engine import get_num_threads
        return get_num_threads()
    except Exception:
        return None


def collect(threads=None) -> dict:
    """A JSON-serialisable provenance record for the current process."""
    info = dict(_static())
    info["threads"] = threads if threads is not None else _threads_now()
    info["pid"] = os.getpid()
    info["time"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return info
