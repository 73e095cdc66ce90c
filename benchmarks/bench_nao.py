#!/usr/bin/env python3
"""NAO's controller (issue 20 item 3) at the 8-node reference sizes, two builds of the core timed
back to back: controller epochs (after one warm-up epoch) and one propose step, extrapolated to
one reference round.

Sizes come from the ``reference`` preset of nas_eval/policies/nao.py (NAO-WS's PTB search):
token embedding 48, LSTM 96, predictor 4 x 200, dropout 0.1, mini-batch 100, a pool of 1000
architectures of the 8-node space, 1000 controller epochs per round, then ``propose`` moves
the top 100 (lambda up to max_step 30) until 300 new architectures decode. Per round:

    round = controller_epochs x epoch + predict(pool) + propose + gradient(encode(top_k))

Each (build, thread count) runs in its own process (``PYTHONPATH`` = its tree, the core's
threads set with ``nas_eval.set_num_threads``), all of them alternating round by round so that
they see the same load; every call is timed in wall and process CPU seconds (CPU time counts
every thread of the process). The last epoch's MSE / NLL are printed: builds with the same maths
agree to float64 rounding, and one build gives the same bits at every thread count. Cores before
issue 20's slices run NAO on one thread whatever ``--threads`` says.

    python benchmarks/bench_nao.py --base /path/to/old/tree            # old vs this tree
    python benchmarks/bench_nao.py --base /tmp/old --rounds 5 --threads 1 2 --json out.json
    python benchmarks/bench_nao.py --threads 1 2                       # this tree, 1 vs 2 threads

``--base`` is a checkout with its core built in place (``setup.py build_ext --inplace``); a
tree of an older commit: ``mkdir /tmp/old && git archive COMMIT | tar -x -C /tmp/old`` and build it there.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(seed, threads, epochs):
    """One measurement round in this process: prints one JSON line."""
    import numpy as np

    import nas_eval
    nas_eval.set_num_threads(threads)
    from nas_eval import SearchSpace
    from nas_eval.engine.nao import NAOController
    from nas_eval.policies.nao import PRESETS

    cfg = PRESETS.get("reference")
    space = SearchSpace(8)
    pool = space.sample(seed, cfg.pool_for(len(space)))
    targets = np.random.default_rng(seed).uniform(0.0, 1.0, len(pool))
    ctrl = NAOController(space, seed=seed, **cfg.controller_options())

    def timed(fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - w, time.process_time() - c

    ctrl.fit(pool, targets, 1)   # warm-up: first touch of the buffers, the pool's threads
    fit, ew, ec = timed(lambda: ctrl.fit(pool, targets, epochs))
    ew, ec = ew / epochs, ec / epochs
    _, pw, pc = timed(lambda: ctrl.predict(pool))
    (new, lam), dw, dc = timed(lambda: ctrl.propose(pool[:cfg.top_k], min(cfg.max_new, len(pool)),
                                                    exclude=pool, max_step=cfg.max_step))
    _, gw, gc = timed(lambda: ctrl.gradient(ctrl.encode(pool[:cfg.top_k])))
    print(json.dumps({"core": os.path.dirname(nas_eval.__file__), "threads": threads, "epoch_wall": ew, "epoch_cpu": ec,
                      "predict_wall": pw, "predict_cpu": pc, "propose_wall": dw, "propose_cpu": dc,
                      "gradient_wall": gw, "gradient_cpu": gc, "mse": fit["mse"], "nll": fit["nll"],
                      "new": len(new), "lambda": lam, "controller_epochs": cfg.controller_epochs}))


def run_one(tree, seed, threads, epochs):
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", "--seed", str(seed),
                          "--threads", str(threads), "--epochs", str(epochs)],
                         env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def round_time(r, kind):
    return (r["controller_epochs"] * r[f"epoch_{kind}"] + r[f"predict_{kind}"] + r[f"propose_{kind}"]
            + r[f"gradient_{kind}"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="tree of the old core (built in place); omitted: this tree only")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="core threads, each timed separately (default: 1)")
    ap.add_argument("--epochs", type=int, default=3, help="controller epochs timed per round, after one "
                    "untimed warm-up epoch (default: 3)")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.seed, a.threads[0], a.epochs)
    trees = {"new": HERE} if not a.base else {"old": os.path.abspath(a.base), "new": HERE}
    configs = [(f"{name}/{t}", tree, t) for name, tree in trees.items() for t in a.threads]
    rows = {name: [] for name, _, _ in configs}
    for i in range(a.rounds):
        for name, tree, t in configs:
            r = run_one(tree, a.seed, t, a.epochs)
            rows[name].append(r)
            print(f"round {i + 1} {name:5s}: epoch {r['epoch_wall']:.3f} s wall / {r['epoch_cpu']:.3f} s cpu, "
                  f"propose {r['propose_wall']:.3f} / {r['propose_cpu']:.3f} s (lambda {r['lambda']}, "
                  f"{r['new']} new), mse {r['mse']!r} nll {r['nll']!r}", flush=True)
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min); medians of "
          f"{a.rounds} rounds; round = {rows[configs[0][0]][0]['controller_epochs']} epochs + predict + propose "
          f"+ gradient; name = build/threads")
    med = {}
    for name, tree, _ in configs:
        rs = rows[name]
        med[name] = {k: statistics.median(r[k] for r in rs)
                     for k in ("epoch_wall", "epoch_cpu", "propose_wall", "propose_cpu")}
        med[name]["round_wall"] = statistics.median(round_time(r, "wall") for r in rs)
        med[name]["round_cpu"] = statistics.median(round_time(r, "cpu") for r in rs)
        m = med[name]
        print(f"{name:5s} ({tree}): epoch {m['epoch_wall']:.3f} s wall / {m['epoch_cpu']:.3f} s cpu; "
              f"propose {m['propose_wall']:.3f} / {m['propose_cpu']:.3f} s; one reference round "
              f"{m['round_wall'] / 60:.1f} min wall / {m['round_cpu'] / 60:.1f} min cpu")

    def ratios(label, before, after):
        for k in ("epoch", "propose", "round"):
            print(f"{label} {k}: {med[before][k + '_wall'] / med[after][k + '_wall']:.2f}x wall, "
                  f"{med[before][k + '_cpu'] / med[after][k + '_cpu']:.2f}x cpu")

    for t in a.threads:
        if "old" in trees:
            ratios(f"speed-up old/{t} -> new/{t}", f"old/{t}", f"new/{t}")
        if t != a.threads[0]:
            ratios(f"new/{a.threads[0]} -> new/{t}", f"new/{a.threads[0]}", f"new/{t}")
    if "old" in trees and len(a.threads) > 1:
        ratios(f"old/{a.threads[0]} -> new/{a.threads[-1]}", f"old/{a.threads[0]}", f"new/{a.threads[-1]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"load": load, "trees": trees, "threads": a.threads, "rows": rows, "medians": med}, f,
                      indent=1)


if __name__ == "__main__":
    main()
