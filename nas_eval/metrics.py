"""Ranking metrics: how well does a weight-sharing (WS) ranking match the ground truth?

Every metric compares two sets of **per-architecture** values:

* ``ws``    -- the score each architecture gets from the weight-sharing super-net
  (e.g. its validation perplexity with shared weights), and
* ``truth`` -- its ground-truth score (e.g. the mean validation perplexity over K
  standalone trainings).

The values are aligned **by architecture id**, never by list position of ids (the
reference code correlated lists of ids, which measures nothing).  Two input forms are
accepted, and both arguments must use the same form:

* keyed: a :class:`pandas.Series` (index = arch id) or a ``dict`` ``{arch_id: value}``.
  With ``align="strict"`` (the default) both must hold exactly the same ids, otherwise a
  ``ValueError`` names the ids missing on either side; with ``align="inner"`` only the
  ids present in both are used.  The aligned ids are put in a canonical order (sorted
  ascending; for ids that cannot be compared, sorted by ``(type name, str(id))``), so a
  result never depends on the order of the keys.  That order is also the documented
  tie-break wherever a metric must pick among equal values.
* positional: two equal-length 1-D sequences/arrays, assumed already aligned; the
  "ids" are then the positions ``0 .. n-1``.

At least 2 architectures must remain, and every value must be finite (NaN / inf raise a
``ValueError`` naming the offending ids).

Direction: lower perplexity is better, so ``higher_is_better=False`` is the default of
every metric that asks "which is best / top-k".  Both ``ws`` and ``truth`` must be in
the same direction (e.g. both perplexities).  The correlation coefficients (Kendall,
Spearman) do not depend on the direction as long as both sides share it: a positive
value means the WS ranking agrees with the true one.

Contents: :func:`kendall_tau`, :func:`spearman`, :func:`sparse_kendall_tau`,
:func:`precision_at_k`, :func:`top_k_overlap`, :func:`rank_of_true_best`,
:func:`regret_of_top1`, :func:`bootstrap_ci`, :func:`permutation_pvalue`,
:func:`noise_ceiling`, :func:`seed_spread`, :func:`ranking_summary`,
:func:`rank_changes`, :func:`paired_stats`.  The statistics under them (tau-b batched over
resamples, the percentile bootstrap, the paired test) live in :mod:`nas_eval.stats`; the
checks of a study's evidence in :mod:`nas_eval.evidence`.
"""
from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ._moved import moved
from .stats import DRAW_BLOCK as _DRAW_BLOCK
from .stats import bootstrap as _bootstrap
from .stats import paired_stats  # noqa: F401 (public here: nas_eval.metrics.paired_stats)
from .stats import tau_b as _kendall_tau_b

__all__ = [
    "kendall_tau",
    "spearman",
    "sparse_kendall_tau",
    "precision_at_k",
    "top_k_overlap",
    "rank_of_true_best",
    "regret_of_top1",
    "BootstrapCI",
    "bootstrap_ci",
    "permutation_pvalue",
    "noise_ceiling",
    "seed_spread",
    "ranking_summary",
    "rank_changes",
    "paired_stats",
]

_ALIGN_MODES = ("strict", "inner")


# --------------------------------------------------------------------------- alignment
def _is_keyed(x: Any) -> bool:
    return isinstance(x, (pd.Series, Mapping))


def _keyed_items(x: Any, name: str) -> dict:
    if isinstance(x, pd.Series):
        if not x.index.is_unique:
            dup = x.index[x.index.duplicated()].unique().tolist()
            raise ValueError(f"{name}: duplicate architecture ids {_fmt_ids(dup)}")
        return dict(zip(x.index.tolist(), x.tolist()))
    return dict(x)


def _canonical_order(ids) -> list:
    ids = list(ids)
    try:
        return sorted(ids)
    except TypeError:
        return sorted(ids, key=lambda i: (type(i).__name__, str(i)))


def _fmt_ids(ids, limit: int = 10) -> str:
    ids = list(ids)
    shown = ", ".join(repr(i) for i in ids[:limit])
    if len(ids) > limit:
        shown += f", ... ({len(ids)} in all)"
    return "[" + shown + "]"


def _to_float(values: list, ids: Sequence, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: values must be numbers ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected one scalar value per architecture")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name}: non-finite values (NaN/inf) for architecture ids "
            f"{_fmt_ids([ids[i] for i in np.flatnonzero(bad)])}"
        )
    return arr


