"""Tests for nas_eval.metrics: agreement with scipy, alignment by id, known answers."""
import doctest
import functools
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nas_eval import metrics as M


def _rand_pair(rng, n, tied):
    if tied:  # heavy ties on both sides
        return rng.integers(0, 4, n).astype(float), rng.integers(0, 3, n).astype(float)
    return rng.normal(size=n), rng.normal(size=n)


# ------------------------------------------------------------------- scipy agreement
@pytest.mark.parametrize("tied", [False, True])
def test_kendall_and_spearman_equal_scipy(tied):
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(200):
        n = int(rng.integers(2, 60))
        a, b = _rand_pair(rng, n, tied)
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            assert np.isnan(M.kendall_tau(a, b)) and np.isnan(M.spearman(a, b))
            continue
        assert M.kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
        assert M.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
        assert M._kendall_tau_b(a, b) == pytest.approx(
            stats.kendalltau(a, b).statistic, abs=1e-12
        )
        checked += 1
    assert checked > 150


def test_batched_kernels_equal_scipy_rowwise():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 5, (300, 25)).astype(float)
    y = rng.integers(0, 5, (300, 25)).astype(float)
    tau = M._kendall_tau_b(x, y)
    rho = M._spearman_batch(x, y)
    ref_t = [stats.kendalltau(x[i], y[i]).statistic for i in range(300)]
    ref_r = [stats.spearmanr(x[i], y[i]).statistic for i in range(300)]
    np.testing.assert_allclose(tau, ref_t, atol=1e-12)
    np.testing.assert_allclose(rho, ref_r, atol=1e-12)
    # constant rows are undefined
    assert np.isnan(M._kendall_tau_b(np.ones(5), np.arange(5.0)))


def test_large_n_falls_back_to_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=2500), rng.normal(size=2500)
    assert M._kendall_tau_b(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)


# --------------------------------------------------------------------------- alignment
def test_alignment_by_id_shuffled_dict_equals_aligned_arrays():
    rng = np.random.default_rng(4)
    ids = [f"arch{i:02d}" for i in range(32)]
    ws, truth = rng.normal(60, 3, 32), rng.normal(65, 3, 32)
    perm = rng.permutation(32)
    ws_d = {ids[i]: ws[i] for i in perm}  # shuffled key order
    truth_s = pd.Series(truth, index=ids).iloc[rng.permutation(32)]  # other shuffle
    for f in (M.kendall_tau, M.spearman, M.sparse_kendall_tau):
        assert f(ws_d, truth_s) == pytest.approx(f(ws, truth), abs=1e-12)
    assert M.rank_of_true_best(ws_d, truth_s) == M.rank_of_true_best(ws, truth)
    assert M.regret_of_top1(ws_d, truth_s) == M.regret_of_top1(ws, truth)
    assert M.precision_at_k(ws_d, truth_s, 5) == M.precision_at_k(ws, truth, 5)
    # correlating positions of a wrongly ordered list gives a different answer
    assert M.kendall_tau(list(ws_d.values()), truth_s.to_numpy()) != pytest.approx(
        M.kendall_tau(ws, truth)
    )


def test_strict_alignment_names_missing_ids_and_inner_uses_intersection():
    ws = {"a": 1.0, "b": 2.0, "c": 3.0, "zz_only_ws": 4.0}
    truth = {"a": 10.0, "b": 20.0, "c": 30.0, "yy_only_truth": 5.0}
    with pytest.raises(ValueError, match="yy_only_truth") as e:
        M.kendall_tau(ws, truth)
    assert "zz_only_ws" in str(e.value)
    assert M.kendall_tau(ws, truth, align="inner") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        M.kendall_tau({"a": 1.0, "x": 2.0}, {"a": 1.0, "y": 2.0}, align="inner")


