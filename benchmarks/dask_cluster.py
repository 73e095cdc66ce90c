"""The README's cluster recipe, longer than its test (tests/test_dask_cluster.py): ``dask
scheduler`` and two ``dask worker`` processes on 127.0.0.1, a study of SEEDS retraining jobs
of EPOCHS epochs each (smoke scale, PTB) driven with ``nas-eval run --dask --checkpoint-dir``;
one worker SIGKILLed once both run a checkpointed job, the scheduler SIGKILLed later in the
same run, the scheduler and workers restarted and the command rerun. Prints a summary: the
jobs, the kills, the driver's exit codes, the checkpoint events, and whether every number
equals a serial run's.

    python benchmarks/dask_cluster.py --data ../shared/data [--seeds 8 --epochs 20]
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from local_dask import REPO, LocalDaskCluster, repo_env  # noqa: E402

TIMEOUT = 3600  # seconds for any one wait: bounded, generous for a loaded machine


def study_toml(seeds, epochs):
    return (f'preset = "smoke"\npolicies = ["random"]\nseeds = {list(range(seeds))}\ngt_seeds = []\nws_seeds = []\n'
            f'sharing = false\n[train]\nepochs = {epochs}\n')


def driver(cfg, out, data, dask=None, ckpt=None):
    argv = [sys.executable, "-m", "nas_eval", "run", "--config", cfg, "--out", out, "--data", data, "--no-progress"]
    argv += ["--dask", dask, "--checkpoint-dir", ckpt] if dask else ["--executor", "serial"]
    return subprocess.Popen(argv, env=repo_env(), cwd=os.path.dirname(os.path.abspath(out)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait(proc):
    _, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, err.strip().splitlines()[-1] if err.strip() else ""


def results(out):
    from nas_eval.store import Storage

    st = Storage(out)
    return {r["key"]: {k: v for k, v in r["result"].items() if k != "wall_time"}
            for r in st.records(states=["done"])}, st


def until(cond, proc, what, poll=0.05):
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if proc.poll() is not None:
            raise SystemExit(f"the driver ended before {what}: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(poll)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--seeds", type=int, default=8,
                    help="search seeds: their random picks are the retraining jobs (two seeds may pick alike)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--work", help="working directory (default: a temporary one)")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    work = args.work or tempfile.mkdtemp(prefix="dask_cluster_")
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "study.toml")
    with open(cfg, "w") as f:
        f.write(study_toml(args.seeds, args.epochs))
    log = []
    t0 = time.monotonic()

    def note(msg):
        log.append(f"{time.monotonic() - t0:7.1f} s  {msg}")
        print(log[-1], flush=True)

    serial_out = os.path.join(work, "serial")
    rc, _ = wait(driver(cfg, serial_out, data))
    serial, _ = results(serial_out)
    note(f"serial run: rc {rc}, {len(serial)} jobs done")

    out, ckpt = os.path.join(work, "cluster"), os.path.join(work, "shared-ckpt")
    env = {"NAS_EVAL_DATA": data}
    with LocalDaskCluster(os.path.join(work, "procs")) as c:
        c.start_scheduler()
        c.start_worker("w1", **env)
        c.start_worker("w2", **env)
        c.wait_for_workers(2)
        note(f"scheduler {c.address}, workers w1, w2 up")
        proc = driver(cfg, out, data, c.address, ckpt)
        n_ckpt = lambda: len(glob.glob(os.path.join(ckpt, "*.ckpt")))  # noqa: E731
        until(lambda: n_ckpt() >= 2, proc, "two checkpointed jobs at once")
        c.kill_worker("w1")
        note("SIGKILLed worker w1 (nanny and worker) while both workers ran a checkpointed job")
        st_done = lambda: results(out)[0].__len__()  # noqa: E731
        until(lambda: n_ckpt() >= 1 and st_done() >= args.seeds // 2, proc, "half the jobs done", poll=0.5)
        c.kill_scheduler()
        note(f"SIGKILLed the scheduler with {st_done()} of {len(serial)} jobs done")
        rc, last = wait(proc)
        note(f"driver: rc {rc}: {last[:160]}...")
        for name in list(c.workers):
            c.kill_worker(name)
        c.start_scheduler()
        c.start_worker("w1", **env)
        c.start_worker("w2", **env)
        c.wait_for_workers(2)
        note("restarted the scheduler (same address) and workers w1, w2; rerunning the same command")
        rc, last = wait(driver(cfg, out, data, c.address, ckpt))
        note(f"rerun: rc {rc}: {last}")
    done, st = results(out)
    events = st.events()
    counts = events["kind"].value_counts().to_dict() if len(events) else {}
    print("\nsummary")
    print(f"  study: {len(serial)} retraining jobs x {args.epochs} epochs (the random picks of seeds "
          f"0..{args.seeds - 1}, train seed 0), smoke scale (d=16, 6k-token PTB slice); 2 dask workers x 1 thread "
          f"on 127.0.0.1")
    print(f"  jobs done {len(done)} of {len(serial)}; store events: {counts}")
    print(f"  checkpoints left in the shared directory: {len(glob.glob(os.path.join(ckpt, '*.ckpt')))}")
    same = done == serial
    print(f"  every result equal to the serial run's, bit for bit: {same}")
    print(f"  wall time of the whole benchmark {time.monotonic() - t0:.0f} s (load avg {os.getloadavg()[0]:.1f})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
