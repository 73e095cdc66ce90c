"""Executors and the driver loop: same results everywhere, failures kept, resume after
a killed driver, Ctrl-C, and a real Dask cluster on loopback."""
import concurrent.futures as cf
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nas_eval.executors import SerialExecutor, make_executor, run_pending
from nas_eval.jobs import Job, register
from nas_eval.store import Storage

# where the nas_eval under test lives (the checkout built in place, or site-packages): the
# driver subprocess imports the same one, from a directory where no source tree shadows it
PKG_ROOT = Path(sys.modules["nas_eval"].__file__).resolve().parents[1]


@register("test-square")  # registered in a test module: workers must import it by name
def _square(params):
    return {"square": params["x"] ** 2, "pid": os.getpid()}


def study_jobs():
    return ([Job("selftest", {"seed": s, "n": 5}) for s in range(6)]
            + [Job("selftest-fail", {"seed": 99})]
            + [Job("test-square", {"x": x}) for x in (3, 4)])


def run_study(path, executor):
    st = Storage(path)
    st.add(study_jobs())
    counts = run_pending(st, executor, progress=False)
    return st, counts


def check_study(st, counts):
    assert counts == {"submitted": 9, "done": 8, "failed": 1, "retried": 0}
    assert st.state_counts()["done"] == 8 and st.state_counts()["failed"] == 1
    (failed,) = st.records(kind="selftest-fail")
    assert failed["state"] == "failed"
    assert "ValueError: selftest-fail: deliberate failure for seed 99" in failed["error"]
    assert "Traceback" in failed["error"]
    assert [r["result"]["square"] for r in st.records(kind="test-square")] == [9, 16]
    return {r["key"]: {k: v for k, v in r["result"].items() if k != "pid"}
            for r in st.records(states=["done"])}


@pytest.fixture(scope="module")
def serial_results(tmp_path_factory):
    st, counts = run_study(tmp_path_factory.mktemp("serial"), SerialExecutor())
    return check_study(st, counts)


def test_serial_runs_in_driver(serial_results, tmp_path):
    st, _ = run_study(tmp_path, make_executor("serial"))
    assert {r["result"]["pid"] for r in st.records(kind="test-square")} == {os.getpid()}
    assert st.pending() == []
    # a second run finds nothing to do: done jobs are never rerun
    assert run_pending(st, SerialExecutor(), progress=False)["submitted"] == 0


def test_process_pool_matches_serial(serial_results, tmp_path):
    with make_executor("process", workers=2) as ex:
        st, counts = run_study(tmp_path, ex)
    assert check_study(st, counts) == serial_results
    pids = {r["result"]["pid"] for r in st.records(kind="test-square")}
    assert os.getpid() not in pids
    assert all(r["provenance"]["threads"] == 1 for r in st.records(states=["done"]))


def test_dask_cluster_matches_serial(serial_results, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        st, counts = run_study(tmp_path, client.get_executor(pure=False))
        assert check_study(st, counts) == serial_results
        worker_pids = set(client.run(os.getpid).values())
    assert {r["result"]["pid"] for r in st.records(kind="test-square")} <= worker_pids


DRIVER = textwrap.dedent("""
    import sys
    from nas_eval.executors import SerialExecutor, run_pending
    from nas_eval.jobs import Job
    from nas_eval.store import Storage
    st = Storage(sys.argv[1])
    st.add([Job("selftest", {"seed": s, "n": 3, "sleep": 0.25}) for s in range(8)])
    run_pending(st, SerialExecutor(), progress=False)
""")


def test_killed_driver_loses_nothing_and_resumes(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PKG_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], env=env, cwd=tmp_path)
    db = tmp_path / "study.db"
    deadline = time.monotonic() + 60
    try:
        while True:  # watch the store, as a reader, until some jobs are done
            assert proc.poll() is None, "driver ended before it could be killed"
            assert time.monotonic() < deadline, "driver made no progress"
            if db.exists():
                try:
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as ro:
                        n = ro.execute("SELECT count(*) FROM jobs WHERE state='done'"
                                       ).fetchone()[0]
                except sqlite3.OperationalError:  # schema not created yet
                    n = 0
                if n >= 3:
                    break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    st = Storage(tmp_path)
    before = {r["key"]: r for r in st.records(states=["done"])}
    running = [r["key"] for r in st.records(states=["running"])]
    assert 3 <= len(before) < 8 and len(running) <= 1
    assert len(st) == 8

    counts = run_pending(st, SerialExecutor(), progress=False)
    assert counts["submitted"] == 8 - len(before) and counts["failed"] == 0
    assert st.state_counts()["done"] == 8
    for key, old in before.items():  # finished work was kept, not redone
        new = st.get(key)
        assert (new["finished"], new["attempts"], new["result"]) == \
            (old["finished"], 1, old["result"])
    for key in running:  # the job the kill interrupted went stale, then reran
        assert st.get(key)["attempts"] == 2
        assert key in set(st.events("stale")["key"])


