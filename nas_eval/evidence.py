"""Does a study's data carry its conclusions? Checks of the evidence, with numbers.

Pure analysis: NumPy, SciPy, pandas, :mod:`nas_eval.metrics` and :mod:`nas_eval.stats` only
(no C core), so a notebook can judge a study's tables on any machine. The statistics (tau-b,
the bootstrap, the exact signed-rank test, the power calculation) are :mod:`nas_eval.stats`'s;
:func:`evidence` runs one function per check, in the order below.

:func:`evidence` returns one row per check (a :class:`pandas.DataFrame`):

* ``noise_ceiling`` -- Kendall tau between ground-truth seeds (mean over seed pairs), with a
  percentile bootstrap CI over architectures, and whether it reaches ``ceiling_threshold``
  (0.8). Computed on the architectures that learned (see below).
* ``unigram_plateau`` (one summary row, then one ``plateau_arch`` row per architecture that
  did not learn) -- the plateau test: an architecture did not learn when one of its runs ends
  with a validation perplexity of at least ``(1 - margin)`` times the unigram perplexity of
  the training slice (:func:`unigram_perplexity`; ``margin`` = 0.2 by default, i.e. it is not
  even 20 % better than predicting every word by its training frequency). Such
  architectures are **excluded** from every ranking statistic below (and named, so the
  exclusion is visible).

  Why the end value and not the curve: runs on the plateau share their curve (1118.4,
  956.6, ... on PTB's first 50k tokens), but so do the first epochs of runs that learn later;
  the early curve does not tell them apart, the end value does.
* ``ws_plateau`` -- the same test on the WS perplexities: a WS ranking whose super-net has
  not left the plateau ranks noise.
* ``tau`` -- per WS seed and for the seed-averaged WS ranking: Kendall tau against the
  ground truth (learned architectures only), its bootstrap CI, and whether the CI excludes 0.
* ``reliability`` -- the Spearman correlation expected between the study's seed-mean ground
  truth and an independent one with as many seeds (CI), and the seeds needed for
  ``ceiling_threshold`` (:mod:`nas_eval.reliability`).
* ``external_validity`` -- for PTB studies of the 2-node space: Kendall tau (CI) between the
  paper's published full-scale ranking and the ground truth, then each WS ranking (read
  against both), worded "agrees / does not agree with the paper's full-scale ranking"
  (:mod:`nas_eval.external`).
* ``paired_test`` -- per policy: the paired test of policy vs random over seeds (two-sided
  exact Wilcoxon signed-rank p, :func:`nas_eval.stats.paired_stats`, the same test as the
  report's paired table, mean difference and its bootstrap CI), the smallest p the number of
  seeds allows (:func:`min_wilcoxon_p`), and the seeds needed to detect the observed mean
  difference with 80 % power (:func:`seeds_for_power`).

Every row has a ``statement``: the conclusion the numbers allow, worded by
:func:`verdict` ("not distinguishable at this scale" whenever the CI includes the null
value). :func:`evidence_markdown` renders the table as the report's "Evidence" section.
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from . import external, metrics, reference
from .stats import (bootstrap, min_seeds_for_p, min_wilcoxon_p, paired_differences, paired_stats,
                    seeds_for_power, tau_b, wilcoxon_exact_p)  # noqa: F401 (public here too)

__all__ = [
    "unigram_perplexity",
    "plateau_flags",
    "noise_ceiling_ci",
    "min_wilcoxon_p",
    "min_seeds_for_p",
    "wilcoxon_exact_p",
    "seeds_for_power",
    "supported",
    "verdict",
    "evidence",
    "study_evidence",
    "evidence_markdown",
    "COLUMNS",
    "NOT_DISTINGUISHABLE",
]

NOT_DISTINGUISHABLE = "not distinguishable at this scale"
COLUMNS = ["scope", "check", "subject", "n", "estimate", "low", "high", "threshold", "passed",
           "p_value", "p_min", "seeds_needed", "statement"]


# ----------------------------------------------------------------------------- plateau
def unigram_perplexity(train_tokens, valid_tokens, vocab_size: int, smoothing: float = 1.0) -> float:
    """Perplexity on ``valid_tokens`` of the unigram model of ``train_tokens``.

    Rule: ``p(w) = (count_train(w) + smoothing) / (len(train) + smoothing * vocab_size)``
    (add-one / Laplace smoothing by default, so a word unseen in the slice still gets
    probability), and ``ppl = exp(-mean(log p(valid)))``. This is what a language model that
    ignores its context can reach at best on the slice's statistics: the plateau every run
    starts on.

    >>> round(unigram_perplexity([0, 0, 1, 1], [0, 1], vocab_size=2), 6)
    2.0
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive integer, got {vocab_size!r}")
    if not (isinstance(smoothing, (int, float)) and math.isfinite(smoothing) and smoothing >= 0):
        raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing!r}")
    tr = np.asarray(train_tokens)
    va = np.asarray(valid_tokens)
    for name, arr in (("train_tokens", tr), ("valid_tokens", va)):
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D sequence of token ids")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= vocab_size:
            raise ValueError(f"{name} holds token ids outside 0..{vocab_size - 1}")
    counts = np.bincount(tr, minlength=vocab_size).astype(np.float64) + smoothing
    with np.errstate(divide="ignore"):  # a zero count with smoothing 0 is caught below
        logp = np.log(counts) - math.log(counts.sum())
    lp = logp[va]
    if not np.all(np.isfinite(lp)):
        raise ValueError("a validation token never occurs in train_tokens and smoothing is 0: "
                         "its unigram probability is 0 (use smoothing > 0)")
    return float(math.exp(-lp.mean()))