def _aligned(ws: Any, truth: Any, align: str = "strict"):
    """Align ``ws`` and ``truth`` by architecture id.

    Returns ``(ws_values, truth_values, ids)``: two float64 arrays of equal length
    ``n >= 2`` and an object array of the ids, in canonical order (see module docstring).
    Raises ``ValueError`` on mismatched ids (strict), fewer than 2 common ids, duplicate
    ids, NaN/inf values, or mixing keyed and positional inputs.
    """
    if align not in _ALIGN_MODES:
        raise ValueError(f"align must be one of {_ALIGN_MODES}, got {align!r}")
    kw, kt = _is_keyed(ws), _is_keyed(truth)
    if kw != kt:
        raise ValueError(
            "ws and truth must both be keyed by architecture id (Series/dict) or both be "
            "positional arrays; got one of each, which cannot be aligned safely"
        )
    if kw:
        dw, dt = _keyed_items(ws, "ws"), _keyed_items(truth, "truth")
        only_ws = [i for i in dw if i not in dt]
        only_truth = [i for i in dt if i not in dw]
        if (only_ws or only_truth) and align == "strict":
            parts = []
            if only_truth:
                parts.append(f"missing from ws: {_fmt_ids(_canonical_order(only_truth))}")
            if only_ws:
                parts.append(f"missing from truth: {_fmt_ids(_canonical_order(only_ws))}")
            raise ValueError(
                "ws and truth hold different architecture ids ("
                + "; ".join(parts)
                + "); pass align='inner' to use only the common ids"
            )
        ids_list = _canonical_order(i for i in dw if i in dt)
        if len(ids_list) < 2:
            raise ValueError(
                f"need at least 2 architectures common to ws and truth, got {len(ids_list)}"
            )
        ids = np.empty(len(ids_list), dtype=object)
        ids[:] = ids_list
        a = _to_float([dw[i] for i in ids_list], ids_list, "ws")
        b = _to_float([dt[i] for i in ids_list], ids_list, "truth")
        return a, b, ids
    a_raw, b_raw = np.asarray(ws), np.asarray(truth)
    if a_raw.ndim != 1 or b_raw.ndim != 1:
        raise ValueError(
            f"positional inputs must be 1-D, got shapes {a_raw.shape} and {b_raw.shape}"
        )
    if a_raw.shape[0] != b_raw.shape[0]:
        raise ValueError(
            f"positional inputs must have equal length, got {a_raw.shape[0]} and "
            f"{b_raw.shape[0]}"
        )
    n = a_raw.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 architectures, got {n}")
    ids = np.arange(n)
    a = _to_float(a_raw, ids, "ws")
    b = _to_float(b_raw, ids, "truth")
    return a, b, ids


