"""The one place that sets how many threads the C core's OpenBLAS uses.

Benchmarks, executors (one thread per job when jobs run in parallel) and the CLI call
:func:`set_num_threads`; NumPy's own bundled OpenBLAS is a separate pool and is left alone.
"""
import os

from ._native import core


def set_num_threads(n):
    """Use ``n`` threads for the core's matrix products (``n >= 1``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    core.set_num_threads(n)


def get_num_threads():
    """Threads the core's matrix products use now."""
    return core.get_num_threads()


def default_threads():
    """Threads from ``$NAS_EVAL_THREADS``, else every core."""
    value = os.environ.get("NAS_EVAL_THREADS")
    if value:
        return int(value)
    return os.cpu_count() or 1