def _tidy(values, value_col="value") -> pd.DataFrame:
    """-> DataFrame(arch_id, seed, value) from a tidy frame, a Series/dict by arch id (one
    seed, seed = 0), or a wide frame is not accepted (ambiguous)."""
    if isinstance(values, pd.DataFrame):
        if "arch_id" not in values.columns:
            raise ValueError("a ground-truth/WS table needs an 'arch_id' column")
        col = next((c for c in (value_col, "value", "valid_ppl", "ws_ppl") if c in values.columns), None)
        if col is None:
            raise ValueError("the table needs a 'value', 'valid_ppl' or 'ws_ppl' column")
        seed = values["seed"] if "seed" in values.columns else 0
        out = pd.DataFrame({"arch_id": values["arch_id"].to_numpy(), "seed": seed,
                            "value": pd.to_numeric(values[col], errors="coerce").astype(float)})
        return out.reset_index(drop=True)
    if isinstance(values, (pd.Series, Mapping)):
        s = pd.Series(values) if isinstance(values, Mapping) else values
        return pd.DataFrame({"arch_id": s.index.to_numpy(), "seed": 0,
                             "value": pd.to_numeric(s, errors="coerce").astype(float).to_numpy()})
    raise ValueError("expected a DataFrame with arch_id (and seed) columns, or a Series/dict by arch id")


def plateau_flags(values, unigram_ppl: float, margin: float = 0.2) -> pd.DataFrame:
    """Which architectures did not learn: the plateau test against the unigram perplexity.

    ``values``: a tidy DataFrame (``arch_id``, ``seed``, and ``value`` / ``valid_ppl`` /
    ``ws_ppl``) or a Series/dict ``arch_id -> perplexity``. A **run** is on the plateau when
    its perplexity is ``>= (1 - margin) * unigram_ppl`` or not finite; an **architecture** is
    flagged when any of its runs is (its mean would mix noise into the ranking).

    Returns one row per architecture (canonical id order): ``arch_id``, ``runs``,
    ``plateau_runs``, ``worst`` (largest perplexity of its runs), ``ratio`` (worst /
    unigram_ppl), ``plateau`` (bool).
    """
    if not (isinstance(unigram_ppl, (int, float, np.floating)) and math.isfinite(unigram_ppl) and unigram_ppl > 1):
        raise ValueError(f"unigram_ppl must be a finite number > 1, got {unigram_ppl!r}")
    if not (isinstance(margin, (int, float)) and 0 <= margin < 1):
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    t = _tidy(values)
    v = t["value"].to_numpy()
    threshold = (1.0 - margin) * float(unigram_ppl)
    t = t.assign(on_plateau=~np.isfinite(v) | (np.nan_to_num(v, nan=np.inf) >= threshold),
                 value=np.where(np.isfinite(v), v, np.inf))
    g = t.groupby("arch_id", sort=False)
    out = pd.DataFrame({"runs": g.size(), "plateau_runs": g["on_plateau"].sum().astype(int),
                        "worst": g["value"].max()})
    try:
        out = out.sort_index()
    except TypeError:  # ids of mixed types: order by their text
        out = out.loc[sorted(out.index, key=lambda i: (type(i).__name__, str(i)))]
    out["ratio"] = out["worst"] / float(unigram_ppl)
    out["plateau"] = out["plateau_runs"] > 0
    return out.reset_index().rename(columns={"index": "arch_id"})