def _goodness(x: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Scores where larger is always better (no `100 - x` tricks: a sign flip)."""
    return x if higher_is_better else -x


def _ranks(x: np.ndarray, higher_is_better: bool, method: str = "min") -> np.ndarray:
    """1-based ranks, 1 = best; ``method`` as in :func:`scipy.stats.rankdata`."""
    return stats.rankdata(-_goodness(x, higher_is_better), method=method)


def _order_best_first(x: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Indices sorted best first; equal values keep canonical id order (stable sort)."""
    return np.argsort(-_goodness(x, higher_is_better), kind="stable")


# ------------------------------------------------------------------ vectorised kernels
def _spearman_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho along the last axis of ``(B, n)`` arrays (average ranks); NaN if constant."""
    rx = stats.rankdata(x, axis=-1, method="average")
    ry = stats.rankdata(y, axis=-1, method="average")
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    num = (rx * ry).sum(axis=-1)
    den = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


# ------------------------------------------------------------------------ correlations
def kendall_tau(ws: Any, truth: Any, *, align: str = "strict") -> float:
    """Kendall tau-b between per-architecture WS and ground-truth values.

    Rule: tau_b = (C - D) / sqrt((P - T_ws) (P - T_truth)), with C/D the concordant /
    discordant pairs, P = n(n-1)/2 and T the pairs tied on one side.  Identical to
    ``scipy.stats.kendalltau(ws, truth).statistic`` on the aligned values.  In [-1, 1];
    1 = same ranking, -1 = reversed, ~0 = unrelated (the paper: -0.004 on average).
    Returns NaN when either side is constant (tau undefined).

    Example
    -------
    >>> kendall_tau({"a": 60.0, "b": 65.0, "c": 70.0}, {"c": 71.0, "a": 62.0, "b": 64.0})
    1.0
    """
    a, b, _ = _aligned(ws, truth, align)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.kendalltau(a, b).statistic)


def spearman(ws: Any, truth: Any, *, align: str = "strict") -> float:
    """Spearman rank correlation (Pearson correlation of average ranks).

    Identical to ``scipy.stats.spearmanr(ws, truth).statistic`` on the aligned values;
    NaN when either side is constant.

    Example
    -------
    >>> round(spearman([1.0, 2.0, 3.0, 4.0], [10.0, 30.0, 20.0, 40.0]), 12)
    0.8
    """
    a, b, _ = _aligned(ws, truth, align)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(a, b).statistic)


def _sparsify(truth: np.ndarray, decimals: int | None, bin_width: float | None) -> np.ndarray:
    if decimals is not None and bin_width is not None:
        raise ValueError("give either decimals or bin_width, not both")
    if bin_width is not None:
        if not (bin_width > 0 and math.isfinite(bin_width)):
            raise ValueError(f"bin_width must be a positive finite number, got {bin_width!r}")
        return np.floor(truth / bin_width)
    return np.round(truth, 0 if decimals is None else int(decimals))


def sparse_kendall_tau(
    ws: Any,
    truth: Any,
    decimals: int | None = None,
    bin_width: float | None = None,
    *,
    align: str = "strict",
) -> float:
    """Sparse Kendall tau (Yu et al., 2020): tau-b after coarsening the ground truth.

    Rule: only the **ground-truth** values are coarsened -- the WS values are used as
    they are -- and then :func:`kendall_tau` (tau-b, ties handled) is computed:

    * ``decimals=d``: truth -> ``numpy.round(truth, d)`` (round half to even);
    * ``bin_width=w``: truth -> ``floor(truth / w)``, i.e. bins ``[k w, (k+1) w)``;
    * neither given: ``decimals=0`` -- perplexities rounded to the integer.

    Architectures whose coarsened truth is equal count as ties, so the pairs whose true
    difference is within the training noise stop counting as (dis)agreements.  Caveat:
    rounding/binning is a grid, not a tolerance: two values 0.02 apart that straddle a
    grid boundary (62.49 / 62.51 with ``decimals=0``) stay distinct, while two values
    up to almost one unit apart in the same cell become tied.  NaN when the coarsened
    truth is constant.

    Example
    -------
    >>> ws = [1.0, 2.0, 3.0, 4.0]
    >>> truth = [60.2, 60.1, 70.2, 70.1]        # WS swaps two pairs 0.1 ppl apart
    >>> round(kendall_tau(ws, truth), 3), round(sparse_kendall_tau(ws, truth), 3)
    (0.333, 0.816)

    (0.816 = 4 / sqrt(6 * 4): the two pairs tied in the coarsened truth no longer count
    as discordant; tau-b with ties on one side only stays below 1.)
    """
    a, b, _ = _aligned(ws, truth, align)
    return kendall_tau(a, _sparsify(b, decimals, bin_width))


# ------------------------------------------------------------------ top-k style metrics
def _check_k(k: Any, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] (number of architectures), got {k}")
    return int(k)


def _overlap(a: np.ndarray, b: np.ndarray, k: int, higher_is_better: bool) -> int:
    ws_top = _order_best_first(a, higher_is_better)[:k]
    kth_best = np.sort(_goodness(b, higher_is_better))[::-1][k - 1]
    in_true_top = _goodness(b, higher_is_better) >= kth_best
    return int(in_true_top[ws_top].sum())


def top_k_overlap(
    ws: Any, truth: Any, k: int, *, higher_is_better: bool = False, align: str = "strict"
) -> int:
    """Number of the WS top-k architectures that are also in the true top-k.

    Rule: WS top-k = the k best architectures by WS (equal WS values are taken in
    canonical id order).  True top-k = every architecture whose truth is at least as
    good as the k-th best truth value (tie-inclusive, so it may hold more than k
    architectures when truth values tie at the boundary).  Result in [0, k].

    Example
    -------
    >>> ws = {"a": 60.0, "b": 61.0, "c": 62.0, "d": 63.0}
    >>> truth = {"a": 70.0, "b": 64.0, "c": 66.0, "d": 65.0}   # true top-2: b, d
    >>> top_k_overlap(ws, truth, 2)                             # WS top-2: a, b
    1
    """
    a, b, _ = _aligned(ws, truth, align)
    return _overlap(a, b, _check_k(k, len(a)), higher_is_better)


def precision_at_k(
    ws: Any, truth: Any, k: int, *, higher_is_better: bool = False, align: str = "strict"
) -> float:
    """Fraction of the WS top-k that is in the true top-k: ``top_k_overlap / k``.

    See :func:`top_k_overlap` for the tie rules.  1.0 = WS finds the true top-k set
    (in any order); k=1: 1.0 iff the WS top-1 is a true best architecture.

    Example
    -------
    >>> precision_at_k([60.0, 61.0, 62.0, 63.0], [70.0, 64.0, 66.0, 65.0], 2)
    0.5
    """
    a, b, _ = _aligned(ws, truth, align)
    k = _check_k(k, len(a))
    return _overlap(a, b, k, higher_is_better) / k


def rank_of_true_best(
    ws: Any, truth: Any, *, higher_is_better: bool = False, align: str = "strict"
) -> int:
    """1-based rank under WS of the architecture that is best in the ground truth.

    Rule: WS ranks use the "min" (competition) method: rank = 1 + the number of
    architectures strictly better under WS, so tied WS values share the best of their
    positions.  If several architectures tie for the true best, the smallest of their WS
    ranks is returned.  1 = WS puts the true best first.

    Example
    -------
    >>> rank_of_true_best([60.0, 61.0, 62.0, 63.0], [70.0, 64.0, 66.0, 63.5])
    4
    """
    a, b, _ = _aligned(ws, truth, align)
    g = _goodness(b, higher_is_better)
    best = g == g.max()
    return int(_ranks(a, higher_is_better, "min")[best].min())


def regret_of_top1(
    ws: Any, truth: Any, *, higher_is_better: bool = False, align: str = "strict"
) -> float:
    """How much worse (in truth units, e.g. perplexity) the WS top-1 is than the true best.

    Rule: ``truth[ws_top1] - min(truth)`` for lower-is-better (``max(truth) -
    truth[ws_top1]`` otherwise), always >= 0.  If several architectures tie for the WS
    top-1, their truth values are averaged (the expected regret of a random tie-break).

    Example
    -------
    >>> round(regret_of_top1([60.0, 61.0, 62.0], [69.38, 65.0, 66.0]), 6)
    4.38
    """
    a, b, _ = _aligned(ws, truth, align)
    g = _goodness(a, higher_is_better)
    picked = b[g == g.max()].mean()
    best = b.max() if higher_is_better else b.min()
    return float(abs(picked - best))


# ----------------------------------------------------------------------- uncertainty
class BootstrapCI(NamedTuple):
    """Point estimate on all architectures and the percentile interval ``[low, high]``."""

    estimate: float
    low: float
    high: float


def _fast_kind(metric: Callable) -> str | None:
    if metric is kendall_tau:
        return "kendall"
    if metric is spearman:
        return "spearman"
    return None


def _batched(metric: Callable, kind: str | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Evaluate ``metric`` row-wise on ``(B, n)`` arrays (vectorised where possible)."""
    if kind == "kendall":
        return np.asarray(_kendall_tau_b(x, y), dtype=np.float64)
    if kind == "spearman":
        return _spearman_batch(x, y)
    out = np.empty(x.shape[0], dtype=np.float64)
    for r in range(x.shape[0]):
        try:
            out[r] = float(metric(x[r], y[r]))
        except (ValueError, FloatingPointError, ZeroDivisionError):
            out[r] = np.nan
    return out


def bootstrap_ci(
    metric: Callable,
    ws: Any,
    truth: Any,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    *,
    align: str = "strict",
) -> BootstrapCI:
    """Percentile bootstrap CI of ``metric`` over architectures.

    Rule: draw ``n_boot`` resamples of the n aligned architectures with replacement
    (``numpy.random.default_rng(seed)``; the same seed gives the same result), evaluate
    ``metric(ws_resample, truth_resample)`` on each (positional arrays; a duplicated
    architecture is tied with itself on both sides, which tau-b ignores), drop resamples
    where the metric is undefined (NaN, or it raises ``ValueError``, e.g. all values
    tied), and return the ``(1-ci)/2`` and ``(1+ci)/2`` quantiles of the rest.  The
    estimate is the metric on all architectures.  ``low``/``high`` are NaN if no resample
    is defined.  :func:`kendall_tau` and :func:`spearman` are evaluated vectorised;
    any other callable (e.g. ``functools.partial(precision_at_k, k=3)``) in a loop.

    Example
    -------
    >>> est, low, high = bootstrap_ci(kendall_tau, [1.0, 2, 3, 4, 5, 6], [10.0, 20, 30, 40, 50, 60])
    >>> round(est, 12), low, high
    (1.0, 1.0, 1.0)
    """
    a, b, _ = _aligned(ws, truth, align)
    estimate = float(metric(a, b))
    kind = _fast_kind(metric)
    low, high = _bootstrap(lambda idx: _batched(metric, kind, a[idx], b[idx]), len(a), n_boot, ci, seed)
    return BootstrapCI(estimate, low, high)


def permutation_pvalue(
    ws: Any,
    truth: Any,
    n_perm: int = 10000,
    seed: int = 0,
    metric: Callable = kendall_tau,
    *,
    align: str = "strict",
) -> float:
    """One-sided permutation p-value for "the WS ranking agrees with the truth" (tau > 0).

    Rule: the truth values are randomly permuted across architectures ``n_perm`` times
    (``numpy.random.default_rng(seed)``); ``p = (1 + #{perm: metric >= observed}) /
    (1 + n_perm)`` -- never 0, smallest possible ``1 / (1 + n_perm)``.  Permutation
    values within 1e-12 of the observed one count as ``>=`` (conservative).
    Permutations where the metric is undefined count as not ``>=``.  Raises
    ``ValueError`` if the observed metric is undefined (a constant side).

    Example
    -------
    >>> permutation_pvalue(list(range(20)), list(range(20)), n_perm=999)
    0.001
    """
    a, b, _ = _aligned(ws, truth, align)
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm!r}")
    observed = float(metric(a, b))
    if not math.isfinite(observed):
        raise ValueError("the metric is undefined on the observed data (constant values?)")
    kind = _fast_kind(metric)
    n = len(a)
    rng = np.random.default_rng(seed)
    tol = 1e-12 * max(1.0, abs(observed))
    count = 0
    base = np.arange(n)
    for start in range(0, n_perm, _DRAW_BLOCK):
        m = min(_DRAW_BLOCK, n_perm - start)
        perm = rng.permuted(np.tile(base, (m, 1)), axis=1)
        v = _batched(metric, kind, np.broadcast_to(a, (m, n)), b[perm])
        count += int(np.count_nonzero(v >= observed - tol))
    return (1 + count) / (1 + n_perm)


