"""How the ground truth of the 2-node space stabilises with d, training tokens and epochs.

For each grid point (d, train_tokens, max epochs) this trains all 32 architectures of the
2-node space standalone with each ground-truth seed, and one weight-sharing super-net that
scores all 32 after every epoch, on PTB. Every other setting is the study "quick" recipe
(batch 32, bptt 35, fixed BPTT, SGD lr 20, clip 0.25, small dropouts, no ASGD, 5k-token
validation slice). Without ASGD or a schedule, the first ``e`` epochs of an ``E``-epoch run
*are* an ``e``-epoch run, so each point also yields the shorter budgets e = 1..E from its
validation curves (ground-truth value = best validation perplexity up to epoch e).

Per (point, epoch budget) it reports: the unigram perplexity of the training slice (add-one
smoothing, on the validation slice), how many architectures are still on that plateau
(``nas_eval.evidence.plateau_flags``, margin 20 %), the noise ceiling (Kendall tau between the
two seeds, with a bootstrap CI), the WS ranking's own plateau count, the rank correlation
with the next larger budget (same d and tokens, one epoch more; and the next point of the
grid at its largest budget), and the mean wall time of one standalone run.

Resumable: one row per finished run in ``runs.csv`` (skipped when rerun); ``summary.csv``
and ``preset_study.png`` are rebuilt from it at the end (``--summarize`` only rebuilds).

    nice -n 19 python benchmarks/preset_study.py --data /work/shared/data --out docs/preset_study
"""
import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# (d, train_tokens, max epochs), cheapest first. The default points are what fitted the hour
# this measurement had on 2 cores shared with other jobs (load 4-10); the others are measured
# only when asked for with --points.
GRID = [
    (32, 50_000, 8),
    (32, 100_000, 8),
    (64, 50_000, 8),
    (32, 200_000, 4),
    (128, 50_000, 6),
]
DEFAULT_POINTS = ["32/50000/8", "32/100000/8"]
# Points measured on half of the space for lack of time (the load rose to 10-11 during the
# hour): 16 architectures drawn once, sorted(numpy.random.default_rng(0).choice(32, 16,
# replace=False)). Every point's noise ceiling is also reported on this half, so the points
# compare like with like.
HALF = (0, 1, 4, 5, 6, 9, 11, 14, 17, 18, 21, 23, 25, 28, 30, 31)
SUBSETS = {(32, 100_000, 8): HALF}
GT_SEEDS = (0, 1)
# jobs of a main job with 2 ground-truth seeds, 3 WS seeds, 6 search seeds (ws-random), and
# the sharing experiment with 2 ground-truth and 3 WS seeds: 32 x 2 + 12 x 2 standalone runs
# (the retrains of picks and random archs reuse ground-truth seed 0), 3 + 6 + 2 x 3 super-nets
MAIN_STANDALONE = 32 * 2 + 12 * 2
MAIN_SUPERNETS = 3 + 6 + 2 * 3
WS_SEED = 0
VALID_TOKENS = 5000
MARGIN = 0.2


def _config(d, tokens, epochs):
    from nas_eval import TrainConfig
    from nas_eval.spec import study_preset

    base = study_preset("quick").train
    fields = TrainConfig.__dataclass_fields__
    width = "hidden_size" if "hidden_size" in fields else "hidden"
    return base.replace(**{width: d}, train_tokens=tokens, epochs=epochs,
                        valid_tokens=VALID_TOKENS, test_tokens=VALID_TOKENS,
                        name=f"preset-study-d{d}-t{tokens}-e{epochs}")


def _corpus(data):
    from nas_eval import datasets
    return datasets.load("ptb", root=data)