# ------------------------------------------------------------------------ noise ceiling
def noise_ceiling_ci(truth_by_seed, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                     archs=None) -> dict:
    """Noise ceiling (mean Kendall tau over pairs of ground-truth seeds) with a CI.

    ``truth_by_seed``: tidy DataFrame (``arch_id``, ``seed``, ``value``/``valid_ppl``);
    architectures missing from a seed are dropped; ``archs`` restricts to those ids. The CI
    is the percentile bootstrap over architectures (:func:`nas_eval.stats.bootstrap`: the
    same resample for every seed pair; ``numpy.random.default_rng(seed)``). Returns ``tau``,
    ``low``, ``high``, ``n_seeds``, ``n_archs``; NaN values with fewer than 2 seeds or 3
    architectures.
    """
    t = _tidy(truth_by_seed)
    if archs is not None:
        t = t[t["arch_id"].isin(list(archs))]
    wide = t.pivot_table(index="arch_id", columns="seed", values="value", aggfunc="mean").dropna()
    seeds = list(wide.columns)
    out = {"tau": math.nan, "low": math.nan, "high": math.nan, "n_seeds": len(seeds),
           "n_archs": int(wide.shape[0])}
    if len(seeds) < 2 or wide.shape[0] < 3:
        return out
    vals = np.where(np.isfinite(wide.to_numpy()), wide.to_numpy(), np.finfo(float).max)
    pairs = list(itertools.combinations(range(len(seeds)), 2))
    out["tau"] = float(np.nanmean([metrics.kendall_tau(vals[:, i], vals[:, j]) for i, j in pairs]))

    def mean_tau(idx):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample with every pair constant
            return np.nanmean(np.stack([tau_b(vals[idx, i], vals[idx, j]) for i, j in pairs]), axis=0)

    out["low"], out["high"] = bootstrap(mean_tau, vals.shape[0], n_boot, ci, seed)
    return out


# ---------------------------------------------------------------------------- wording
def supported(low: float, high: float, null: float = 0.0, direction: str = "above") -> bool:
    """Whether the interval ``[low, high]`` excludes ``null`` on the claimed side."""
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return False
    return bool(low > null) if direction == "above" else bool(high < null)


def verdict(claim: str, estimate: float, low: float, high: float, *, null: float = 0.0,
            direction: str = "above", name: str = "τ", digits: int = 2, level: float = 0.95) -> str:
    """The claim, worded only as far as the interval supports it.

    ``claim`` (e.g. "ranks best, as in the paper") is returned with its numbers when the
    ``level`` CI ``[low, high]`` lies entirely on the claimed side of ``null``
    (``direction="above"``: low > null; ``"below"``: high < null). Otherwise the text says
    "not distinguishable at this scale", with the numbers that show why.

    >>> verdict("WS ranks agree with the truth", 0.31, 0.05, 0.52)
    'WS ranks agree with the truth (τ = 0.31, 95% CI [0.05, 0.52])'
    >>> verdict("WS ranks agree with the truth", 0.12, -0.2, 0.4)
    'not distinguishable at this scale: τ = 0.12, 95% CI [-0.20, 0.40] includes 0'
    """
    def f(x):
        return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"

    pct = f"{100 * level:g}%"
    nums = f"{name} = {f(estimate)}, {pct} CI [{f(low)}, {f(high)}]"
    if supported(low, high, null, direction):
        return f"{claim} ({nums})"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{NOT_DISTINGUISHABLE}: {name} = {f(estimate)}, no CI (too few values)"
    return f"{NOT_DISTINGUISHABLE}: {nums} includes {null:g}" if low <= null <= high else \
        f"{NOT_DISTINGUISHABLE}: {nums} is on the other side of {null:g}"


