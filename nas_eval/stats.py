"""The statistics under :mod:`nas_eval.metrics` and :mod:`nas_eval.evidence`, each defined once.

* :func:`tau_b` -- Kendall tau-b, batched over rows (the bootstrap's and the permutation
  test's kernel; the point estimates use SciPy's, which it equals to rounding);
* :func:`bootstrap` -- the percentile bootstrap every CI of the package uses: resamples of
  ``n`` indices with replacement from ``numpy.random.default_rng(seed)``, drawn in blocks of
  :data:`DRAW_BLOCK` rows (the same draws as one call of that size);
* the exact Wilcoxon signed-rank test: :func:`wilcoxon_exact_p`, :func:`min_wilcoxon_p`,
  :func:`min_seeds_for_p`;
* the paired comparison of a policy against random over seeds: :func:`paired_differences`,
  :func:`paired_stats` and :func:`seeds_for_power`.

The paired test is the two-sided **exact** signed-rank test (:func:`wilcoxon_exact_p`), one
test for the report's paired table and its Evidence section alike: with the 5 to 10 seeds of
a study SciPy's default switches between the exact and the normal-approximation p by whether
differences are zero or tied, so two sections could print two p-values for one comparison.

Pure NumPy/SciPy: no other nas_eval module is imported here.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as _sp

__all__ = ["tau_b", "bootstrap", "percentile_interval", "wilcoxon_exact_p", "min_wilcoxon_p",
           "min_seeds_for_p", "paired_differences", "paired_stats", "seeds_for_power", "DRAW_BLOCK"]

# Above this many architectures the O(n^2) sign-matrix tau is replaced by scipy's
# O(n log n) implementation (one call per row).
_DENSE_TAU_MAX_N = 2000
# Elements of the (batch, n, n) sign tensors processed at once (memory bound, ~tens of MB).
_DENSE_BLOCK_ELEMS = 4_000_000
# Random draws (bootstrap resamples / permutations) are generated in blocks of this many rows,
# independently of how a statistic is evaluated, so every path sees the same draws.
DRAW_BLOCK = 256


# ----------------------------------------------------------------------------- tau-b
def _sign_matrix(x: np.ndarray) -> np.ndarray:
    """sign(x_i - x_j) as int8 for the last axis: shape (..., n, n). Exact (no subtraction)."""
    xi, xj = x[..., :, None], x[..., None, :]
    return (xi > xj).astype(np.int8) - (xi < xj).astype(np.int8)


def tau_b(x, y) -> np.ndarray | float:
    """Kendall tau-b of ``x`` and ``y`` along the last axis, batched.

    ``x``, ``y``: shape ``(n,)`` or ``(B, n)`` (broadcastable).  Uses the identity
    ``tau_b = sum(Sx*Sy) / sqrt(sum|Sx| * sum|Sy|)`` with ``S = sign(v_i - v_j)``
    (the full matrices count each pair twice, numerator and denominator alike), with
    integer sums, so it equals :func:`scipy.stats.kendalltau` up to float rounding
    of the final division.  Returns NaN where either side is constant.  O(n^2) memory
    per row, processed in blocks; above ``n = 2000`` it loops over scipy instead.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    scalar = x.ndim == 1 and y.ndim == 1
    x2, y2 = np.broadcast_arrays(np.atleast_2d(x), np.atleast_2d(y))
    bsz, n = x2.shape
    out = np.empty(bsz, dtype=np.float64)
    if n > _DENSE_TAU_MAX_N:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for r in range(bsz):
                out[r] = _sp.kendalltau(x2[r], y2[r]).statistic
    else:
        step = max(1, _DENSE_BLOCK_ELEMS // (n * n))
        for s in range(0, bsz, step):
            sx = _sign_matrix(x2[s : s + step])
            sy = _sign_matrix(y2[s : s + step])
            num = np.einsum("bij,bij->b", sx, sy, dtype=np.int64)
            dx = np.abs(sx).sum(axis=(1, 2), dtype=np.int64)
            dy = np.abs(sy).sum(axis=(1, 2), dtype=np.int64)
            den = np.sqrt(dx.astype(np.float64) * dy.astype(np.float64))
            with np.errstate(invalid="ignore", divide="ignore"):
                tau = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
            out[s : s + step] = tau
    return float(out[0]) if scalar else out


# ------------------------------------------------------------------------- bootstrap
def percentile_interval(values, ci: float = 0.95) -> tuple[float, float]:
    """The ``(1-ci)/2`` and ``(1+ci)/2`` quantiles of the finite ``values``; NaN, NaN if none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(v, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


def bootstrap(statistic, n: int, n_boot: int, ci: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic over ``n`` units (architectures, seeds).

    Rule: ``n_boot`` resamples of the indices ``0..n-1`` with replacement
    (``numpy.random.default_rng(seed)``, in blocks of :data:`DRAW_BLOCK` rows);
    ``statistic(idx)`` gets a ``(B, n)`` block of them and returns the B values; resamples
    where it is undefined (NaN) are dropped, and the interval is :func:`percentile_interval`.

    >>> d = np.array([-1.0, -1.0, -1.0])
    >>> bootstrap(lambda idx: d[idx].mean(axis=1), 3, 100)
    (-1.0, -1.0)
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    vals = [np.asarray(statistic(rng.integers(0, n, size=(min(DRAW_BLOCK, n_boot - start), n))),
                       dtype=np.float64)
            for start in range(0, n_boot, DRAW_BLOCK)]
    return percentile_interval(np.concatenate(vals), ci)


# ------------------------------------------------------------- exact signed-rank test
def min_wilcoxon_p(n: int, alternative: str = "two-sided") -> float:
    """The smallest p-value the exact Wilcoxon signed-rank test can give with ``n`` pairs.

    It is reached when all ``n`` differences have the same sign: of the ``2**n`` equally
    likely sign patterns under the null, one (per tail) is that extreme, so
    ``p = 2 / 2**n`` two-sided and ``1 / 2**n`` one-sided (scipy's exact distribution,
    ``scipy.stats.wilcoxon(..., method="exact")``). With 5 seeds the two-sided test can never
    go below 0.0625, so never below 0.05.

    >>> min_wilcoxon_p(5), min_wilcoxon_p(6)
    (0.0625, 0.03125)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(f"alternative must be 'two-sided', 'less' or 'greater', got {alternative!r}")
    p = 0.5 ** int(n)
    return min(1.0, 2 * p) if alternative == "two-sided" else p


def min_seeds_for_p(alpha: float = 0.05, alternative: str = "two-sided") -> int:
    """The fewest seeds with which the exact signed-rank test can reach ``p <= alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    n = 1
    while min_wilcoxon_p(n, alternative) > alpha:
        n += 1
    return n


_NULL_CACHE: dict = {}


def _signed_rank_null(n: int) -> np.ndarray:
    """P(T+ = t), t = 0..n(n+1)/2, for n untied nonzero differences (exact; a subset-sum count)."""
    if n not in _NULL_CACHE:
        counts = np.zeros(n * (n + 1) // 2 + 1)
        counts[0] = 1.0
        for r in range(1, n + 1):
            counts[r:] = counts[r:] + counts[:-r].copy()
        _NULL_CACHE[n] = counts / counts.sum()
    return _NULL_CACHE[n]


def wilcoxon_exact_p(d) -> np.ndarray | float:
    """Two-sided exact signed-rank p of each row of differences ``d`` (1-D or (B, n)).

    Zeros are dropped (scipy's ``zero_method="wilcox"``); the statistic is the sum of the
    (average) ranks of |d| of the positive differences, compared with the exact no-ties null
    distribution of the remaining count (scipy's ``method="exact"``; with ties the statistic
    may be half-integer and the tail is taken conservatively). p = 1 when every difference
    is zero.
    """
    d = np.asarray(d, dtype=np.float64)
    scalar = d.ndim == 1
    d = np.atleast_2d(d)
    out = np.ones(d.shape[0])
    nz = d != 0
    absd = np.where(nz, np.abs(d), np.inf)  # zeros rank after every nonzero value, then ignored
    ranks = _sp.rankdata(absd, axis=1, method="average")
    m = nz.sum(axis=1)
    t_plus = np.where(d > 0, ranks, 0.0).sum(axis=1)
    for k in np.unique(m):
        if k == 0:
            continue
        rows = m == k
        cdf = np.cumsum(_signed_rank_null(int(k)))
        total = k * (k + 1) / 2
        t = t_plus[rows]
        lo = np.minimum(t, total - t)
        out[rows] = np.minimum(1.0, 2 * cdf[np.floor(lo + 1e-9).astype(int)])
    return float(out[0]) if scalar else out


# --------------------------------------------------------------------- paired comparison
def _finite_or_nan(values) -> np.ndarray:
    """Floats, with None / non-numbers / non-finite values as NaN."""
    out = []
    for x in values:
        try:
            x = float(x)
        except (TypeError, ValueError):
            x = math.nan
        out.append(x if math.isfinite(x) else math.nan)
    return np.asarray(out, dtype=float)


def paired_differences(policy, random) -> np.ndarray:
    """``policy - random`` over the seeds where both are finite numbers (the others dropped).

    ``policy``, ``random``: equal-length sequences aligned by seed; ValueError otherwise."""
    a, b = _finite_or_nan(policy), _finite_or_nan(random)
    if a.shape != b.shape:
        raise ValueError(f"policy and random must be aligned by seed: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok] - b[ok]


def paired_stats(policy, random, n_boot=10000, ci=0.95, seed=0):
    """Paired comparison over seeds of a policy's values and random's (lower is better).

    ``policy``, ``random``: equal-length sequences aligned by seed (``None`` / NaN pairs are
    dropped, :func:`paired_differences`). Returns ``n``, ``wins`` (policy lower), ``ties``,
    ``losses``, ``win_rate`` (wins / n), ``wilcoxon_p`` (the two-sided exact signed-rank p,
    :func:`wilcoxon_exact_p`: 1.0 when every difference is 0; None without pairs),
    ``mean_diff`` = mean(policy − random) and ``mean_diff_ci`` = [low, high], the percentile
    bootstrap over seeds (:func:`bootstrap`, ``n_boot`` resamples, ``seed``).

    >>> r = paired_stats([60.0, 61.0, 62.0], [61.0, 61.0, 64.0], n_boot=200)
    >>> r["wins"], r["ties"], r["losses"], r["mean_diff"], r["wilcoxon_p"]
    (2, 1, 0, -1.0, 0.5)
    """
    d = paired_differences(policy, random)
    n = int(d.size)
    out = {"n": n, "wins": int((d < 0).sum()), "ties": int((d == 0).sum()),
           "losses": int((d > 0).sum()), "win_rate": None, "wilcoxon_p": None,
           "mean_diff": None, "mean_diff_ci": [None, None]}
    if n == 0:
        return out
    out["win_rate"] = out["wins"] / n
    out["mean_diff"] = float(d.mean())
    out["wilcoxon_p"] = wilcoxon_exact_p(d)
    out["mean_diff_ci"] = list(bootstrap(lambda idx: d[idx].mean(axis=1), n, n_boot, ci, seed))
    return out


def seeds_for_power(differences, alpha: float = 0.05, power: float = 0.8, max_seeds: int = 50,
                    n_sim: int = 2000, seed: int = 0) -> dict:
    """Seeds needed to detect the observed mean difference at ``power`` (paired bootstrap).

    Rule: for n = 2, 3, ..., ``max_seeds``, draw ``n_sim`` samples of n paired differences
    with replacement from the observed ones (``numpy.random.default_rng(seed)``), so each
    simulated study has the observed mean effect and spread; run the two-sided exact
    signed-rank test on each (:func:`wilcoxon_exact_p`), and the power is the fraction with
    ``p <= alpha`` **and** the same sign of the mean difference as observed. Returns
    ``{"n": smallest n with power >= power (None if none up to max_seeds), "power": power
    reached at that n (or at max_seeds), "observed_n", "mean_diff"}``. Caveat: a bootstrap
    from few observed pairs knows only their spread; with fewer than ~5 pairs, read it as an
    order of magnitude.
    """
    d = np.asarray([x for x in differences if x is not None and np.isfinite(x)], dtype=np.float64)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power!r}")
    if isinstance(max_seeds, bool) or not isinstance(max_seeds, (int, np.integer)) or max_seeds < 2:
        raise ValueError(f"max_seeds must be an integer >= 2, got {max_seeds!r}")
    out = {"n": None, "power": math.nan, "observed_n": int(d.size), "mean_diff": float(d.mean()) if d.size else math.nan}
    if d.size < 2 or np.all(d == 0) or d.mean() == 0:
        return out
    sign = np.sign(d.mean())
    rng = np.random.default_rng(seed)
    for n in range(2, int(max_seeds) + 1):
        if min_wilcoxon_p(n) > alpha:
            continue
        sample = d[rng.integers(0, d.size, size=(n_sim, n))]
        p = wilcoxon_exact_p(sample)
        hit = (p <= alpha) & (np.sign(sample.mean(axis=1)) == sign)
        out["power"] = float(hit.mean())
        if out["power"] >= power:
            out["n"] = n
            return out
    return out
