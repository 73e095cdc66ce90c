"""Faults campaign (issue 13): SIGKILL a small study at random points, rerun it, and check
that no finished job was lost, the store is intact and the final numbers equal those of an
uninterrupted run.

    nice -n 19 .venv/bin/python benchmarks/faults_campaign.py --kills 20 --out faults.json

Each trial starts ``nas-eval run`` (a small study on a synthetic corpus, the process pool or
the serial executor), kills the driver with SIGKILL after a random delay drawn uniformly
over the uninterrupted run's duration (so kills land inside training, in store writes and in
checkpoint writes alike), records which jobs were done at that moment, then reruns the same
command to the end, possibly killing it again (``--kills-per-trial``). Every ``--report-every``
trial also kills a ``nas-eval report`` at a random point and reruns it. Checks per trial:
every job done before a kill is still done with the same result; ``PRAGMA integrity_check``
is ``ok``; all results equal the reference's (wall-clock fields removed); no checkpoints left.
"""
import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

CORPUS = "synthetic:vocab_size=30,train_tokens=3000,valid_tokens=600,test_tokens=600"
TIMING = {"wall_time", "epoch_time", "tokens_per_s", "seconds"}


def _cmd(out, executor):
    return [sys.executable, "-m", "nas_eval", "run", "--out", out, "--preset", "smoke", "--corpus", CORPUS,
            "--seeds", "0,1", "--gt-seeds", "0", "--ws-seeds", "0", "--executor", executor, "--workers", "2",
            "--no-progress"]


def _strip(x):
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in TIMING}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def _done(out):
    db = os.path.join(out, "study.db")
    if not os.path.exists(db):
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT key, result FROM jobs WHERE state = 'done'").fetchall()
    except sqlite3.DatabaseError:
        return {}
    finally:
        con.close()
    return {k: _strip(json.loads(r)) for k, r in rows}


def _integrity(out):
    con = sqlite3.connect(os.path.join(out, "study.db"))
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def _killed_run(cmd, delay, finished=None):
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=delay)
        if finished is not None:
            finished.append(time.monotonic() - t0)
        return False  # finished before the kill
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers must die by themselves
        proc.wait()
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20, help="kill points in all")
    ap.add_argument("--kills-per-trial", type=int, default=2)
    ap.add_argument("--executor", default="process", choices=("process", "serial"))
    ap.add_argument("--report-every", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="faults_campaign.json")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="faults-")
    ref = os.path.join(work, "ref")
    t0 = time.monotonic()
    subprocess.run(_cmd(ref, args.executor), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    duration = time.monotonic() - t0
    subprocess.run([sys.executable, "-m", "nas_eval", "report", ref], check=True, stdout=subprocess.DEVNULL)
    reference = _done(ref)
    ref_results = _strip(json.load(open(os.path.join(ref, "results.json"))))
    summary = {"reference_jobs": len(reference), "reference_seconds": duration, "kill_points": 0,
               "kills_that_landed": 0, "jobs_lost": 0, "stores_corrupt": 0, "trials_identical": 0,
               "reports_killed": 0, "reports_identical": 0, "checkpoints_left": 0, "trials": []}
    trial = 0
    while summary["kill_points"] < args.kills:
        trial += 1
        out = os.path.join(work, f"t{trial}")
        kills = []
        for _ in range(args.kills_per_trial):
            if summary["kill_points"] >= args.kills:
                break
            delay = rnd.uniform(0.5, duration)
            before = _done(out)
            finished = []
            landed = _killed_run(_cmd(out, args.executor), delay, finished)
            if finished and not before:  # a whole run took less: aim the next kills inside it
                duration = min(duration, finished[0])
            after = _done(out)
            lost = [k for k, r in before.items() if after.get(k) != r]
            summary["kill_points"] += 1
            summary["kills_that_landed"] += landed
            summary["jobs_lost"] += len(lost)
            kills.append({"delay": round(delay, 2), "landed": landed, "done_before": len(before),
                          "done_after": len(after), "lost": len(lost)})
        rc = subprocess.run(_cmd(out, args.executor), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        final = _done(out)
        ok_store = _integrity(out) == "ok"
        identical = final == reference
        ckdir = os.path.join(out, "checkpoints")
        left = len(os.listdir(ckdir)) if os.path.isdir(ckdir) else 0
        rec = {"trial": trial, "kills": kills, "rerun_rc": rc, "store": "ok" if ok_store else "CORRUPT",
               "identical": identical, "jobs": len(final), "checkpoints_left": left}
        if args.report_every and trial % args.report_every == 0:
            landed = _killed_run([sys.executable, "-m", "nas_eval", "report", out], rnd.uniform(0.2, 3.0))
            subprocess.run([sys.executable, "-m", "nas_eval", "report", out], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            same = _strip(json.load(open(os.path.join(out, "results.json")))) == ref_results
            summary["reports_killed"] += landed
            summary["reports_identical"] += same
            rec["report"] = {"killed": landed, "identical": same}
        summary["stores_corrupt"] += not ok_store
        summary["trials_identical"] += identical
        summary["checkpoints_left"] += left
        summary["trials"].append(rec)
        json.dump(summary, open(args.out, "w"), indent=1)
        print(json.dumps(rec), flush=True)
        shutil.rmtree(out, ignore_errors=True)
    summary["trials_total"] = trial
    json.dump(summary, open(args.out, "w"), indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "trials"}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