# ---------------------------------------------------------------------------- evidence
def _row(**kw) -> dict:
    row = {c: None for c in COLUMNS}
    row.update(kw)
    return row


def _ws_by_seed(ws) -> dict:
    """{seed label: Series arch_id -> ws ppl} from a tidy WS table (last epoch, node sharing)
    or a single Series/dict."""
    if isinstance(ws, pd.DataFrame):
        t = ws
        if "sharing" in t.columns:
            t = t[t["sharing"] == "node"] if (t["sharing"] == "node").any() else t
        if "epoch" in t.columns:
            t = t[t["epoch"] == t["epoch"].max()]
        col = "ws_ppl" if "ws_ppl" in t.columns else "value"
        if "seed" not in t.columns:
            return {"ws": t.set_index("arch_id")[col].astype(float)}
        return {s: g.set_index("arch_id")[col].astype(float) for s, g in t.groupby("seed", sort=True)}
    s = pd.Series(ws) if isinstance(ws, Mapping) else ws
    return {"ws": s.astype(float)}


def _paired_pairs(paired) -> dict:
    """{policy: (policy values, random values)} from a dict or a retrains table
    (policy, seed, valid_ppl; 'random' is the baseline)."""
    if isinstance(paired, pd.DataFrame):
        t = paired
        col = "valid_ppl" if "valid_ppl" in t.columns else "value"
        base = t[t["policy"] == "random"].set_index("seed")[col]
        out = {}
        for p, g in t[t["policy"] != "random"].groupby("policy", sort=False):
            g = g.set_index("seed")[col]
            common = sorted(set(g.index) & set(base.index))
            out[p] = ([float(g[s]) for s in common], [float(base[s]) for s in common])
        return out
    return {p: (list(a), list(b)) for p, (a, b) in dict(paired).items()}


@dataclass(frozen=True)
class _Settings:
    """What every check of :func:`evidence` reads (its keyword arguments)."""

    scope: str
    unigram_ppl: float | None
    margin: float
    ceiling_threshold: float
    n_boot: int
    ci: float
    alpha: float
    power: float
    max_seeds: int
    n_sim: int
    seed: int

    @property
    def plateau_threshold(self) -> float:
        return (1 - self.margin) * self.unigram_ppl

    def row(self, **kw) -> dict:
        return _row(scope=self.scope, **kw)


def _plateau_check(gt: pd.DataFrame, s: _Settings) -> tuple[list, list]:
    """unigram_plateau and one plateau_arch row per architecture that did not learn; and the
    ids of those architectures (excluded from every ranking statistic after it)."""
    if s.unigram_ppl is None:
        return [s.row(check="unigram_plateau", subject="ground truth",
                      statement="plateau test skipped: no unigram perplexity given")], []
    flags = plateau_flags(gt, s.unigram_ppl, s.margin)
    bad = flags[flags["plateau"]]
    thr, n_all = s.plateau_threshold, int(len(flags))
    rows = [s.row(check="unigram_plateau", subject="ground truth", n=n_all, estimate=float(len(bad)),
                  threshold=thr, passed=len(bad) == 0,
                  statement=(f"{len(bad)} of {n_all} architectures did not learn (a run at >= "
                             f"{thr:.1f} = {1 - s.margin:.0%} of the unigram perplexity {s.unigram_ppl:.1f})"
                             + ("; excluded from every ranking statistic below" if len(bad) else "")))]
    for r in bad.itertuples(index=False):
        rows.append(s.row(check="plateau_arch", subject=str(r.arch_id), n=int(r.runs), estimate=float(r.worst),
                          threshold=thr, passed=False,
                          statement=f"arch {r.arch_id}: {r.plateau_runs} of {r.runs} runs on the plateau "
                                    f"(worst {r.worst:.1f} = {r.ratio:.2f} x unigram); excluded"))
    return rows, bad["arch_id"].tolist()