def test_input_validation():
    with pytest.raises(ValueError, match="at least 2"):
        M.kendall_tau([1.0], [2.0])
    with pytest.raises(ValueError, match="at least 2"):
        M.spearman({"a": 1.0}, {"a": 2.0})
    with pytest.raises(ValueError, match="'b'"):
        M.kendall_tau({"a": 1.0, "b": np.nan, "c": 2.0}, {"a": 1.0, "b": 2.0, "c": 3.0})
    with pytest.raises(ValueError, match="non-finite"):
        M.kendall_tau([1.0, 2.0, 3.0], [1.0, np.inf, 3.0])
    with pytest.raises(ValueError, match="equal length"):
        M.kendall_tau([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="both be keyed"):
        M.kendall_tau({"a": 1.0, "b": 2.0}, [1.0, 2.0])
    with pytest.raises(ValueError, match="duplicate"):
        M.kendall_tau(pd.Series([1.0, 2.0, 3.0], index=["a", "a", "b"]), {"a": 1.0, "b": 2.0})
    with pytest.raises(ValueError, match="align"):
        M.kendall_tau([1.0, 2.0], [1.0, 2.0], align="outer")


def test_reversing_truth_flips_tau_sign():
    rng = np.random.default_rng(5)
    ws, truth = rng.normal(size=20), rng.normal(size=20)
    t = M.kendall_tau(ws, truth)
    assert t != 0
    assert M.kendall_tau(ws, -truth) == pytest.approx(-t, abs=1e-12)
    assert M.kendall_tau(ws, ws) == pytest.approx(1.0)
    assert M.kendall_tau(ws, -ws) == pytest.approx(-1.0)


# ---------------------------------------------------------------------------- sparse
def test_sparse_tau_turns_tiny_truth_differences_into_ties():
    ws = [1.0, 2.0, 3.0, 4.0]
    truth = [60.2, 60.1, 70.2, 70.1]  # WS swaps within two pairs only 0.1 ppl apart
    # 6 pairs: 4 concordant, 2 discordant -> 1/3
    assert M.kendall_tau(ws, truth) == pytest.approx(1 / 3)
    # rounded to integers the swapped pairs are ties: 4 / sqrt(6 * 4)
    assert M.sparse_kendall_tau(ws, truth) == pytest.approx(4 / np.sqrt(24))
    assert M.sparse_kendall_tau(ws, truth, decimals=0) == pytest.approx(4 / np.sqrt(24))
    # at 0.1 resolution nothing is tied: back to plain tau
    assert M.sparse_kendall_tau(ws, truth, decimals=1) == pytest.approx(1 / 3)
    assert M.sparse_kendall_tau(ws, truth, bin_width=5.0) == pytest.approx(4 / np.sqrt(24))
    # only the truth is coarsened: the same tiny differences in WS are kept
    assert M.sparse_kendall_tau(truth, ws) == pytest.approx(1 / 3)
    # everything in one bin: undefined
    assert np.isnan(M.sparse_kendall_tau(ws, truth, bin_width=100.0))
    with pytest.raises(ValueError, match="not both"):
        M.sparse_kendall_tau(ws, truth, decimals=1, bin_width=1.0)
    with pytest.raises(ValueError, match="bin_width"):
        M.sparse_kendall_tau(ws, truth, bin_width=0.0)


# ----------------------------------------------------------------- top-k style metrics
WS = {"a": 60.0, "b": 61.0, "c": 62.0, "d": 63.0, "e": 64.0}
TRUTH = {"a": 70.0, "b": 64.0, "c": 66.0, "d": 63.5, "e": 68.0}
# WS order: a b c d e ; true order: d b c e a


def test_precision_and_overlap_known_answers():
    assert M.precision_at_k(WS, TRUTH, 1) == 0.0  # a vs d
    assert M.precision_at_k(WS, TRUTH, 2) == 0.5  # {a,b} vs {d,b}
    assert M.top_k_overlap(WS, TRUTH, 2) == 1
    assert M.precision_at_k(WS, TRUTH, 3) == pytest.approx(2 / 3)  # {a,b,c} vs {d,b,c}
    assert M.precision_at_k(WS, TRUTH, 5) == 1.0
    # direction is explicit: with higher-is-better the "best" ends flip
    assert M.precision_at_k(WS, TRUTH, 1, higher_is_better=True) == 0.0  # e vs a
    assert M.precision_at_k(WS, TRUTH, 2, higher_is_better=True) == 0.5  # {e,d} vs {a,e}
    for bad in (0, 6, 2.5):
        with pytest.raises(ValueError):
            M.precision_at_k(WS, TRUTH, bad)
    # truth ties at the boundary are inclusive: both tied archs count as true top-1
    assert M.precision_at_k([1.0, 2.0, 3.0], [5.0, 5.0, 9.0], 1) == 1.0
    assert M.precision_at_k([2.0, 1.0, 3.0], [5.0, 5.0, 9.0], 1) == 1.0


def test_rank_of_true_best_and_regret_known_answers():
    assert M.rank_of_true_best(WS, TRUTH) == 4  # d is 4th under WS
    assert M.regret_of_top1(WS, TRUTH) == pytest.approx(70.0 - 63.5)
    assert M.rank_of_true_best(WS, TRUTH, higher_is_better=True) == 5  # a is last by WS-high
    assert M.regret_of_top1(WS, TRUTH, higher_is_better=True) == pytest.approx(70.0 - 68.0)
    assert M.rank_of_true_best(WS, WS) == 1
    assert M.regret_of_top1(WS, WS) == 0.0
    # "min" ties: true best shares WS rank 1 with another arch
    assert M.rank_of_true_best([1.0, 1.0, 2.0], [9.0, 5.0, 7.0]) == 1
    # WS ties at the top: regret averages the tied archs' truth
    assert M.regret_of_top1([1.0, 1.0, 2.0], [9.0, 5.0, 7.0]) == pytest.approx(2.0)
    # min method counts strictly better archs: third-best WS value behind a tie -> rank 3
    assert M.rank_of_true_best([1.0, 1.0, 2.0], [9.0, 8.0, 5.0]) == 3


def test_rank_changes_figure4_sign_and_content():
    ws = {f"x{i}": float(v) for i, v in enumerate([12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])}
    truth = {f"x{i}": 60.0 + i for i in range(12)}
    df = M.rank_changes(ws, truth, top=10)
    assert list(df.columns[:4]) == ["arch_id", "true_rank", "ws_rank", "change"]
    assert len(df) == 10 and df["true_rank"].tolist() == list(range(1, 11))
    # the true top-1 is last (12th) under WS: lost 11 positions, as in the paper's text
    assert df.loc[0, "arch_id"] == "x0" and df.loc[0, "ws_rank"] == 12
    assert df.loc[0, "change"] == -11
    assert (df["change"].iloc[1:] == 1).all()
    assert (df["change"] == df["true_rank"] - df["ws_rank"]).all()


# ----------------------------------------------------------------------- uncertainty
def test_bootstrap_ci_monotone_and_random():
    x = np.arange(32.0)
    est, lo, hi = M.bootstrap_ci(M.kendall_tau, x, 2 * x + 50)
    assert (est, lo, hi) == pytest.approx((1.0, 1.0, 1.0))

    rng = np.random.default_rng(6)
    ws, truth = rng.normal(size=32), rng.normal(size=32)
    r1 = M.bootstrap_ci(M.kendall_tau, ws, truth, seed=7)
    r2 = M.bootstrap_ci(M.kendall_tau, ws, truth, seed=7)
    r3 = M.bootstrap_ci(M.kendall_tau, ws, truth, seed=8)
    assert r1 == r2 and r1 != r3
    assert r1.low <= r1.estimate <= r1.high and r1.low < r1.high
    assert r1.estimate == pytest.approx(M.kendall_tau(ws, truth))
    wider = M.bootstrap_ci(M.kendall_tau, ws, truth, ci=0.99, seed=7)
    assert wider.low <= r1.low and wider.high >= r1.high


@pytest.mark.parametrize("fast", [M.kendall_tau, M.spearman])
def test_bootstrap_and_permutation_fast_paths_equal_generic_loop(fast):
    rng = np.random.default_rng(9)
    ws, truth = rng.integers(0, 8, 15).astype(float), rng.normal(size=15)
    generic = lambda a, b: fast(a, b)  # noqa: E731  (not recognised -> loop path)
    assert M.bootstrap_ci(fast, ws, truth, n_boot=300, seed=3) == pytest.approx(
        tuple(M.bootstrap_ci(generic, ws, truth, n_boot=300, seed=3)), abs=1e-12
    )
    assert M.permutation_pvalue(ws, truth, n_perm=600, seed=3, metric=fast) == (
        M.permutation_pvalue(ws, truth, n_perm=600, seed=3, metric=generic)
    )


def test_bootstrap_generic_metric_and_undefined_resamples():
    rng = np.random.default_rng(10)
    ws, truth = rng.normal(size=20), rng.normal(size=20)
    p3 = functools.partial(M.precision_at_k, k=3)
    est, lo, hi = M.bootstrap_ci(p3, ws, truth, n_boot=200)
    assert est == M.precision_at_k(ws, truth, 3) and 0 <= lo <= hi <= 1
    # n = 2: every resample is either the original pair or one arch twice (undefined)
    est, lo, hi = M.bootstrap_ci(M.kendall_tau, [1.0, 2.0], [3.0, 4.0], n_boot=200)
    assert (est, lo, hi) == pytest.approx((1.0, 1.0, 1.0))
    # all undefined -> NaN interval
    _, lo, hi = M.bootstrap_ci(M.kendall_tau, [1.0, 2.0, 3.0], [5.0, 5.0, 5.0], n_boot=50)
    assert np.isnan(lo) and np.isnan(hi)


def test_permutation_pvalue():
    x = np.arange(20.0)
    assert M.permutation_pvalue(x, x + 1, n_perm=2000) == pytest.approx(1 / 2001)
    assert M.permutation_pvalue(x, -x, n_perm=500) == 1.0  # every permutation >= -1
    rng = np.random.default_rng(12)
    ps = [
        M.permutation_pvalue(rng.normal(size=20), rng.normal(size=20), n_perm=500, seed=s)
        for s in range(20)
    ]
    assert min(ps) > 0.002 and 0.2 < np.mean(ps) < 0.8  # ~uniform under the null
    a, b = rng.normal(size=20), rng.normal(size=20)
    assert M.permutation_pvalue(a, b, seed=4) == M.permutation_pvalue(a, b, seed=4)
    with pytest.raises(ValueError, match="undefined"):
        M.permutation_pvalue(np.ones(5), np.arange(5.0), n_perm=10)


# ------------------------------------------------------------------ seeds and ceilings
def _tidy(seed_values):
    rows = [
        {"arch_id": f"a{i}", "seed": s, "value": v}
        for s, vals in seed_values.items()
        for i, v in enumerate(vals)
    ]
    return pd.DataFrame(rows)


def test_noise_ceiling_known_taus():
    base = np.array([60.0, 61.5, 62.0, 64.0, 63.0, 66.0])
    same = M.noise_ceiling(_tidy({0: base, 1: base.copy()}))
    assert same["mean"] == pytest.approx(1.0) and same["n_seeds"] == 2
    assert same["n_archs"] == 6 and len(same["pairs"]) == 1
    rev = M.noise_ceiling({0: pd.Series(base, index=list("abcdef")),
                           1: dict(zip("abcdef", 130.0 - base))})  # ranking reversed
    assert rev["mean"] == pytest.approx(-1.0)

    swapped = base.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # one discordant pair out of 15
    res = M.noise_ceiling(_tidy({0: base, 1: base + 0.5, 2: swapped}))
    taus = {(i, j): t for i, j, t in res["pairs"]}
    assert taus[(0, 1)] == pytest.approx(1.0)
    assert taus[(0, 2)] == pytest.approx(13 / 15) and taus[(1, 2)] == pytest.approx(13 / 15)
    assert res["min"] == pytest.approx(13 / 15) and res["max"] == pytest.approx(1.0)
    assert res["mean"] == pytest.approx((1 + 2 * 13 / 15) / 3)
    assert set(res["leave_one_out"]) == {0, 1, 2}
    # wide form gives the same answer
    wide = pd.DataFrame({0: base, 1: base + 0.5, 2: swapped}, index=[f"a{i}" for i in range(6)])
    assert M.noise_ceiling(wide)["pairs"] == res["pairs"]


def test_noise_ceiling_validation():
    df = _tidy({0: [1.0, 2.0, 3.0], 1: [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="at least 2 seeds"):
        M.noise_ceiling(df[df.seed == 0])
    with pytest.raises(ValueError, match="a2"):
        M.noise_ceiling(df.iloc[:-1])  # a2 missing from seed 1
    assert M.noise_ceiling(df.iloc[:-1], align="inner")["n_archs"] == 2
    with pytest.raises(ValueError, match="duplicate"):
        M.noise_ceiling(pd.concat([df, df.iloc[:1]]))
    bad = df.copy()
    bad.loc[0, "value"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        M.noise_ceiling(bad)


def test_seed_spread():
    truth = {"a": 60.0, "b": 61.0, "c": 62.0}
    res = M.seed_spread(
        {0: {"a": 1.0, "b": 2.0, "c": 3.0}, 1: {"c": 1.0, "b": 2.0, "a": 3.0}}, truth
    )
    assert res["per_seed"] == pytest.approx({0: 1.0, 1: -1.0})
    assert res["best_seed"] == 0 and res["worst_seed"] == 1 and res["mean"] == pytest.approx(0)


# ------------------------------------------------------------------------- summaries
def test_ranking_summary_consistent_with_parts():
    rng = np.random.default_rng(13)
    ids = [f"arch{i}" for i in range(32)]
    ws = pd.Series(rng.normal(60, 2, 32), index=ids)
    truth = pd.Series(ws.to_numpy() + rng.normal(0, 2, 32), index=ids)
    truth = truth.sample(frac=1, random_state=0)  # shuffled order; aligned by id
    s = M.ranking_summary(ws, truth, n_boot=300, seed=1, n_perm=999)
    assert s["n_archs"] == 32
    assert s["tau"] == pytest.approx(M.kendall_tau(ws, truth))
    assert s["tau_ci"][0] <= s["tau"] <= s["tau_ci"][1]
    assert s["tau_ci"] == pytest.approx(
        tuple(M.bootstrap_ci(M.kendall_tau, ws, truth, n_boot=300, seed=1))[1:]
    )
    assert s["tau_pvalue"] == M.permutation_pvalue(ws, truth, n_perm=999, seed=1)
    assert s["tau_pvalue"] < 0.01  # truth is ws + noise: clearly positive
    assert s["spearman"] == pytest.approx(M.spearman(ws, truth))
    assert s["sparse_tau"] == pytest.approx(M.sparse_kendall_tau(ws, truth))
    assert s["precision_at_k"] == {k: M.precision_at_k(ws, truth, k) for k in (1, 3, 5, 10)}
    assert s["rank_of_true_best"] == M.rank_of_true_best(ws, truth)
    assert s["regret_of_top1"] == M.regret_of_top1(ws, truth)
    # k larger than the number of archs is skipped
    small = M.ranking_summary([1.0, 2, 3, 4], [1.0, 2, 4, 3], n_boot=50, n_perm=50)
    assert set(small["precision_at_k"]) == {1, 3}


def test_docstring_examples():
    res = doctest.testmod(M, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 10 and res.failed == 0
