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
import json
import math
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


# PTB's whole training split (pytorch/examples tokenisation, <eos> included)
PTB_TRAIN_TOKENS = 929_589
# dropouts (output / h / x / input / embedding): "light" keeps the study recipe's
# .1/.05/.1/.05/0; "paper" is the paper's final-training recipe (DESIGN.md section 4,
# TrainConfig preset "paper"): .75/.25/.75/.2/.1
DROPOUTS = ("light", "paper")


def point(d=32, tokens=100_000, epochs=4, schedule="constant", lr_min=0.0, batch=32, dropouts="light"):
    name = f"d{d}-t{tokens // 1000}k-e{epochs}-{schedule}" + (f"{lr_min:g}" if schedule != "constant" else "")
    name += f"-b{batch}" if batch != 32 else ""
    name += f"-d{dropouts}" if dropouts != "light" else ""
    return {"point": name, "d": d, "train_tokens": tokens, "epochs": epochs, "lr_schedule": schedule,
            "lr_min": lr_min, "batch_size": batch, "dropouts": dropouts}


# Cheapest and most informative first: the grid runs in this order and is cut where the time
# runs out (docs/fidelity_study.md lists what was and was not measured).
GRID = [
    point(schedule="cosine", lr_min=2.0),                 # the standard budget, annealed to a floor
    point(tokens=400_000, epochs=2, schedule="cosine", lr_min=2.0),   # 4x the data, 2x the steps
    point(epochs=8, schedule="cosine", lr_min=2.0),       # the same steps as 400k x 2, on 100k tokens
    point(d=64, schedule="cosine", lr_min=2.0),           # d = 64 at the standard budget
    point(d=64),                                          # d = 64, constant rate: every budget e <= 4
    # constant rate: every budget e <= 8 (docs/preset_study has 2 seeds of it at commit ebc6a89)
    point(epochs=8),
    point(schedule="cosine", lr_min=2.0, batch=16),       # twice the steps, same tokens
    point(schedule="linear", lr_min=2.0),
    point(d=128, schedule="cosine", lr_min=2.0),
    # the paper's heavy dropouts at the standard budget (constant rate: the standard recipe
    # with one axis changed, and every budget e <= 4 from the same runs)
    point(dropouts="paper"),
    # all of PTB once (~830 steps): against 400k x 2 epochs (716 steps) the same schedule and
    # about the same steps, 2.3x the distinct text
    point(tokens=PTB_TRAIN_TOKENS, epochs=1, schedule="cosine", lr_min=2.0),
]
POINTS = {p["point"]: p for p in GRID}
# d = 128 and 256 are costed (one 1-epoch run each) but not ranked: the CPU time a run of
# them would need, for the frontier (what a bigger machine buys)
COST_ONLY = [point(d=128, epochs=1), point(d=256, epochs=1)]


def config_of(p):
    from nas_eval import TrainConfig
    from nas_eval.spec import study_preset

    heavy = TrainConfig.preset("paper").dropouts if p.get("dropouts", "light") == "paper" else {}
    return study_preset("standard").train.replace(
        hidden_size=p["d"], train_tokens=p["train_tokens"], epochs=p["epochs"], lr_schedule=p["lr_schedule"],
        lr_min=p["lr_min"], batch_size=p["batch_size"], valid_tokens=VALID_TOKENS, test_tokens=VALID_TOKENS,
        name=f"fidelity-{p['point']}", **heavy)


def dropouts_of(name):
    """A run's dropout set, from its point name (runs.csv has no dropout column: its rows
    predate the axis, and a new column would change them)."""
    return POINTS[name]["dropouts"] if name in POINTS else "light"


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
    """Runs in order: the cost-only runs, the held-out half of the chosen point, the grid
    (in the order of --points, each point's seeds one after the other)."""
    seeds = args.seeds
    units = [(p, SELECTION[0], 0) for p in COST_ONLY] if args.cost_only else []
    if args.heldout:
        units += [(POINTS[args.heldout], a, s) for s in seeds for a in HELDOUT]
    return units + [(POINTS[name], a, s) for name in (args.points or list(POINTS)) for s in seeds for a in SELECTION]


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