def _noise_ceiling_check(gt: pd.DataFrame, excluded: list, s: _Settings) -> list:
    """noise_ceiling: do the ground-truth seeds agree (on the architectures that learned)?"""
    learned = [a for a in pd.unique(gt["arch_id"]) if a not in set(excluded)]
    nc = noise_ceiling_ci(gt, n_boot=s.n_boot, ci=s.ci, seed=s.seed, archs=learned)
    n_seeds = int(gt["seed"].nunique())
    thr = s.ceiling_threshold
    if n_seeds < 2 or nc["n_archs"] < 3:
        why = (f"{n_seeds} ground-truth seed(s) (needs 2)" if n_seeds < 2 else
               f"only {nc['n_archs']} architecture(s) learned (needs 3)")
        return [s.row(check="noise_ceiling", subject="ground truth", n=nc["n_archs"], threshold=thr,
                      passed=False if n_seeds >= 2 else None, statement=f"no noise ceiling: {why}")]
    ok = bool(np.isfinite(nc["tau"]) and nc["tau"] >= thr)
    ci_text = f"CI [{nc['low']:.2f}, {nc['high']:.2f}]"
    statement = (f"seeds agree (noise ceiling τ = {nc['tau']:.2f}, {ci_text}, >= {thr})" if ok else
                 f"ground truth is noisy: seeds agree only to τ = {nc['tau']:.2f} ({ci_text}) < {thr}; "
                 "rankings against it are bounded by that")
    if excluded:
        statement += (f"; {len(excluded)} plateau archs excluded (with them: τ = "
                      f"{noise_ceiling_ci(gt, n_boot=1, seed=s.seed)['tau']:.2f})")
    return [s.row(check="noise_ceiling", subject=f"ground truth, {nc['n_seeds']} seeds", n=nc["n_archs"],
                  estimate=nc["tau"], low=nc["low"], high=nc["high"], threshold=thr, passed=ok,
                  statement=statement)]


def _ws_plateau_check(by_seed: dict, s: _Settings) -> list:
    """ws_plateau: has the super-net left the plateau for every architecture?"""
    if s.unigram_ppl is None:
        return []
    allws = pd.concat([v.rename("value").rename_axis("arch_id").reset_index().assign(seed=k)
                       for k, v in by_seed.items()], ignore_index=True)
    flags = plateau_flags(allws, s.unigram_ppl, s.margin)
    nb, n = int(flags["plateau"].sum()), int(len(flags))
    return [s.row(check="ws_plateau", subject="WS ranking", n=n, estimate=float(nb),
                  threshold=s.plateau_threshold, passed=nb == 0,
                  statement=(f"the super-net left the plateau for all {n} architectures" if nb == 0 else
                             f"{nb} of {n} architectures still on the plateau under WS: "
                             "the super-net was not trained long enough to rank them"))]


def _ws_rankings(by_seed: dict) -> dict:
    """{subject: Series arch_id -> WS ppl}: each WS seed, and the mean over seeds if several."""
    series = dict(by_seed)
    if len(by_seed) > 1:
        series["mean over seeds"] = pd.concat(by_seed.values(), axis=1).mean(axis=1)
    return {{"ws": "WS ranking", "mean over seeds": "WS, mean over seeds"}.get(k, f"WS seed {k}"): v
            for k, v in series.items()}


def _tau_check(by_seed: dict, gt: pd.DataFrame, excluded: list, s: _Settings) -> list:
    """tau: per WS seed (and for the mean over seeds), Kendall τ against the ground truth of
    the architectures that learned, and whether its CI excludes 0."""
    truth = gt[~gt["arch_id"].isin(excluded)].groupby("arch_id")["value"].mean()
    truth = truth[np.isfinite(truth)]
    rows = []
    for subject, v in _ws_rankings(by_seed).items():
        v = v[v.index.isin(truth.index)]
        v = v.where(np.isfinite(v), np.finfo(float).max)
        if len(v) < 3:
            rows.append(s.row(check="tau", subject=subject, n=int(len(v)), passed=None,
                              statement="too few learned architectures for a rank correlation"))
            continue
        b = metrics.bootstrap_ci(metrics.kendall_tau, v, truth, n_boot=s.n_boot, ci=s.ci, seed=s.seed,
                                 align="inner")
        rows.append(s.row(check="tau", subject=subject, n=int(len(v)), estimate=b.estimate, low=b.low,
                          high=b.high, threshold=0.0, passed=supported(b.low, b.high, 0.0, "above"),
                          statement=verdict("the WS ranking agrees with the ground truth",
                                            b.estimate, b.low, b.high, level=s.ci)
                          + (f" ({len(excluded)} plateau archs excluded)" if excluded else "")))
    return rows


