"""Executors and the driver loop that runs a store's jobs on them.

Any ``concurrent.futures.Executor`` works: the serial one below, a local process pool
(the default), or a Dask cluster through ``distributed.Client(...).get_executor(pure=False)``
(``pure=False`` because a job is not a pure function of its arguments as far as Dask can
tell: two submissions must both run). Workers only compute; the driver (``run_pending``)
is the only process that writes to the store.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import traceback
from typing import Dict, Iterable, Optional

from .jobs import die_with_parent, module_of, run_job, worker_init

__all__ = ["SerialExecutor", "make_executor", "default_workers", "run_pending"]


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
    if hasattr(spec, "get_executor"):  # a distributed.Client
        return spec.get_executor(pure=False)
    if spec == "serial":
        return SerialExecutor()
    if spec == "process":
        # spawn: a forked child would inherit OpenBLAS's thread pool in an unusable state
        return cf.ProcessPoolExecutor(
            max_workers=workers or default_workers(threads_per_job),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_init, initargs=(threads_per_job, os.getpid()))
    if spec == "dask":
        from distributed import Client
        if dask_address:
            return Client(dask_address).get_executor(pure=False)
        client = Client(n_workers=workers or default_workers(threads_per_job), threads_per_worker=1,
                        processes=True, dashboard_address=None)
        # a local cluster's workers are this process's children: they die with it
        client.run(die_with_parent, os.getpid())
        return client.get_executor(pure=False)
    raise ValueError(f"unknown executor {spec!r}: 'serial', 'process', 'dask' or an "
                     f"Executor")


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


def run_pending(storage, executor: cf.Executor, threads_per_job: int = 1,
                progress: bool = True, kinds: Optional[Iterable[str]] = None,
                retry_failed: bool = False, max_in_flight: Optional[int] = None,
                checkpoint_dir: Optional[str] = None, eta=None) -> Dict[str, int]:
    """Run every runnable job of ``storage`` on ``executor`` and record the outcomes.

    Takes the driver lock, turns jobs left running by a dead driver into ``stale``, then
    submits runnable jobs (pending, stale; failed too if ``retry_failed``) keeping at most
    ``max_in_flight`` in the executor (default: twice its workers), so that ``running``
    in the store means "handed to a worker". Each result is written as it arrives; a
    failing job is recorded ``failed`` with its traceback and the others go on.

    Ctrl-C: jobs already finished are recorded, jobs not yet started are cancelled and go
    back to ``pending``, jobs in progress are marked ``stale`` (they rerun next time);
    then KeyboardInterrupt is re-raised. The executor is not shut down (the caller owns
    it). Returns this run's counts: {"submitted", "done", "failed"}.

    ``checkpoint_dir``: where long jobs keep their checkpoints (a path every worker can
    reach; passed with each call, never part of a job's key). A job's checkpoint is removed
    once its result is stored; a failed job keeps it, so a retry resumes. What happened to
    checkpoints (resumed, ignored as corrupt or foreign) is logged as store events.
    """
    from tqdm import tqdm

    counts = {"submitted": 0, "done": 0, "failed": 0}
    with storage.driver():
        todo = storage.pending(kinds=kinds, retry_failed=retry_failed)
        if not todo:
            return counts
        if max_in_flight is None:
            cap = _capacity(executor)
            max_in_flight = 2 * cap if cap else len(todo)
        queue = iter(todo)
        inflight: Dict[cf.Future, str] = {}
        bar = tqdm(total=len(todo), disable=not progress, unit="job", dynamic_ncols=True)

        def record(fut, key):
            try:
                payload = fut.result()
            except Exception as e:  # includes BrokenProcessPool, Dask's KilledWorker
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
            while len(inflight) < max_in_flight:
                rec = next(queue, None)
                if rec is None:
                    return
                storage.mark_running(rec["key"])
                try:
                    fut = executor.submit(run_job, rec["kind"], rec["params"],
                                          threads_per_job, module_of(rec["kind"]), checkpoint_dir)
                except BaseException:
                    storage.mark_pending(rec["key"])
                    raise
                counts["submitted"] += 1
                if fut.done():  # the serial executor: record now, keep memory flat
                    record(fut, rec["key"])
                else:
                    inflight[fut] = rec["key"]

        try:
            top_up()
            while inflight:
                finished, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    record(fut, inflight.pop(fut))
                top_up()
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
