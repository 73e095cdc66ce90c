"""The study's report: ``results.json``, ``report.md``, CSV tables and PNG figures.

>>> import nas_eval                                                  # doctest: +SKIP
>>> study = nas_eval.Study("runs/tiny")                              # doctest: +SKIP
>>> results = nas_eval.report.write(study, "runs/tiny/report")       # doctest: +SKIP

What it holds (docs/design.md §7-§9):

* the paper's Tables 2/3: mean ± std and best validation / test perplexity of each policy's
  retrained picks over the search seeds, next to the random architectures r_s trained with the
  same recipe and training seed, and the exhaustive best where the ground truth is known;
* paired statistics of each policy against random over seeds: win rate (seeds where the
  policy's pick has a *lower* validation perplexity than r_s), the exact Wilcoxon signed-rank p
  (:func:`nas_eval.stats.paired_stats`, the test the Evidence section uses too), and a
  bootstrap CI of the mean difference (policy − random; negative = the policy is better);
* each pick's ground-truth rank, percentile and regret;
* the WS ranking against the ground truth (Kendall τ per WS seed with a bootstrap CI and a
  permutation p, Spearman, sparse τ, τ by epoch, the noise ceiling);
* the amount-of-sharing table;
* figures: learning curves (Figure 3), rank changes under WS (Figure 4), amount of sharing
  (Figure 5), τ vs epoch, WS vs ground-truth perplexity.

Every table and figure states the preset, the seeds and the data that produced it. A part of
the study that was not run (e.g. ``gt_seeds = []``) is skipped and report.md says so.

Two steps, two modules: :func:`build` (:mod:`nas_eval.results`) reads the store once and
returns the content of results.json (JSON-safe: NaN / inf become ``None``, keys are strings,
so ``json.loads(json.dumps(build(s))) == build(s)``); :func:`tables`, :func:`markdown` and
:func:`figures` (:mod:`nas_eval.render`) draw from that dict alone.
``write(study, out_dir)`` does both and returns the dict plus ``files``.
Command line: ``nas-eval report STUDY_DIR [--out OUT_DIR]``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .render import CSVS, FIGURES, figures, markdown, stamp, tables  # noqa: F401 (the report's API)
from .results import NONFINITE_PPL, PAPER, PAPER_TAU, build  # noqa: F401
from .stats import paired_stats  # noqa: F401 (report.paired_stats, as before)

__all__ = ["build", "write", "tables", "figures", "markdown"]


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
    figs = figures(results, out_dir=out)
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
