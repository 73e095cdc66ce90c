"""nas_eval.stats: the statistics under metrics, evidence and the report, each defined once."""
import numpy as np
import pytest
from scipy import stats as sp

from nas_eval import evidence, metrics, stats


def test_bootstrap_is_the_percentile_interval_of_resamples_drawn_in_blocks():
    d = np.random.default_rng(5).normal(size=7)
    for n_boot in (1, 255, 256, 700):
        got = stats.bootstrap(lambda idx: d[idx].mean(axis=1), 7, n_boot, ci=0.9, seed=3)
        # by hand: one call for all the draws gives the same indices as the blocks
        means = d[np.random.default_rng(3).integers(0, 7, size=(n_boot, 7))].mean(axis=1)
        assert got == pytest.approx(tuple(np.quantile(means, [0.05, 0.95])), rel=1e-12)
    # undefined resamples are dropped; none defined -> NaN
    assert stats.percentile_interval([np.nan, 1.0, 3.0], 0.5) == (1.5, 2.5)
    assert all(np.isnan(stats.percentile_interval([np.nan], 0.9)))
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap(lambda idx: idx.mean(axis=1), 3, 0)
    with pytest.raises(ValueError, match="ci"):
        stats.bootstrap(lambda idx: idx.mean(axis=1), 3, 10, ci=1.0)


def test_tau_b_batched_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(6, 9)).astype(float)
    y = rng.integers(0, 4, size=(6, 9)).astype(float)
    got = stats.tau_b(x, y)
    want = [sp.kendalltau(a, b).statistic for a, b in zip(x, y)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.isnan(stats.tau_b(np.ones(4), np.arange(4.0)))
    assert metrics._kendall_tau_b is stats.tau_b  # one definition


def test_paired_stats_uses_the_exact_signed_rank_test():
    d = np.array([-1.0, 1.5, -2.0, -2.5, 1.25, -3.0])
    r = stats.paired_stats(d, np.zeros(6), n_boot=100)
    assert r["wilcoxon_p"] == pytest.approx(sp.wilcoxon(d, method="exact").pvalue, rel=1e-12)
    # with a zero and a tie scipy's default leaves the exact test; ours does not
    z = np.array([-1.0, 1.0, 0.0, -2.0, -2.5, -3.0])
    assert stats.paired_stats(z, np.zeros(6))["wilcoxon_p"] == stats.wilcoxon_exact_p(z)
    # the names evidence and metrics export are these functions
    assert evidence.wilcoxon_exact_p is stats.wilcoxon_exact_p
    assert evidence.seeds_for_power is stats.seeds_for_power
    assert metrics.paired_stats is stats.paired_stats