def _run(kind, point, arch_id, seed, data):
    """One unit in a worker: a standalone run ('gt') or one WS super-net ('ws')."""
    import nas_eval
    nas_eval.set_num_threads(1)
    d, tokens, epochs = point
    corpus, config = _corpus(data), _config(d, tokens, epochs)
    space = nas_eval.SearchSpace(2)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    if kind == "gt":
        r = nas_eval.train(list(space)[arch_id], corpus, config, seed=seed, progress=False)
        return [{"kind": "gt", "d": d, "train_tokens": tokens, "max_epochs": epochs,
                 "arch_id": arch_id, "arch": str(r.arch), "seed": seed,
                 "curve": json.dumps([round(float(v), 4) for v in r.history["valid_ppl"]]),
                 "epoch_times": json.dumps([round(float(v), 3) for v in r.history["epoch_time"]]),
                 "wall_time": time.perf_counter() - t0, "cpu_time": time.process_time() - c0,
                 "load1": load}]
    ws = nas_eval.ws_ranking(space, corpus, config, [seed], list(range(1, epochs + 1)), progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = []
    for (aid, arch), g in ws.groupby(["arch_id", "arch"]):
        g = g.sort_values("epoch")
        rows.append({"kind": "ws", "d": d, "train_tokens": tokens, "max_epochs": epochs,
                     "arch_id": int(aid), "arch": arch, "seed": seed,
                     "curve": json.dumps([round(float(v), 4) for v in g["ws_ppl"]]),
                     "epoch_times": json.dumps([round(float(v), 3) for v in g["wall_time"].diff().fillna(g["wall_time"])]),
                     "wall_time": wall, "cpu_time": cpu, "load1": load})
    return rows


COLUMNS = ["kind", "d", "train_tokens", "max_epochs", "arch_id", "arch", "seed", "curve", "epoch_times",
           "wall_time", "cpu_time", "load1"]


def _done(path):
    if not os.path.exists(path):
        return set()
    runs = pd.read_csv(path)
    return {(k, d, t, e, a if k == "gt" else -1, s) for k, d, t, e, a, s in
            runs[["kind", "d", "train_tokens", "max_epochs", "arch_id", "seed"]].itertuples(index=False)}


def measure(args, runs_path):
    if os.path.exists(runs_path):  # a file from an older version: add the missing columns
        old = pd.read_csv(runs_path)
        if list(old.columns) != COLUMNS:
            old.reindex(columns=COLUMNS).to_csv(runs_path, index=False)
    done = _done(runs_path)
    units = []
    for point in GRID:
        if f"{point[0]}/{point[1]}/{point[2]}" not in (args.points or DEFAULT_POINTS):
            continue
        if ("ws", *point, -1, WS_SEED) not in done:
            units.append(("ws", point, -1, WS_SEED))
        archs = SUBSETS.get(point, range(32))
        units += [("gt", point, a, s) for a in archs for s in GT_SEEDS if ("gt", *point, a, s) not in done]
    print(f"{len(units)} runs to do ({len(done)} in {runs_path})", flush=True)
    if not units:
        return
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(_run, k, p, a, s, args.data) for k, p, a, s in units]
        for i, f in enumerate(as_completed(futures), 1):
            rows = f.result()
            header = not os.path.exists(runs_path)
            pd.DataFrame(rows, columns=COLUMNS).to_csv(runs_path, mode="a", header=header, index=False)
            r = rows[0]
            print(f"[{i}/{len(units)}] {r['kind']} d={r['d']} t={r['train_tokens']} arch={r['arch_id']} "
                  f"seed={r['seed']} {r['wall_time']:.1f}s load={r['load1']:.2f} "
                  f"final={json.loads(r['curve'])[-1]:.1f}", flush=True)


