"""The README's cluster recipe as a user runs it: ``dask scheduler`` and two ``dask worker``
processes started from their command lines on 127.0.0.1 (tests/local_dask.py), a study
driven with ``nas-eval run --dask ADDRESS --checkpoint-dir SHARED`` (a subprocess), and
the failures a cluster has: a worker SIGKILLed while it runs a long job, the scheduler
killed and restarted mid-run, a worker with another nas_eval version or build, a worker
without the corpus. Every number is compared with a serial run's, bit for bit.

The study: three 12-epoch retraining jobs (the random baselines of seeds 0-2) at the smoke
preset's scale on PTB (the only jobs, so each runs a few seconds). About a minute in all on
an idle 2-core machine; marked ``cluster`` (``pytest -m "not cluster"`` skips it).
"""
import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import data_root
from local_dask import REPO, LocalDaskCluster, repo_env

pytest.importorskip("distributed")
DATA = data_root()
pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(not (DATA / "ptb" / "train.txt").is_file(), reason="PTB data absent")]

STUDY = """\
preset = "smoke"
policies = ["random"]
seeds = [0, 1, 2]
gt_seeds = []
ws_seeds = []
sharing = false
[train]
epochs = 12
"""
DRIVER_TIMEOUT = 300  # seconds: generous for a loaded machine, but bounded
WORKER_ENV = {"NAS_EVAL_DATA": str(DATA)}  # the README: workers find the data under $NAS_EVAL_DATA


def nas_eval(*args, out, ckpt=None, dask=None):
    """``python -m nas_eval run`` of the study as a subprocess (started, not waited for)."""
    argv = [sys.executable, "-m", "nas_eval", "run", "--config", str(out.parent / "study.toml"), "--out", str(out),
            "--data", str(DATA), "--no-progress"]
    if dask:
        argv += ["--dask", dask, "--checkpoint-dir", str(ckpt)]
    else:
        argv += ["--executor", "serial"]
    (out.parent / "study.toml").write_text(STUDY)
    return subprocess.Popen(argv, env=repo_env(), cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc, timeout=DRIVER_TIMEOUT):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the driver did not finish within {timeout} s:\n{err[-3000:]}")
    return proc.returncode, err


def results(out):
    """Every finished job's result (wall time aside), by key; and its store."""
    from nas_eval.store import Storage

    st = Storage(out)
    done = {r["key"]: {k: v for k, v in r["result"].items() if k != "wall_time"} for r in st.records(states=["done"])}
    return done, st


