"""Jobs: content-addressed units of work and the one entry point that workers run.

A job is ``Job(kind, params)``. Its key hashes the kind, the canonical JSON of the params
and the package version, so the same work always has the same key and a new release never
reuses an old result. Params must therefore hold everything that changes the outcome
(space, architecture or policy, seed, the resolved config) and be plain JSON.

Job kinds are functions ``fn(params: dict) -> dict`` registered with ``@register(kind)``.
Workers only ever receive ``run_job(kind, params, threads, module, checkpoint_dir)``: a
module-level function of plain arguments, so every executor (process pool, Dask) can ship it without
pickling closures, and a worker finds ``fn`` by importing ``module`` (the module that
registered the kind in the driver).

Long kinds take a second argument, ``fn(params, checkpoint=None)``: a
:class:`nas_eval.checkpoint.Checkpoint` for the job's key in ``checkpoint_dir`` (a path the
driver passes with the call, never part of the key) to load at the start and save as it
goes, so that a killed job resumes where it stopped.

This module stays light (no NumPy at import) because spawned workers import it first.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from importlib import import_module
from typing import Callable, Dict, Optional

from .checkpoint import takes_checkpoint

__all__ = ["Job", "canonical_json", "to_json", "register", "registered", "module_of",
           "run_job", "KEY_LENGTH"]

KEY_LENGTH = 24  # hex chars of sha256: 96 bits, ample for any study

_REGISTRY: Dict[str, Callable[[dict], dict]] = {}


def _plain(obj):
    """json `default` hook: NumPy scalars/arrays become Python numbers/lists."""
    if hasattr(obj, "tolist"):  # numpy.ndarray and numpy scalars
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def canonical_json(obj) -> str:
    """One spelling per value: sorted keys, no spaces, finite floats only (hashed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False, default=_plain)


def to_json(obj) -> str:
    """JSON for stored results. NaN/Infinity are kept (Python's json tokens) so that a
    diverged run's infinite perplexity round-trips instead of being lost."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True,
                      default=_plain)


@dataclass(frozen=True, eq=False)
class Job:
    """A unit of work. ``params`` is normalised through canonical JSON on construction
    (tuples become lists, NumPy numbers become Python numbers) so equal work compares and
    hashes equal however it was spelled."""

    kind: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError("Job.kind must be a non-empty string")
        try:
            text = canonical_json(self.params)
        except ValueError as e:  # NaN/inf in params would make the key ambiguous
            raise ValueError(f"job params must be finite JSON: {e}") from None
        object.__setattr__(self, "params", json.loads(text))
        object.__setattr__(self, "_params_json", text)

    @property
    def params_json(self) -> str:
        return self._params_json

    @property
    def key(self) -> str:
        from . import __version__
        blob = canonical_json({"kind": self.kind, "params": self.params,
                               "version": __version__})
        return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]

    def __eq__(self, other):
        return (isinstance(other, Job) and self.kind == other.kind
                and self._params_json == other._params_json)

    def __hash__(self):
        return hash((self.kind, self._params_json))


def register(kind: str):
    """Decorator: ``@register("retrain") def retrain(params) -> dict``."""
    def deco(fn):
        if kind in _REGISTRY and _REGISTRY[kind] is not fn:
            prev = _REGISTRY[kind]
            # re-importing the same module (e.g. as __main__ and by name) is harmless
            if (prev.__module__, prev.__qualname__) != (fn.__module__, fn.__qualname__):
                raise ValueError(f"job kind {kind!r} already registered by "
                                 f"{prev.__module__}.{prev.__qualname__}")
        _REGISTRY[kind] = fn
        return fn
    return deco


def registered() -> Dict[str, Callable[[dict], dict]]:
    return dict(_REGISTRY)


def module_of(kind: str) -> Optional[str]:
    """The importable module that registered ``kind`` in this process, if any; the driver
    passes it to workers so they can import it. ``__main__`` is not importable there."""
    fn = _REGISTRY.get(kind)
    mod = getattr(fn, "__module__", None)
    return None if mod in (None, "__main__", "__mp_main__") else mod


def _resolve(kind: str, module: Optional[str]) -> Callable[[dict], dict]:
    if kind in _REGISTRY:
        return _REGISTRY[kind]
    for name in [module] if module else []:
        try:
            import_module(name)
        except ImportError as e:
            raise ImportError(f"cannot import job module {name!r} (needed to find job "
                              f"kind {kind!r}): {e}") from e
        if kind in _REGISTRY:
            return _REGISTRY[kind]
    raise KeyError(f"unknown job kind {kind!r}; registered: {sorted(_REGISTRY)}. "
                   f"Register it with @nas_eval.jobs.register({kind!r}) in an importable module")


def _set_threads(threads: int) -> None:
    try:
        from .engine import set_num_threads
    except ImportError:  # the C core may not be built (pure-Python jobs, tests)
        return
    set_num_threads(int(threads))


PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 0.5


def die_with_parent(parent_pid: Optional[int] = None) -> None:
    """Make this (worker) process die when ``parent_pid`` (default: its parent now) dies.

    A driver killed with SIGKILL cannot stop its workers: they would be re-parented to PID
    1, finish their job, throw the result away and sleep forever. On Linux the kernel sends
    SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``; note it fires when the
    *thread* that started the worker exits, which is the driver's main thread here); on every
    platform a daemon thread also polls the parent id and kills the process once it changes.
    """
    import signal
    import sys
    import threading

    parent = os.getppid() if parent_pid is None else int(parent_pid)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watch thread below still works
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before we got here
        os.kill(os.getpid(), kill)

    def watch():
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent:
                os.kill(os.getpid(), kill)

    threading.Thread(target=watch, name="nas_eval-parent-watch", daemon=True).start()


def worker_init(threads: int, parent_pid: Optional[int] = None) -> None:
    """Process-pool initializer: cap BLAS/OpenMP threads before any library loads, so
    that `workers x threads` never oversubscribes the cores; and die with the driver
    (:func:`die_with_parent`), so a killed driver leaves no orphaned workers."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(int(threads))
    die_with_parent(parent_pid)


