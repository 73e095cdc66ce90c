"""The one place that sets how many threads the C core uses.

The core runs its own non-spinning pool of ``n`` threads and keeps OpenBLAS single-threaded
inside it, so it never oversubscribes the machine. Benchmarks, executors (one thread per job
when jobs run in parallel) and the CLI call :func:`set_num_threads`; NumPy's own bundled
OpenBLAS is a separate pool and is left alone.
"""
from .native import core


def set_num_threads(n):
    """Use ``n`` threads for the core's work (``n >= 1``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    core.set_num_threads(n)


def get_num_threads():
    """Threads the core uses now."""
    return core.get_num_threads()