class InterruptingExecutor(cf.ThreadPoolExecutor):
    """Simulates Ctrl-C arriving in the driver while jobs are in flight."""

    def __init__(self, after):
        super().__init__(max_workers=1)
        self.after, self.n = after, 0

    def submit(self, fn, /, *args, **kwargs):
        self.n += 1
        if self.n > self.after:
            time.sleep(0.1)  # let the first job start on the worker thread
            raise KeyboardInterrupt
        return super().submit(fn, *args, **kwargs)


def test_ctrl_c_cleans_up_and_rerun_resumes(tmp_path):
    st = Storage(tmp_path)
    keys = st.add([Job("selftest", {"seed": s, "n": 2, "sleep": 0.3}) for s in range(4)])
    with InterruptingExecutor(after=2) as ex, pytest.raises(KeyboardInterrupt):
        run_pending(st, ex, progress=False, max_in_flight=4)
    states = [st.get(k)["state"] for k in keys]
    # job 0 was running on the worker -> stale; job 1 was queued -> cancelled, pending;
    # job 2's submit was interrupted -> pending; job 3 never touched
    assert states == ["stale", "pending", "pending", "pending"]
    assert st.get(keys[1])["attempts"] == 0
    counts = run_pending(st, SerialExecutor(), progress=True)
    assert counts["done"] == 4 and st.state_counts()["done"] == 4


# --- workers that die (OOM killer, SIGKILL): retried alone, then failed with the reason ---------

def _dying_study(tmp_path):
    st = Storage(tmp_path / "store")
    jobs = ([Job("selftest-die", {"seed": 1, "n": 3, "marker": str(tmp_path / "once"), "die_times": 1}),
             Job("selftest-die", {"seed": 2, "n": 3, "marker": str(tmp_path / "always"), "die_times": 10**6})]
            + [Job("selftest", {"seed": s, "n": 3, "sleep": 0.2}) for s in range(10, 14)])
    st.add(jobs)
    return st, {j.params["seed"]: j.key for j in jobs}


def _runs(path):
    return int(Path(path).read_text())


def test_a_job_whose_worker_died_is_retried_alone_then_failed_with_the_reason(tmp_path):
    st, key = _dying_study(tmp_path)
    with make_executor("process", workers=2) as ex:
        counts = run_pending(st, ex, progress=False, worker_retries=2)
        assert ex.respawns >= 3  # the pool replaced itself after every death
    assert counts["done"] == 5 and counts["failed"] == 1 and counts["retried"] >= 3
    # the job that died once reran and finished, with the numbers a plain run gives
    once = st.get(key[1])
    assert once["state"] == "done" and _runs(tmp_path / "once") == 2
    assert once["result"]["values"] == run_job_result(1)
    # the one that always dies: charged only for deaths while alone, 2 retries, then failed
    always = st.get(key[2])
    assert always["state"] == "failed"
    assert "worker process died" in always["error"] and "died 3 times running alone" in always["error"]
    assert "worker_retries=2" in always["error"]
    assert 3 <= _runs(tmp_path / "always") <= 4 <= always["attempts"] + 1  # submissions: some never started
    # neighbours that shared a dying pool lost nothing
    for seed in range(10, 14):
        rec = st.get(key[seed])
        assert rec["state"] == "done" and rec["result"]["values"] == run_job_result(seed)
    events = st.events("worker_died")
    assert set(events["key"]) >= {key[1], key[2]}
    assert all("rerun alone" in m for m in events["message"])
    # a rerun does not touch what is finished, and retries the failed one only when asked
    assert run_pending(st, SerialExecutor(), progress=False)["submitted"] == 0


def run_job_result(seed):
    from nas_eval.jobs import run_job
    return run_job("selftest", {"seed": seed, "n": 3})["result"]["values"]


def test_a_plain_process_pool_that_broke_stops_the_run_with_nothing_lost(tmp_path):
    import multiprocessing

    st, key = _dying_study(tmp_path)
    pool = cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    with pool, pytest.raises(RuntimeError, match="broken after a worker died.*left pending"):
        run_pending(st, pool, progress=False)
    states = st.state_counts()
    assert states.get("running", 0) == 0 and states.get("failed", 0) == 0
    assert sum(states.values()) == 6  # every job is still there, runnable next time
    with make_executor("process", workers=2) as ex:
        run_pending(st, ex, progress=False)
    assert st.get(key[1])["state"] == "done" and st.state_counts()["done"] == 5


def test_bad_executor_spec():
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("gpu-cluster")


def test_unknown_kind_and_missing_job_module_are_clear(monkeypatch):
    from nas_eval import jobs
    with pytest.raises(KeyError, match="unknown job kind 'nope'"):
        jobs.run_job("nope", {})
    with pytest.raises(ImportError, match="cannot import job module 'nas_eval.not_written_yet'"):
        jobs.run_job("nope", {}, module="nas_eval.not_written_yet")
