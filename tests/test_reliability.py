"""Reliability of the seed-mean ground truth (nas_eval.reliability): Spearman-Brown, the
split-half estimator on a planted signal-plus-noise ground truth, seeds needed."""
import math

import numpy as np
import pandas as pd
import pytest

from nas_eval.reliability import reliability, reliability_line, seeds_needed, spearman_brown


def planted(n_archs, n_seeds, noise, seed):
    """value = signal(arch) + noise * N(0, 1) per run, the signal standardised to variance 1
    over the architectures drawn: the Pearson reliability of a k-seed mean is then
    1 / (1 + noise^2 / k); Spearman's, for normal data, (6 / pi) asin(r / 2)."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n_archs)
    signal = (signal - signal.mean()) / signal.std()
    rows = [(a, s, signal[a] + noise * rng.normal()) for a in range(n_archs) for s in range(n_seeds)]
    return pd.DataFrame(rows, columns=["arch_id", "seed", "valid_ppl"])


def planted_reliability(noise, k):
    return 6 / math.pi * math.asin(0.5 / (1 + noise ** 2 / k))


@pytest.mark.parametrize("r, factor", [(0.5, 2), (0.3, 4), (0.9, 0.5), (-0.2, 3), (0.0, 8), (1.0, 5)])
def test_spearman_brown_is_its_formula(r, factor):
    assert spearman_brown(r, factor) == pytest.approx(factor * r / (1 + (factor - 1) * r))
    np.testing.assert_allclose(spearman_brown(np.array([r, r]), factor), [spearman_brown(r, factor)] * 2)
    # a k-fold longer test, then an m-fold longer one, is a km-fold longer one
    if r > 0:
        assert spearman_brown(spearman_brown(r, factor), 3) == pytest.approx(spearman_brown(r, 3 * factor))


@pytest.mark.parametrize("bad", [dict(r=1.5, factor=2), dict(r=0.5, factor=0), dict(r=0.5, factor=math.inf)])
def test_spearman_brown_refuses_nonsense(bad):
    with pytest.raises(ValueError, match="factor|correlation"):
        spearman_brown(**bad)


def test_seeds_needed_inverts_spearman_brown():
    for r1 in (0.05, 0.2, 0.4, 0.49, 0.7):
        k = seeds_needed(r1, 0.8)
        assert spearman_brown(r1, k) >= 0.8 - 1e-12 and (k == 1 or spearman_brown(r1, k - 1) < 0.8)
    assert seeds_needed(0.8) == 1 and seeds_needed(0.5) == 4 and seeds_needed(0.0) == math.inf
    assert seeds_needed(-0.3) == math.inf and math.isnan(seeds_needed(math.nan))
    with pytest.raises(ValueError, match="target"):
        seeds_needed(0.5, target=1.0)


@pytest.mark.parametrize("n_seeds, noise, seed", [(4, 1.0, 0), (4, 0.6, 1), (3, 1.5, 2), (8, 2.0, 3)])
def test_recovers_the_planted_reliability_within_its_ci(n_seeds, noise, seed):
    """(Over 40 draws of 32 archs x 4 seeds the 95% CIs covered the planted value 93-100 % of
    the time for k = 1, 2, 4; here one draw each of a few settings.)"""
    runs = planted(120, n_seeds, noise, seed)
    table = reliability(runs, ks=(1, 2, 4, 8), n_boot=300, seed=seed, max_splits=20).set_index("k")
    for k, row in table.iterrows():
        truth = planted_reliability(noise, k)
        assert row["low"] <= truth <= row["high"], (k, truth, row.to_dict())
        assert row["high"] - row["low"] < 0.45  # an interval that says something
        assert row["method"] == ("measured" if 2 * k <= n_seeds else "spearman-brown")
    assert table.loc[1, "estimate"] < table.loc[2, "estimate"] < table.loc[4, "estimate"] < table.loc[8, "estimate"]
    assert table["seeds_needed"].iloc[0] == seeds_needed(table.loc[1, "estimate"])


def test_a_noise_only_ground_truth_has_no_reliability_and_no_seed_count():
    runs = planted(60, 4, 1e6, 5)  # the signal is lost in the noise
    table = reliability(runs, n_boot=300).set_index("k")
    assert table.loc[1, "low"] < 0 < table.loc[1, "high"]
    assert table.loc[1, "seeds_needed_high"] == math.inf


def test_too_few_seeds_or_architectures_give_nan_and_a_line_saying_so():
    one = planted(10, 1, 1.0, 0)
    table = reliability(one)
    assert table["estimate"].isna().all()
    assert "needs 2" in reliability_line(table, 2)
    assert reliability(planted(2, 4, 1.0, 0))["estimate"].isna().all()
    with pytest.raises(ValueError, match="ks"):
        reliability(one, ks=(0,))


def test_reliability_line_names_the_estimate_and_the_seeds_needed():
    table = reliability(planted(40, 4, 1.0, 0), n_boot=200)
    line = reliability_line(table, 2)
    r2 = table.set_index("k").loc[2]
    assert f"{r2['estimate']:.2f}" in line and "measured" in line and "seeds needed for 0.8" in line