def run_job(kind: str, params: dict, threads: int = 1, module: Optional[str] = None,
            checkpoint_dir: Optional[str] = None) -> dict:
    """Run one job where it lands (driver or worker). Returns
    ``{"result": dict, "wall_time": seconds, "provenance": dict}``; exceptions propagate
    to the executor, whose future carries them back to the driver. With
    ``checkpoint_dir``, a kind that takes ``checkpoint=`` gets one for the job's key; what
    happened to it (resumed, ignored as corrupt or foreign) is in ``provenance["checkpoint"]``.
    The checkpoint is left in place: the driver removes it once the result is stored."""
    from . import provenance

    fn = _resolve(kind, module)
    _set_threads(threads)
    kwargs, ckpt = {}, None
    if checkpoint_dir is not None and takes_checkpoint(fn):
        from .checkpoint import Checkpoint

        ckpt = Checkpoint(checkpoint_dir, Job(kind, params).key, on_event=lambda k, m: None)
        kwargs["checkpoint"] = ckpt
    t0 = time.perf_counter()
    result = fn(dict(params), **kwargs)
    wall = time.perf_counter() - t0
    if not isinstance(result, dict):
        raise TypeError(f"job kind {kind!r} returned {type(result).__name__}, not dict")
    to_json(result)  # fail here, with the job's name on it, if the result is not JSON
    prov = provenance.collect(threads)
    if ckpt is not None and ckpt.events:
        prov["checkpoint"] = list(ckpt.events)
    return {"result": result, "wall_time": wall, "provenance": prov}


# --- built-in kinds for tests and smoke checks --------------------------------------------

@register("selftest")
def _selftest(params: dict) -> dict:
    """Deterministic numbers from the seed; optional ``sleep`` seconds to look busy."""
    import numpy as np

    if params.get("sleep"):
        time.sleep(float(params["sleep"]))
    rng = np.random.default_rng(int(params["seed"]))
    values = rng.standard_normal(int(params.get("n", 4)))
    return {"seed": int(params["seed"]), "values": values.tolist(),
            "mean": float(values.mean()), "curve": {"epoch": [1, 2], "loss": [2.0, 1.0]},
            "diverged_ppl": math.inf}  # checks that non-finite results round-trip


@register("selftest-die")
def _selftest_die(params: dict) -> dict:
    """Kills its own worker process (SIGKILL, as the out-of-memory killer does) on its first
    ``die_times`` runs, counted in the file ``marker``; then behaves as ``selftest``. Only
    for process-pool or Dask workers: in the serial executor it would kill the driver."""
    import signal

    marker = params["marker"]
    runs = 1 + (int(open(marker).read() or 0) if os.path.exists(marker) else 0)
    with open(marker, "w") as f:
        f.write(str(runs))
    if runs <= int(params.get("die_times", 1)):
        os.kill(os.getpid(), signal.SIGKILL)
    return _selftest(params)


@register("selftest-fail")
def _selftest_fail(params: dict) -> dict:
    raise ValueError(f"selftest-fail: deliberate failure for seed {params.get('seed')}")