def wait_for_checkpoints(ckpt, n, proc, timeout=DRIVER_TIMEOUT):
    """Until ``n`` jobs hold a checkpoint at once (each worker runs one job at a time, so
    with n = 2 both workers are inside a job that has saved an epoch)."""
    deadline = time.monotonic() + timeout
    while len(glob.glob(os.path.join(ckpt, "*.ckpt"))) < n:
        if proc.poll() is not None:
            pytest.fail(f"the driver ended (rc {proc.returncode}) before {n} jobs ran at once:\n"
                        f"{proc.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {n} checkpoints within {timeout} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "study"
    rc, err = finish(nas_eval(out=out))
    assert rc == 0, err
    done, _ = results(out)
    assert len(done) == 3
    return done


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalDaskCluster(tmp_path_factory.mktemp("cluster")) as c:
        c.start_scheduler()
        yield c


def two_good_workers(c):
    """The scheduler up and workers w1, w2 (with the data) connected; returns name -> pid
    of each worker process."""
    if c.scheduler is None:
        c.start_scheduler()
    for name in ("w1", "w2"):
        if name not in c.workers:
            c.start_worker(name, **WORKER_ENV)
    from distributed import Client

    c.wait_for_workers(2)
    with Client(c.address, timeout=60) as client:
        names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        return {names[a]: pid for a, pid in client.run(os.getpid).items()}


def test_workers_with_another_build_or_without_the_corpus_are_refused_by_name(cluster, tmp_path):
    two_good_workers(cluster)
    preload = REPO / "tests" / "dask_other_build.py"
    cluster.start_worker("old-version", preload=preload, NAS_EVAL_TEST_OTHER="version", **WORKER_ENV)
    cluster.start_worker("other-core", preload=preload, NAS_EVAL_TEST_OTHER="core", **WORKER_ENV)
    empty = tmp_path / "empty-cache"
    cluster.start_worker("no-corpus", NAS_EVAL_DATA=None, NAS_EVAL_CACHE=empty, NAS_EVAL_OFFLINE="1")
    try:
        cluster.wait_for_workers(5)
        rc, err = finish(nas_eval(out=tmp_path / "study", ckpt=tmp_path / "ckpt", dask=cluster.address))
    finally:
        for name in ("old-version", "other-core", "no-corpus"):
            cluster.kill_worker(name)
    assert rc == 2 and "Traceback" not in err, err
    assert f"refusing the Dask cluster at {cluster.address}" in err
    lines = err.splitlines()
    assert any("runs nas_eval 0.1.9, the driver 0.2" in line for line in lines), err
    assert any("another build of nas_eval" in line and "core sources 0123456789abcdef" in line for line in lines), err
    no_corpus = [line for line in lines if "cannot load the corpus 'ptb'" in line]
    assert len(no_corpus) == 1 and no_corpus[0].startswith("worker tcp://127.0.0.1:"), err
    assert str(empty / "ptb") in err  # the path that worker looked in
    assert err.count("worker tcp://127.0.0.1:") == 3  # w1 and w2 pass: only the three named
    _, st = results(tmp_path / "study")
    assert st.state_counts().get("done", 0) == 0  # refused before any job ran


def test_a_worker_killed_mid_job_resumes_elsewhere_with_the_serial_numbers(cluster, serial, tmp_path):
    pids = two_good_workers(cluster)
    out, ckpt = tmp_path / "study", tmp_path / "shared-ckpt"
    driver = nas_eval(out=out, ckpt=ckpt, dask=cluster.address)
    wait_for_checkpoints(ckpt, 2, driver)
    cluster.kill_worker("w1")  # the whole `dask worker` (nanny and worker), as a lost machine
    rc, err = finish(driver)
    assert rc == 0, err
    done, st = results(out)
    assert done == serial  # nothing lost, every number as in the serial run
    events = st.events()
    resumed = events[events["kind"] == "checkpoint-resumed"]
    assert len(resumed) >= 1, events
    for key in resumed["key"]:  # the killed job finished on the other worker, from its checkpoint
        prov = st.get(key)["provenance"]
        assert prov["pid"] == pids["w2"] != pids["w1"]
    assert glob.glob(str(ckpt / "*.ckpt")) == []  # checkpoints go once results are stored


def test_a_killed_scheduler_stops_the_driver_cleanly_and_the_rerun_resumes(cluster, serial, tmp_path):
    two_good_workers(cluster)
    out, ckpt = tmp_path / "study", tmp_path / "shared-ckpt"
    driver = nas_eval(out=out, ckpt=ckpt, dask=cluster.address)
    wait_for_checkpoints(ckpt, 2, driver)
    cluster.kill_scheduler()
    rc, err = finish(driver, timeout=120)
    assert rc == 2 and "Traceback" not in err, err
    assert f"lost the Dask scheduler at {cluster.address}" in err and "rerun the same command" in err
    _, st = results(out)
    assert st.state_counts().get("stale", 0) >= 2  # the jobs in flight, marked to resume
    st.close()
    # a Dask worker closes once its scheduler is gone: restart them all, same address
    for name in list(cluster.workers):
        cluster.kill_worker(name)
    two_good_workers(cluster)
    rc, err = finish(nas_eval(out=out, ckpt=ckpt, dask=cluster.address))
    assert rc == 0, err
    done, st = results(out)
    assert done == serial
    events = st.events()
    assert (events["kind"] == "checkpoint-resumed").sum() >= 2, events