# ------------------------------------------------------------------ seeds and ceilings
def _by_seed(data: Any, align: str) -> tuple[list, pd.DataFrame]:
    """-> (seeds, wide DataFrame: index arch id (canonical order), one column per seed)."""
    if isinstance(data, pd.DataFrame):
        if {"arch_id", "seed", "value"} <= set(data.columns):
            if data.duplicated(["arch_id", "seed"]).any():
                dup = data.loc[data.duplicated(["arch_id", "seed"]), ["arch_id", "seed"]]
                raise ValueError(
                    "duplicate (arch_id, seed) rows: "
                    + _fmt_ids(list(dup.itertuples(index=False, name=None)))
                )
            groups = {
                s: g.set_index("arch_id")["value"] for s, g in data.groupby("seed", sort=False)
            }
        else:  # wide: index = arch ids, one column per seed
            groups = {c: data[c] for c in data.columns}
    elif isinstance(data, Mapping):
        groups = dict(data)
    else:
        raise ValueError(
            "expected a tidy DataFrame (arch_id, seed, value), a wide DataFrame "
            "(index arch id, a column per seed) or a dict seed -> Series/dict"
        )
    seeds = _canonical_order(groups)
    if len(seeds) < 1:
        raise ValueError("no seeds given")
    series = {}
    for s in seeds:
        g = groups[s]
        if not _is_keyed(g):
            raise ValueError(f"seed {s!r}: values must be keyed by arch id (Series or dict)")
        series[s] = _keyed_items(g, f"seed {s!r}")
    common = set.intersection(*(set(d) for d in series.values()))
    if align not in _ALIGN_MODES:
        raise ValueError(f"align must be one of {_ALIGN_MODES}, got {align!r}")
    if align == "strict":
        for s in seeds:
            extra = [i for i in series[s] if i not in common]
            if extra:
                raise ValueError(
                    f"seed {s!r} has architecture ids missing from other seeds: "
                    f"{_fmt_ids(_canonical_order(extra))}; pass align='inner' to use only "
                    "the common ids"
                )
    ids = _canonical_order(common)
    if len(ids) < 2:
        raise ValueError(f"need at least 2 architectures common to all seeds, got {len(ids)}")
    wide = pd.DataFrame(
        {s: _to_float([series[s][i] for i in ids], ids, f"seed {s!r}") for s in seeds},
        index=pd.Index(ids, dtype=object, name="arch_id"),
    )
    return seeds, wide


