"""The study's report: ``results.json``, ``report.md``, CSV tables and PNG figures.

>>> import nas_eval                                                  # doctest: +SKIP
>>> study = nas_eval.Study("runs/tiny")                              # doctest: +SKIP
>>> results = nas_eval.report.write(study, "runs/tiny/report")       # doctest: +SKIP

What it holds (docs/design.md §7-§9):

* the paper's Tables 2/3: mean ± std and best validation / test perplexity of each policy's
  retrained picks over the search seeds, next to the random architectures r_s trained with the
  same recipe and training seed, and the exhaustive best where the ground truth is known;
* paired statistics of each policy against random over seeds: win rate (seeds where the
  policy's pick has a *lower* validation perplexity than r_s), Wilcoxon signed-rank p, and a
  bootstrap CI of the mean difference (policy − random; negative = the policy is better);
* each pick's ground-truth rank, percentile and regret;
* the WS ranking against the ground truth (Kendall τ per WS seed with a bootstrap CI and a
  permutation p, Spearman, sparse τ, τ by epoch, the noise ceiling);
* the amount-of-sharing table;
* figures: learning curves (Figure 3), rank changes under WS (Figure 4), amount of sharing
  (Figure 5), τ vs epoch, WS vs ground-truth perplexity.

Every table and figure states the preset, the seeds and the data that produced it. A part of
the study that was not run (e.g. ``gt_seeds = []``) is skipped and report.md says so.

``build(study)`` returns the content of results.json (JSON-safe: NaN / inf become ``None``,
keys are strings, so ``json.loads(json.dumps(build(s))) == build(s)``).
``write(study, out_dir)`` writes everything and returns that dict plus ``files``.
Command line: ``nas-eval report STUDY_DIR [--out OUT_DIR]``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, metrics, search_phase
from .metrics import paired_stats
from .summaries import summarize_ground_truth

__all__ = ["build", "write", "tables", "figures", "markdown"]

# An architecture whose WS perplexity is not finite (its state blew up with shared weights)
# is ranked last, tied with the others like it: the metrics need finite values.
NONFINITE_PPL = 1e12

# docs/design.md §9: the paper's numbers, to set beside ours (valid / test ppl).
PAPER = {
    8: {"setting": "8-node space, 10 seeds, 1000 epochs, d = 850",
        "rows": [("DARTS", "63.29 ± 1.18", "60.70 ± 1.12", "61.82", "59.38"),
                 ("NAO", "63.22 ± 1.12", "60.79 ± 1.10", "61.59", "59.21"),
                 ("ENAS", "61.91 ± 0.50", "59.25 ± 0.47", "61.10", "58.95"),
                 ("Random", "62.50 ± 0.86", "60.01 ± 0.86", "60.69", "58.13")]},
    2: {"setting": "2-node space, 10 seeds, 1000 epochs, d = 850",
        "rows": [("DARTS", "71.29 ± 2.45", "68.74 ± 2.42", "", ""),
                 ("NAO", "68.66 ± 2.50", "66.03 ± 2.40", "", ""),
                 ("ENAS", "69.99 ± 0.0", "66.61 ± 0.0", "", ""),
                 ("Random", "69.69 ± 2.44", "67.21 ± 2.52", "", ""),
                 ("exhaustive best", "65.67 ± 0.21", "62.95 ± 0.18", "", "")]},
}
PAPER_TAU = "the paper (2-node space, 10 WS seeds): best 0.282, average −0.004, worst −0.116"

FIGURES = ("fig3_learning_curves.png", "fig4_rank_changes.png", "fig5_sharing.png",
           "tau_vs_epoch.png", "ws_vs_gt.png", "belief_tau.png")
CSVS = ("table_policies.csv", "paired.csv", "picks.csv", "ground_truth.csv", "ws_tau.csv", "sharing.csv",
        "search_budget.csv", "belief_tau.csv", "picks_in_beliefs.csv")


# --------------------------------------------------------------------------- helpers
def _jsonable(x):
    """numpy scalars -> Python, NaN/inf -> None, tuples -> lists, keys -> str."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, str):
        return x
    if x is pd.NA or x is pd.NaT:
        return None
    return str(x)


