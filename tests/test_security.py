"""Security basics (issue 13): stored data is never code (no pickle, eval, exec, marshal);
downloads are HTTPS with pinned SHA-256; report files stay in their directory; executors
receive only a module-level function with plain JSON arguments (nothing a store can inject)."""
import concurrent.futures as cf
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np

import nas_eval
from nas_eval import datasets, jobs
from nas_eval.checkpoint import MAGIC, Checkpoint
from nas_eval.executors import run_pending
from nas_eval.jobs import Job
from nas_eval.store import Storage

ROOT = Path(__file__).resolve().parents[1]


def test_no_code_from_data_in_the_package():
    pattern = re.compile(r"\bpickle\b|\bcloudpickle\b|\bmarshal\b|(?<![\w.])eval\(|(?<![\w.])exec\(|yaml\.load\(|allow_pickle=True|shelve")
    offenders = []
    for path in (ROOT / "nas_eval").rglob("*.py"):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and "allow_pickle=False" not in code and "No pickle" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_downloads_are_https_with_pinned_sha256():
    assert datasets.CORPORA
    for name, splits in datasets.CORPORA.items():
        for split, (url, sha) in splits.items():
            assert url.startswith("https://"), (name, split, url)
            assert re.fullmatch(r"[0-9a-f]{64}", sha), (name, split, sha)


def test_a_checkpoint_holding_a_pickled_object_is_refused(tmp_path):
    """Even with a valid checksum, an npz entry that needs pickle is never unpickled."""
    buf = io.BytesIO()
    np.savez(buf, __tree__=np.frombuffer(b'{"x":{"__array__":"a0"}}', np.uint8), a0=np.array([{"evil": 1}], dtype=object))
    payload = buf.getvalue()
    env = {"job_key": "k", "version": nas_eval.__version__, "sha256": hashlib.sha256(payload).hexdigest(),
           "size": len(payload)}
    ck = Checkpoint(tmp_path, "k", on_event=lambda *e: None)
    Path(ck.path).write_bytes(MAGIC + json.dumps(env).encode() + b"\n" + payload)
    assert ck.load() is None and ck.events[0]["kind"] == "checkpoint-corrupt"


class _Recorder(cf.Executor):
    _max_workers = 1

    def __init__(self):
        self.calls = []

    def submit(self, fn, /, *args, **kwargs):
        self.calls.append((fn, args, kwargs))
        fut = cf.Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


def test_executors_receive_only_run_job_with_plain_json_arguments(tmp_path):
    """What a Dask cluster is sent: the module-level jobs.run_job and JSON-plain arguments.
    A store's params (even hostile ones) travel as data: nothing in them is called."""
    st = Storage(str(tmp_path / "s"))
    st.add([Job("selftest", {"seed": 1, "note": "__import__('os').system('x')"})])
    ex = _Recorder()
    run_pending(st, ex, progress=False, checkpoint_dir=str(tmp_path / "ck"))
    assert len(ex.calls) == 1
    fn, args, kwargs = ex.calls[0]
    assert fn is jobs.run_job and fn.__module__ == "nas_eval.jobs" and not kwargs
    json.dumps(args)  # plain data only
    assert [type(a) for a in args] == [str, dict, int, str, str]


def test_report_files_stay_in_the_output_directory(tiny_study_path, tmp_path):
    from nas_eval import report

    out = tmp_path / "rep"
    results = report.write(nas_eval.Study(str(tiny_study_path)), str(out))
    for name in results["files"]:
        assert "/" not in name and "\\" not in name and ".." not in name
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written and all(not w.startswith("..") for w in written)


from study_fixture import tiny_study_path  # noqa: E402,F401