# The main job (docs/presets.md): K ground-truth seeds of the 32 archs, the sharing subspace's
# 12 archs x 2 seeds, and 15 super-nets (3 WS seeds, 6 search seeds, 2 x 3 sharing); the
# policies' picks and the random archs reuse ground-truth runs. A super-net costs ~1.5
# standalone runs at the same recipe (docs/preset_study: 25.7 vs 17.1 CPU s at d = 32, 100k
# tokens, 4 epochs, scoring all 32 every epoch: an upper bound).
MAIN_SHARING_RUNS = 12 * 2
MAIN_SUPERNETS = 15
WS_FACTOR = 1.5
MAIN_BUDGET_MIN = 45.0
# the model above against the one main job measured: `standard` (d = 32, 100k tokens, 4
# epochs, constant rate, 2 ground-truth seeds, every policy) took 25 min 14 s on a fresh clone
# of 4731784, 2-vCPU AVX2 EPYC, quiet (README); the model, from this study's CPU seconds under
# load, says ~19 min. Main jobs are predicted with the model scaled by that ratio (it prices
# the policy searches low, and the loaded CPU seconds differ from quiet ones).
MEASURED_MAIN_JOB_MIN = 25 + 14 / 60
# the budget whose CPU seconds both sources measured (the schedule does not change the work)
REFERENCE_BUDGET = "d32-t100k-e4-cosine2"
TARGET = 0.8
KS = (1, 2, 3, 4, 8)
PRESET_STUDY = os.path.join(os.path.dirname(HERE), "docs", "preset_study", "runs.csv")


def main_job_min(cpu_per_run, k):
    """Predicted wall minutes of a main job with k ground-truth seeds on 2 idle cores."""
    return ((32 * k + MAIN_SHARING_RUNS) * cpu_per_run + MAIN_SUPERNETS * WS_FACTOR * cpu_per_run) / 2 / 60


def _budgets(runs):
    """One row per (budget, arch, seed): scheduled points as measured; constant-rate points
    also at every shorter epoch count (the best validation ppl up to that epoch)."""
    out = []
    for r in runs.itertuples(index=False):
        curve, times = json.loads(r.curve), json.loads(r.epoch_times)
        budgets = range(1, r.epochs + 1) if r.lr_schedule == "constant" else [r.epochs]
        for e in budgets:
            label = r.point if e == r.epochs else r.point.replace(f"-e{r.epochs}-", f"-e{e}-") + f" (first {e} of {r.epochs})"
            out.append({"budget": label, "source": r.source, "d": r.d, "train_tokens": r.train_tokens, "epochs": e,
                        "lr_schedule": r.lr_schedule, "lr_min": r.lr_min, "batch_size": r.batch_size,
                        "dropouts": r.dropouts,
                        "arch_id": r.arch_id, "seed": r.seed, "value": min(curve[:e]),
                        "cpu_s": r.cpu_time * sum(times[:e]) / sum(times) if np.isfinite(r.cpu_time) else np.nan,
                        "load1": r.load1})
    return pd.DataFrame(out)


