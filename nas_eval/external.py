"""Two checks of a ground truth for the Evidence section (issue 23): how repeatable it is
(the reliability of its seed mean, :mod:`nas_eval.reliability`) and whether it ranks like
the paper's full-scale ground truth (:mod:`nas_eval.reference`) -- its external validity.

Both return rows shaped like :func:`nas_eval.evidence.evidence`'s (``COLUMNS``), so the
report renders them with the other checks.

>>> import pandas as pd
>>> from nas_eval import reference
>>> truth = reference.published_rank().astype(float)      # a ground truth equal to the paper's
>>> rows = external_validity_rows(truth, columns=["check", "estimate", "statement"], n_boot=200)
>>> AGREES in rows[0]["statement"], rows[0]["estimate"]
(True, 1.0)
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import metrics, reference
from .reliability import reliability, reliability_line

__all__ = ["reliability_row", "external_validity_rows", "is_ptb", "AGREES", "DOES_NOT_AGREE", "TAU_GOAL"]

AGREES = "agrees with the paper's full-scale ranking"
DOES_NOT_AGREE = "does not agree with the paper's full-scale ranking"
# issue 23's goal: a ground truth that stands in for the paper's ranks like it to tau >= 0.6
TAU_GOAL = 0.6


def is_ptb(corpus) -> bool:
    """Whether a study's corpus (a name or a directory) is Penn Treebank."""
    return isinstance(corpus, str) and corpus.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1].lower() == "ptb"


def _row(columns, **kw):
    row = {c: None for c in columns}
    row.update(kw)
    return row


def reliability_row(truth_by_seed, columns, *, scope, threshold=0.8, n_boot=1000, ci=0.95, seed=0):
    """The ``reliability`` row: the Spearman correlation expected between this study's
    seed-mean ground truth and an independent one with as many seeds (CI), and the seeds
    needed for ``threshold``."""
    k = int(truth_by_seed["seed"].nunique())
    table = reliability(truth_by_seed, ks=(k,), n_boot=n_boot, ci=ci, seed=seed, target=threshold)
    r = table.iloc[0]
    ok = bool(np.isfinite(r["estimate"]) and r["estimate"] >= threshold)
    need = r["seeds_needed"]
    return _row(columns, scope=scope, check="reliability", subject=f"ground truth, mean of {k} seeds",
                n=int(r["n_archs"]), estimate=r["estimate"], low=r["low"], high=r["high"], threshold=threshold,
                passed=ok if np.isfinite(r["estimate"]) else None,
                seeds_needed=need if np.isfinite(need) else None,
                statement=reliability_line(table, k, threshold))


def _tau_published(values, published, n_boot, ci, seed):
    s = values.where(np.isfinite(values), np.finfo(float).max)
    return metrics.bootstrap_ci(metrics.kendall_tau, s, published, n_boot=n_boot, ci=ci, seed=seed, align="inner")


def _wording(b, level):
    nums = f"τ = {b.estimate:.2f}, {100 * level:g}% CI [{b.low:.2f}, {b.high:.2f}]"
    if np.isfinite(b.low) and b.low > 0:
        return f"{AGREES} ({nums})" + (f", below the {TAU_GOAL} a stand-in for it needs" if b.estimate < TAU_GOAL else "")
    return f"{DOES_NOT_AGREE}: {nums}" + (" includes 0" if np.isfinite(b.low) and b.low <= 0 <= b.high else "")


def external_validity_rows(truth, ws=None, gt_tau=None, *, columns, scope="2-node space", published=None,
                           n_boot=1000, ci=0.95, seed=0):
    """``external_validity`` rows: Kendall tau (bootstrap CI over architectures) between the
    paper's published full-scale ranking and the study's ground truth (``truth``: Series
    arch_id -> mean ppl), then each WS ranking (``ws``: {label: Series arch_id -> ppl}), each
    read against both references: ``gt_tau`` {label: tau against this study's ground truth}.
    ``published`` defaults to :func:`nas_eval.reference.published_rank` (2-node ids);
    ``columns``: the row keys (``nas_eval.evidence.COLUMNS``)."""
    published = reference.published_rank() if published is None else published
    source = f"({reference.RANKING_SETTING}; {reference.RANKING_SOURCE})"
    rows = []
    b = _tau_published(truth, published, n_boot, ci, seed)
    rows.append(_row(columns, scope=scope, check="external_validity", subject="ground truth vs published",
                     n=int(truth.index.isin(published.index).sum()), estimate=b.estimate, low=b.low, high=b.high,
                     threshold=TAU_GOAL, passed=bool(np.isfinite(b.low) and b.low > 0 and b.estimate >= TAU_GOAL),
                     statement=f"this study's ground truth {_wording(b, ci)} {source}"))
    paper = reference.WS_TAU
    for label, s in (ws or {}).items():
        s = s[s.index.isin(truth.index)]
        if len(s) < 3:
            continue
        w = _tau_published(s, published, n_boot, ci, seed)
        against_gt = (gt_tau or {}).get(label)
        gt_text = ("" if against_gt is None or not math.isfinite(against_gt) else
                   f"; against this study's ground truth τ = {against_gt:.2f}")
        rows.append(_row(columns, scope=scope, check="external_validity", subject=f"{label} vs published",
                         n=int(len(s)), estimate=w.estimate, low=w.low, high=w.high, threshold=0.0,
                         passed=bool(np.isfinite(w.low) and w.low > 0),
                         statement=f"{label}: {_wording(w, ci)}{gt_text} (the paper's WS rankings against its "
                                   f"ground truth: τ = {paper['worst']}..{paper['best']}, mean {paper['average']})"))
    return rows