def noise_ceiling(truth_by_seed: Any, *, align: str = "strict") -> dict:
    """Kendall tau between independent ground-truth trainings: the noise ceiling.

    Two standalone trainings of the same architectures with different seeds do not rank
    them identically; their tau is the best a WS ranking can be expected to reach
    against a single ground-truth seed.

    Input: a tidy DataFrame with columns ``arch_id, seed, value``; a wide DataFrame
    (index = arch id, one column per seed); or a dict ``{seed: Series/dict by arch id}``.
    At least 2 seeds.

    Returns a dict:

    * ``pairs``: list of ``(seed_i, seed_j, tau)`` for every pair of seeds (i < j in
      canonical seed order);
    * ``mean``, ``min``, ``max``: over those pair taus;
    * ``leave_one_out``: ``{seed: tau(seed, mean of the other seeds)}`` -- how well one
      seed predicts the average of the rest (the ground truth is such an average);
    * ``n_seeds``, ``n_archs``.

    Example
    -------
    >>> noise_ceiling({0: {"a": 60.0, "b": 61.0, "c": 62.0},
    ...                1: {"a": 60.5, "b": 61.5, "c": 62.5}})["mean"]
    1.0
    """
    seeds, wide = _by_seed(truth_by_seed, align)
    if len(seeds) < 2:
        raise ValueError(f"noise_ceiling needs at least 2 seeds, got {len(seeds)}")
    pairs = [
        (si, sj, kendall_tau(wide[si].to_numpy(), wide[sj].to_numpy()))
        for si, sj in itertools.combinations(seeds, 2)
    ]
    taus = np.array([t for _, _, t in pairs])
    loo = {
        s: kendall_tau(wide[s].to_numpy(), wide.drop(columns=[s]).mean(axis=1).to_numpy())
        for s in seeds
    }
    return {
        "pairs": pairs,
        "mean": float(np.mean(taus)),
        "min": float(np.min(taus)),
        "max": float(np.max(taus)),
        "leave_one_out": loo,
        "n_seeds": len(seeds),
        "n_archs": int(wide.shape[0]),
    }