def load_runs(runs_path):
    runs = pd.read_csv(runs_path).assign(source=lambda t: "this study (" + t["commit"].astype(str) + ", AVX2 EPYC)",
                                         dropouts=lambda t: t["point"].map(dropouts_of))
    frames = [runs]
    if os.path.exists(PRESET_STUDY):  # docs/preset_study: 2 seeds, commit ebc6a89, Zen 4 (AVX-512)
        old = pd.read_csv(PRESET_STUDY)
        old = old[old["kind"] == "gt"].rename(columns={"max_epochs": "epochs"})
        old = old.assign(lr_schedule="constant", lr_min=0.0, batch_size=32, dropouts="light", commit="ebc6a89",
                         source="preset study (ebc6a89, Zen 4, 2 seeds)",
                         point=lambda t: "preset-d" + t["d"].astype(str) + "-t" + (t["train_tokens"] // 1000).astype(str)
                         + "k-e" + t["epochs"].astype(str) + "-constant")
        frames.append(old[list(runs.columns)])
    return pd.concat(frames, ignore_index=True)


def _tau_pub(mean, archs, n_boot=1000):
    from nas_eval import metrics, reference

    v = mean[mean.index.isin(list(archs))]
    if len(v) < 3:
        return (np.nan, np.nan, np.nan)
    b = metrics.bootstrap_ci(metrics.kendall_tau, v, reference.published_rank(), n_boot=n_boot, seed=0,
                             align="inner")
    return (b.estimate, b.low, b.high)


def summarize(args, runs_path):
    from nas_eval import datasets, evidence, reliability

    budgets = _budgets(load_runs(runs_path))
    corpus = datasets.load("ptb", root=args.data)
    rows = []
    for label, g in budgets.groupby("budget", sort=False):
        first = g.iloc[0]
        per_seed = g[g["arch_id"].isin(SELECTION)].groupby("seed")["arch_id"].nunique()
        per_seed = per_seed[per_seed == len(SELECTION)]
        if len(per_seed) < 2:
            continue  # not (yet) every arch of the selection half with 2 seeds
        g = g[g["seed"].isin(per_seed.index)]  # seeds still running are left out
        sel = g[g["arch_id"].isin(SELECTION)]
        tidy = sel[["arch_id", "seed", "value"]]
        uni = evidence.unigram_perplexity(corpus.train[: first.train_tokens], corpus.valid[:VALID_TOKENS],
                                          corpus.vocab_size)
        flags = evidence.plateau_flags(g[["arch_id", "seed", "value"]], uni, margin=MARGIN)
        rel = reliability.reliability(tidy, ks=KS, n_boot=1000, seed=0, target=TARGET).set_index("k")
        pair = evidence.noise_ceiling_ci(tidy, n_boot=1000, seed=0)
        mean = g.groupby("arch_id")["value"].mean()
        tau = _tau_pub(mean, SELECTION)
        cpu = float(g["cpu_s"].mean())
        row = {"budget": label, "source": first.source, "d": first.d, "train_tokens": first.train_tokens,
               "epochs": first.epochs, "lr_schedule": first.lr_schedule, "lr_min": first.lr_min,
               "batch_size": first.batch_size, "dropouts": first.dropouts, "steps": first.epochs * math.ceil((first.train_tokens // first.batch_size - 2) / 35),
               "seeds": int(len(per_seed)), "archs": int(g["arch_id"].nunique()), "unigram_ppl": uni,
               "gt_ppl_median": float(mean.median()), "gt_ppl_max": float(mean.max()),
               "plateau": int(flags["plateau"].sum()), "pair_tau": pair["tau"], "pair_tau_low": pair["low"],
               "pair_tau_high": pair["high"]}
        for k in KS:
            row[f"rel{k}"], row[f"rel{k}_low"], row[f"rel{k}_high"] = (rel.loc[k, c] for c in ("estimate", "low", "high"))
            row[f"rel{k}_method"] = rel.loc[k, "method"]
        row["seeds_for_0.8"] = rel["seeds_needed"].iloc[0]
        row["tau_pub_sel"], row["tau_pub_sel_low"], row["tau_pub_sel_high"] = tau
        if set(HELDOUT) <= set(g["arch_id"]):
            row["tau_pub_heldout"], row["tau_pub_heldout_low"], row["tau_pub_heldout_high"] = _tau_pub(mean, HELDOUT)
            row["tau_pub_all"], row["tau_pub_all_low"], row["tau_pub_all_high"] = _tau_pub(mean, range(32))
            rel_all = reliability.reliability(g[["arch_id", "seed", "value"]], ks=KS, n_boot=1000, seed=0)
            for k in KS:
                r = rel_all.set_index("k").loc[k]
                row[f"rel{k}_all"], row[f"rel{k}_all_low"], row[f"rel{k}_all_high"] = r["estimate"], r["low"], r["high"]
        row["cpu_per_run_s"] = cpu
        row["load1_mean"] = float(g["load1"].mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    # the preset study's CPU seconds are Zen 4 (AVX-512) ones: scaled to this machine by the
    # ratio at the budget both measured (d = 32, 100k tokens, 4 epochs; the schedule does not
    # change the work) before predicting main jobs here
    here = table["source"].str.startswith("this")
    ref = here & (table["budget"] == REFERENCE_BUDGET)
    same = ~here & (table["d"] == 32) & (table["train_tokens"] == 100_000) & (table["epochs"] == 4)
    ratio = (table.loc[ref, "cpu_per_run_s"].mean() / table.loc[same, "cpu_per_run_s"].mean()
             if ref.any() and same.any() else 1.0)
    table["cpu_here_s"] = np.where(here, table["cpu_per_run_s"], table["cpu_per_run_s"] * ratio)
    for k in (2, 4):
        table[f"main_job_min_k{k}"] = main_job_min(table["cpu_here_s"], k)
    print(f"preset-study CPU seconds scaled by {ratio:.3f} to this machine", flush=True)
    table.attrs["calibration"] = calibration(table)
    for k in (2, 3, 4):
        table[f"main_job_cal_k{k}"] = main_job_min(table["cpu_here_s"], k) * table.attrs["calibration"]
    return table


def calibration(table):
    """Measured / modelled minutes of the `standard` main job (1.0 without its budget)."""
    std = table[(table["d"] == 32) & (table["train_tokens"] == 100_000) & (table["epochs"] == 4)
                & (table["batch_size"] == 32) & (table["dropouts"] == "light") & (table["lr_schedule"] == "constant")]
    return MEASURED_MAIN_JOB_MIN / main_job_min(std["cpu_here_s"].mean(), 2) if len(std) else 1.0


def epoch_cost(runs):
    """CPU seconds per 100k-token epoch of one run, by d (this study's batch-32 runs, median)."""
    r = runs[runs["source"].str.startswith("this") & (runs["batch_size"] == 32)]
    per = r["cpu_time"] / (r["epochs"] * r["train_tokens"] / 100_000)
    return per.groupby(r["d"]).median()


def costed_table(runs, table):
    """The grid points not (yet) ranked -- no budget of the table (either source) has their
    recipe -- with their predicted CPU seconds per run (epoch_cost at their d x epochs x
    tokens / 100k) and the predicted main job: costed, not ranked."""
    per = epoch_cost(runs)
    factor = table.attrs.get("calibration", 1.0) if not table.empty else 1.0
    ranked = set() if table.empty else set(table[RECIPE].itertuples(index=False, name=None))
    rows = []
    for p in GRID:
        if tuple(p[c] for c in RECIPE) in ranked:
            continue
        cpu = per.get(p["d"], np.nan) * p["epochs"] * p["train_tokens"] / 100_000
        done = runs[runs["point"] == p["point"]]
        rows.append({"budget": p["point"], **{c: p[c] for c in RECIPE}, "runs_done": len(done),
                     "cpu_per_run_s_predicted": cpu,
                     # batch 16: the same FLOPs in half-height products and twice the steps
                     "note": "lower bound (smaller products)" if p["batch_size"] < 32 else "",
                     **{f"main_job_cal_k{k}": main_job_min(cpu, k) * factor for k in (2, 3)}})
    return pd.DataFrame(rows)


RECIPE = ["d", "train_tokens", "epochs", "lr_schedule", "lr_min", "batch_size", "dropouts"]


def _complete(g, archs):
    """g restricted to the seeds that have every arch of archs."""
    per_seed = g[g["arch_id"].isin(archs)].groupby("seed")["arch_id"].nunique()
    return g[g["seed"].isin(per_seed[per_seed == len(archs)].index) & g["arch_id"].isin(archs)]


def heldout_table(budgets):
    """The held-out figures: for each budget measured on the held-out half, tau vs the
    published ranking there, and on all 32 together with the selection-half runs of the
    same recipe (from either source), with the reliability of the seed mean."""
    from nas_eval import reliability

    rows = []
    for label, g in budgets.groupby("budget", sort=False):
        if not set(g["arch_id"]) <= set(HELDOUT):
            continue
        held = _complete(g, HELDOUT)
        if held["seed"].nunique() < 2:
            continue
        key = tuple(g.iloc[0][RECIPE])
        same = budgets[(budgets[RECIPE].apply(tuple, axis=1) == key) & budgets["arch_id"].isin(SELECTION)]
        sel = _complete(same, SELECTION)
        row = {"budget": label, **dict(zip(RECIPE, key)), "heldout_seeds": int(held["seed"].nunique()),
               "selection_source": ", ".join(sorted(sel["source"].unique())),
               "selection_seeds": int(sel["seed"].nunique())}
        tau = _tau_pub(held.groupby("arch_id")["value"].mean(), HELDOUT)
        row["tau_pub_heldout"], row["tau_pub_heldout_low"], row["tau_pub_heldout_high"] = tau
        rel = reliability.reliability(held[["arch_id", "seed", "value"]], ks=(1, 2, 4), n_boot=1000, seed=0)
        for k, r in rel.set_index("k").iterrows():
            row[f"rel{k}_heldout"], row[f"rel{k}_heldout_low"], row[f"rel{k}_heldout_high"] = r["estimate"], r["low"], r["high"]
        if not sel.empty:
            both = pd.concat([held, sel])
            # the seed mean per arch over each half's own seeds
            tau = _tau_pub(both.groupby("arch_id")["value"].mean(), range(32))
            row["tau_pub_all"], row["tau_pub_all_low"], row["tau_pub_all_high"] = tau
            common = sorted(set(held["seed"]) & set(sel["seed"]))
            if len(common) >= 2:
                rel = reliability.reliability(both[both["seed"].isin(common)][["arch_id", "seed", "value"]],
                                              ks=(1, 2, 4), n_boot=1000, seed=0)
                for k, r in rel.set_index("k").iterrows():
                    row[f"rel{k}_all"], row[f"rel{k}_all_low"], row[f"rel{k}_all_high"] = r["estimate"], r["low"], r["high"]
        row["cpu_per_run_s"] = float(held["cpu_s"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(runs):
    """CPU seconds of the cost-only runs (one run, one epoch each)."""
    names = {p["point"] for p in COST_ONLY}
    c = runs[runs["point"].isin(names)]
    return c[["point", "d", "train_tokens", "epochs", "cpu_time", "wall_time", "load1"]]


def candidates(table):
    """Every budget the selection rule admits, with the fewest seeds k that qualify: no
    architecture on the unigram plateau (seeds agree on *when* archs leave it, not on the
    ranking: docs/presets.md), k-seed reliability (selection half) >= TARGET, and a predicted
    main job (calibrated to the measured one) within MAIN_BUDGET_MIN. Best tau vs the
    published ranking on the selection half first: the first row is the rule's pick, the
    others are the runners-up to compare it with (overlapping CIs: selecting among noise)."""
    factor = table.attrs.get("calibration", 1.0)
    rows = []
    for r in table.itertuples(index=False):
        for k in KS[1:]:
            minutes = main_job_min(r.cpu_here_s, k) * factor
            if r.plateau == 0 and getattr(r, f"rel{k}") >= TARGET and minutes <= MAIN_BUDGET_MIN:
                rows.append({"budget": r.budget, "seeds": k, "reliability": getattr(r, f"rel{k}"),
                             "reliability_low": getattr(r, f"rel{k}_low"), "reliability_high": getattr(r, f"rel{k}_high"),
                             "reliability_method": getattr(r, f"rel{k}_method"), "measured_seeds": r.seeds,
                             "tau_pub_sel": r.tau_pub_sel, "tau_pub_sel_low": r.tau_pub_sel_low,
                             "tau_pub_sel_high": r.tau_pub_sel_high, "main_job_min": minutes})
                break
    out = pd.DataFrame(rows)
    return out.sort_values("tau_pub_sel", ascending=False, ignore_index=True) if rows else out


def tau_gap(budgets, a, b, n_boot=1000):
    """tau(a) - tau(b) against the published ranking on the selection half, with a paired
    bootstrap CI (the same resampled architectures for both budgets): whether the rule's
    pick is better than a runner-up or only luckier."""
    from nas_eval import reference, stats

    ranks = reference.published_rank().reindex(SELECTION).to_numpy(float)
    va, vb = (_complete(budgets[budgets["budget"] == x], SELECTION).groupby("arch_id")["value"].mean()
              .reindex(SELECTION).to_numpy(float) for x in (a, b))

    def gap(idx):
        return stats.tau_b(va[idx], ranks[idx]) - stats.tau_b(vb[idx], ranks[idx])

    lo, hi = stats.bootstrap(gap, len(ranks), n_boot, seed=0)
    return stats.tau_b(va, ranks) - stats.tau_b(vb, ranks), lo, hi


def select(table):
    """The rule's pick as (summary row, k), or None if no budget qualifies (candidates())."""
    c = candidates(table)
    if c.empty:
        return None
    best = c.iloc[0]
    return table[table["budget"] == best["budget"]].iloc[0], int(best["seeds"])


def markdown(table):
    """Every measured budget as a markdown table (docs/fidelity_study.md)."""
    def ci(r, col):
        v, lo, hi = getattr(r, col), getattr(r, col + "_low"), getattr(r, col + "_high")
        return "–" if not np.isfinite(v) else f"{v:.2f} [{lo:.2f}, {hi:.2f}]"

    def rel(r, k):
        method = getattr(r, f"rel{k}_method")
        return ci(r, f"rel{k}") + ("" if method == "measured" else " SB")

    lines = ["| budget | source | seeds | steps | median / worst ppl | plateau | pair τ [CI] | reliability k=1 | "
             "k=2 | k=4 | k=8 | seeds for 0.8 | τ vs published, selection half [CI] | CPU s/run (here) | "
             "main job, min (k=2 / 3 / 4; calibrated) |",
             "|" + "---|" * 15]
    need = table.columns.get_loc("seeds_for_0.8")  # not a valid attribute name
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.budget} | {'this study' if r.source.startswith('this') else 'preset study'} | {r.seeds} | {r.steps} | "
            f"{r.gt_ppl_median:.0f} / {r.gt_ppl_max:.0f} | {r.plateau} of {r.archs} | {ci(r, 'pair_tau')} | "
            f"{rel(r, 1)} | {rel(r, 2)} | {rel(r, 4)} | {rel(r, 8)} | {r[need]:g} | "
            f"{ci(r, 'tau_pub_sel')} | {r.cpu_per_run_s:.1f}" + ("" if r.source.startswith("this") else f" ({r.cpu_here_s:.1f})")
            + f" | {r.main_job_cal_k2:.0f} / {r.main_job_cal_k3:.0f} / {r.main_job_cal_k4:.0f} |")
    return "\n".join(lines)


def candidates_markdown(cands, budgets):
    """The budgets the selection rule admits, best first, each with its tau gap to the pick."""
    lines = ["| budget | seeds k | reliability, k-seed mean [CI] | τ vs published, selection half [CI] | "
             "τ gap to the pick [paired CI] | main job, min (calibrated) |", "|" + "---|" * 6]
    for i, c in enumerate(cands.itertuples(index=False)):
        gap = "pick" if i == 0 else "{:+.2f} [{:+.2f}, {:+.2f}]".format(*tau_gap(budgets, c.budget, cands.budget[0]))
        sb = "" if c.reliability_method == "measured" else " SB"
        lines.append(f"| {c.budget} | {c.seeds} | {c.reliability:.2f} [{c.reliability_low:.2f}, "
                     f"{c.reliability_high:.2f}]{sb} | {c.tau_pub_sel:.2f} [{c.tau_pub_sel_low:.2f}, "
                     f"{c.tau_pub_sel_high:.2f}] | {gap} | {c.main_job_min:.0f} |")
    return "\n".join(lines)


def costed_markdown(costed):
    """The grid points costed, not ranked."""
    lines = ["| budget | runs done | predicted CPU s/run | main job, min (k=2 / 3; calibrated) |", "|---|---|---|---|"]
    for c in costed.itertuples(index=False):
        bound = " (lower bound: half-height products)" if c.note else ""
        lines.append(f"| {c.budget} | {c.runs_done} | {c.cpu_per_run_s_predicted:.0f}{bound} | "
                     f"{c.main_job_cal_k2:.0f} / {c.main_job_cal_k3:.0f} |")
    return "\n".join(lines)


def plot(table, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker below)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for (source, flat), g in table.assign(flat=table["plateau"] > 0).groupby(["source", "flat"], sort=False):
        marker = "o" if source.startswith("this") else "s"
        color = "C0" if source.startswith("this") else "C1"
        label = source + (", some archs on the plateau (open)" if flat else "")
        for ax, col in ((axes[0], "rel2"), (axes[1], "tau_pub_sel")):
            ax.errorbar(g["cpu_here_s"], g[col], yerr=[g[col] - g[col + "_low"], g[col + "_high"] - g[col]],
                        fmt=marker, capsize=2, alpha=0.8, label=label, color=color,
                        mfc="none" if flat else color)
            for r in g.itertuples(index=False):
                if source.startswith("this") or r.epochs in (4, 8):
                    ax.annotate(r.budget.split(" (")[0].replace("preset-", ""), (r.cpu_here_s, getattr(r, col)),
                                fontsize=6, xytext=(3, 3), textcoords="offset points")
    axes[0].axhline(TARGET, color="k", ls="--", lw=0.8)
    axes[1].axhline(0.6, color="k", ls="--", lw=0.8)
    axes[0].set_title("reliability of the 2-seed mean (selection half), 95% CI", fontsize=9)
    axes[1].set_title("Kendall tau vs the paper's full-scale ranking (selection half), 95% CI", fontsize=9)
    for ax in axes:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks([t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500) if t <= 2 * table["cpu_here_s"].max()])
        ax.set_xlabel("CPU seconds per standalone run on this machine (1 thread; preset study scaled)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("PTB, 2-node space, 16-architecture selection half; goal: reliability >= 0.8 and tau >= 0.6",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    from preset_study import measured, study_parser  # the grid-study command line both share

    ap = study_parser(__doc__, "docs/fidelity_study")
    ap.add_argument("--points", nargs="*", choices=sorted(POINTS),
                    help="only these grid points, run in this order (default: all)")
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="training seeds per point")
    ap.add_argument("--heldout", choices=sorted(POINTS), help="also run this point on the held-out half")
    ap.add_argument("--cost-only", action="store_true", help="also cost the COST_ONLY points (one run each)")
    args, runs_path, table = measured(ap, argv, measure, summarize)
    if table.empty:
        return
    table.to_csv(os.path.join(args.out, "summary.csv"), index=False, float_format="%.4g")
    plot(table, os.path.join(args.out, "fidelity_study.png"))
    runs = load_runs(runs_path)
    cands, costed = candidates(table), costed_table(runs, table)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(markdown(table) + "\n")
        f.write(f"\nMain-job minutes: the model x {table.attrs['calibration']:.3f} (measured / modelled "
                "`standard` main job).\n")
        if not cands.empty:
            f.write("\nAdmitted by the selection rule, best τ first:\n\n" + candidates_markdown(cands, _budgets(runs)) + "\n")
        if not costed.empty:
            f.write("\nCosted, not ranked:\n\n" + costed_markdown(costed) + "\n")
    if not costed.empty:
        costed.to_csv(os.path.join(args.out, "costed.csv"), index=False, float_format="%.4g")
    held = heldout_table(_budgets(runs))
    if not held.empty:
        held.to_csv(os.path.join(args.out, "heldout.csv"), index=False, float_format="%.4g")
        print(held.round(3).T.to_string())
    costs = cost_table(runs)
    if not costs.empty:
        costs.to_csv(os.path.join(args.out, "cost_only.csv"), index=False, float_format="%.4g")
        print(costs.round(1).to_string(index=False))
    with pd.option_context("display.width", 250, "display.max_columns", 60):
        print(table.round(3).to_string(index=False))
    chosen = select(table)
    print("chosen:", "none reaches the reliability goal within the budget" if chosen is None else
          f"{chosen[0].budget} with {chosen[1]} seeds (tau vs published on the selection half "
          f"{chosen[0].tau_pub_sel:.2f})")


if __name__ == "__main__":
    main()
