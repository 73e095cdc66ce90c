"""Workers die with their driver (issue 13): SIGKILL the driver of a running study and its
pool workers are gone within seconds; `status` shows the dead driver's jobs as interrupted."""
import os
import signal
import subprocess
import sys
import time

import pytest

import nas_eval
from nas_eval.store import Storage

HERE = os.path.dirname(os.path.abspath(__file__))


def _children(pid):
    """Every descendant pid of ``pid`` (from /proc)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in os.listdir(f"/proc/{p}/task") if os.path.exists(f"/proc/{p}/task") else []:
            try:
                kids = open(f"/proc/{p}/task/{task}/children").read().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie is dead
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("kind", ["process", "dask"])
def test_workers_die_within_seconds_of_a_sigkilled_driver(tmp_path, kind):
    if kind == "dask":
        pytest.importorskip("distributed")
    store, workers = str(tmp_path / "study.db"), set()
    driver = subprocess.Popen([sys.executable, os.path.join(HERE, "orphan_driver.py"), store, kind],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        storage = Storage(store)
        while time.monotonic() < deadline:  # wait until jobs are handed to workers
            if os.path.exists(store) and storage.state_counts().get("running", 0) >= 2:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        workers = _children(driver.pid)
        assert workers, "the driver started no worker processes"
        assert storage.driver_alive()
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10 and any(_alive(p) for p in workers):
            time.sleep(0.1)
        left = [p for p in workers if _alive(p)]
        assert not left, f"workers {left} outlived their driver by 10 s"
        assert not storage.driver_alive()
        assert storage.state_counts()["running"] >= 2  # the store still says so ...
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        for p in workers | _children(driver.pid):  # never leave orphans behind, even when failing
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def test_status_shows_a_dead_drivers_running_jobs_as_interrupted(tmp_path):
    from study_fixture import tiny_spec
    from nas_eval.plan import plan_first_phase

    spec = tiny_spec(sharing=False)
    study = nas_eval.Study(str(tmp_path))
    study.configure(spec)
    jobs = [job for _, job in plan_first_phase(spec)["ground_truth"]]
    study.storage.add(jobs)
    study.storage.mark_running(jobs[0].key, owner="elsewhere:1:dead")
    table = study.status().set_index("role")
    assert table.loc["ground_truth", "interrupted"] == 1 and table.loc["ground_truth", "running"] == 0

    live = Storage(str(tmp_path))  # another "process" holding the driver lock: really running
    live.acquire_driver()
    try:
        table = nas_eval.Study(str(tmp_path)).status().set_index("role")
        assert table.loc["ground_truth", "running"] == 1 and table.loc["ground_truth", "interrupted"] == 0
    finally:
        live.release_driver()


def test_die_with_parent_kills_an_orphan(tmp_path):
    """The watch thread alone (no prctl): a grandchild whose parent exits is gone soon."""
    code = ("import os, sys, time, subprocess\n"
            "child = subprocess.Popen([sys.executable, '-c', 'from nas_eval import jobs; import ctypes, time; "
            "jobs.die_with_parent(); print(1, flush=True); time.sleep(60)'], stdout=subprocess.PIPE)\n"
            "child.stdout.readline(); print(child.pid, flush=True); os._exit(0)\n")
    # from the tests folder: in the repository root the source tree would shadow an install
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=HERE)
    pid = int(out.stdout.split()[0])
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10 and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)
