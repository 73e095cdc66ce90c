"""A full disk and a read-only study directory (issue 13): a clear error naming the problem,
a store that is intact (integrity check, every finished job still there with its numbers),
and a rerun that resumes once the disk has room again.

Real file systems, not mocks: a 1 MiB tmpfs and a read-only bind mount, each made inside a
private mount namespace (``unshare``), so nothing outlives the test. Skipped where this
process may not create one (no unshare, no user namespaces)."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from study_fixture import tiny_study_path  # noqa: F401

TESTS = Path(__file__).parent


def _namespace_prefix():
    if shutil.which("unshare") is None:
        return None
    # as root a mount namespace is enough; others also map themselves to root in a user one
    for prefix in (["unshare", "--mount"], ["unshare", "--mount", "--map-root-user"]):
        if subprocess.run(prefix + ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", "/mnt"],
                          capture_output=True).returncode == 0:
            return prefix
    return None


PREFIX = _namespace_prefix()
pytestmark = pytest.mark.skipif(PREFIX is None, reason="cannot make a private mount namespace here")


def _in_namespace(script, tmp_path):
    """Run a shell script in its own mount namespace; Python there is this interpreter,
    started in tests/ so it imports the installed package."""
    path = tmp_path / "script.sh"
    path.write_text(f"set -e\nPY={sys.executable}\ncd {TESTS}\n" + textwrap.dedent(script))
    return subprocess.run(PREFIX + ["bash", str(path)], capture_output=True, text=True, timeout=600)


DISK_FULL = """
from nas_eval.executors import SerialExecutor, run_pending
from nas_eval.jobs import Job, run_job
from nas_eval.store import Storage, StoreWriteError
import json, sqlite3, sys

path = sys.argv[1]
st = Storage(path)
st.add([Job("selftest", {"seed": s, "n": 3000}) for s in range(40)])
try:
    run_pending(st, SerialExecutor(), progress=False)
    error = None
except StoreWriteError as e:
    error = str(e)
st.close()
ro = sqlite3.connect(path + "/study.db")
done = {k: json.loads(r) for k, r in ro.execute("SELECT key, result FROM jobs WHERE state='done'")}
print(json.dumps({
    "error": error,
    "integrity": ro.execute("PRAGMA integrity_check").fetchone()[0],
    "jobs": ro.execute("SELECT count(*) FROM jobs").fetchone()[0],
    "done": len(done),
    "states": dict(ro.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()),
    "all_right": all(r["values"] == run_job("selftest", {"seed": r["seed"], "n": 3000})["result"]["values"]
                     for r in done.values())}))
"""


def test_a_full_disk_stops_the_run_with_a_clear_error_and_an_intact_store(tmp_path):
    (tmp_path / "driver.py").write_text(DISK_FULL)
    res = _in_namespace(f"""
        mkdir -p {tmp_path}/disk
        mount -t tmpfs -o size=1m tmpfs {tmp_path}/disk
        $PY {tmp_path}/driver.py {tmp_path}/disk/study > {tmp_path}/full.json
        mount -o remount,size=64m {tmp_path}/disk   # space again: the same command resumes
        $PY {tmp_path}/driver.py {tmp_path}/disk/study > {tmp_path}/resumed.json
        """, tmp_path)
    assert res.returncode == 0, res.stderr
    full = json.loads((tmp_path / "full.json").read_text())
    assert full["error"] and "is full" in full["error"] and "intact" in full["error"]
    assert "rerun" in full["error"]
    assert full["integrity"] == "ok" and full["jobs"] == 40 and full["all_right"]
    assert 0 < full["done"] < 40  # it stopped part-way, keeping what finished
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["error"] is None and resumed["done"] == 40 and resumed["all_right"]
    assert resumed["integrity"] == "ok"


def test_a_read_only_study_directory_can_be_read_not_run(tmp_path, tiny_study_path):  # noqa: F811
    study = tmp_path / "study"
    shutil.copytree(tiny_study_path, study)
    before = (study / "study.db").read_bytes()
    writable = tmp_path / "elsewhere"
    res = _in_namespace(f"""
        mount --bind {study} {study}
        mount -o remount,bind,ro {study}
        nas() {{ $PY -m nas_eval.cli "$@"; }}
        set +e
        nas status {study} > {tmp_path}/status.out 2> {tmp_path}/status.err; echo $? > {tmp_path}/status.rc
        nas report {study} > /dev/null 2> {tmp_path}/report.err; echo $? > {tmp_path}/report.rc
        nas report {study} --out {writable} > /dev/null 2> {tmp_path}/report_out.err; echo $? > {tmp_path}/report_out.rc
        nas run --out {study}/new --preset smoke --corpus synthetic:vocab_size=40 --executor serial --no-progress \\
            > /dev/null 2> {tmp_path}/run.err; echo $? > {tmp_path}/run.rc
        $PY -c "
from nas_eval.store import Storage, StoreWriteError
from study_fixture import tiny_spec
import nas_eval
st = Storage('{study}')
assert st.readonly, 'opened for writing'
try:
    nas_eval.Study('{study}').run(tiny_spec(), executor='serial', progress=False)
except StoreWriteError as e:
    print(e)
" > {tmp_path}/api.out 2> {tmp_path}/api.err
        """, tmp_path)
    assert res.returncode == 0, res.stderr

    def out(name):
        return (tmp_path / name).read_text()

    assert out("status.rc").strip() == "0", out("status.err")
    assert "done" in out("status.out")
    assert out("report.rc").strip() == "2"
    assert "Read-only file system" in out("report.err") and "Traceback" not in out("report.err")
    assert out("report_out.rc").strip() == "0", out("report_out.err")
    assert (writable / "results.json").exists()
    assert out("run.rc").strip() == "2"  # a new study inside the read-only directory
    assert "Read-only file system" in out("run.err") and "Traceback" not in out("run.err")
    # the same study's spec through the API: the store refuses the write, names why
    assert "read-only" in out("api.out") and "intact" in out("api.out"), out("api.err")
    assert (study / "study.db").read_bytes() == before  # nothing written