def seed_spread(
    ws_by_seed: Any, truth: Any, metric: Callable = kendall_tau, *, align: str = "strict"
) -> dict:
    """A metric of each WS seed against the ground truth, and its spread over seeds.

    ``ws_by_seed`` has the forms accepted by :func:`noise_ceiling` (one WS run per
    seed); ``truth`` is keyed by arch id.  Returns ``{"per_seed": {seed: value}, "mean",
    "std" (ddof=1; 0 for one seed), "best_seed", "best", "worst_seed", "worst"}`` --
    the paper's Figure 4 shows the best, average and worst WS seeds by tau (0.282,
    -0.004, -0.116).  ``best`` means the highest metric value.

    Example
    -------
    >>> seed_spread({0: {"a": 1.0, "b": 2.0}, 1: {"a": 2.0, "b": 1.0}},
    ...             {"a": 60.0, "b": 61.0})["per_seed"]
    {0: 1.0, 1: -1.0}
    """
    seeds, wide = _by_seed(ws_by_seed, align)
    per = {}
    for s in seeds:
        a, b, _ = _aligned(wide[s], truth, align)
        per[s] = float(metric(a, b))
    vals = np.array(list(per.values()))
    best = max(seeds, key=lambda s: per[s])
    worst = min(seeds, key=lambda s: per[s])
    return {
        "per_seed": per,
        "mean": float(vals.mean()),
        "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
        "best_seed": best,
        "best": per[best],
        "worst_seed": worst,
        "worst": per[worst],
    }


