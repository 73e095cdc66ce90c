"""What a study will cost before it starts (``nas-eval plan``): its jobs by kind, their
FLOPs, the CPU-hours they take at this machine's rate, and the wall time on N workers.

The cost of each job is :func:`nas_eval.eta.job_cost` (the FLOPs of the cell LM's products,
evaluation weighted by ``EVAL_FACTOR``), the model the running study's ETA uses. A job's CPU
time is its cost over the rate one core sustains on it: the single-thread sgemm rate of the
core's OpenBLAS at a block of the job's decoder product (B·bptt x d times d x a slice of the
vocabulary; most of a job's FLOPs at every d the presets use) times ``GEMM_EFFICIENCY``, the
share of that rate a training step reaches (BENCHMARKS.md: 75-82 % median at d = 64). The
measured rates are cached per shape (``<data cache>/sgemm-rate.json``); ``rate=`` gives one
rate for every job instead. Wall time: the jobs in the order a Study submits them (longest
roles first, retraining after every search), each to the first free worker, a job with T
threads running ``1 + (T - 1) * THREAD_EFFICIENCY`` times as fast.

>>> from nas_eval.spec import study_preset
>>> plan = plan_study(study_preset("smoke"), workers=2, rate=2.0)
>>> int(plan.table["jobs"].sum()), plan.wall_hours < plan.cpu_hours
(84, True)
"""
import dataclasses
import json
import math
import os
import time

import pandas as pd

from . import policies
from .eta import job_cost
from .plan import plan_first_phase, train_job
from .spec import StudySpec

__all__ = ["plan_study", "StudyCost", "sgemm_gflops", "GEMM_EFFICIENCY", "THREAD_EFFICIENCY"]

GEMM_EFFICIENCY = 0.75  # a training step's share of the sgemm rate (BENCHMARKS.md, d = 64)
# a job's speed-up per extra thread: BENCHMARKS.md measured 1.50-1.94x for 2 threads, idle
THREAD_EFFICIENCY = 0.75
# The calibration product is a block of the decoder's: at most ROWS_SLICE rows of B·bptt and a
# VOCAB_SLICE-word slice of the vocabulary, so that one call takes milliseconds and the best of
# many is a call no other process interrupted (a whole product would be timed with the load).
ROWS_SLICE = 128
VOCAB_SLICE = 512
CALIBRATION_SECONDS = 0.3  # per shape; the best call counts
# the order in which Study.run adds the first phase's jobs (longest roles first)
FIRST_PHASE_ORDER = ("ws", "sharing_ws", "search", "ground_truth", "random", "sharing_gt")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


# --- the machine's rate -------------------------------------------------------------------------
def _cache_file():
    from .datasets import cache_dir

    return cache_dir() / "sgemm-rate.json"


def _openblas():
    import ctypes

    import scipy_openblas32

    lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(fullname=True)),
                      mode=ctypes.RTLD_GLOBAL)
    lib.scipy_openblas_get_corename.restype = ctypes.c_char_p
    f = lib.scipy_cblas_sgemm
    f.restype = None
    f.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                       ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
    return lib


def _measure(lib, m, n, k):
    """Best single-thread GFLOP/s of C(m x n) = A(m x k) B(k x n), row-major."""
    import ctypes

    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    lib.scipy_openblas_set_num_threads(ctypes.c_int(1))
    best, t_end = 0.0, time.perf_counter() + CALIBRATION_SECONDS
    for i in range(10_000):
        t0 = time.perf_counter()
        lib.scipy_cblas_sgemm(101, 111, 111, m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, n, 0.0,
                              c.ctypes.data, n)
        best = max(best, 2.0 * m * n * k / (time.perf_counter() - t0) / 1e9)
        if i >= 5 and time.perf_counter() > t_end:
            break
    return best


def sgemm_gflops(m, k, n=VOCAB_SLICE, refresh=False):
    """The single-thread sgemm rate (GFLOP/s) of this machine's OpenBLAS (the core's) for an
    m x k by k x n product (m capped at ``ROWS_SLICE``); measured once per shape and machine,
    then read from the cache."""
    import platform
    import socket

    m = min(int(m), ROWS_SLICE)
    lib = _openblas()
    who = f"{socket.gethostname()}/{platform.machine()}/{lib.scipy_openblas_get_corename().decode()}"
    shape = f"{m}x{k}x{n}"
    path = _cache_file()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict) or cache.get("machine") != who:
        cache = {"machine": who, "gflops": {}}
    if refresh or shape not in cache["gflops"]:
        cache["gflops"][shape] = _measure(lib, m, n, k)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs a new measurement next time
    return float(cache["gflops"][shape])


