"""The report's renderings, drawn from :func:`nas_eval.results.build`'s dict alone (never from
the store): :func:`tables` (the CSVs), :func:`markdown` (report.md) and :func:`figures` (the PNGs).
Every table and figure states the preset, the seeds and the data that produced it
(:func:`stamp`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .results import NONFINITE_PPL, PAPER, PAPER_TAU

__all__ = ["tables", "markdown", "figures", "stamp", "FIGURES", "CSVS"]

FIGURES = ("fig3_learning_curves.png", "fig4_rank_changes.png", "fig5_sharing.png",
           "tau_vs_epoch.png", "ws_vs_gt.png", "belief_tau.png")
CSVS = ("table_policies.csv", "paired.csv", "picks.csv", "ground_truth.csv", "ws_tau.csv", "sharing.csv",
        "search_budget.csv", "belief_tau.csv", "picks_in_beliefs.csv")



def _seeds_text(seeds):
    return "[" + ", ".join(str(s) for s in seeds) + "]"


def _algorithm(policy, results):
    """Which algorithm a row of the policy table ran: the line its searches recorded
    (``policies.fidelity.describe``: preset and deviations from the paper)."""
    if policy == "random":
        return "random: the paper's baseline (one uniform draw per seed)"
    lines = {r["algorithm"] for r in (results.get("search_phase") or {}).get("info", [])
             if r.get("policy") == policy and r.get("algorithm")}
    return "; ".join(sorted(lines)) or "–"


def stamp(spec, seeds=None, what="seeds", recipe="train", space=None):
    """The line that says which preset, seeds and data produced a table or figure.
    ``recipe``: "train", "search" or "both" (ground truth with train, WS with search)."""
    seeds = spec.seeds if seeds is None else seeds
    space = space or f"{spec.n_nodes}-node space"
    if recipe == "both":
        recipes = f"train: {spec.train.describe()}; search: {spec.search.describe()}"
        if getattr(spec, "ws", None) is not None:  # the WS rankings' own recipe (the paper study)
            recipes += f"; ws: {spec.ws.describe()}"
    else:
        recipes = f"{recipe}: {getattr(spec, recipe).describe()}"
    return f"preset={spec.name}, {space}, {what}={_seeds_text(seeds)}, data={spec.corpus}; {recipes}"


SHARING_SPACE = "3-node subspace (nodes 1, 2 fixed)"


def _fixed_text(fixed):
    return ", ".join(f"node {k} = {v[0]} on node {v[1]}" for k, v in sorted(fixed.items(), key=lambda kv: int(kv[0])))



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


def _table_or(frame, empty, header, row):
    """``frame`` as a markdown table, one row ``row(record)`` per record, or the line ``empty``
    when it has no rows."""
    if frame.empty:
        return [empty, ""]
    return [_md_table(header, [row(r) for r in frame.to_dict(orient="records")]), ""]


def _section(title, caption):
    """A section's heading and its italic caption (what produced the numbers below)."""
    return [title, "", f"*{caption}*", ""]


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
                     _f(r.get("regret_mean")), _algorithm(r["policy"], results)])
    L += [_md_table(["policy", "n", "valid ppl", "test ppl", "best valid / test", "mean GT rank",
                     "mean regret", "algorithm (docs/fidelity.md)"], rows), ""]
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

    L += _section("## Paired statistics against random",
                  f"Per search seed s, the policy's pick against r_s. Win = the pick has a lower validation "
                  f"ppl; exact Wilcoxon signed-rank p (two-sided; the Evidence section's test, nas_eval.stats); "
                  f"mean difference (policy − random, negative = policy better) with a 95% bootstrap CI "
                  f"over seeds. {stamp(spec)}.")
    L += _table_or(t["paired"], "No policy besides random in this study: nothing to pair.",
                   ["policy", "n", "wins / ties / losses", "win rate", "Wilcoxon p", "mean diff valid [95% CI]",
                    "mean diff test [95% CI]"],
                   lambda r: [r["policy"], r["n"], f"{r['wins']} / {r['ties']} / {r['losses']}", _f(r["win_rate"]),
                              _p(r["wilcoxon_p"]),
                              f"{_f(r['mean_diff'])} [{_f(r['mean_diff_low'])}, {_f(r['mean_diff_high'])}]",
                              f"{_f(r['test_mean_diff'])} [{_f(r['test_mean_diff_low'])}, "
                              f"{_f(r['test_mean_diff_high'])}]"])

    L += _section("## Picks in the ground-truth ranking",
                  f"Each pick's rank by mean ground-truth validation ppl (1 = best of "
                  f"{results['space_size']:,}), percentile (100 = the true best, 0 = the worst) and regret "
                  f"(ground-truth ppl above the true best). {stamp(spec)}; ground truth over seeds "
                  f"{_seeds_text(results['gt_seeds'])}.")
    if not t["picks"].empty and results.get("ground_truth") is None:
        L += ["No ground truth: ranks, percentiles and regrets are not available.", ""]
    L += _table_or(t["picks"], "No retraining finished.",
                   ["policy", "seed", "arch id", "arch", "valid ppl", "test ppl", "GT rank", "percentile", "regret"],
                   lambda r: [r["policy"], r["seed"], r["arch_id"], f"`{r['arch']}`", _f(r["valid_ppl"]),
                              _f(r["test_ppl"]), _f(r["gt_rank"]), _f(r["percentile"], 1), _f(r["regret"])])

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


def figures(results, *args, out_dir=None):
    """The report's figures: ``{file name: matplotlib Figure}`` for those the results allow,
    drawn from ``results`` (:func:`nas_eval.results.build`'s dict) alone. With ``out_dir``
    they are written there as PNGs (and closed); without, returned open (e.g. to show in a
    notebook). The old form ``figures(study, results=None, out_dir=None)`` still works, with a
    DeprecationWarning (it builds the results when none are given)."""
    results, out_dir = _figures_args(results, args, out_dir)
    from . import plots

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
        truth = pd.Series({int(k): v["valid_ppl_mean"] for k, v in gt.items()}, dtype=float).dropna()
        if ws_rank.get("rank_changes"):
            changes = {f"{r['label']} WS seed {r['seed']} (τ = {r['tau']:.3f})": pd.DataFrame(r["rows"])
                       for r in ws_rank["rank_changes"]}
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
        mv = ws_rank.get("mean_vs_gt")
        if mv:
            mean_ws = pd.Series({r["arch_id"]: r["ws_ppl"] for r in mv["ws_ppl"]}, dtype=float)
            tau = math.nan if mv["tau"] is None else mv["tau"]
            name = "ws_vs_gt.png"
            title = (f"WS ppl (mean over {mv['n_ws_seeds']} WS seed(s), epoch {ws_rank['epoch']})\n"
                     f"vs ground truth: Kendall τ = {tau:.3f}, {mv['n_common']} architectures"
                     + (f"\n{mv['dropped']} arch(s) with non-finite WS ppl not shown" if mv["dropped"] else ""))
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




def _figures_args(results, args, out_dir):
    """(results, out_dir) from figures()'s new form or its deprecated (study, results, out_dir)."""
    if isinstance(results, dict):
        if args:
            raise TypeError("figures(results, out_dir=None): pass out_dir by name")
        return results, out_dir
    import warnings

    warnings.warn("figures(study, results, out_dir) is deprecated: build the results once "
                  "(nas_eval.report.build(study)) and call figures(results, out_dir=...)",
                  DeprecationWarning, stacklevel=3)
    study, given = results, (args[0] if args else None)
    if len(args) > 1:
        out_dir = args[1]
    if given is None:
        from .results import build

        given = build(study)
    return given, out_dir
