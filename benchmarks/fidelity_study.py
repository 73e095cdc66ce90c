"""Which cheap ground truth ranks the 2-node space like the paper's full-scale one (issue 23).

Each grid point is a training recipe (d, training tokens, epochs, lr schedule, batch size;
everything else the study ``standard`` recipe: BPTT 35 fixed, SGD lr 20, clip 0.25, light
dropout, no ASGD, 5k validation tokens). The script trains the architectures of the
selection half (16 of the 32, ``SELECTION`` below) standalone on PTB with every seed of the
point, one row per run in ``runs.csv``, and summarises per point (``summary.csv``,
``fidelity_study.png``):

* single-seed pair tau (mean Kendall tau over seed pairs) and the seed-mean reliability
  for k = 2, 4, 8 seeds (``nas_eval.reliability``: measured by split halves where the point
  has 2k seeds, Spearman-Brown from the single-seed reliability otherwise; the table says
  which) with a bootstrap CI over seeds and architectures;
* tau between the seed mean and the paper's published full-scale ranking
  (``nas_eval.reference``) with a bootstrap CI over architectures, on the selection half;
* the plateau count (``nas_eval.evidence.plateau_flags``, margin 20 %), CPU seconds of one
  run, and the predicted wall time of the main job on 2 idle cores.

With a constant rate (no schedule, no ASGD) the first e epochs of an E-epoch run *are* an
e-epoch run, so a constant point also yields every shorter budget (ground-truth value: the
best validation perplexity up to epoch e). A schedule decays over the whole run, so a
scheduled point is one budget.

The chosen recipe (``--heldout POINT``) is then run on the other 16 architectures: its tau
on that half is the held-out figure, beside its tau on all 32. The runs of
``docs/preset_study/runs.csv`` (commit ebc6a89, Zen 4, 2 seeds) are summarised as extra
points, labelled ``preset-study``.

Resumable: finished runs are skipped when rerun; ``--summarize`` only rebuilds the table.

    python benchmarks/fidelity_study.py --data /work/shared/data --out docs/fidelity_study
"""
import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# The selection half: drawn once, sorted(numpy.random.default_rng(0).choice(32, 16,
# replace=False)) -- the same half docs/preset_study measured its 100k-token point on.
SELECTION = (0, 1, 4, 5, 6, 9, 11, 14, 17, 18, 21, 23, 25, 28, 30, 31)
HELDOUT = tuple(a for a in range(32) if a not in SELECTION)
SEEDS = (0, 1, 2)
VALID_TOKENS = 5000
MARGIN = 0.2


def point(d=32, tokens=100_000, epochs=4, schedule="constant", lr_min=0.0, batch=32):
    name = f"d{d}-t{tokens // 1000}k-e{epochs}-{schedule}" + (f"{lr_min:g}" if schedule != "constant" else "")
    name += f"-b{batch}" if batch != 32 else ""
    return {"point": name, "d": d, "train_tokens": tokens, "epochs": epochs, "lr_schedule": schedule,
            "lr_min": lr_min, "batch_size": batch}


# Cheapest and most informative first: the grid runs in this order and is cut where the time
# runs out (docs/fidelity_study.md lists what was and was not measured).
GRID = [
    point(schedule="cosine", lr_min=2.0),                 # the standard budget, annealed to a floor
    point(epochs=8),                                      # constant rate: every budget e <= 8
    point(tokens=400_000, epochs=2, schedule="cosine", lr_min=2.0),   # 4x the data, 2x the steps
    point(d=64, schedule="cosine", lr_min=2.0),           # d = 64 at the standard budget
    point(epochs=8, schedule="cosine", lr_min=2.0),       # twice the steps on the same data
    point(schedule="cosine", lr_min=2.0, batch=16),       # twice the steps, same tokens
    point(schedule="linear", lr_min=2.0),
    point(d=128, schedule="cosine", lr_min=2.0),
]
POINTS = {p["point"]: p for p in GRID}
# d = 256 is costed (one run) but not measured: at ~16x the d = 32 cost it is past any main
# job a 2-core machine runs in 45 minutes
COST_ONLY = [point(d=256, schedule="cosine", lr_min=2.0)]