def _reliability_check(gt: pd.DataFrame, excluded: list, s: _Settings) -> list:
    """reliability: the seed-mean ground truth (of the architectures that learned) against an
    independent one with as many seeds, and the seeds needed for ``ceiling_threshold``."""
    learned = gt[~gt["arch_id"].isin(excluded)]
    if learned["seed"].nunique() < 2:
        return []  # the noise-ceiling row says why
    return [external.reliability_row(learned, COLUMNS, scope=s.scope, threshold=s.ceiling_threshold,
                                     n_boot=s.n_boot, ci=s.ci, seed=s.seed)]


def _external_validity_check(gt: pd.DataFrame, excluded: list, by_seed, rows: list, published, s: _Settings) -> list:
    """external_validity: the ground truth and every WS ranking against a published ranking,
    each WS ranking read beside its tau against this study's ground truth (``rows``)."""
    learned = gt[~gt["arch_id"].isin(excluded)]
    gt_tau = {r["subject"]: r["estimate"] for r in rows if r["check"] == "tau"}
    return external.external_validity_rows(
        learned.groupby("arch_id")["value"].mean(), _ws_rankings(by_seed) if by_seed is not None else None,
        gt_tau, columns=COLUMNS, scope=s.scope, published=published, n_boot=s.n_boot, ci=s.ci, seed=s.seed)


def _paired_check(paired, s: _Settings) -> list:
    """paired_test: per policy, the exact signed-rank test against random over seeds, the
    bootstrap CI of the mean difference, the smallest p the seeds allow and the seeds needed
    for ``power``."""
    rows = []
    for policy, (a, b) in _paired_pairs(paired).items():
        subject = f"{policy} vs random"
        try:
            d = paired_differences(a, b)
        except ValueError:
            raise ValueError(f"paired[{policy!r}]: policy and random values must align by seed") from None
        n = int(d.size)
        if n == 0:
            rows.append(s.row(check="paired_test", subject=subject, n=0, statement="no paired seeds"))
            continue
        r = paired_stats(a, b, n_boot=max(s.n_boot, 1000) * 10, ci=s.ci, seed=s.seed)
        p, (lo, hi), mean = r["wilcoxon_p"], r["mean_diff_ci"], r["mean_diff"]
        pmin = min_wilcoxon_p(n)
        pw = seeds_for_power(d, alpha=s.alpha, power=s.power, max_seeds=s.max_seeds, n_sim=s.n_sim, seed=s.seed)
        need = pw["n"]
        # a winner is named only when the CI of the mean difference excludes 0 on its side
        # AND the signed-rank test reaches alpha (a bootstrap over 5 seeds is too narrow
        # to be trusted alone)
        better = "below" if mean <= 0 else "above"
        who = f"{policy} beats random" if better == "below" else f"random beats {policy}"
        claim = verdict(who, mean, lo, hi, direction=better, name="mean Δppl (policy − random)", level=s.ci)
        if supported(lo, hi, 0.0, better) and p > s.alpha:
            claim = (f"{NOT_DISTINGUISHABLE}: mean Δppl (policy − random) = {mean:.2f}, "
                     f"{100 * s.ci:g}% CI [{lo:.2f}, {hi:.2f}], but Wilcoxon p = {p:.3g} > {s.alpha}")
        tail = (f"; with {n} seeds the smallest possible Wilcoxon p is {pmin:.3g}"
                + (f" (> {s.alpha}: this test cannot reach significance; needs >= {min_seeds_for_p(s.alpha)} seeds)"
                   if pmin > s.alpha else "")
                + (f"; ~{need} seeds for {s.power:.0%} power at the observed mean difference" if need else
                   f"; more than {s.max_seeds} seeds for {s.power:.0%} power at the observed mean difference"
                   if np.isfinite(pw["mean_diff"]) and pw["mean_diff"] != 0 else "; no difference observed"))
        rows.append(s.row(check="paired_test", subject=subject, n=n, estimate=mean, low=lo, high=hi,
                          threshold=s.alpha, passed=bool(p <= s.alpha), p_value=float(p), p_min=pmin,
                          seeds_needed=need, statement=claim + tail))
    return rows


