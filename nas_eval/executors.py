"""Executors and the driver loop that runs a store's jobs on them.

Any ``concurrent.futures.Executor`` works: the serial one below, a local process pool
(the default), or a Dask cluster through ``distributed.Client(...).get_executor(pure=False)``
(``pure=False`` because a job is not a pure function of its arguments as far as Dask can
tell: two submissions must both run). Workers only compute; the driver (``run_pending``)
is the only process that writes to the store.

Before a study runs on Dask, :func:`check_workers` asks every worker for its nas_eval
version, the hashes of its sources (:func:`build_id`) and whether it can load the study's
corpus, and refuses the cluster by name when one differs: a worker with other code would
store numbers under keys that promise this code's. If the scheduler dies mid-run, the jobs
in flight are marked stale (they resume from their checkpoints) and :class:`ExecutorLost`
says what to do.
"""
from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import multiprocessing
import os
import socket
import traceback
from typing import Dict, Iterable, Optional

from .jobs import die_with_parent, module_of, run_job, worker_init

__all__ = ["SerialExecutor", "ProcessPool", "make_executor", "default_workers", "run_pending",
           "WORKER_RETRIES", "build_id", "check_workers", "WorkerMismatch", "ExecutorLost"]

# A job whose worker process died (OOM-killed, SIGKILLed, a crash in native code) is run
# again, alone, up to this many times; one more death and it is recorded failed with the
# reason. Alone, so that the next death is the job's own and not a neighbour's.
WORKER_RETRIES = 2


class SerialExecutor(cf.Executor):
    """Runs each call in the driver at submit time and returns a finished future.
    For debugging, profiling and tiny studies; also the reference for determinism."""

    _max_workers = 1

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # KeyboardInterrupt is not caught: Ctrl-C stops the loop
            fut.set_exception(e)
        return fut