# --- the plan ------------------------------------------------------------------------------------
@dataclasses.dataclass
class StudyCost:
    """A study's planned cost. ``jobs``: one row per job that will run (phase, role, kind,
    hidden_size, gflop, cpu_seconds, seconds = its wall time with ``threads_per_job``);
    ``wall_seconds``: the whole study on ``workers`` workers; ``rates``: the GFLOP/s used
    per config (d, batch, bptt); ``rate_source``: how they were obtained."""

    spec: StudySpec
    jobs: pd.DataFrame
    workers: int
    threads_per_job: int
    wall_seconds: float
    phase_seconds: tuple
    rates: dict
    rate_source: str

    @property
    def cpu_hours(self):
        """Hours of one core for every job (run with one thread each)."""
        return float(self.jobs["cpu_seconds"].sum() / 3600.0)

    @property
    def wall_hours(self):
        return self.wall_seconds / 3600.0

    @property
    def table(self):
        """Jobs, TFLOP and CPU-hours by phase, role and kind."""
        g = self.jobs.groupby(["phase", "role", "kind"], sort=False)
        t = pd.DataFrame({"jobs": g.size(), "tflop": g["gflop"].sum() / 1e3,
                          "cpu_hours": g["cpu_seconds"].sum() / 3600.0,
                          "longest_job_h": g["seconds"].max() / 3600.0})  # with its threads
        return t.reset_index()

    def __str__(self):
        lines = [self.spec.describe(), f"rate: {self.rate_source}"]
        lines += [f"  {cfg}: {gf:.1f} GFLOP/s" for cfg, gf in self.rates.items()]
        lines.append(self.table.to_string(index=False, float_format=lambda x: f"{x:,.3g}"))
        p1, p2 = self.phase_seconds
        lines.append(f"total: {len(self.jobs)} jobs, {self.jobs['gflop'].sum() / 1e6:,.3g} PFLOP, "
                     f"{self.cpu_hours:,.3g} CPU-hours")
        lines.append(f"wall time on {self.workers} worker(s) x {self.threads_per_job} thread(s) per job: "
                     f"{_duration(self.wall_seconds)} (phase 1 {_duration(p1)}, retraining {_duration(p2)})")
        return "\n".join(lines)


def _duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _makespan(seconds, workers):
    """Wall time of jobs handed, in order, each to the first free of ``workers``."""
    import heapq

    free = [0.0] * min(workers, max(1, len(seconds)))
    for s in seconds:
        heapq.heapreplace(free, free[0] + s)
    return max(free) if seconds else 0.0


def _study_jobs(spec):
    """(phase, role, Job) of every job the study runs once, in the order it submits them;
    a job planned twice (a random pick the ground truth also trains) counts once. The
    retraining jobs of phase 2 depend on the searches' picks: each is costed as a training
    of one architecture (the cost does not depend on which)."""
    plan = plan_first_phase(spec)
    seen, out = set(), []
    for role in FIRST_PHASE_ORDER:
        for _, job in plan[role]:
            if job.key not in seen:
                seen.add(job.key)
                out.append((1, role, job))
    if spec.train_seed not in spec.gt_seeds:  # else every retraining is a ground-truth run
        example = train_job(spec, policies.random_arch(spec.space, 0), spec.train_seed)
        out += [(2, "retrain", example) for p in spec.policies if p != "random" for _ in spec.seeds]
    return out


def plan_study(spec, workers=1, threads_per_job=1, rate=None, refresh=False):
    """The planned cost of ``spec`` (a StudySpec) as a :class:`StudyCost`: FLOPs and
    CPU-hours per job, and the wall time on ``workers`` workers with ``threads_per_job``
    threads each. ``rate``: GFLOP/s one job thread sustains, for every job (default:
    measured here, per config, see the module doc); ``refresh`` re-measures."""
    if not isinstance(spec, StudySpec):
        raise ValueError(f"spec must be a StudySpec, got {type(spec).__name__}")
    workers = _positive_int("workers", workers)
    threads_per_job = _positive_int("threads_per_job", threads_per_job)
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                             or not math.isfinite(rate) or rate <= 0):
        raise ValueError(f"rate must be a positive number of GFLOP/s, got {rate!r}")
    jobs = _study_jobs(spec)
    rates = {}
    for _, _, job in jobs:
        c = job.params["config"]
        cfg = f"d={c['hidden_size']} B={c['batch_size']} bptt={c['bptt']}"
        if cfg not in rates:
            rates[cfg] = float(rate) if rate is not None else \
                GEMM_EFFICIENCY * sgemm_gflops(c["batch_size"] * c["bptt"], c["hidden_size"], refresh=refresh)
    if rate is not None:
        source = f"given, {rate:g} GFLOP/s per job thread"
    else:
        source = (f"measured single-thread sgemm at each config's decoder product "
                  f"(min(B*bptt, {ROWS_SLICE}) x d x {VOCAB_SLICE}) x {GEMM_EFFICIENCY} (a training step's share of it)")
    speedup = 1.0 + (threads_per_job - 1) * THREAD_EFFICIENCY
    rows = []
    for phase, role, job in jobs:
        c = job.params["config"]
        flops = job_cost(job.kind, job.params)
        cpu = flops / (rates[f"d={c['hidden_size']} B={c['batch_size']} bptt={c['bptt']}"] * 1e9)
        rows.append({"phase": phase, "role": role, "kind": job.kind, "hidden_size": c["hidden_size"],
                     "gflop": flops / 1e9, "cpu_seconds": cpu, "seconds": cpu / speedup})
    table = pd.DataFrame(rows, columns=["phase", "role", "kind", "hidden_size", "gflop", "cpu_seconds", "seconds"])
    phases = tuple(_makespan(list(table.loc[table["phase"] == p, "seconds"]), workers) for p in (1, 2))
    return StudyCost(spec, table, workers, threads_per_job, sum(phases), phases, rates, source)