def _checks_table(rows: list) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("n", "seeds_needed"):
        table[col] = pd.array([None if v is None or v != v else int(v) for v in table[col]], dtype="Int64")
    return table


def evidence(ground_truth=None, ws=None, paired=None, *, unigram_ppl: float | None = None,
             margin: float = 0.2, ceiling_threshold: float = 0.8, n_boot: int = 1000,
             ci: float = 0.95, alpha: float = 0.05, power: float = 0.8, max_seeds: int = 50,
             n_sim: int = 2000, seed: int = 0, scope: str = "study", published=None) -> pd.DataFrame:
    """The evidence checks of one study (or of any tables shaped like a study's), one row each.

    Parameters
    ----------
    ground_truth : tidy DataFrame ``arch_id, seed, valid_ppl`` (``Study.ground_truth()``,
        ``GroundTruth.runs``) or an object with a ``runs`` attribute holding one.
    ws : WS perplexities: a tidy DataFrame ``seed, epoch, arch_id, ws_ppl`` (``Study.ws()``;
        the last epoch and node-level sharing are used) or a Series/dict ``arch_id -> ppl``.
    paired : per policy, values over seeds of the policy's pick and of random's: a dict
        ``{policy: (policy_values, random_values)}`` aligned by seed, or a retrains table
        ``policy, seed, valid_ppl`` (``Study.retrains()``; 'random' is the baseline).
    unigram_ppl : the unigram perplexity of the training slice (:func:`unigram_perplexity`);
        without it the plateau tests are skipped (and said to be).
    margin : plateau margin (a run is on the plateau at ``>= (1 - margin) * unigram_ppl``).
    ceiling_threshold : the noise ceiling a ground truth must reach to be called real.
    n_boot, ci, seed : bootstrap resamples, CI level, seed of every random draw.
    alpha, power, max_seeds, n_sim : the paired tests' level and the power calculation.
    scope : a label put in the ``scope`` column (e.g. "2-node space", "sharing subspace").
    published : a published ranking (Series arch_id -> rank, lower is better;
        :func:`nas_eval.reference.published_rank`) to set the ground truth and every WS
        ranking beside: the ``external_validity`` rows (:mod:`nas_eval.external`).

    Returns a DataFrame with columns :data:`COLUMNS`: ``check`` (noise_ceiling,
    unigram_plateau, plateau_arch, ws_plateau, tau, reliability, external_validity,
    paired_test), ``subject``, ``n``
    (architectures or seeds), ``estimate`` / ``low`` / ``high`` (value and CI), ``threshold``,
    ``passed`` (True / False / None when not applicable), ``p_value``, ``p_min`` (smallest p the
    seeds allow), ``seeds_needed`` (80 % power), ``statement`` (the sentence the numbers allow).
    """
    s = _Settings(scope, unigram_ppl, margin, ceiling_threshold, n_boot, ci, alpha, power, max_seeds,
                  n_sim, seed)
    gt = None if ground_truth is None else _tidy(getattr(ground_truth, "runs", ground_truth), "valid_ppl")
    by_seed = None if ws is None else _ws_by_seed(ws)
    rows, excluded = [], []
    if gt is not None:
        rows, excluded = _plateau_check(gt, s)
        rows += _noise_ceiling_check(gt, excluded, s)
    if by_seed is not None:
        rows += _ws_plateau_check(by_seed, s)
        if gt is not None:
            rows += _tau_check(by_seed, gt, excluded, s)
    if gt is not None:
        rows += _reliability_check(gt, excluded, s)
        if published is not None:
            rows += _external_validity_check(gt, excluded, by_seed, rows, published, s)
    if paired is not None:
        rows += _paired_check(paired, s)
    return _checks_table(rows)