class ProcessPool(cf.Executor):
    """A local pool of spawned worker processes that replaces itself when a worker dies.

    ``concurrent.futures.ProcessPoolExecutor`` turns "broken" for good once one of its
    processes dies: every job in it fails with ``BrokenProcessPool`` and every later submit
    raises. This pool starts a fresh one at the next submit, so the driver can retry the
    jobs it lost (``run_pending``); ``respawns`` counts how often that happened."""

    def __init__(self, max_workers: int, threads_per_job: int = 1):
        self._max_workers = int(max_workers)
        self._threads = int(threads_per_job)
        self.respawns = 0
        self._pool = self._start()

    def _start(self):
        # spawn: a forked child would inherit OpenBLAS's thread pool in an unusable state
        return cf.ProcessPoolExecutor(
            max_workers=self._max_workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_init, initargs=(self._threads, os.getpid()))

    @property
    def broken(self) -> bool:
        return bool(getattr(self._pool, "_broken", False))

    def submit(self, fn, /, *args, **kwargs):
        if self.broken:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            self.respawns += 1
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def default_workers(threads_per_job: int = 1) -> int:
    """Cores ÷ threads per job, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(threads_per_job)))


def make_executor(spec="process", workers: Optional[int] = None, threads_per_job: int = 1,
                  dask_address: Optional[str] = None) -> cf.Executor:
    """``spec``: "serial", "process" (default), "dask" (connects a Client to
    ``dask_address``; None starts a LocalCluster), or an Executor instance (returned as is;
    a ``distributed.Client`` is turned into its executor). The caller owns the result:
    use it as a context manager to shut it down."""
    if isinstance(spec, cf.Executor):
        return spec
    for name, value in (("workers", workers), ("threads_per_job", threads_per_job)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if hasattr(spec, "get_executor"):  # a distributed.Client
        return spec.get_executor(pure=False)
    if spec == "serial":
        return SerialExecutor()
    if spec == "process":
        return ProcessPool(workers or default_workers(threads_per_job), threads_per_job)
    if spec == "dask":
        from distributed import Client
        if dask_address:
            client = Client(dask_address)
            executor = client.get_executor(pure=False)
            executor._nas_eval_client = client  # ours to close (shutdown)
            return executor
        client = Client(n_workers=workers or default_workers(threads_per_job), threads_per_worker=1,
                        processes=True, dashboard_address=None)
        # a local cluster's workers are this process's children: they die with it
        client.run(die_with_parent, os.getpid())
        return client.get_executor(pure=False)
    raise ValueError(f"unknown executor {spec!r}: 'serial', 'process', 'dask' or an "
                     f"Executor")


# --- the Dask handshake ------------------------------------------------------------------------
class WorkerMismatch(ValueError):
    """Some Dask worker runs other nas_eval code than the driver, or cannot load the corpus."""


class ExecutorLost(ConnectionError):
    """The executor dropped the jobs in flight (a Dask scheduler died): they are marked
    stale, so rerunning the study resumes them from their checkpoints."""


@functools.lru_cache(maxsize=1)
def build_id() -> dict:
    """What a Dask worker must share with the driver: ``version`` (nas_eval.__version__),
    ``python`` (SHA-256 of the package's .py files, 16 hex digits) and ``core`` (the SHA-256
    of the C sources the core was built from, ``build_info()["source"]``; None where the
    core is not built)."""
    from . import __version__

    root = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as f:
                    h.update(f.read())
    try:
        from .engine import build_info
        core = build_info()["source"]
    except ImportError:  # the analysis layer works without the C core
        core = None
    return {"version": __version__, "python": h.hexdigest()[:16], "core": core}


def worker_identity(corpus: Optional[str] = None) -> dict:
    """Run on each Dask worker by :func:`check_workers`: its :func:`build_id` (the version
    read at call time), host and pid, and, given a corpus spec, the error loading it the
    way its jobs will (``$NAS_EVAL_DATA`` of the worker, then its cache; no download)."""
    import nas_eval

    info = {**build_id(), "version": nas_eval.__version__, "host": socket.gethostname(), "pid": os.getpid()}
    if corpus is not None:
        from . import datasets
        try:
            datasets.from_spec(corpus, root=os.environ.get("NAS_EVAL_DATA"), download=False)
        except (OSError, ValueError) as e:
            info["corpus_error"] = str(e)
    return info


def _client_of(executor):
    """The distributed.Client behind a Dask executor (or the Client itself), else None."""
    if hasattr(executor, "get_executor") and hasattr(executor, "run"):
        return executor
    return getattr(executor, "_client", None)


def check_workers(executor, corpus: Optional[str] = None) -> Dict[str, dict]:
    """Refuse a Dask cluster whose workers would compute with other code or no corpus.

    Runs :func:`worker_identity` on every worker connected now and raises
    :class:`WorkerMismatch` naming each worker (address, host) whose nas_eval version or
    :func:`build_id` differs from the driver's, that cannot run the check at all (an older
    nas_eval), or that cannot load ``corpus``; a cluster with no worker is refused too.
    Returns {worker address: identity}. Other executors pass (they run this process's code).
    Workers that join later are not checked: start every worker before the driver."""
    client = _client_of(executor)
    if client is None:
        return {}
    address = getattr(client.scheduler, "address", "the scheduler")
    infos = client.run(worker_identity, corpus, on_error="return")
    if not infos:
        raise WorkerMismatch(f"no Dask worker is connected to {address}: start them first "
                             f"(dask worker {address} ...)")
    mine = build_id()
    problems = []
    for addr, info in sorted(infos.items()):
        if not isinstance(info, dict):
            problems.append(f"worker {addr} cannot run nas_eval's handshake ({type(info).__name__}: {info}); "
                            f"install nas_eval {mine['version']} there")
            continue
        who = f"worker {addr} (host {info['host']}, pid {info['pid']})"
        if info.get("version") != mine["version"]:
            problems.append(f"{who} runs nas_eval {info.get('version')}, the driver {mine['version']}")
        else:
            # a driver without the C core (the analysis layer) cannot compare the core's hash
            parts = [k for k in ("python", "core") if info.get(k) != mine[k] and (k != "core" or mine[k])]
            if parts:
                got = ", ".join(f"{k} sources {info.get(k)} (driver: {mine[k]})" for k in parts)
                problems.append(f"{who} runs another build of nas_eval {mine['version']}: {got}; "
                                f"install the same sources on every machine")
        if info.get("corpus_error"):
            problems.append(f"{who} cannot load the corpus {corpus!r}: {info['corpus_error']}\n"
                            f"  (workers read it from their own $NAS_EVAL_DATA or cache, not the driver's --data)")
    if problems:
        raise WorkerMismatch(f"refusing the Dask cluster at {address}:\n" + "\n".join(problems))
    return infos


def _capacity(executor) -> Optional[int]:
    """How many jobs the executor runs at once, when it can tell."""
    n = getattr(executor, "_max_workers", None)
    if n:
        return int(n)
    client = getattr(executor, "_client", None)  # distributed's ClientExecutor
    if client is not None:
        try:
            return sum(client.nthreads().values()) or None
        except Exception:
            return None
    return None


def _error_text(exc: BaseException) -> str:
    # For process pools the remote traceback rides along as __cause__, so it is included.
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def worker_died(exc: BaseException) -> bool:
    """Whether a job's exception says its worker process died rather than the job failing:
    a broken process pool, or Dask's KilledWorker."""
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(exc, BrokenProcessPool) or type(exc).__name__ == "KilledWorker"


def _death_reason(exc: BaseException) -> str:
    if type(exc).__name__ == "KilledWorker":
        return f"its Dask worker died (KilledWorker: {exc})"
    return "its worker process died (killed by a signal, e.g. the out-of-memory killer, or a crash)"


def _lost_message(executor, n):
    client = _client_of(executor)
    where = f"the Dask scheduler at {client.scheduler.address}" if client is not None else "the executor"
    return (f"lost {where} with {n} job(s) in flight: they are marked stale and resume from their "
            f"checkpoints when the study is rerun. Restart the scheduler and the workers (a Dask worker "
            f"closes when its scheduler goes), then rerun the same command")


def run_pending(storage, executor: cf.Executor, threads_per_job: int = 1,
                progress: bool = True, kinds: Optional[Iterable[str]] = None,
                retry_failed: bool = False, max_in_flight: Optional[int] = None,
                checkpoint_dir: Optional[str] = None, eta=None,
                worker_retries: int = WORKER_RETRIES) -> Dict[str, int]:
    """Run every runnable job of ``storage`` on ``executor`` and record the outcomes.

    Takes the driver lock, turns jobs left running by a dead driver into ``stale``, then
    submits runnable jobs (pending, stale; failed too if ``retry_failed``) keeping at most
    ``max_in_flight`` in the executor (default: twice its workers), so that ``running``
    in the store means "handed to a worker". Each result is written as it arrives; a
    failing job is recorded ``failed`` with its traceback and the others go on.

    A job whose worker died (``worker_died``: OOM-killed, SIGKILLed, a native crash) is not
    failed at once: it goes back to the queue (a ``worker_died`` event says why) and runs
    again *alone*, with nothing else in flight, so that a later death is its own. Only a
    death while alone is charged (one in a shared pool may be a neighbour's: a dying
    process breaks the whole local pool); a job charged more than ``worker_retries`` times
    is recorded failed with the reason.
    Needs an executor that survives a death: :class:`ProcessPool` (``make_executor``'s
    "process") or Dask; a plain ``ProcessPoolExecutor`` stays broken, so its lost jobs go
    back to pending and the run stops with a RuntimeError.

    A dead Dask scheduler cancels every job in flight: they are marked ``stale`` and the run
    stops with :class:`ExecutorLost` (a ConnectionError) that says so.

    Ctrl-C: jobs already finished are recorded, jobs not yet started are cancelled and go
    back to ``pending``, jobs in progress are marked ``stale`` (they rerun next time);
    then KeyboardInterrupt is re-raised. The executor is not shut down (the caller owns
    it). Returns this run's counts: {"submitted", "done", "failed", "retried"}.

    ``checkpoint_dir``: where long jobs keep their checkpoints (a path every worker can
    reach; passed with each call, never part of a job's key). A job's checkpoint is removed
    once its result is stored; a failed job keeps it, so a retry resumes. What happened to
    checkpoints (resumed, ignored as corrupt or foreign) is logged as store events.
    """
    from tqdm import tqdm

    import collections

    counts = {"submitted": 0, "done": 0, "failed": 0, "retried": 0}
    deaths: Dict[str, int] = {}
    suspects: collections.deque = collections.deque()  # jobs to rerun alone
    alone = set()  # futures submitted with nothing else in flight
    lost = []  # jobs the executor dropped (a dead Dask scheduler cancels every future)
    with storage.driver():
        todo = storage.pending(kinds=kinds, retry_failed=retry_failed)
        if not todo:
            return counts
        if max_in_flight is None:
            cap = _capacity(executor)
            max_in_flight = 2 * cap if cap else len(todo)
        queue = iter(todo)
        records = {rec["key"]: rec for rec in todo}
        inflight: Dict[cf.Future, str] = {}
        bar = tqdm(total=len(todo), disable=not progress, unit="job", dynamic_ncols=True)

        def died(rec, exc, was_alone):
            key = rec["key"]
            charged = deaths.get(key, 0) + (1 if was_alone else 0)
            deaths[key] = charged
            reason = _death_reason(exc)
            if charged > worker_retries:
                storage.mark_failed(key, f"{reason}: it died {charged} times running alone "
                                         f"(worker_retries={worker_retries}); not retried again")
                counts["failed"] += 1
                return True
            storage.mark_stale(key, f"worker died; rerun alone ({charged} of {worker_retries} retries used)")
            storage.log_event("worker_died",
                              f"{reason} {'while the job ran alone' if was_alone else 'while it shared the pool'};"
                              f" rerun alone ({charged} of {worker_retries} retries used)", key=key)
            suspects.append(rec)
            counts["retried"] += 1
            return False

        def record(fut, key):
            was_alone = fut in alone
            alone.discard(fut)
            try:
                payload = fut.result()
            except cf.CancelledError:  # never by us (Ctrl-C is below): the executor dropped it
                storage.mark_stale(key, "lost with the executor (its Dask scheduler died?)")
                lost.append(key)
                return
            except Exception as e:  # includes BrokenProcessPool, Dask's KilledWorker
                if worker_died(e):
                    if not died(records[key], e, was_alone):
                        return  # back in the queue: not finished yet
                else:
                    storage.mark_failed(key, _error_text(e))
                    counts["failed"] += 1
            else:
                storage.mark_done(key, payload)
                counts["done"] += 1
                for ev in (payload.get("provenance") or {}).get("checkpoint", []):
                    storage.log_event(ev["kind"], ev["message"], key=key)
                if checkpoint_dir is not None:
                    from .checkpoint import Checkpoint
                    Checkpoint(checkpoint_dir, key).remove()
            bar.update(1)
            postfix = {"done": counts["done"], "failed": counts["failed"]}
            if eta is not None:  # a cost-weighted estimate of the whole study (nas_eval.eta)
                eta.done(key)
                postfix["study_eta"] = eta.text()
            bar.set_postfix(postfix, refresh=False)

        def top_up():
            while len(inflight) < max_in_flight and not lost:
                if (suspects or alone) and inflight:
                    return  # a job whose worker died reruns with nothing beside it
                rec = suspects.popleft() if suspects else next(queue, None)
                if rec is None:
                    return
                storage.mark_running(rec["key"])
                try:
                    fut = executor.submit(run_job, rec["kind"], rec["params"],
                                          threads_per_job, module_of(rec["kind"]), checkpoint_dir)
                except BaseException as e:
                    storage.mark_pending(rec["key"])
                    if worker_died(e):
                        raise RuntimeError(
                            f"the executor {type(executor).__name__} is broken after a worker died and cannot "
                            "start new jobs; the jobs not finished are left pending (rerun to resume). "
                            "make_executor('process') replaces its pool instead") from e
                    raise
                counts["submitted"] += 1
                if rec["key"] in deaths:
                    alone.add(fut)
                if fut.done():  # the serial executor: record now, keep memory flat
                    record(fut, rec["key"])
                else:
                    inflight[fut] = rec["key"]

        def stop_if_lost():
            if lost:
                for key in inflight.values():
                    storage.mark_stale(key, "lost with the executor (its Dask scheduler died?)")
                raise ExecutorLost(_lost_message(executor, len(lost) + len(inflight)))

        try:
            top_up()
            stop_if_lost()
            while inflight:
                finished, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    record(fut, inflight.pop(fut))
                stop_if_lost()
                top_up()
                stop_if_lost()
        except KeyboardInterrupt:
            for fut, key in inflight.items():
                if fut.cancel():  # never started
                    storage.mark_pending(key)
                elif fut.done() and (fut.exception() is None
                                     or isinstance(fut.exception(), Exception)):
                    record(fut, key)  # finished (or genuinely failed) before the interrupt
                else:  # in progress, or killed by the same Ctrl-C in a worker
                    storage.mark_stale(key, "interrupted (Ctrl-C)")
            raise
        finally:
            bar.close()
    return counts


def shutdown(executor, wait=True):
    """Shut an executor down, cancelling what has not started where it can (Dask's
    ClientExecutor takes no ``cancel_futures``)."""
    if not hasattr(executor, "shutdown"):
        return
    try:
        executor.shutdown(wait=wait, cancel_futures=True)
    except TypeError:
        executor.shutdown(wait=wait)
    client = getattr(executor, "_nas_eval_client", None)  # a Client make_executor opened
    if client is not None:
        import logging

        # a client whose scheduler died logs its cancelled reconnection's traceback on close
        log = logging.getLogger("distributed.client")
        level = log.level
        log.setLevel(logging.CRITICAL)
        try:
            client.close(timeout=10)
        except Exception:  # noqa: BLE001 -- closing a client whose scheduler is gone
            pass
        finally:
            log.setLevel(level)
