"""How repeatable is a seed-mean ground truth? Its reliability, with a CI.

A study ranks architectures by the mean of their validation perplexity over ``k``
ground-truth seeds. The **reliability** of that ranking is the Spearman correlation expected
between two independent ground truths of ``k`` seeds each -- what a second run of the same
study, with fresh seeds, would agree with. (The single-seed pair tau of
:func:`nas_eval.evidence.noise_ceiling_ci` is the k = 1 case in Kendall's scale.)

Estimation (pure NumPy/SciPy) from a table of ``S`` seeds per architecture:

* **measured** for ``2k <= S``: the Spearman correlation between the means of two disjoint
  groups of ``k`` seeds, averaged over every such split (at most ``max_splits``, drawn);
* **Spearman-Brown** otherwise, from the largest measured group size ``h = S // 2``:
  ``r_k = (k/h) r_h / (1 + (k/h - 1) r_h)`` (:func:`spearman_brown`; exact for the Pearson
  correlation of means of exchangeable seeds, a close approximation for Spearman's).

The CI is a percentile bootstrap: architectures are resampled with replacement, and for
``h = 1`` the seeds too (pairs of draws of distinct seeds, weighted by how often each seed
was drawn), so the interval reflects both the few architectures and the few seeds. An
extrapolated value takes the bootstrap replicates of ``r_h`` through the same (monotone)
formula. :func:`seeds_needed` inverts Spearman-Brown: the seeds a ground truth needs to
reach a target reliability, 0.8 by default.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> signal = rng.normal(size=40)
>>> runs = pd.DataFrame([(a, s, signal[a] + rng.normal()) for a in range(40) for s in range(4)],
...                     columns=["arch_id", "seed", "value"])
>>> table = reliability(runs, ks=(1, 2, 8), n_boot=200)
>>> list(table["method"])
['measured', 'measured', 'spearman-brown']
>>> round(spearman_brown(0.5, 2), 3)
0.667
>>> seeds_needed(0.5)
4
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["spearman_brown", "seeds_needed", "reliability", "reliability_line", "METHODS"]

METHODS = ("measured", "spearman-brown")


def spearman_brown(r, factor):
    """Reliability of a mean of ``factor`` times as many seeds as the one with reliability
    ``r``: ``factor r / (1 + (factor - 1) r)``. ``r`` in [-1, 1] (scalar or array), ``factor`` > 0."""
    r_arr = np.asarray(r, dtype=float)
    if not (isinstance(factor, (int, float, np.integer, np.floating)) and math.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be a finite number > 0, got {factor!r}")
    finite = r_arr[np.isfinite(r_arr)]
    if finite.size and (finite.min() < -1 or finite.max() > 1):
        raise ValueError(f"r must be a correlation in [-1, 1], got {r!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = factor * r_arr / (1.0 + (factor - 1.0) * r_arr)
    return float(out) if np.ndim(out) == 0 else out


def seeds_needed(r1, target=0.8, max_seeds=10_000):
    """The fewest seeds whose mean reaches reliability ``target``, given the single-seed
    reliability ``r1`` (Spearman-Brown inverted). ``math.inf`` when ``r1 <= 0`` or more than
    ``max_seeds`` would be needed; NaN for a NaN ``r1``."""
    if not (isinstance(target, (int, float)) and 0 < target < 1):
        raise ValueError(f"target must be in (0, 1), got {target!r}")
    if r1 is None or not np.isfinite(r1):
        return math.nan
    if not -1 <= r1 <= 1:
        raise ValueError(f"r1 must be a correlation in [-1, 1], got {r1!r}")
    if r1 <= 0:
        return math.inf
    if r1 >= target:
        return 1
    k = math.ceil(target * (1 - r1) / (r1 * (1 - target)) - 1e-9)
    return k if k <= max_seeds else math.inf


def _wide(truth_by_seed, archs=None):
    t = truth_by_seed
    col = next((c for c in ("value", "valid_ppl") if isinstance(t, pd.DataFrame) and c in t.columns), None)
    if col is None or not {"arch_id", "seed"} <= set(t.columns):
        raise ValueError("truth_by_seed must be a DataFrame with arch_id, seed and value (or valid_ppl) columns")
    t = pd.DataFrame({"arch_id": t["arch_id"].to_numpy(), "seed": t["seed"].to_numpy(),
                      "value": pd.to_numeric(t[col], errors="coerce").astype(float).to_numpy()})
    if archs is not None:
        t = t[t["arch_id"].isin(list(archs))]
    wide = t.pivot_table(index="arch_id", columns="seed", values="value", aggfunc="mean").dropna()
    v = wide.to_numpy(dtype=float)
    # a run that blew up ranks last (as in the noise ceiling), not as NaN
    return np.where(np.isfinite(v), v, np.finfo(float).max), list(wide.columns)


def _spearman_rows(x, y):
    """Spearman correlation of each row pair of (B, n) arrays (NaN where a side is constant)."""
    rx, ry = stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def _splits(n_seeds, h, max_splits, rng):
    """Unordered pairs of disjoint h-subsets of range(n_seeds), at most max_splits (drawn)."""
    out = []
    for a in itertools.combinations(range(n_seeds), h):
        rest = [s for s in range(n_seeds) if s not in a]
        out += [(a, b) for b in itertools.combinations(rest, h) if a < b]
    if len(out) > max_splits:
        out = [out[i] for i in sorted(rng.choice(len(out), max_splits, replace=False))]
    return out


def _split_half(v, h, splits):
    """Mean Spearman between group means over the splits; v is (..., n_archs, n_seeds)."""
    r = [_spearman_rows(v[..., list(a)].mean(-1), v[..., list(b)].mean(-1)) for a, b in splits]
    return np.nanmean(np.stack(r), axis=0)


def _boot_pairs(v, idx, seed_draws):
    """h = 1 replicates: arch rows resampled by idx (B, n), seeds by seed_draws (B, S); the
    mean Spearman over pairs of draws of distinct seeds."""
    S = v.shape[1]
    rho = np.full((idx.shape[0], S, S), np.nan)
    for i, j in itertools.combinations(range(S), 2):
        rho[:, i, j] = rho[:, j, i] = _spearman_rows(v[idx, i], v[idx, j])
    counts = np.stack([(seed_draws == s).sum(1) for s in range(S)], axis=1).astype(float)  # (B, S)
    w = counts[:, :, None] * counts[:, None, :]
    w[:, np.arange(S), np.arange(S)] = 0.0
    with np.errstate(invalid="ignore"):
        return np.nansum(w * np.nan_to_num(rho), axis=(1, 2)) / w.sum(axis=(1, 2))


def reliability(truth_by_seed, ks=(1, 2, 4, 8), n_boot=1000, ci=0.95, seed=0, archs=None,
                max_splits=50, target=0.8) -> pd.DataFrame:
    """Reliability of the k-seed-mean ground truth for each ``k`` in ``ks``, with a CI.

    ``truth_by_seed``: tidy DataFrame (``arch_id``, ``seed``, ``value`` or ``valid_ppl``);
    architectures missing a seed are dropped; ``archs`` restricts to those ids. Returns one row
    per k: ``k``, ``estimate``, ``low``, ``high``, ``method`` ("measured" or "spearman-brown"),
    ``base_k`` (the group size measured), ``n_seeds``, ``n_archs``, and ``seeds_needed``
    (for ``target``; from r_1, with ``seeds_needed_low`` / ``_high`` from its CI). NaN
    estimates with fewer than 2 seeds or 3 architectures.
    """
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive seed counts, got {ks!r}")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    v, seeds = _wide(truth_by_seed, archs)
    n, S = v.shape
    base = {"n_seeds": S, "n_archs": n}
    if S < 2 or n < 3:
        return pd.DataFrame([{"k": k, "estimate": math.nan, "low": math.nan, "high": math.nan, "method": None,
                              "base_k": None, **base, "seeds_needed": math.nan, "seeds_needed_low": math.nan,
                              "seeds_needed_high": math.nan} for k in ks])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    # measured group sizes: point estimates and bootstrap replicates
    est, boot = {}, {}
    for h in range(1, S // 2 + 1):
        splits = _splits(S, h, max_splits, rng)
        est[h] = float(_split_half(v, h, splits))
        if h == 1:
            draws = rng.integers(0, S, size=(n_boot, S))
            for b in np.flatnonzero((draws == draws[:, :1]).all(1)):  # one seed drawn S times: redraw
                while (draws[b] == draws[b, 0]).all():
                    draws[b] = rng.integers(0, S, size=S)
            boot[h] = _boot_pairs(v, idx, draws)
        else:
            boot[h] = _split_half(v[idx], h, splits)
    q = [(1 - ci) / 2, (1 + ci) / 2]
    need = seeds_needed(est[1], target)
    lo1, hi1 = np.nanquantile(np.clip(boot[1], -1, 1), q)
    need_ci = (seeds_needed(float(hi1), target), seeds_needed(float(lo1), target))
    rows = []
    top = S // 2
    for k in ks:
        h = k if k <= top else top
        r, reps = est[h], np.clip(boot[h], -1, 1)
        if k != h:  # a reliability <= 0 is no signal, and more seeds of it stay at none
            r, reps = max(r, 0.0), np.clip(reps, 0.0, 1.0)
            r, reps = spearman_brown(r, k / h), spearman_brown(reps, k / h)
        low, high = np.nanquantile(reps, q)
        rows.append({"k": k, "estimate": float(r), "low": float(low), "high": float(high),
                     "method": METHODS[0] if k == h else METHODS[1], "base_k": h, **base,
                     "seeds_needed": need, "seeds_needed_low": need_ci[0], "seeds_needed_high": need_ci[1]})
    return pd.DataFrame(rows)


def reliability_line(table, k_used, target=0.8):
    """One sentence for a report from a :func:`reliability` table: the reliability of the
    k-seed mean the study uses, and the seeds needed for ``target``."""
    rows = table.set_index("k")
    if k_used not in rows.index or not np.isfinite(rows.loc[k_used, "estimate"]):
        return f"no reliability estimate: {int(table['n_seeds'].iloc[0])} seed(s) (needs 2)"
    r = rows.loc[k_used]
    def fmt(x):
        return "∞" if x == math.inf else ("n/a" if not np.isfinite(x) else str(int(x)))

    need_text = f"{fmt(r['seeds_needed'])} (CI {fmt(r['seeds_needed_low'])}–{fmt(r['seeds_needed_high'])})"
    verdict = "reaches" if r["estimate"] >= target else "does not reach"
    return (f"the {k_used}-seed-mean ground truth has reliability {r['estimate']:.2f} "
            f"(95% CI [{r['low']:.2f}, {r['high']:.2f}], {r['method']}; Spearman correlation expected with an "
            f"independent {k_used}-seed ground truth) and {verdict} {target}; seeds needed for {target}: {need_text}")