def study_evidence(study, corpus=None, **kwargs) -> pd.DataFrame:
    """:func:`evidence` of a :class:`nas_eval.Study`: its 2-node (or n-node) ground truth, WS
    ranking and retrains, and, where the study ran it, the amount-of-sharing subspace.

    ``corpus``: the study's corpus (``nas_eval.datasets.from_spec(study.spec.corpus)``),
    used for the unigram perplexity of the training slice (``spec.train.train_tokens`` /
    ``valid_tokens``); without it the plateau tests are skipped. The study is read through
    its public methods only (``spec``, ``ground_truth``, ``ws``, ``retrains``,
    ``sharing_ground_truth``, ``sharing_ws``).
    """
    spec = study.spec
    if spec is None:
        raise ValueError(f"{getattr(study, 'path', 'the study')} holds no study yet: run one first")
    uni = None
    if corpus is not None:
        tr, va = corpus.train, corpus.valid
        if spec.train.train_tokens:
            tr = tr[: spec.train.train_tokens]
        if spec.train.valid_tokens:
            va = va[: spec.train.valid_tokens]
        uni = unigram_perplexity(tr, va, corpus.vocab_size)

    def frame(fn):
        try:
            df = fn()
        except ValueError:
            return None
        df = getattr(df, "runs", df)  # a GroundTruth holds its runs
        return df if isinstance(df, pd.DataFrame) and not df.empty else None

    n_nodes = getattr(spec, 'n_nodes', None) or getattr(spec, 'nodes')
    # the paper published its full-scale ranking for PTB's 2-node space only
    published = reference.published_rank() if n_nodes == 2 and external.is_ptb(spec.corpus) else None
    parts = [evidence(frame(study.ground_truth), frame(study.ws), frame(study.retrains), unigram_ppl=uni,
                      scope=f"{n_nodes}-node space", published=published, **kwargs)]
    sgt, sws = frame(study.sharing_ground_truth), frame(study.sharing_ws)
    if sgt is not None or sws is not None:
        parts.append(evidence(sgt, sws, None, unigram_ppl=uni, scope="sharing subspace", **kwargs))
    return pd.concat(parts, ignore_index=True)


def _fmt(x, digits=2):
    if x is None or x is pd.NA or (isinstance(x, (float, np.floating)) and not np.isfinite(x)):
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "**no**"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{x:.{digits}f}" if abs(x) >= 10 ** -digits or x == 0 else f"{x:.2g}"


def evidence_markdown(table: pd.DataFrame, title: str = "## Evidence", caption: str = "") -> str:
    """The report's "Evidence" section from an :func:`evidence` table: one bullet per check
    (its statement), then the numbers as a table. Per-architecture plateau rows are folded
    into one line naming the architectures."""
    if not isinstance(table, pd.DataFrame) or not set(COLUMNS) <= set(table.columns):
        raise ValueError("expected the DataFrame returned by nas_eval.evidence.evidence()")
    lines = [title, "",
             "What this study's numbers can and cannot carry (nas_eval.evidence). A claim "
             "is stated only when its confidence interval supports it; otherwise it reads "
             f"\"{NOT_DISTINGUISHABLE}\".", ""]
    for scope, g in table.groupby("scope", sort=False):
        lines.append(f"**{scope}**")
        lines.append("")
        archs = g[g["check"] == "plateau_arch"]
        for r in g[g["check"] != "plateau_arch"].itertuples(index=False):
            line = f"- {r.check.replace('_', ' ')} ({r.subject}): {r.statement}"
            if r.check == "unigram_plateau" and len(archs):
                line += ": arch ids " + ", ".join(archs["subject"].astype(str))
            lines.append(line)
        lines.append("")
        body = g[g["check"] != "plateau_arch"]
        if caption:
            lines += [f"*{scope}: {caption}.*", ""]
        lines.append("| check | subject | n | estimate | CI | threshold | passed | p | min p | seeds for 80% power |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in body.itertuples(index=False):
            ci_text = f"[{r.low:.2f}, {r.high:.2f}]" if r.low is not None and np.isfinite(r.low) else "–"
            lines.append(f"| {r.check} | {r.subject} | {_fmt(r.n)} | {_fmt(r.estimate)} | {ci_text} | "
                         f"{_fmt(r.threshold)} | {_fmt(r.passed) if r.passed is not None else '–'} | "
                         f"{_fmt(r.p_value, 3)} | {_fmt(r.p_min, 3)} | {_fmt(r.seeds_needed)} |")
        lines.append("")
    return "\n".join(lines)
