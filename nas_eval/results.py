"""The report's results: everything a report says, built from a study's store once.

:func:`build` reads the study (spec, status, ground truth, retrains, WS rankings, the
amount-of-sharing runs, searches and beliefs) and computes every number the report prints and
every series its figures draw; it returns one JSON-safe dict, the content of results.json
(NaN / inf become ``None``, keys are strings, so ``json.loads(json.dumps(build(s))) ==
build(s)``). Rendering (:mod:`nas_eval.render`: markdown, CSV tables, figures) reads that
dict alone, never the store: data flows one way, store -> results -> renderings.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from . import __version__, metrics, reference, search_phase
from .stats import paired_stats
from .summaries import summarize_ground_truth

__all__ = ["build", "NONFINITE_PPL", "PAPER", "PAPER_TAU"]

# An architecture whose WS perplexity is not finite (its state blew up with shared weights)
# is ranked last, tied with the others like it: the metrics need finite values.
NONFINITE_PPL = 1e12

def _paper_rows(table):
    """The rows of one of the paper's tables (nas_eval.reference) as the report prints them."""
    return [(name, f"{vm:.2f} ± {vs:.2f}", f"{tm:.2f} ± {ts:.2f}", f"{bv:.2f}", f"{bt:.2f}")
            for name, ((vm, vs), (tm, ts), bv, bt) in table["rows"].items()]


# the paper's Tables 2 and 3 (nas_eval.reference), to set beside ours (valid / test ppl)
PAPER = {8: {"setting": "8-node space, 10 seeds, 1000 epochs, d = 850", "rows": _paper_rows(reference.TABLE_2)},
         2: {"setting": "2-node space, 10 seeds, 1000 epochs, d = 850", "rows": _paper_rows(reference.TABLE_3)}}
PAPER_TAU = ("the paper (2-node space, 10 WS seeds): best {best}, average {average}, worst {worst}"
             .format(**{k: f"{v:.3f}".replace("-", "−") for k, v in reference.WS_TAU.items()}))


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


def _ws_ranking(study, spec, gt_values, gt_finite, n_boot, n_perm, seed):
    """The WS ranking against the ground truth; ``gt_values``: mean ground-truth ppl with a
    non-finite mean ranked last (NONFINITE_PPL), ``gt_finite``: the finite means only."""
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
    last_vals = {}  # seed -> WS ppl at the last epoch (non-finite ranked last), for the figures
    for (s, epoch), g in ws.groupby(["seed", "epoch"], sort=True):
        vals, bad = _finite_ws(g.set_index("arch_id")["ws_ppl"])
        if int(epoch) == last:
            last_vals[int(s)] = vals
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
        result["rank_changes"] = _rank_changes(taus, last_vals, gt_values, len(gt_finite))
        result["mean_vs_gt"] = _mean_ws_vs_gt(last_vals, gt_finite)
    return result, ws


def _rank_changes(taus, last_vals, truth_ranked, n_finite):
    """Figure 4's data: the ground-truth top-10 and their WS ranks for the best, the average
    (τ nearest the mean) and the worst WS seed by τ (each seed once)."""
    order = sorted(taus, key=lambda s: (-taus[s], s))
    mean = np.mean(list(taus.values()))
    avg = min(order, key=lambda s: (abs(taus[s] - mean), s))
    chosen = []
    for label, s in (("best", order[0]), ("average", avg), ("worst", order[-1])):
        if s not in [c for _, c in chosen]:
            chosen.append((label, s))
    out = []
    for label, s in chosen:
        df = metrics.rank_changes(last_vals[s], truth_ranked, top=min(10, n_finite), align="inner")
        out.append({"label": label, "seed": s, "tau": taus[s],
                    "rows": df[["arch_id", "true_rank", "ws_rank", "change"]].to_dict(orient="records")})
    return out


def _mean_ws_vs_gt(last_vals, gt_finite):
    """The WS vs ground-truth scatter's data: the WS ppl averaged over seeds of the
    architectures finite under every seed, and its Kendall τ against the finite ground truth."""
    wide = pd.DataFrame(last_vals)
    finite = wide[(wide < NONFINITE_PPL).all(axis=1)]
    mean_ws = finite.mean(axis=1)
    common = mean_ws.index.intersection(gt_finite.index)
    tau = metrics.kendall_tau(mean_ws[common], gt_finite[common]) if len(common) >= 2 else math.nan
    return {"ws_ppl": [{"arch_id": int(i), "ws_ppl": float(v)} for i, v in mean_ws.items()],
            "tau": tau, "n_common": int(len(common)), "n_ws_seeds": int(wide.shape[1]),
            "dropped": int(len(wide) - len(finite))}


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

    gt_values = gt_finite = None
    if gt_summary is not None:  # a diverged standalone run ranks last too
        gt_values = gt_summary.set_index("arch_id")["valid_ppl_mean"].astype(float)
        gt_finite = gt_values[np.isfinite(gt_values)]
        gt_values = gt_values.where(np.isfinite(gt_values), NONFINITE_PPL)
    ws_rank, _ = _ws_ranking(study, spec, gt_values, gt_finite, n_boot, n_perm, seed)
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