def _num(x):
    """A finite float or None."""
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _stats_of(values):
    """mean, std (ddof=1; None for one value), best (min) over the finite values."""
    v = np.asarray([x for x in values if _num(x) is not None], dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None}
    return {"n": int(v.size), "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else None, "min": float(v.min())}


def _finite_ws(series):
    """WS perplexities with non-finite values replaced by NONFINITE_PPL; and those ids."""
    s = pd.to_numeric(series, errors="coerce").astype(float)
    bad = s.index[~np.isfinite(s.to_numpy())].tolist()
    return s.where(np.isfinite(s), NONFINITE_PPL), bad


def _seeds_text(seeds):
    return "[" + ", ".join(str(s) for s in seeds) + "]"


def stamp(spec, seeds=None, what="seeds", recipe="train", space=None):
    """The line that says which preset, seeds and data produced a table or figure.
    ``recipe``: "train", "search" or "both" (ground truth with train, WS with search)."""
    seeds = spec.seeds if seeds is None else seeds
    space = space or f"{spec.n_nodes}-node space"
    if recipe == "both":
        recipes = f"train: {spec.train.describe()}; search: {spec.search.describe()}"
    else:
        recipes = f"{recipe}: {getattr(spec, recipe).describe()}"
    return f"preset={spec.name}, {space}, {what}={_seeds_text(seeds)}, data={spec.corpus}; {recipes}"


SHARING_SPACE = "3-node subspace (nodes 1, 2 fixed)"


def _fixed_text(fixed):
    return ", ".join(f"node {k} = {v[0]} on node {v[1]}" for k, v in sorted(fixed.items(), key=lambda kv: int(kv[0])))


# --------------------------------------------------------------------------- build
def _frame(fn):
    try:
        df = fn()
    except ValueError:
        return pd.DataFrame()
    return df if isinstance(df, pd.DataFrame) else pd.DataFrame()


def _per_seed(rows, seeds):
    """Per-seed lists (None where that seed's retraining is missing)."""
    by = {int(r.seed): r for r in rows.itertuples(index=False)} if not rows.empty else {}
    out = {"seeds": list(seeds), "valid_ppl": [], "test_ppl": [], "arch_id": [], "arch": [],
           "best_epoch": [], "curve": []}
    for s in seeds:
        r = by.get(int(s))
        out["valid_ppl"].append(_num(r.valid_ppl) if r is not None else None)
        out["test_ppl"].append(_num(r.test_ppl) if r is not None else None)
        out["arch_id"].append(int(r.arch_id) if r is not None else None)
        out["arch"].append(str(r.arch) if r is not None else None)
        out["best_epoch"].append(int(r.best_epoch) if r is not None else None)
        out["curve"].append([_num(v) for v in r.curve] if r is not None else None)
    return out


def _summary_row(name, per_seed):
    valid, test = per_seed["valid_ppl"], per_seed["test_ppl"]
    sv, st = _stats_of(valid), _stats_of(test)
    row = {"policy": name, "n": sv["n"], "valid_mean": sv["mean"], "valid_std": sv["std"],
           "test_mean": st["mean"], "test_std": st["std"], "best_valid": sv["min"],
           "best_valid_test": None, "best_valid_seed": None, "best_test": st["min"]}
    if sv["n"]:
        i = min((i for i, v in enumerate(valid) if _num(v) is not None), key=lambda i: valid[i])
        row["best_valid_test"] = _num(test[i])
        row["best_valid_seed"] = per_seed["seeds"][i]
    return row


def _ground_truth(study, spec):
    runs = _frame(lambda: study.ground_truth().runs)
    if runs.empty:
        return None, None, None, None, None
    runs = runs.copy()
    runs["valid_ppl"] = pd.to_numeric(runs["valid_ppl"], errors="coerce").astype(float)
    summary = summarize_ground_truth(runs)
    gt = {}
    for r in summary.itertuples(index=False):
        gt[int(r.arch_id)] = {"arch": r.arch, "valid_ppl_mean": _num(r.valid_ppl_mean),
                              "valid_ppl_std": _num(r.valid_ppl_std),
                              "test_ppl_mean": _num(r.test_ppl_mean), "test_ppl_std": _num(r.test_ppl_std),
                              "seeds": int(r.seeds), "rank": int(r.rank)}
    gt = dict(sorted(gt.items()))
    best = summary.iloc[0]
    exhaustive = {"arch_id": int(best.arch_id), "arch": best.arch,
                  "valid_ppl_mean": _num(best.valid_ppl_mean), "valid_ppl_std": _num(best.valid_ppl_std),
                  "test_ppl_mean": _num(best.test_ppl_mean), "test_ppl_std": _num(best.test_ppl_std),
                  "seeds": int(best.seeds), "n_archs": int(len(summary)),
                  "complete": int(len(summary)) == len(spec.space)}
    ceiling = None
    if runs["seed"].nunique() >= 2:
        tidy = runs.rename(columns={"valid_ppl": "value"})[["arch_id", "seed", "value"]]
        tidy = tidy.assign(value=tidy["value"].where(np.isfinite(tidy["value"]), NONFINITE_PPL))
        try:
            nc = metrics.noise_ceiling(tidy, align="inner")
            ceiling = {"mean": nc["mean"], "min": nc["min"], "max": nc["max"],
                       "pairs": [{"seed_a": a, "seed_b": b, "tau": t} for a, b, t in nc["pairs"]],
                       "leave_one_out": nc["leave_one_out"], "n_seeds": nc["n_seeds"],
                       "n_archs": nc["n_archs"]}
        except ValueError as e:
            ceiling = {"error": str(e)}
    return runs, summary, gt, exhaustive, ceiling


def _picks(retrains, summary, spec):
    """Per policy (and random), per seed: the pick and where it stands in the ground truth."""
    if retrains.empty:
        return {}
    values = summary.set_index("arch_id")["valid_ppl_mean"] if summary is not None else None
    n = len(values) if values is not None else 0
    best = float(values.min()) if n else None
    out = {}
    for policy, rows in retrains.groupby("policy", sort=False):
        recs = []
        for r in rows.sort_values("seed").itertuples(index=False):
            rec = {"seed": int(r.seed), "arch_id": int(r.arch_id), "arch": r.arch,
                   "valid_ppl": _num(r.valid_ppl), "test_ppl": _num(r.test_ppl),
                   "gt_valid_ppl_mean": None, "gt_rank": None, "percentile": None, "regret": None}
            if n and int(r.arch_id) in values.index:
                v = float(values[int(r.arch_id)])
                rank = int((values < v).sum()) + 1
                rec.update(gt_valid_ppl_mean=v, gt_rank=rank,
                           percentile=100.0 * (n - rank) / (n - 1) if n > 1 else 100.0,
                           regret=v - best)
            recs.append(rec)
        out[policy] = recs
    return out


def _ws_ranking(study, spec, gt_values, n_boot, n_perm, seed):
    ws = _frame(study.ws)
    if ws.empty:
        return None, None
    ws = ws[ws["sharing"] == "node"] if "sharing" in ws else ws
    result = {"epoch": None, "n_archs": None, "seeds": sorted(int(s) for s in ws["seed"].unique()),
              "kendall_tau": {}, "spearman": {}, "sparse_tau": {}, "per_seed": {}, "by_epoch": [],
              "summary": None, "nonfinite": {}, "nonfinite_value": NONFINITE_PPL,
              "ground_truth": gt_values is not None}
    last = int(ws["epoch"].max())
    result["epoch"] = last
    if gt_values is None:
        return result, ws
    truth = gt_values
    for (s, epoch), g in ws.groupby(["seed", "epoch"], sort=True):
        vals, bad = _finite_ws(g.set_index("arch_id")["ws_ppl"])
        if bad:
            result["nonfinite"].setdefault(f"{int(s)}@{int(epoch)}", sorted(int(i) for i in bad))
        try:
            if int(epoch) == last:
                rs = metrics.ranking_summary(vals, truth, n_boot=n_boot, n_perm=n_perm, seed=seed,
                                             align="inner")
                result["n_archs"] = rs["n_archs"]
                result["kendall_tau"][int(s)] = {"tau": rs["tau"], "low": rs["tau_ci"][0],
                                                 "high": rs["tau_ci"][1], "p_value": rs["tau_pvalue"]}
                result["spearman"][int(s)] = rs["spearman"]
                result["sparse_tau"][int(s)] = rs["sparse_tau"]
                result["per_seed"][int(s)] = {"rank_of_true_best": rs["rank_of_true_best"],
                                              "regret_of_top1": rs["regret_of_top1"],
                                              "precision_at_k": rs["precision_at_k"],
                                              "nonfinite": len(bad)}
                ci = rs["tau_ci"]
                tau = rs["tau"]
            else:
                tau, lo, hi = metrics.bootstrap_ci(metrics.kendall_tau, vals, truth, n_boot=n_boot,
                                                   seed=seed, align="inner")
                ci = (lo, hi)
            result["by_epoch"].append({"seed": int(s), "epoch": int(epoch), "tau": tau,
                                       "low": ci[0], "high": ci[1],
                                       "spearman": metrics.spearman(vals, truth, align="inner")})
        except ValueError as e:  # fewer than 2 common architectures
            result.setdefault("errors", []).append(f"seed {s} epoch {epoch}: {e}")
    taus = {s: v["tau"] for s, v in result["kendall_tau"].items() if _num(v["tau"]) is not None}
    if taus:
        vals = np.array(list(taus.values()))
        best = max(taus, key=taus.get)
        worst = min(taus, key=taus.get)
        result["summary"] = {"mean": float(vals.mean()),
                             "std": float(vals.std(ddof=1)) if len(vals) > 1 else None,
                             "best": taus[best], "best_seed": best, "worst": taus[worst],
                             "worst_seed": worst, "n_seeds": len(taus)}
    return result, ws


def _sharing(study, spec):
    if not spec.sharing:
        return None
    gt_runs = _frame(lambda: study.sharing_ground_truth().runs)
    ws = _frame(study.sharing_ws)
    if gt_runs.empty or ws.empty:
        return None
    from .sharing import sharing_summary, sharing_table

    ws = ws.copy()
    ws["ws_ppl"] = pd.to_numeric(ws["ws_ppl"], errors="coerce").astype(float)
    bad = ~np.isfinite(ws["ws_ppl"])
    nonfinite = {mode: sorted({int(i) for i in ws.loc[bad & (ws["sharing"] == mode), "arch_id"]})
                 for mode in ("node", "none")}
    ws["ws_ppl"] = ws["ws_ppl"].where(~bad, NONFINITE_PPL)
    node, none = ws[ws["sharing"] == "node"], ws[ws["sharing"] == "none"]
    if node.empty:
        return None
    table = sharing_table(summarize_ground_truth(gt_runs), node, none if not none.empty else None,
                          spec.sharing_fixed)
    try:
        summary = sharing_summary(table)
    except ValueError as e:
        summary = {"error": str(e)}
    # ranked last (above); the perplexity itself is not finite: None in the table
    for mode, col in (("node", "ws_ppl"), ("none", "ws_ppl_none")):
        if col in table and nonfinite[mode]:
            table[col] = table[col].astype(object).where(~table["arch_id"].isin(nonfinite[mode]), None)
    return {"table": table.to_dict(orient="records"), "summary": summary,
            "fixed": {str(k): list(v) for k, v in spec.sharing_fixed.items()},
            "gt_seeds": list(spec.sharing_gt_seeds), "ws_seeds": list(spec.sharing_ws_seeds),
            "epoch": int(node["epoch"].max()), "nonfinite": nonfinite,
            "nonfinite_value": NONFINITE_PPL}


def build(study, n_boot=1000, n_perm=2000, seed=0):
    """The content of results.json (see the module docstring). ``n_boot`` / ``n_perm``:
    bootstrap resamples and permutations of the ranking statistics (the paired statistics
    use 10 × ``n_boot``); ``seed`` seeds them, so the report is reproducible."""
    spec = study.spec
    if spec is None:
        raise ValueError(f"{study.path} holds no study yet: run one first")
    seeds = list(spec.seeds)
    res = {"nas_eval": __version__, "study": spec.describe(), "preset": spec.name, "space": spec.n_nodes,
           "space_size": len(spec.space), "seeds": seeds, "train_seed": spec.train_seed,
           "gt_seeds": list(spec.gt_seeds), "ws_seeds": list(spec.ws_seeds),
           "data": {"corpus": spec.corpus,
                    "train": {k: getattr(spec.train, f"{k}_tokens") for k in ("train", "valid", "test")},
                    "search": {k: getattr(spec.search, f"{k}_tokens") for k in ("train", "valid", "test")}},
           "train_config": {"describe": spec.train.describe(), **spec.train.to_dict()},
           "search_config": {"describe": spec.search.describe(), **spec.search.to_dict()},
           "spec": spec.to_dict(), "notes": []}
    try:
        res["status"] = study.status().to_dict(orient="records")
    except Exception:  # noqa: BLE001 - the status table is informative only
        res["status"] = None

    # ground truth first: the picks and the WS ranking are measured against it
    _, gt_summary, gt, exhaustive, ceiling = _ground_truth(study, spec)
    res["ground_truth"] = gt
    res["exhaustive_best"] = exhaustive
    res["noise_ceiling"] = ceiling
    if gt is None:
        res["notes"].append("no ground truth (gt_seeds is empty or no ground-truth run finished): "
                            "ranks, percentiles, regrets and WS ranking metrics are skipped")

    retrains = _frame(study.retrains)
    policies = [p for p in spec.policies if p != "random"]
    res["policies"] = {}
    for p in policies:
        rows = retrains[retrains["policy"] == p] if not retrains.empty else retrains
        res["policies"][p] = _per_seed(rows, seeds)
    rows = retrains[retrains["policy"] == "random"] if not retrains.empty else retrains
    res["random"] = _per_seed(rows, seeds)
    if retrains.empty:
        res["notes"].append("no retraining finished yet: the policy tables are empty")

    table = [_summary_row(p, res["policies"][p]) for p in policies] + [_summary_row("random", res["random"])]
    res["table"] = table
    res["paired"] = {}
    for p in policies:
        v = paired_stats(res["policies"][p]["valid_ppl"], res["random"]["valid_ppl"], n_boot=10 * n_boot, seed=seed)
        t = paired_stats(res["policies"][p]["test_ppl"], res["random"]["test_ppl"], n_boot=10 * n_boot, seed=seed)
        res["paired"][p] = {**v, "test": t}

    res["picks"] = _picks(retrains, gt_summary, spec)
    for row in table:
        ranks = [r["gt_rank"] for r in res["picks"].get(row["policy"], []) if r["gt_rank"] is not None]
        regrets = [r["regret"] for r in res["picks"].get(row["policy"], []) if r["regret"] is not None]
        row["gt_rank_mean"] = float(np.mean(ranks)) if ranks else None
        row["regret_mean"] = float(np.mean(regrets)) if regrets else None

    gt_values = None
    if gt_summary is not None:  # a diverged standalone run ranks last too
        gt_values = gt_summary.set_index("arch_id")["valid_ppl_mean"].astype(float)
        gt_values = gt_values.where(np.isfinite(gt_values), NONFINITE_PPL)
    ws_rank, _ = _ws_ranking(study, spec, gt_values, n_boot, n_perm, seed)
    res["ws_ranking"] = ws_rank
    if ws_rank is None:
        res["notes"].append("no WS ranking (ws_seeds is empty or no WS run finished)")
    elif ws_rank["nonfinite"]:
        res["notes"].append(
            f"some architectures had a non-finite WS perplexity (their state blew up with shared "
            f"weights): they are ranked last, tied, by replacing inf with {NONFINITE_PPL:g} "
            f"(seed@epoch: arch ids {ws_rank['nonfinite']})")

    res["sharing"] = _sharing(study, spec)
    if res["sharing"] is None:
        res["notes"].append("no amount-of-sharing experiment (sharing = false or not finished)")
    elif any(res["sharing"]["nonfinite"].values()):
        res["notes"].append(f"amount of sharing: non-finite WS perplexity (sharing: arch ids) "
                            f"{res['sharing']['nonfinite']}, ranked last, tied (inf -> {NONFINITE_PPL:g})")
    res["search_phase"] = _search_phase(study, gt_values)
    res["evidence"] = _evidence(study, spec, res["notes"], n_boot, seed)
    res["paper"] = {"setting": PAPER.get(spec.n_nodes, {}).get("setting"), "tau": PAPER_TAU}
    return _jsonable(res)


def _evidence(study, spec, notes, n_boot, seed):
    """The evidence checks (nas_eval.evidence): the corpus is read only where it is on this
    machine already (never downloaded for a report); without it the plateau tests are skipped."""
    from . import datasets, evidence

    try:
        corpus = datasets.from_spec(spec.corpus, root=os.environ.get("NAS_EVAL_DATA"), download=False)
    except (FileNotFoundError, ValueError, OSError) as e:
        corpus = None
        notes.append(f"evidence: the corpus {spec.corpus!r} is not on this machine ({e.__class__.__name__}), "
                     "so the unigram-plateau tests are skipped")
    try:
        table = evidence.study_evidence(study, corpus, n_boot=n_boot, seed=seed)
    except ValueError as e:
        notes.append(f"evidence: not available ({e})")
        return None
    return table.to_dict(orient="records")


def _search_phase(study, gt_values):
    """Budgets, beliefs-vs-ground-truth τ and picks in the beliefs (nas_eval.search_phase)."""
    searches = _frame(study.searches)
    if searches.empty:
        return None
    beliefs = _frame(study.beliefs)
    taus = search_phase.belief_tau(beliefs, gt_values)
    info = [{"policy": r["policy"], "seed": int(r["seed"]), **(r["info"] or {})}
            for r in searches.to_dict(orient="records") if r.get("info")]
    return {"budget": search_phase.budget_table(searches.drop(columns=["info"], errors="ignore")).to_dict(orient="records"),
            "belief_tau": taus.to_dict(orient="records"),
            "belief_tau_summary": search_phase.belief_tau_summary(taus).to_dict(orient="records"),
            "picks_in_beliefs": search_phase.picks_in_beliefs(beliefs, searches).to_dict(orient="records"),
            "info": info}


# --------------------------------------------------------------------------- tables
def tables(results):
    """The report's tables as DataFrames (the CSVs): policies, paired, picks, ground_truth,
    ws_tau, sharing. A table of a part that was not run is an empty DataFrame."""
    t = {}
    rows = [dict(r) for r in results["table"]]
    ex = results.get("exhaustive_best")
    if ex:
        rows.append({"policy": "exhaustive best", "n": ex["seeds"], "valid_mean": ex["valid_ppl_mean"],
                     "valid_std": ex["valid_ppl_std"], "test_mean": ex["test_ppl_mean"],
                     "test_std": ex["test_ppl_std"], "arch_id": ex["arch_id"], "gt_rank_mean": 1.0,
                     "regret_mean": 0.0})
    t["policies"] = pd.DataFrame(rows)
    paired = []
    for p, r in results["paired"].items():
        paired.append({"policy": p, "n": r["n"], "wins": r["wins"], "ties": r["ties"], "losses": r["losses"],
                       "win_rate": r["win_rate"], "wilcoxon_p": r["wilcoxon_p"], "mean_diff": r["mean_diff"],
                       "mean_diff_low": r["mean_diff_ci"][0], "mean_diff_high": r["mean_diff_ci"][1],
                       "test_win_rate": r["test"]["win_rate"], "test_wilcoxon_p": r["test"]["wilcoxon_p"],
                       "test_mean_diff": r["test"]["mean_diff"], "test_mean_diff_low": r["test"]["mean_diff_ci"][0],
                       "test_mean_diff_high": r["test"]["mean_diff_ci"][1]})
    t["paired"] = pd.DataFrame(paired)
    t["picks"] = pd.DataFrame([{"policy": p, **r} for p, recs in results["picks"].items() for r in recs])
    gt = results.get("ground_truth")
    t["ground_truth"] = (pd.DataFrame([{"arch_id": int(k), **v} for k, v in gt.items()])
                         .sort_values(["rank", "arch_id"]).reset_index(drop=True) if gt else pd.DataFrame())
    ws = results.get("ws_ranking")
    if ws and ws["kendall_tau"]:
        t["ws_tau"] = pd.DataFrame([
            {"seed": int(s), "epoch": ws["epoch"], **v, "spearman": ws["spearman"].get(s),
             "sparse_tau": ws["sparse_tau"].get(s), "rank_of_true_best": ws["per_seed"][s]["rank_of_true_best"],
             "regret_of_top1": ws["per_seed"][s]["regret_of_top1"], "nonfinite": ws["per_seed"][s]["nonfinite"]}
            for s, v in ws["kendall_tau"].items()])
    else:
        t["ws_tau"] = pd.DataFrame()
    sh = results.get("sharing")
    t["sharing"] = pd.DataFrame(sh["table"]) if sh else pd.DataFrame()
    sp = results.get("search_phase") or {}
    t["search_budget"] = pd.DataFrame(sp.get("budget", []))
    t["belief_tau"] = pd.DataFrame(sp.get("belief_tau", []))
    t["picks_in_beliefs"] = pd.DataFrame(sp.get("picks_in_beliefs", []))
    return t


def _f(x, digits=2):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    return f"{x:.{digits}f}"


def _pm(mean, std, digits=2):
    if mean is None:
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"


def _p(x):
    return "–" if x is None else (f"{x:.3g}" if x >= 1e-3 else f"{x:.1e}")


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(results, figures_written=()):
    """report.md's text from ``build``'s results."""
    from .spec import StudySpec

    spec = StudySpec.from_dict(results["spec"])
    seeds = results["seeds"]
    L = [f"# nas_eval report: study preset `{results['preset']}`", "",
         f"- **preset**: {results['preset']} · **space**: {results['space']} nodes "
         f"({results['space_size']:,} architectures) · **search seeds**: {_seeds_text(seeds)} · "
         f"**training seed**: {results['train_seed']}",
         f"- **data**: {results['data']['corpus']}",
         f"- **train recipe** (ground truth and retraining): {results['train_config']['describe']}",
         f"- **search recipe** (weight sharing): {results['search_config']['describe']}",
         f"- **ground-truth seeds**: {_seeds_text(results['gt_seeds'])} · **WS seeds**: "
         f"{_seeds_text(results['ws_seeds'])}",
         f"- **package**: nas_eval {results['nas_eval']}", ""]
    if spec.name != "paper":
        L += ["These numbers come from a reduced-scale preset (smaller d, fewer epochs, a slice of "
              "the corpus), not the paper's protocol; compare trends, not values.", ""]
    status = results.get("status")
    if status:
        undone = sum(r["jobs"] - r["done"] for r in status)
        if undone:
            L += [f"**The study is incomplete**: {undone} job(s) not done "
                  f"({', '.join(str(r['role']) + ': ' + str(r['done']) + '/' + str(r['jobs']) for r in status)}).", ""]
    if results["notes"]:
        L += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    if results.get("evidence"):
        from .evidence import evidence_markdown

        L += [evidence_markdown(pd.DataFrame(results["evidence"]), caption=stamp(spec, recipe="both")), ""]

    # Tables 2/3
    t = tables(results)
    L += ["## Policies against random (the paper's Tables 2/3)", "",
          f"*Final validation / test perplexity of each policy's pick and of the random architecture "
          f"r_s, retrained from scratch with the same recipe and training seed {results['train_seed']}; "
          f"mean ± std (ddof 1) over search seeds; best = the seed with the lowest validation ppl, "
          f"and its test ppl. {stamp(spec)}.*", ""]
    rows = []
    for r in t["policies"].to_dict(orient="records"):
        best = (f"{_f(r.get('best_valid'))} / {_f(r.get('best_valid_test'))}"
                if r.get("best_valid") is not None else "–")
        rows.append([r["policy"], _f(r["n"]), _pm(r["valid_mean"], r["valid_std"]),
                     _pm(r["test_mean"], r["test_std"]), best, _f(r.get("gt_rank_mean"), 1),
                     _f(r.get("regret_mean"))])
    L += [_md_table(["policy", "n", "valid ppl", "test ppl", "best valid / test", "mean GT rank",
                     "mean regret"], rows), ""]
    if "ws-random" in spec.policies:
        L += ["ws-random (a weight-sharing super-net trained with uniform sampling, its WS top-1 the "
              "pick) is this project's addition: the paper has no such row.", ""]
    if results.get("exhaustive_best"):
        ex = results["exhaustive_best"]
        L += [f"Exhaustive best: arch {ex['arch_id']} (`{ex['arch']}`), mean over "
              f"{ex['seeds']} ground-truth seed(s) of {ex['n_archs']} architectures"
              + ("" if ex["complete"] else " (**ground truth incomplete**)") + ".", ""]
    paper = PAPER.get(spec.n_nodes)
    if paper:
        L += [f"For comparison, the paper ({paper['setting']}):", "",
              _md_table(["policy", "valid ppl", "test ppl", "best valid", "best test"],
                        [[c or "–" for c in r] for r in paper["rows"]]), ""]

    L += ["## Paired statistics against random", "",
          f"*Per search seed s, the policy's pick against r_s. Win = the pick has a lower validation "
          f"ppl; Wilcoxon signed-rank (two-sided) p; mean difference (policy − random, negative = "
          f"policy better) with a 95% bootstrap CI over seeds. {stamp(spec)}.*", ""]
    if t["paired"].empty:
        L += ["No policy besides random in this study: nothing to pair.", ""]
    else:
        L += [_md_table(["policy", "n", "wins / ties / losses", "win rate", "Wilcoxon p",
                         "mean diff valid [95% CI]", "mean diff test [95% CI]"],
                        [[r["policy"], r["n"], f"{r['wins']} / {r['ties']} / {r['losses']}", _f(r["win_rate"]),
                          _p(r["wilcoxon_p"]),
                          f"{_f(r['mean_diff'])} [{_f(r['mean_diff_low'])}, {_f(r['mean_diff_high'])}]",
                          f"{_f(r['test_mean_diff'])} [{_f(r['test_mean_diff_low'])}, "
                          f"{_f(r['test_mean_diff_high'])}]"]
                         for r in t["paired"].to_dict(orient="records")]), ""]

    L += ["## Picks in the ground-truth ranking", "",
          f"*Each pick's rank by mean ground-truth validation ppl (1 = best of "
          f"{results['space_size']:,}), percentile (100 = the true best, 0 = the worst) and regret "
          f"(ground-truth ppl above the true best). {stamp(spec)}; ground truth over seeds "
          f"{_seeds_text(results['gt_seeds'])}.*", ""]
    if t["picks"].empty:
        L += ["No retraining finished.", ""]
    else:
        if results.get("ground_truth") is None:
            L += ["No ground truth: ranks, percentiles and regrets are not available.", ""]
        L += [_md_table(["policy", "seed", "arch id", "arch", "valid ppl", "test ppl", "GT rank",
                         "percentile", "regret"],
                        [[r["policy"], r["seed"], r["arch_id"], f"`{r['arch']}`", _f(r["valid_ppl"]),
                          _f(r["test_ppl"]), _f(r["gt_rank"]), _f(r["percentile"], 1), _f(r["regret"])]
                         for r in t["picks"].to_dict(orient="records")]), ""]

    L += ["## Ground truth", ""]
    if t["ground_truth"].empty:
        L += ["Skipped: no ground truth was run (gt_seeds is empty) or none finished.", ""]
    else:
        gt = t["ground_truth"]
        L += [f"*Every architecture trained standalone; mean ± std over seeds "
              f"{_seeds_text(results['gt_seeds'])}; top 10 of {len(gt)} (all in ground_truth.csv). "
              f"{stamp(spec, results['gt_seeds'], 'ground-truth seeds')}.*", "",
              _md_table(["rank", "arch id", "arch", "valid ppl", "test ppl"],
                        [[r["rank"], r["arch_id"], f"`{r['arch']}`", _pm(r["valid_ppl_mean"], r["valid_ppl_std"]),
                          _pm(r["test_ppl_mean"], r["test_ppl_std"])] for r in gt.head(10).to_dict(orient="records")]),
              ""]
        nc = results.get("noise_ceiling")
        if nc and "mean" in nc:
            L += [f"Noise ceiling (Kendall τ between ground-truth seeds): mean {_f(nc['mean'], 3)}, "
                  f"min {_f(nc['min'], 3)}, max {_f(nc['max'], 3)} over {len(nc['pairs'])} pair(s) of seeds.", ""]
        elif nc:
            L += [f"Noise ceiling: not available ({nc.get('error')}).", ""]
        else:
            L += ["Noise ceiling: needs at least 2 ground-truth seeds.", ""]

    L += ["## Weight-sharing ranking against the ground truth", ""]
    ws = results.get("ws_ranking")
    if ws is None:
        L += ["Skipped: no WS ranking was run (ws_seeds is empty) or none finished.", ""]
    elif t["ws_tau"].empty:
        L += ["Skipped: the WS ranking needs the ground truth to compare with.", ""]
    else:
        L += [f"*Kendall τ-b of the WS validation perplexities (super-net epoch {ws['epoch']}) against the "
              f"mean ground-truth validation perplexity, per WS seed, aligned by architecture id, with a 95% "
              f"bootstrap CI over architectures and a one-sided permutation p for τ > 0; sparse τ rounds the "
              f"ground truth to integers. {stamp(spec, results['ws_seeds'], 'WS seeds', 'search')}; "
              f"ground truth over seeds {_seeds_text(results['gt_seeds'])}.*", "",
              _md_table(["WS seed", "τ [95% CI]", "p (τ > 0)", "Spearman ρ", "sparse τ", "rank of true best",
                         "regret of WS top-1", "non-finite"],
                        [[r["seed"], f"{_f(r['tau'], 3)} [{_f(r['low'], 3)}, {_f(r['high'], 3)}]", _p(r["p_value"]),
                          _f(r["spearman"], 3), _f(r["sparse_tau"], 3), r["rank_of_true_best"],
                          _f(r["regret_of_top1"]), r["nonfinite"]]
                         for r in t["ws_tau"].to_dict(orient="records")]), ""]
        s = ws.get("summary")
        if s:
            L += [f"Over {s['n_seeds']} WS seed(s): best τ {_f(s['best'], 3)} (seed {s['best_seed']}), "
                  f"mean {_f(s['mean'], 3)}, worst {_f(s['worst'], 3)} (seed {s['worst_seed']}); "
                  f"{PAPER_TAU}.", ""]
        if ws["nonfinite"]:
            L += [f"Non-finite WS perplexities (seed@epoch: arch ids) {ws['nonfinite']} were replaced by "
                  f"{NONFINITE_PPL:g}, i.e. ranked last, tied.", ""]

    L += ["## Amount of sharing (the paper's §4.3.1, Figure 5)", ""]
    sh = results.get("sharing")
    if sh is None:
        L += ["Skipped: the amount-of-sharing experiment was not run (sharing = false) or has not finished.", ""]
    else:
        L += [f"*3-node subspace with {_fixed_text(sh['fixed'])}; node 3 enumerates its 12 choices. "
              f"shared = how many of W1, W2 node 3's input depends on. WS ppl: mean over WS seeds "
              f"{_seeds_text(sh['ws_seeds'])} at epoch {sh['epoch']}, node-level sharing and (none) the "
              f"no-sharing control; ground truth over seeds {_seeds_text(sh['gt_seeds'])}. "
              f"{stamp(spec, sh['ws_seeds'], 'WS seeds', 'both', SHARING_SPACE)}.*", ""]
        has_none = any("ws_rank_none" in r for r in sh["table"])
        header = ["WS rank", "arch id", "arch", "shared", "GT ppl", "GT rank", "WS ppl"] + \
                 (["WS rank (none)", "WS ppl (none)"] if has_none else [])
        rows = []
        bad = sh["nonfinite"]
        for r in sh["table"]:
            row = [r["ws_rank"], r["arch_id"], f"`{r['arch']}`", r["shared"], _f(r["gt_ppl"]), r["gt_rank"],
                   "inf" if r["arch_id"] in bad["node"] else _f(r["ws_ppl"])]
            if has_none:
                row += [r.get("ws_rank_none"),
                        "inf" if r["arch_id"] in bad["none"] else _f(r.get("ws_ppl_none"))]
            rows.append(row)
        L += [_md_table(header, rows), ""]
        sm = sh["summary"]
        if "mean_ws_rank_by_shared" in sm:
            by = ", ".join(f"{k} shared: {_f(v, 1)}" for k, v in sm["mean_ws_rank_by_shared"].items())
            from .evidence import verdict

            low, high = sm.get("tau_shared_vs_ws_rank_ci") or (None, None)
            claim = verdict("more sharing ranks worse, as in the paper", sm["tau_shared_vs_ws_rank"],
                            low, high, name="τ(shared, WS rank)", digits=3)
            L += [f"Mean WS rank by amount of sharing: {by}. τ(WS, ground truth) = {_f(sm['tau_ws_vs_gt'], 3)}; "
                  f"amount of sharing vs WS rank: {claim}"
                  + (f"; no-sharing control τ(WS, ground truth) = {_f(sm.get('tau_none_vs_gt'), 3)}"
                     if "tau_none_vs_gt" in sm else "") + ".", ""]

    L += _search_phase_markdown(results, spec, t)

    L += ["## Figures", ""]
    captions = _figure_captions(results)
    for name in FIGURES:
        if name in figures_written:
            L += [f"![{name}]({name})", "", f"*{captions[name]}*", ""]
        else:
            L += [f"- `{name}`: skipped ({_FIGURE_NEEDS[name]}).", ""]
    return "\n".join(L).rstrip() + "\n"


def _search_phase_markdown(results, spec, t):
    L = ["## Inside the search phase", ""]
    sp = results.get("search_phase")
    if not sp:
        return L + ["No search finished (the random policy needs none).", ""]
    L += [f"*What each policy's search spent, mean over its search seeds ({stamp(spec, recipe='search')}): "
          f"super-net steps, training tokens, validation tokens scored, wall time; policy-specific "
          f"costs follow. Compare policies at a known cost.*", ""]
    budget = t["search_budget"]
    cols = [c for c in budget.columns if c not in ("policy", "seeds")]
    L += [_md_table(["policy", "seeds"] + cols,
                    [[r["policy"], r["seeds"]] + [_f(r[c], 1) for c in cols]
                     for r in budget.to_dict(orient="records")]), ""]
    summary = pd.DataFrame(sp["belief_tau_summary"])
    if not summary.empty:
        last = summary.sort_values("epoch").groupby("policy").tail(1)
        L += ["*Kendall τ of each policy's own beliefs (ENAS: the controller's probability of every "
              "architecture; DARTS: the product of its edges' op probabilities; NAO: the predictor's "
              "score) against the mean ground-truth validation perplexity, at the last search epoch; "
              f"mean [min, max] over search seeds; ground truth over seeds {_seeds_text(results['gt_seeds'])}; "
              f"{stamp(spec, recipe='search')}. τ near 0 = the search does not learn the ranking it exploits.*", "",
              _md_table(["policy", "epoch", "τ mean [min, max]", "seeds"],
                        [[r["policy"], r["epoch"], f"{_f(r['mean'], 3)} [{_f(r['min'], 3)}, {_f(r['max'], 3)}]",
                          r["seeds"]] for r in last.to_dict(orient="records")]), ""]
    picks = t["picks_in_beliefs"]
    if not picks.empty:
        L += ["*Each pick in its policy's final belief: its share of the belief summed over the space "
              "(for ENAS, the controller's probability of the pick), the largest share of any architecture "
              f"(1.0 = collapsed onto one), and the pick's rank in the belief. {stamp(spec, recipe='search')}.*", "",
              _md_table(["policy", "seed", "arch id", "pick share", "top share", "pick rank"],
                        [[r["policy"], r["seed"], r["arch_id"], _f(r["pick_share"], 3), _f(r["top_share"], 3),
                          _f(r["pick_rank"])] for r in picks.to_dict(orient="records")]), ""]
    if sp["info"]:
        keys = sorted({k for r in sp["info"] for k in r} - {"policy", "seed"})
        L += [f"*What each search reported about itself. {stamp(spec, recipe='search')}.*", "",
              _md_table(["policy", "seed"] + keys,
                        [[r["policy"], r["seed"]] + [r.get(k, "–") for k in keys] for r in sp["info"]]), ""]
    return L


# --------------------------------------------------------------------------- figures
_FIGURE_NEEDS = {
    "belief_tau.png": "needs searches that record beliefs (ENAS, DARTS, NAO) and the ground truth",
    "fig3_learning_curves.png": "needs finished retraining runs",
    "fig4_rank_changes.png": "needs a WS ranking and the ground truth",
    "fig5_sharing.png": "needs the amount-of-sharing experiment",
    "tau_vs_epoch.png": "needs a WS ranking and the ground truth",
    "ws_vs_gt.png": "needs a WS ranking and the ground truth",
}


def _figure_captions(results):
    from .spec import StudySpec

    spec = StudySpec.from_dict(results["spec"])
    gt = f"ground truth over seeds {_seeds_text(results['gt_seeds'])}"
    ws = stamp(spec, results["ws_seeds"], "WS seeds", "both")
    sh = results.get("sharing") or {}
    return {
        "fig3_learning_curves.png": (f"Figure 3. {stamp(spec)}; training seed {results['train_seed']}; "
                                     f"random = r_s (black, dashed)"),
        "fig4_rank_changes.png": f"Figure 4. {ws}; {gt}",
        "fig5_sharing.png": (f"Figure 5. {stamp(spec, sh.get('ws_seeds', spec.sharing_ws_seeds), 'WS seeds', 'both', SHARING_SPACE)}; "
                             f"ground truth over seeds {_seeds_text(sh.get('gt_seeds', spec.sharing_gt_seeds))}"),
        "tau_vs_epoch.png": f"τ vs epoch. {ws}; {gt}; band = 95% bootstrap CI over architectures",
        "ws_vs_gt.png": f"WS vs ground truth. {ws}; {gt}",
        "belief_tau.png": (f"Beliefs vs ground truth. {stamp(spec, recipe='search')}; {gt}; "
                           f"band = worst to best search seed"),
    }


def figures(study, results=None, out_dir=None):
    """The report's figures: ``{file name: matplotlib Figure}`` for those the study allows.
    With ``out_dir`` they are written there as PNGs (and closed); without, returned open
    (e.g. to show in a notebook)."""
    from . import plots

    results = build(study) if results is None else results
    captions = _figure_captions(results)
    out = {}

    def path(name):
        return None if out_dir is None else str(Path(out_dir) / name)

    curves = {}
    for p, per in list(results["policies"].items()) + [("random", results["random"])]:
        c = [cv for cv in per["curve"] if cv]
        if c:
            curves[p] = [[v if v is not None else np.nan for v in cv] for cv in c]
    if curves:
        name = "fig3_learning_curves.png"
        out[name] = plots.learning_curves(
            curves, path(name), caption=captions[name],
            title="Figure 3: validation ppl while retraining, policies vs random")

    ws_rank = results.get("ws_ranking")
    gt = results.get("ground_truth")
    if ws_rank and gt and ws_rank["kendall_tau"]:
        truth = pd.Series({int(k): v["valid_ppl_mean"] for k, v in gt.items()}, dtype=float)
        truth_ranked = truth.fillna(NONFINITE_PPL)  # None = not finite: ranked last
        truth = truth.dropna()
        ws = _frame(study.ws)
        ws = ws[(ws["sharing"] == "node") & (ws["epoch"] == ws_rank["epoch"])]
        per_seed = {int(s): _finite_ws(g.set_index("arch_id")["ws_ppl"])[0] for s, g in ws.groupby("seed")}
        taus = {int(s): v["tau"] for s, v in ws_rank["kendall_tau"].items() if v["tau"] is not None}
        if taus:
            order = sorted(taus, key=lambda s: (-taus[s], s))
            mean = np.mean(list(taus.values()))
            avg = min(order, key=lambda s: (abs(taus[s] - mean), s))
            chosen = []
            for label, s in (("best", order[0]), ("average", avg), ("worst", order[-1])):
                if s not in [c for _, c in chosen]:
                    chosen.append((label, s))
            changes = {}
            for label, s in chosen:
                df = metrics.rank_changes(per_seed[s], truth_ranked, top=min(10, len(truth)), align="inner")
                changes[f"{label} WS seed {s} (τ = {taus[s]:.3f})"] = df
            name = "fig4_rank_changes.png"
            out[name] = plots.rank_changes(
                changes, path(name), caption=captions[name],
                title=f"Figure 4: the ground-truth top-10 architectures and their rank "
                      f"under WS (epoch {ws_rank['epoch']}); labels = arch ids")
        if ws_rank["by_epoch"]:
            name = "tau_vs_epoch.png"
            out[name] = plots.tau_vs_epoch(
                pd.DataFrame(ws_rank["by_epoch"]).astype({"low": float, "high": float}), path(name),
                caption=captions[name], title="Kendall τ of WS vs ground truth by super-net epoch")
        if per_seed:
            wide = pd.DataFrame(per_seed)
            finite = wide[(wide < NONFINITE_PPL).all(axis=1)]
            dropped = len(wide) - len(finite)
            mean_ws = finite.mean(axis=1)
            common = mean_ws.index.intersection(truth.index)
            tau = metrics.kendall_tau(mean_ws[common], truth[common]) if len(common) >= 2 else float("nan")
            name = "ws_vs_gt.png"
            title = (f"WS ppl (mean over {wide.shape[1]} WS seed(s), epoch {ws_rank['epoch']})\n"
                     f"vs ground truth: Kendall τ = {tau:.3f}, {len(common)} architectures"
                     + (f"\n{dropped} arch(s) with non-finite WS ppl not shown" if dropped else ""))
            out[name] = plots.ws_vs_ground_truth(mean_ws, truth, path(name), caption=captions[name],
                                                 title=title)

    summary = pd.DataFrame((results.get("search_phase") or {}).get("belief_tau_summary", []))
    if not summary.empty and summary["mean"].notna().any():
        name = "belief_tau.png"
        out[name] = plots.belief_tau(summary, path(name), caption=captions[name],
                                     title="Kendall τ of each policy's beliefs vs ground truth, by search epoch")

    sh = results.get("sharing")
    if sh:
        name = "fig5_sharing.png"
        out[name] = plots.sharing(pd.DataFrame(sh["table"]), path(name), caption=captions[name],
                                  title="Figure 5: amount of sharing, the 12 architectures in WS rank order "
                                        "(node-level sharing)")
    return out


# --------------------------------------------------------------------------- write
def write(study, out_dir, n_boot=1000, n_perm=2000, seed=0):
    """Write results.json, report.md, the CSVs and the PNGs into ``out_dir``; return the
    results dict with ``files`` (the names written)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = build(study, n_boot=n_boot, n_perm=n_perm, seed=seed)
    files = []
    for name, df in zip(CSVS, tables(results).values()):
        if not df.empty:
            df.to_csv(out / name, index=False)
            files.append(name)
        elif (out / name).exists():  # a stale table of an earlier report must not survive
            (out / name).unlink()
    figs = figures(study, results, out)
    files += [n for n in FIGURES if n in figs]
    for name in FIGURES:
        if name not in figs and (out / name).exists():
            (out / name).unlink()
    (out / "report.md").write_text(markdown(results, figs), encoding="utf-8")
    files.append("report.md")
    results = {**results, "files": files + ["results.json"]}
    tmp = out / ".results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, allow_nan=False), encoding="utf-8")
    os.replace(tmp, out / "results.json")
    return results