def config_of(p):
    from nas_eval.spec import study_preset

    return study_preset("standard").train.replace(
        hidden_size=p["d"], train_tokens=p["train_tokens"], epochs=p["epochs"], lr_schedule=p["lr_schedule"],
        lr_min=p["lr_min"], batch_size=p["batch_size"], valid_tokens=VALID_TOKENS, test_tokens=VALID_TOKENS,
        name=f"fidelity-{p['point']}")


def _run(p, arch_id, seed, data, commit):
    import nas_eval
    nas_eval.set_num_threads(1)
    corpus = nas_eval.datasets.load("ptb", root=data)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    r = nas_eval.train(list(nas_eval.SearchSpace(2))[arch_id], corpus, config_of(p), seed=seed, progress=False)
    return {**p, "arch_id": arch_id, "arch": str(r.arch), "seed": seed,
            "curve": json.dumps([round(float(v), 4) for v in r.history["valid_ppl"]]),
            "epoch_times": json.dumps([round(float(v), 3) for v in r.history["epoch_time"]]),
            "wall_time": time.perf_counter() - t0, "cpu_time": time.process_time() - c0, "load1": load,
            "commit": commit}


COLUMNS = ["point", "d", "train_tokens", "epochs", "lr_schedule", "lr_min", "batch_size", "arch_id", "arch", "seed",
           "curve", "epoch_times", "wall_time", "cpu_time", "load1", "commit"]


def _commit():
    if os.environ.get("FIDELITY_COMMIT"):  # run from an exported copy of a commit
        return os.environ["FIDELITY_COMMIT"]
    try:
        return subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def units_of(args):
    units = [(POINTS[name], a, s) for name in (args.points or list(POINTS)) for s in SEEDS for a in SELECTION]
    if args.heldout:
        units += [(POINTS[args.heldout], a, s) for s in SEEDS for a in HELDOUT]
    if args.cost_only:
        units += [(p, SELECTION[0], 0) for p in COST_ONLY]
    return units


def measure(args, runs_path):
    done = set()
    if os.path.exists(runs_path):
        runs = pd.read_csv(runs_path)
        done = set(zip(runs["point"], runs["arch_id"], runs["seed"]))
    units = [u for u in units_of(args) if (u[0]["point"], u[1], u[2]) not in done]
    print(f"{len(units)} runs to do ({len(done)} in {runs_path})", flush=True)
    if not units:
        return
    commit = _commit()
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(_run, p, a, s, args.data, commit) for p, a, s in units]
        for i, f in enumerate(as_completed(futures), 1):
            r = f.result()
            header = not os.path.exists(runs_path)
            pd.DataFrame([r], columns=COLUMNS).to_csv(runs_path, mode="a", header=header, index=False)
            print(f"[{i}/{len(units)}] {r['point']} arch={r['arch_id']} seed={r['seed']} cpu={r['cpu_time']:.1f}s "
                  f"wall={r['wall_time']:.1f}s load={r['load1']:.2f} final={json.loads(r['curve'])[-1]:.1f}",
                  flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/work/shared/data", help="directory holding ptb/")
    ap.add_argument("--out", default="docs/fidelity_study", help="output directory")
    ap.add_argument("--workers", type=int, default=2, help="parallel runs (1 thread each)")
    ap.add_argument("--points", nargs="*", choices=sorted(POINTS), help="only these grid points (default: all)")
    ap.add_argument("--heldout", choices=sorted(POINTS), help="also run this point on the held-out half")
    ap.add_argument("--cost-only", action="store_true", help="also cost the COST_ONLY points (one run each)")
    ap.add_argument("--summarize", action="store_true", help="only rebuild summary.csv and the plot")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    runs_path = os.path.join(args.out, "runs.csv")
    if not args.summarize:
        measure(args, runs_path)


if __name__ == "__main__":
    main()