def summarize(args, runs_path):
    from nas_eval import evidence, metrics

    runs = pd.read_csv(runs_path)
    runs["curve"] = runs["curve"].map(json.loads)
    runs["epoch_times"] = runs["epoch_times"].map(json.loads)
    corpus = _corpus(args.data)
    rows = []
    by_budget = {}
    for (d, tokens, max_e), g in runs.groupby(["d", "train_tokens", "max_epochs"], sort=False):
        uni = evidence.unigram_perplexity(corpus.train[:tokens], corpus.valid[:VALID_TOKENS], corpus.vocab_size)
        gt = g[g["kind"] == "gt"]
        ws = g[g["kind"] == "ws"]
        complete = gt.groupby("seed")["arch_id"].nunique()
        if len(complete) < 2 or complete.min() < len(SUBSETS.get((d, tokens, max_e), range(32))):
            print(f"d={d} t={tokens}: incomplete ({dict(complete)}), skipped", flush=True)
            continue
        for e in range(1, max_e + 1):
            best = gt.assign(value=gt["curve"].map(lambda c: min(c[:e])))
            tidy = best[["arch_id", "seed", "value"]]
            nc = evidence.noise_ceiling_ci(tidy, n_boot=1000, seed=0)
            flags = evidence.plateau_flags(tidy, uni, margin=MARGIN)
            mean = best.groupby("arch_id")["value"].mean()
            by_budget[(d, tokens, e)] = mean
            half = evidence.noise_ceiling_ci(tidy, n_boot=1000, seed=0, archs=HALF)
            row = {"d": d, "train_tokens": tokens, "epochs": e, "archs": int(mean.size), "unigram_ppl": uni,
                   "steps": e * (tokens // 32 // 35),
                   "gt_ppl_min": mean.min(), "gt_ppl_median": mean.median(), "gt_ppl_max": mean.max(),
                   "gt_plateau": int(flags["plateau"].sum()),
                   "noise_ceiling": nc["tau"], "noise_ceiling_low": nc["low"], "noise_ceiling_high": nc["high"],
                   "noise_ceiling_half": half["tau"], "noise_ceiling_half_low": half["low"],
                   "noise_ceiling_half_high": half["high"],
                   "wall_per_run_s": float(np.mean([sum(t[:e]) for t in gt["epoch_times"]])),
                   # CPU seconds of one run (1 thread): what it takes on an idle core
                   "cpu_per_run_s": float(np.nanmean([c * sum(t[:e]) / sum(t) for c, t in
                                                      zip(gt["cpu_time"], gt["epoch_times"])])),
                   "load1_mean": float(g["load1"].mean())}
            if not ws.empty:
                wsv = ws.set_index("arch_id")["curve"].map(lambda c: c[e - 1])
                wflags = evidence.plateau_flags(wsv, uni, margin=MARGIN)
                row["ws_plateau"] = int(wflags["plateau"].sum())
                row["ws_ppl_median"] = float(wsv.median())
                row["tau_ws_gt"] = metrics.kendall_tau(wsv, mean, align="inner")
                # one super-net of e epochs scoring all 32 after every epoch (an upper bound
                # for a study's WS job, which scores at ws_eval_epochs only)
                first = ws.iloc[0]
                row["ws_cpu_s"] = float(first["cpu_time"]) * e / max_e
                row["ws_wall_s"] = float(first["wall_time"]) * e / max_e
            # the main job at this budget: MAIN_STANDALONE standalone runs and MAIN_SUPERNETS
            # super-nets on 2 parallel workers (sharing subspace runs costed as 2-node runs)
            for kind, per_run, per_ws in (("cpu", "cpu_per_run_s", "ws_cpu_s"), ("wall", "wall_per_run_s", "ws_wall_s")):
                if per_ws in row and np.isfinite(row[per_run]):
                    row[f"main_job_{kind}_min"] = (MAIN_STANDALONE * row[per_run] + MAIN_SUPERNETS * row[per_ws]) / 2 / 60
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    # rank agreement with the next larger budget: one epoch more at the same point; at a
    # point's last epoch, the next grid point (same or more of every axis) at its last epoch
    nxt = []
    order = [(d, t, e) for d, t, e in GRID]
    for r in table.itertuples(index=False):
        key = (r.d, r.train_tokens, r.epochs + 1)
        if key not in by_budget:
            later = [p for p in order if p[0] >= r.d and p[1] >= r.train_tokens and (p[0], p[1]) != (r.d, r.train_tokens)
                     and (p[0], p[1], p[2]) in by_budget]
            key = later[0] if later else None
        nxt.append(metrics.kendall_tau(by_budget[(r.d, r.train_tokens, r.epochs)], by_budget[key], align="inner")
                   if key else np.nan)
    table["tau_next_budget"] = nxt
    return table


def plot(table, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    for (d, tokens), g in table.groupby(["d", "train_tokens"], sort=False):
        label = f"d={d}, {tokens // 1000}k tokens"
        axes[0].plot(g["epochs"], g["gt_ppl_median"], marker="o", label=label)
        axes[1].plot(g["epochs"], g["gt_plateau"] / g["archs"], marker="o", label=label + " (GT)")
        if "ws_plateau" in g:
            axes[1].plot(g["epochs"], g["ws_plateau"] / 32, ls=":", marker="x", label=label + " (WS)")
        axes[2].errorbar(g["epochs"], g["noise_ceiling_half"],
                         yerr=[g["noise_ceiling_half"] - g["noise_ceiling_half_low"],
                               g["noise_ceiling_half_high"] - g["noise_ceiling_half"]],
                         marker="o", capsize=2, label=label)
        axes[3].plot(g["epochs"], g["tau_next_budget"], marker="o", label=label)
    for tokens, g in table.groupby("train_tokens"):
        axes[0].axhline(g["unigram_ppl"].iloc[0], color="k", ls="--", lw=0.8)
        axes[0].axhline(0.8 * g["unigram_ppl"].iloc[0], color="grey", ls=":", lw=0.8)
    axes[0].plot([], [], "k--", lw=0.8, label="unigram (add-one)")
    axes[0].plot([], [], color="grey", ls=":", lw=0.8, label="plateau threshold (80%)")
    axes[0].set_yscale("log")
    axes[0].set_title("median ground-truth valid ppl")
    axes[1].set_title("fraction on the unigram plateau (GT, WS)")
    axes[1].legend(fontsize=7)
    axes[2].axhline(0.8, color="k", ls="--", lw=0.8)
    axes[2].set_title("noise ceiling tau(seed 0, seed 1), 16-arch half, 95% CI", fontsize=9)
    axes[3].set_title("tau with the next larger budget")
    for ax in axes:
        ax.set_xlabel("epochs")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("PTB, 2-node space, study 'quick' recipe, 2 ground-truth seeds, 1 WS seed "
                 "(d=32/100k: 16 of the 32 architectures)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def study_parser(doc, out):
    """The command line of a resumable grid study (this one, benchmarks/fidelity_study.py):
    --data, --out (default ``out``), --workers, --summarize; the caller adds its own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--data", default="/work/shared/data", help="directory holding ptb/")
    ap.add_argument("--out", default=out, help="output directory")
    ap.add_argument("--workers", type=int, default=2, help="parallel runs (1 thread each)")
    ap.add_argument("--summarize", action="store_true", help="only rebuild summary.csv and the plot")
    return ap


def measured(ap, argv, measure, summarize):
    """Parse ``argv`` with ``ap``; unless --summarize, ``measure(args, runs_path)`` (runs.csv
    in --out, created); return ``(args, runs_path, summarize(args, runs_path))``."""
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    runs_path = os.path.join(args.out, "runs.csv")
    if not args.summarize:
        measure(args, runs_path)
    return args, runs_path, summarize(args, runs_path)


def main(argv=None):
    ap = study_parser(__doc__, "docs/preset_study")
    ap.add_argument("--points", nargs="*", help="only these grid points, as d/tokens/epochs")
    args, _, table = measured(ap, argv, measure, summarize)
    if not table.empty:
        table.to_csv(os.path.join(args.out, "summary.csv"), index=False, float_format="%.4g")
        plot(table, os.path.join(args.out, "preset_study.png"))
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
