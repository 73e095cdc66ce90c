"""The Dask handshake (executors.check_workers) and a lost executor, without a cluster: a
stand-in client returns what workers would report, an executor cancels what it was given.
tests/test_dask_cluster.py does the same with real dask processes."""
import concurrent.futures as cf
import glob
import hashlib
import os
import re
from pathlib import Path

import pytest

import nas_eval
from nas_eval.executors import ExecutorLost, WorkerMismatch, build_id, check_workers, run_pending, \
    worker_identity
from nas_eval.jobs import Job
from nas_eval.store import Storage

REPO = Path(__file__).resolve().parents[1]


def test_build_id_names_the_version_and_the_sources():
    ident = build_id()
    assert ident["version"] == nas_eval.__version__
    assert re.fullmatch(r"[0-9a-f]{16}", ident["python"])
    # the core's hash is the SHA-256 of csrc/ (names and bytes) that setup.py compiled in
    h = hashlib.sha256()
    for path in sorted(glob.glob(str(REPO / "csrc" / "*.c")) + glob.glob(str(REPO / "csrc" / "*.h"))):
        h.update(os.path.basename(path).encode() + b"\0" + Path(path).read_bytes())
    assert ident["core"] == nas_eval.build_info()["source"] == h.hexdigest()[:16]


class FakeClient:
    """What check_workers needs of a distributed.Client: run() and the scheduler address."""

    class scheduler:
        address = "tcp://10.0.0.1:8786"

    def __init__(self, reports):
        self.reports = reports

    def get_executor(self, **kw):
        raise AssertionError("not needed")

    def run(self, fn, *args, on_error="raise"):
        assert fn is worker_identity and on_error == "return"
        return self.reports


def me(**changes):
    return {**worker_identity(), "host": "node", "pid": 7, **changes}


def test_matching_workers_pass_and_are_returned():
    reports = {"tcp://10.0.0.2:1": me(), "tcp://10.0.0.3:1": me()}
    assert check_workers(FakeClient(reports), corpus="ptb") == reports
    assert check_workers(cf.ThreadPoolExecutor(1)) == {}  # local executors run this code


def test_each_differing_worker_is_named_with_what_differs():
    reports = {"tcp://10.0.0.2:1": me(),
               "tcp://10.0.0.3:1": me(version="0.1.9"),
               "tcp://10.0.0.4:1": me(python="0" * 16),
               "tcp://10.0.0.5:1": me(corpus_error="Cannot find the 'ptb' corpus: ... /home/w/.cache/x/ptb"),
               "tcp://10.0.0.6:1": AttributeError("module 'nas_eval.executors' has no attribute 'worker_identity'")}
    with pytest.raises(WorkerMismatch) as err:
        check_workers(FakeClient(reports), corpus="ptb")
    text = str(err.value)
    assert text.startswith("refusing the Dask cluster at tcp://10.0.0.1:8786:")
    assert "10.0.0.2" not in text
    assert f"worker tcp://10.0.0.3:1 (host node, pid 7) runs nas_eval 0.1.9, the driver {nas_eval.__version__}" in text
    assert "worker tcp://10.0.0.4:1 (host node, pid 7) runs another build" in text and "python sources 0000" in text
    assert "worker tcp://10.0.0.5:1 (host node, pid 7) cannot load the corpus 'ptb'" in text
    assert "/home/w/.cache/x/ptb" in text and "$NAS_EVAL_DATA" in text
    assert "worker tcp://10.0.0.6:1 cannot run nas_eval's handshake (AttributeError" in text


def test_no_worker_is_refused():
    with pytest.raises(WorkerMismatch, match="no Dask worker is connected to tcp://10.0.0.1:8786"):
        check_workers(FakeClient({}))


def test_a_worker_reports_the_corpus_it_cannot_load(tmp_path, monkeypatch):
    monkeypatch.delenv("NAS_EVAL_DATA", raising=False)
    monkeypatch.setenv("NAS_EVAL_CACHE", str(tmp_path))
    info = worker_identity("ptb")
    assert str(tmp_path / "ptb") in info["corpus_error"]
    assert "corpus_error" not in worker_identity("synthetic:vocab_size=10")


class DroppingExecutor(cf.Executor):
    """Accepts jobs and loses them all, as a Dask client does when its scheduler dies."""
    _max_workers = 2

    def submit(self, fn, *args, **kwargs):
        fut = cf.Future()
        fut.cancel()
        return fut


def test_a_lost_executor_stops_the_run_with_the_jobs_stale(tmp_path):
    st = Storage(tmp_path)
    st.add([Job("selftest", {"seed": s}) for s in range(5)])
    with pytest.raises(ExecutorLost, match=r"lost the executor with \d job\(s\) in flight.*rerun the same command"):
        run_pending(st, DroppingExecutor(), progress=False)
    counts = st.state_counts()
    assert counts.get("stale", 0) >= 1 and counts.get("failed", 0) == 0 and counts.get("done", 0) == 0
    assert isinstance(ExecutorLost("x"), ConnectionError)  # the CLI's clean error path (OSError)
    # the rerun on a working executor finishes everything
    assert run_pending(st, cf.ThreadPoolExecutor(2), progress=False)["done"] == 5