# ----------------------------------------------------------------------- summaries
def ranking_summary(
    ws: Any,
    truth: Any,
    k: Sequence[int] = (1, 3, 5, 10),
    n_boot: int = 1000,
    seed: int = 0,
    *,
    ci: float = 0.95,
    n_perm: int = 10000,
    sparse_decimals: int | None = None,
    sparse_bin_width: float | None = None,
    higher_is_better: bool = False,
    align: str = "strict",
) -> dict:
    """All ranking metrics of one WS ranking against the ground truth, in one dict.

    Keys: ``n_archs``; ``tau`` (Kendall tau-b), ``tau_ci`` ``(low, high)`` (percentile
    bootstrap over architectures, ``n_boot``, ``ci``, ``seed``); ``tau_pvalue`` (one-sided
    permutation p for tau > 0, ``n_perm``, ``seed``); ``spearman``; ``sparse_tau`` (truth
    rounded to ``sparse_decimals`` / binned by ``sparse_bin_width``, default integer);
    ``precision_at_k`` ``{k: value}`` for each requested k <= n_archs (larger k are
    skipped); ``rank_of_true_best``; ``regret_of_top1`` (truth units); ``higher_is_better``.

    Example
    -------
    >>> s = ranking_summary([1.0, 2, 3, 4, 5], [10.0, 20, 30, 40, 50], n_boot=100, n_perm=99)
    >>> round(s["tau"], 12), s["rank_of_true_best"], s["precision_at_k"]
    (1.0, 1, {1: 1.0, 3: 1.0, 5: 1.0})
    """
    a, b, _ = _aligned(ws, truth, align)
    n = len(a)
    hib = higher_is_better
    boot = bootstrap_ci(kendall_tau, a, b, n_boot=n_boot, ci=ci, seed=seed)
    try:
        p = permutation_pvalue(a, b, n_perm=n_perm, seed=seed)
    except ValueError:
        p = math.nan
    return {
        "n_archs": n,
        "tau": boot.estimate,
        "tau_ci": (boot.low, boot.high),
        "tau_pvalue": p,
        "spearman": spearman(a, b),
        "sparse_tau": sparse_kendall_tau(a, b, sparse_decimals, sparse_bin_width),
        "precision_at_k": {
            int(kk): precision_at_k(a, b, int(kk), higher_is_better=hib) for kk in k if kk <= n
        },
        "rank_of_true_best": rank_of_true_best(a, b, higher_is_better=hib),
        "regret_of_top1": regret_of_top1(a, b, higher_is_better=hib),
        "higher_is_better": hib,
    }


def rank_changes(
    ws: Any, truth: Any, top: int = 10, *, higher_is_better: bool = False, align: str = "strict"
) -> pd.DataFrame:
    """Rank changes of the true top-``top`` architectures under WS (the paper's Figure 4).

    One row per architecture among the ``top`` best in the ground truth (equal truth
    values in canonical id order), best first, with columns:

    * ``arch_id``;
    * ``true_rank``, ``ws_rank``: 1-based ranks among all n architectures, 1 = best,
      "min" method for ties;
    * ``change = true_rank - ws_rank``: negative = the architecture lost positions under
      WS (the paper's example: the true top-1 at WS rank 12 has change -11), positive =
      it gained positions; ``abs(change)`` is the paper's "absolute position change";
    * ``truth``, ``ws``: the values themselves.

    Example
    -------
    >>> rank_changes({"a": 3.0, "b": 1.0, "c": 2.0}, {"a": 60.0, "b": 61.0, "c": 62.0},
    ...              top=2)[["arch_id", "true_rank", "ws_rank", "change"]].values.tolist()
    [['a', 1, 3, -2], ['b', 2, 1, 1]]
    """
    a, b, ids = _aligned(ws, truth, align)
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    true_rank = _ranks(b, higher_is_better, "min").astype(np.int64)
    ws_rank = _ranks(a, higher_is_better, "min").astype(np.int64)
    sel = _order_best_first(b, higher_is_better)[: int(top)]
    return pd.DataFrame(
        {
            "arch_id": ids[sel],
            "true_rank": true_rank[sel],
            "ws_rank": ws_rank[sel],
            "change": true_rank[sel] - ws_rank[sel],
            "truth": b[sel],
            "ws": a[sel],
        }
    ).reset_index(drop=True)


# nas_eval.metrics.evidence was a forwarder to nas_eval.evidence.evidence (issue 18 removed it:
# evidence builds on metrics, so metrics must not import evidence back)
__getattr__ = moved(__name__, {"evidence": "nas_eval.evidence:evidence"})
