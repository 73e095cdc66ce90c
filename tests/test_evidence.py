"""nas_eval.evidence: the checks that say whether a study's numbers carry its conclusions."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nas_eval import evidence as ev
from nas_eval import metrics
from study_fixture import tiny_study, tiny_study_path  # noqa: F401

UNIGRAM = 796.0  # PTB's first 50k training tokens, on the first 5k of validation


def _study(plateau=(3, 7, 11), n_archs=32, seeds=(0, 1), noise=2.0, seed=0):
    """Ground truth of n_archs with a clear order (100..200 ppl), and plateau archs near the
    unigram perplexity with a shared, nearly identical value (the pattern of issue 14)."""
    rng = np.random.default_rng(seed)
    base = np.linspace(100.0, 200.0, n_archs)
    rows = []
    for s in seeds:
        for a in range(n_archs):
            v = 896.14 + rng.normal(0, 0.01) if a in plateau else base[a] + rng.normal(0, noise)
            rows.append({"arch_id": a, "arch": f"arch{a}", "seed": s, "valid_ppl": v})
    return pd.DataFrame(rows), base


# --------------------------------------------------------------------------- unigram
def test_unigram_perplexity_add_one_by_hand():
    # counts (2, 1, 0) + 1 over 3 + 3 -> p = (3/6, 2/6, 1/6)
    p = np.array([3, 2, 1]) / 6
    got = ev.unigram_perplexity([0, 0, 1], [0, 1, 2], vocab_size=3)
    assert got == pytest.approx(np.exp(-np.log(p).mean()))
    # smoothing 0 is the maximum-likelihood unigram, undefined for unseen tokens
    assert ev.unigram_perplexity([0, 1], [0, 1], 2, smoothing=0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="smoothing"):
        ev.unigram_perplexity([0, 0], [1], 2, smoothing=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(train_tokens=[0, 5], valid_tokens=[0], vocab_size=3), "train_tokens"),
    (dict(train_tokens=[0], valid_tokens=[], vocab_size=3), "valid_tokens"),
    (dict(train_tokens=[0.5], valid_tokens=[0], vocab_size=3), "train_tokens"),
    (dict(train_tokens=[0], valid_tokens=[0], vocab_size=0), "vocab_size"),
])
def test_unigram_perplexity_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ev.unigram_perplexity(**kwargs)


# --------------------------------------------------------------------------- plateau
def test_planted_plateau_archs_are_flagged_and_excluded_from_tau():
    gt, base = _study(plateau=(3, 7, 11))
    flags = ev.plateau_flags(gt, UNIGRAM)
    assert flags.loc[flags["plateau"], "arch_id"].tolist() == [3, 7, 11]
    assert (flags.loc[~flags["plateau"], "ratio"] < 0.8).all()

    # a WS ranking that orders the plateau archs "correctly" by the noise in their values
    rng = np.random.default_rng(1)
    ws = pd.Series(base + rng.normal(0, 20, len(base)), index=range(len(base)))
    table = ev.evidence(gt, ws, unigram_ppl=UNIGRAM)
    summary = table[table["check"] == "unigram_plateau"].iloc[0]
    assert summary["estimate"] == 3 and not summary["passed"]
    assert "excluded" in summary["statement"]
    assert sorted(table.loc[table["check"] == "plateau_arch", "subject"].tolist(), key=int) == ["3", "7", "11"]
    tau = table[table["check"] == "tau"].iloc[0]
    assert tau["n"] == 29  # 32 minus the 3 planted plateau archs
    learned = [a for a in range(32) if a not in (3, 7, 11)]
    truth = gt[gt["arch_id"].isin(learned)].groupby("arch_id")["valid_ppl"].mean()
    assert tau["estimate"] == pytest.approx(metrics.kendall_tau(ws[learned], truth))
    ceiling = table[table["check"] == "noise_ceiling"].iloc[0]
    assert ceiling["n"] == 29 and ceiling["passed"]
    assert "3, 7, 11" in ev.evidence_markdown(table)


def test_a_single_plateau_run_flags_its_arch():
    gt, _ = _study(plateau=())
    gt.loc[(gt["arch_id"] == 5) & (gt["seed"] == 1), "valid_ppl"] = 700.0  # 0.88 x unigram
    gt.loc[(gt["arch_id"] == 6) & (gt["seed"] == 0), "valid_ppl"] = np.inf  # diverged
    flags = ev.plateau_flags(gt, UNIGRAM, margin=0.2).set_index("arch_id")
    assert flags.index[flags["plateau"]].tolist() == [5, 6]
    assert flags.loc[5, "plateau_runs"] == 1 and flags.loc[5, "runs"] == 2
    # a smaller margin lets 700 pass
    assert ev.plateau_flags(gt, UNIGRAM, margin=0.1).set_index("arch_id").loc[5, "plateau"] == False  # noqa: E712


def test_no_plateau_archs_and_ws_plateau():
    gt, base = _study(plateau=())
    ws = pd.Series(np.full(32, 900.0), index=range(32))
    ws[0] = 300.0
    table = ev.evidence(gt, ws, unigram_ppl=UNIGRAM)
    assert table[table["check"] == "unigram_plateau"].iloc[0]["passed"]
    assert not (table["check"] == "plateau_arch").any()
    wsp = table[table["check"] == "ws_plateau"].iloc[0]
    assert wsp["estimate"] == 31 and not wsp["passed"]


def test_without_unigram_the_plateau_test_says_it_was_skipped():
    gt, _ = _study()
    table = ev.evidence(gt)
    row = table[table["check"] == "unigram_plateau"].iloc[0]
    assert "skipped" in row["statement"]


# --------------------------------------------------------------------------- tau and wording
def test_tau_ci_including_zero_gets_not_distinguishable():
    rng = np.random.default_rng(3)
    gt, base = _study(plateau=())
    ws = pd.Series(rng.permutation(base), index=range(32))  # unrelated to the truth
    table = ev.evidence(gt, ws, unigram_ppl=UNIGRAM)
    row = table[table["check"] == "tau"].iloc[0]
    assert row["low"] < 0 < row["high"], row
    assert not row["passed"]
    assert row["statement"].startswith(ev.NOT_DISTINGUISHABLE)
    assert "agrees" not in row["statement"]


def test_verdict_wording():
    assert ev.verdict("ranks best, as in the paper", 0.4, 0.1, 0.6).startswith("ranks best, as in the paper (")
    text = ev.verdict("ranks best, as in the paper", 0.1, -0.1, 0.3)
    assert text.startswith(ev.NOT_DISTINGUISHABLE) and "includes 0" in text and "paper" not in text
    assert ev.verdict("A beats B", -2.0, -3.0, -1.0, direction="below").startswith("A beats B")
    assert ev.verdict("A beats B", -2.0, -3.0, 1.0, direction="below").startswith(ev.NOT_DISTINGUISHABLE)
    assert ev.verdict("x", 0.1, np.nan, np.nan).startswith(ev.NOT_DISTINGUISHABLE)
    with pytest.raises(ValueError, match="direction"):
        ev.supported(0.1, 0.2, direction="up")


def test_noise_ceiling_ci_matches_metrics_noise_ceiling():
    gt, _ = _study(plateau=(), seeds=(0, 1, 2), noise=15.0)
    got = ev.noise_ceiling_ci(gt, n_boot=300)
    tidy = gt.rename(columns={"valid_ppl": "value"})[["arch_id", "seed", "value"]]
    assert got["tau"] == pytest.approx(metrics.noise_ceiling(tidy)["mean"])
    assert got["low"] <= got["tau"] <= got["high"] and got["n_seeds"] == 3
    one = ev.noise_ceiling_ci(gt[gt["seed"] == 0])
    assert np.isnan(one["tau"]) and one["n_seeds"] == 1


def test_noisy_ground_truth_fails_the_ceiling():
    gt, _ = _study(plateau=(), noise=60.0)
    row = ev.evidence(gt, unigram_ppl=UNIGRAM).query("check == 'noise_ceiling'").iloc[0]
    assert row["estimate"] < 0.8 and not row["passed"] and "noisy" in row["statement"]


# --------------------------------------------------------------------------- paired tests
@pytest.mark.parametrize("n", range(3, 11))
def test_min_wilcoxon_p_matches_scipy_exact(n):
    # all n differences of one sign: the most extreme outcome the exact test knows
    d = np.arange(1, n + 1, dtype=float)
    assert ev.min_wilcoxon_p(n) == pytest.approx(stats.wilcoxon(d, method="exact").pvalue, rel=1e-12)
    assert ev.min_wilcoxon_p(n, "greater") == pytest.approx(
        stats.wilcoxon(d, alternative="greater", method="exact").pvalue, rel=1e-12)
    # and no other sign pattern of n untied values goes below it
    rng = np.random.default_rng(n)
    ps = [stats.wilcoxon(rng.permutation(d) * rng.choice([-1, 1], n), method="exact").pvalue for _ in range(50)]
    assert min(ps) >= ev.min_wilcoxon_p(n) - 1e-15


def test_min_seeds_for_p():
    assert ev.min_seeds_for_p(0.05) == 6  # 5 seeds: 0.0625 > 0.05
    assert ev.min_seeds_for_p(0.05, "greater") == 5


@pytest.mark.parametrize("n", [3, 5, 8, 10])
def test_wilcoxon_exact_p_matches_scipy_without_ties(n):
    rng = np.random.default_rng(10 + n)
    rows = rng.normal(0.4, 1.0, size=(20, n))
    got = ev.wilcoxon_exact_p(rows)
    want = [stats.wilcoxon(r, method="exact").pvalue for r in rows]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert ev.wilcoxon_exact_p(np.zeros(4)) == 1.0


def test_power_needs_more_seeds_for_smaller_effects():
    z = np.array([-1.2, -0.4, 0.1, 0.5, 1.0])
    z = (z - z.mean()) / z.std(ddof=1)  # spread 1, mean 0
    needed = [ev.seeds_for_power(z - delta, max_seeds=80)["n"] for delta in (2.0, 1.0, 0.5)]
    assert all(n is not None for n in needed), needed
    assert needed[0] < needed[1] < needed[2], needed
    assert needed[0] >= ev.min_seeds_for_p(0.05)  # never below what the test can reach
    assert ev.seeds_for_power(z - 0.05, max_seeds=10)["n"] is None  # tiny effect: not within 10
    assert ev.seeds_for_power([0.0, 0.0, 0.0])["n"] is None


def test_paired_row_with_five_seeds_says_the_test_cannot_reach_significance():
    paired = {"ws-random": ([100, 101, 99, 102, 98], [105, 104, 106, 103, 108])}
    row = ev.evidence(paired=paired).iloc[0]
    assert row["check"] == "paired_test" and row["n"] == 5
    assert row["p_min"] == pytest.approx(0.0625) and row["p_value"] == pytest.approx(0.0625)
    assert not row["passed"]
    assert row["statement"].startswith(ev.NOT_DISTINGUISHABLE)  # bootstrap CI excludes 0, p does not
    assert "cannot reach significance" in row["statement"]
    assert row["seeds_needed"] >= 6
    # same shape from a retrains table
    retrains = pd.DataFrame([{"policy": p, "seed": s, "valid_ppl": v}
                             for p, vals in (("ws-random", paired["ws-random"][0]), ("random", paired["ws-random"][1]))
                             for s, v in enumerate(vals)])
    row2 = ev.evidence(paired=retrains).iloc[0]
    assert row2["p_value"] == row["p_value"] and row2["estimate"] == row["estimate"]


def test_paired_row_with_enough_seeds_names_the_winner():
    a = [100.0 + i for i in range(8)]
    b = [x + 5 + 0.1 * i for i, x in enumerate(a)]
    row = ev.evidence(paired={"darts": (a, b)}).iloc[0]
    assert row["passed"] and row["statement"].startswith("darts beats random")


# --------------------------------------------------------------------------- study-shaped input
def test_study_shaped_tables_and_markdown():
    gt, base = _study(plateau=(2,))
    ws = pd.DataFrame([{"sharing": "node", "seed": s, "epoch": e, "arch_id": a, "arch": f"arch{a}",
                        "ws_ppl": base[a] + 10 * s + (50 if e == 1 else 0)}
                       for s in (0, 1) for e in (1, 2) for a in range(32)])
    table = ev.evidence(gt, ws, unigram_ppl=UNIGRAM, scope="2-node space")
    subjects = table.loc[table["check"] == "tau", "subject"].tolist()
    assert subjects == ["WS seed 0", "WS seed 1", "WS, mean over seeds"]
    assert (table.loc[table["check"] == "tau", "estimate"] > 0.99).all()
    md = ev.evidence_markdown(table)
    assert md.startswith("## Evidence") and "**2-node space**" in md and "| noise_ceiling |" in md
    with pytest.raises(ValueError, match="evidence"):
        ev.evidence_markdown(pd.DataFrame({"a": [1]}))


def test_evidence_works_without_the_c_extension():
    from test_layers import BLOCK_CORE  # the import hook that blocks the C extension

    code = BLOCK_CORE + textwrap.dedent("""
        import pandas as pd
        from nas_eval import evidence
        gt = pd.DataFrame({"arch_id": [0, 1, 2, 0, 1, 2], "seed": [0, 0, 0, 1, 1, 1],
                           "valid_ppl": [100.0, 120, 140, 101, 119, 142]})
        t = evidence.evidence(gt, paired={"p": ([1.0, 2, 3, 4, 5, 6], [2.0, 3, 4, 5, 6, 7])},
                             unigram_ppl=700.0)
        evidence.evidence_markdown(t)
        loaded = sorted(m for m in sys.modules if m.startswith("nas_eval.engine"))
        assert not loaded, loaded
        print(len(t))
    """)
    # from outside the repository: its root would import the source tree (tests/test_source_tree.py)
    outside = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=outside, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 3


def test_study_evidence_on_a_real_tiny_study(tiny_study):
    from nas_eval import datasets
    from study_fixture import CORPUS

    table = ev.study_evidence(tiny_study, datasets.from_spec(CORPUS), n_boot=200, n_sim=200, max_seeds=12)
    assert list(table.columns) == ev.COLUMNS
    assert set(table["scope"]) == {"2-node space", "sharing subspace"}
    checks = set(table.loc[table["scope"] == "2-node space", "check"])
    assert {"unigram_plateau", "noise_ceiling", "ws_plateau", "tau", "paired_test"} <= checks
    paired = table[table["check"] == "paired_test"].iloc[0]
    assert paired["n"] == 3 and paired["p_min"] == pytest.approx(0.25)
    assert "cannot reach significance" in paired["statement"]
    assert "## Evidence" in ev.evidence_markdown(table)
    # without the corpus the plateau tests are skipped, and said to be
    bare = ev.study_evidence(tiny_study, n_boot=100, n_sim=100, max_seeds=8)
    assert bare.query("check == 'unigram_plateau'")["statement"].str.contains("skipped").all()


def test_standard_preset_has_seeds_enough_for_its_paired_tests():
    from nas_eval.spec import StudySpec, study_preset

    spec = study_preset("standard")
    assert StudySpec.from_dict(spec.to_dict()) == spec
    # the point measured in docs/presets.md
    assert (spec.train.train_tokens, spec.train.epochs, spec.search.epochs) == (100_000, 4, 4)
    assert len(spec.seeds) >= ev.min_seeds_for_p(0.05) and len(spec.gt_seeds) >= 2
    assert spec.train_seed in spec.gt_seeds  # retrains reuse ground-truth runs


def test_metrics_evidence_is_a_deprecated_alias():
    """metrics no longer imports evidence (issue 18: evidence builds on metrics); the old name
    still answers, with a DeprecationWarning."""
    gt, _ = _study(plateau=(), n_archs=6)
    with pytest.warns(DeprecationWarning, match="nas_eval.evidence.evidence"):
        fn = metrics.evidence
    assert fn is ev.evidence
    pd.testing.assert_frame_equal(fn(gt), ev.evidence(gt))
    with pytest.raises(AttributeError):
        metrics.no_such_name  # noqa: B018


def test_one_function_per_check_composes_evidence():
    """evidence() is the concatenation of its checks, each callable alone: a new check is one
    more function and one more line in evidence()."""
    gt, base = _study(plateau=(3,), n_archs=10)
    ws = pd.Series(base, index=range(10))
    s = ev._Settings("study", UNIGRAM, 0.2, 0.8, 200, 0.95, 0.05, 0.8, 50, 200, 0)
    tidy = ev._tidy(gt, "valid_ppl")
    rows, excluded = ev._plateau_check(tidy, s)
    assert excluded == [3]
    rows += ev._noise_ceiling_check(tidy, excluded, s)
    by_seed = ev._ws_by_seed(ws)
    rows += ev._ws_plateau_check(by_seed, s) + ev._tau_check(by_seed, tidy, excluded, s)
    rows += ev._reliability_check(tidy, excluded, s)
    pd.testing.assert_frame_equal(ev._checks_table(rows), ev.evidence(gt, ws, unigram_ppl=UNIGRAM, n_boot=200, n_sim=200))
    published = pd.Series(range(1, 11), index=range(10))
    rows += ev._external_validity_check(tidy, excluded, by_seed, rows, published, s)
    pd.testing.assert_frame_equal(ev._checks_table(rows), ev.evidence(gt, ws, unigram_ppl=UNIGRAM, n_boot=200,
                                                                      n_sim=200, published=published))
