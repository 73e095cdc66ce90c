"""The report (nas_eval.report) on a real tiny study: results.json, report.md, CSVs, PNGs."""
import json
import math
import struct

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import nas_eval
from nas_eval import evidence, metrics, report
from nas_eval.summaries import summarize_ground_truth
from study_fixture import CORPUS, run_study, tiny_spec, tiny_study, tiny_study_path  # noqa: F401

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def written(tiny_study_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    study = nas_eval.Study(str(tiny_study_path))
    try:
        results = report.write(study, out, n_boot=300, n_perm=300)
    finally:
        study.close()
    return out, results


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24]), len(data)


# --------------------------------------------------------------------------- results.json
def test_results_keys_and_shapes(written):
    out, results = written
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == results  # JSON-safe: survives a round trip unchanged
    for key in ("preset", "space", "seeds", "policies", "random", "ground_truth", "ws_ranking", "sharing",
                "data", "train_config", "search_config", "train_seed", "paired", "picks", "exhaustive_best",
                "noise_ceiling", "table", "nas_eval", "files"):
        assert key in results, key
    assert results["preset"] == "smoke" and results["space"] == 2 and results["seeds"] == SEEDS
    assert results["data"]["corpus"] == CORPUS
    assert results["train_config"]["describe"].startswith("preset=study-tiny")
    assert results["train_config"]["hidden_size"] == 8
    assert set(results["policies"]) == {"ws-random"}  # random is the baseline, kept apart
    for per in list(results["policies"].values()) + [results["random"]]:
        for k in ("valid_ppl", "test_ppl", "arch_id", "curve"):
            assert len(per[k]) == len(SEEDS)
            assert all(v is not None for v in per[k])
        assert all(len(c) == 2 for c in per["curve"])  # 2 epochs
    gt = results["ground_truth"]
    assert len(gt) == 32 and set(gt) == {str(i) for i in range(32)}
    for v in gt.values():
        assert v["valid_ppl_mean"] > 1 and v["valid_ppl_std"] >= 0 and v["seeds"] == 2
    tau = results["ws_ranking"]["kendall_tau"]
    assert set(tau) == {"0", "1", "2"}
    for v in tau.values():
        assert -1 <= v["low"] <= v["tau"] <= v["high"] <= 1
        assert 0 < v["p_value"] <= 1
    assert {(r["seed"], r["epoch"]) for r in results["ws_ranking"]["by_epoch"]} == {
        (s, e) for s in SEEDS for e in (1, 2)}
    s = results["ws_ranking"]["summary"]
    assert s["worst"] <= s["mean"] <= s["best"]
    sh = results["sharing"]
    assert len(sh["table"]) == 12 and "mean_ws_rank_by_shared" in sh["summary"]
    assert sorted(r["ws_rank"] for r in sh["table"])[0] == 1
    assert set(results["paired"]) == {"ws-random"}
    assert set(results["picks"]) == {"ws-random", "random"}
    assert results["exhaustive_best"]["complete"] is True
    assert results["noise_ceiling"]["n_seeds"] == 2
    assert results["files"][-1] == "results.json"


def test_numbers_match_the_studys_dataframes(written, tiny_study):
    _, results = written
    retrains = tiny_study.retrains()
    rows = {r["policy"]: r for r in results["table"]}
    for policy in ("random", "ws-random"):
        mine = retrains[retrains["policy"] == policy].sort_values("seed")
        per = results["random"] if policy == "random" else results["policies"][policy]
        assert per["valid_ppl"] == pytest.approx(mine["valid_ppl"].tolist())
        assert per["test_ppl"] == pytest.approx(mine["test_ppl"].tolist())
        assert per["arch_id"] == mine["arch_id"].tolist()
        assert rows[policy]["valid_mean"] == pytest.approx(mine["valid_ppl"].mean())
        assert rows[policy]["valid_std"] == pytest.approx(mine["valid_ppl"].std())
        assert rows[policy]["test_mean"] == pytest.approx(mine["test_ppl"].mean())
        best = mine.loc[mine["valid_ppl"].idxmin()]
        assert rows[policy]["best_valid"] == pytest.approx(best["valid_ppl"])
        assert rows[policy]["best_valid_test"] == pytest.approx(best["test_ppl"])
    # the random baseline of seed s is the uniform draw of seed s
    space = nas_eval.SearchSpace(2)
    assert results["random"]["arch_id"] == [space.index(nas_eval.policies.random_arch(space, s)) for s in SEEDS]

    summary = tiny_study.ground_truth().summary
    gt = summary.set_index("arch_id")
    for k, v in results["ground_truth"].items():
        assert v["valid_ppl_mean"] == pytest.approx(gt.loc[int(k), "valid_ppl_mean"])
        assert v["valid_ppl_std"] == pytest.approx(gt.loc[int(k), "valid_ppl_std"])
    ex = results["exhaustive_best"]
    assert ex["valid_ppl_mean"] == pytest.approx(gt["valid_ppl_mean"].min())
    assert gt.loc[ex["arch_id"], "valid_ppl_mean"] == gt["valid_ppl_mean"].min()

    values = gt["valid_ppl_mean"]
    for policy, recs in results["picks"].items():
        for r in recs:
            v = values[r["arch_id"]]
            assert r["gt_rank"] == int((values < v).sum()) + 1
            assert r["regret"] == pytest.approx(v - values.min())
            assert r["percentile"] == pytest.approx(100 * (32 - r["gt_rank"]) / 31)

    ws = tiny_study.ws()
    last = ws[(ws["sharing"] == "node") & (ws["epoch"] == 2)]
    for seed, g in last.groupby("seed"):
        tau = metrics.kendall_tau(g.set_index("arch_id")["ws_ppl"], values)
        assert results["ws_ranking"]["kendall_tau"][str(seed)]["tau"] == pytest.approx(tau)
        assert results["ws_ranking"]["spearman"][str(seed)] == pytest.approx(
            metrics.spearman(g.set_index("arch_id")["ws_ppl"], values))

    p = results["paired"]["ws-random"]
    d = np.array(results["policies"]["ws-random"]["valid_ppl"]) - np.array(results["random"]["valid_ppl"])
    assert p["mean_diff"] == pytest.approx(d.mean())
    assert p["win_rate"] == pytest.approx(np.mean(d < 0))
    assert p["mean_diff_ci"][0] <= p["mean_diff"] <= p["mean_diff_ci"][1]


def test_build_is_deterministic_and_json_safe(tiny_study):
    a = report.build(tiny_study, n_boot=100, n_perm=100)
    b = report.build(tiny_study, n_boot=100, n_perm=100)
    assert a == b
    text = json.dumps(a, allow_nan=False)  # no NaN / inf anywhere
    assert json.loads(text) == a


# --------------------------------------------------------------------------- report.md, CSVs
def test_report_md_states_preset_seeds_and_data(written):
    out, results = written
    text = (out / "report.md").read_text()
    head = text[:1500]
    for needle in ("smoke", "[0, 1, 2]", CORPUS, "preset=study-tiny d=8", "preset=study-tiny-search",
                   f"nas_eval {nas_eval.__version__}"):
        assert needle in head, needle
    lines = text.splitlines()
    tables = [i for i, line in enumerate(lines) if line.startswith("| ") and (i == 0 or not lines[i - 1].startswith("|"))]
    assert len(tables) >= 7
    for i in tables:
        caption = " ".join(lines[max(0, i - 4):i])
        if "the paper (" in caption:  # the paper's own numbers, with the paper's setting
            continue
        assert "preset=smoke" in caption and CORPUS in caption and "seeds=[" in caption, lines[i]
    for section in ("Tables 2/3", "Paired statistics", "ground-truth ranking", "Noise ceiling",
                    "Kendall", "Amount of sharing"):
        assert section in text
    for name in report.FIGURES:
        assert f"]({name})" in text


def test_csvs(written):
    out, results = written
    expected_rows = {"table_policies.csv": 3, "paired.csv": 1, "picks.csv": 6, "ground_truth.csv": 32,
                     "ws_tau.csv": 3, "sharing.csv": 12}
    for name, n in expected_rows.items():
        df = pd.read_csv(out / name)
        assert len(df) == n, name
    policies = pd.read_csv(out / "table_policies.csv").set_index("policy")
    assert list(policies.index) == ["ws-random", "random", "exhaustive best"]
    assert policies.loc["random", "valid_mean"] == pytest.approx(
        [r for r in results["table"] if r["policy"] == "random"][0]["valid_mean"])
    ws_tau = pd.read_csv(out / "ws_tau.csv")
    assert (ws_tau["low"] <= ws_tau["tau"]).all() and (ws_tau["tau"] <= ws_tau["high"]).all()


def test_pngs(written):
    out, results = written
    for name in report.FIGURES:
        (w, h), size = png_size(out / name)
        assert w >= 400 and h >= 300 and size > 10_000, name
        assert name in results["files"]


# --------------------------------------------------------------------------- paired statistics
def test_paired_stats_constructed():
    r = report.paired_stats([60.0, 61.0, 62.0, 63.0, 64.0], [61.0, 62.0, 63.0, 64.0, 65.0], n_boot=500)
    assert (r["n"], r["wins"], r["ties"], r["losses"]) == (5, 5, 0, 0)
    assert r["win_rate"] == 1.0
    assert r["mean_diff"] == pytest.approx(-1.0)
    assert r["mean_diff_ci"] == pytest.approx([-1.0, -1.0])
    assert r["wilcoxon_p"] == pytest.approx(0.0625)  # exact: 2 / 2^5, every difference negative

    pol = [60.0, 63.5, 61.0, 64.0, 59.0, 62.0]
    ran = [61.0, 62.0, 61.0, 66.0, 61.5, 61.0]
    r = report.paired_stats(pol, ran, n_boot=2000, seed=3)
    d = np.subtract(pol, ran)
    assert (r["wins"], r["ties"], r["losses"]) == (3, 1, 2)
    assert r["win_rate"] == pytest.approx(3 / 6)
    # one paired test for the whole report: the exact signed-rank p (nas_eval.stats), the
    # same number the Evidence section prints; zeros dropped, as scipy's exact test does
    assert r["wilcoxon_p"] == evidence.wilcoxon_exact_p(d)
    untied = np.array([-1.0, 1.5, -2.0, -2.5, 1.25])
    assert report.paired_stats(untied, np.zeros(5))["wilcoxon_p"] == pytest.approx(
        stats.wilcoxon(untied, method="exact").pvalue, rel=1e-12)
    assert r["mean_diff"] == pytest.approx(d.mean())
    lo, hi = r["mean_diff_ci"]
    assert d.min() <= lo <= d.mean() <= hi <= d.max()
    assert report.paired_stats(pol, ran, n_boot=2000, seed=3) == r  # seeded

    same = report.paired_stats([60.0, 61.0], [60.0, 61.0])
    assert same["wilcoxon_p"] == 1.0 and same["win_rate"] == 0.0 and same["ties"] == 2
    assert same["mean_diff"] == 0.0 and same["mean_diff_ci"] == [0.0, 0.0]

    # missing seeds (None / NaN) drop the pair
    r = report.paired_stats([60.0, None, 62.0, float("nan")], [61.0, 61.0, 63.0, 64.0], n_boot=100)
    assert r["n"] == 2 and r["wins"] == 2
    empty = report.paired_stats([None], [60.0])
    assert empty["n"] == 0 and empty["win_rate"] is None and empty["wilcoxon_p"] is None
    with pytest.raises(ValueError, match="aligned"):
        report.paired_stats([1.0, 2.0], [1.0])


# --------------------------------------------------------------------------- robustness
class _Blown:
    """A study whose WS perplexities include inf (states that blew up with shared weights)."""

    def __init__(self, study, ids):
        self._study, self._ids = study, ids

    def __getattr__(self, name):
        return getattr(self._study, name)

    def _inf(self, df):
        df = df.copy()
        df.loc[df["arch_id"].isin(self._ids) & (df["seed"] == 0), "ws_ppl"] = math.inf
        return df

    def ws(self, role="ws"):
        return self._inf(self._study.ws(role))

    def sharing_ws(self):
        return self._inf(self._study.sharing_ws())


def test_nonfinite_ws_perplexities_rank_last(tiny_study, tmp_path):
    blown = _Blown(tiny_study, [3, 7, 62])
    results = report.write(blown, tmp_path, n_boot=100, n_perm=100)
    ws = results["ws_ranking"]
    assert ws["nonfinite"]["0@2"] == [3, 7] and ws["per_seed"]["0"]["nonfinite"] == 2
    ws_rows = blown.ws()
    last = ws_rows[(ws_rows["seed"] == 0) & (ws_rows["epoch"] == 2)].set_index("arch_id")["ws_ppl"]
    truth = pd.Series({int(k): v["valid_ppl_mean"] for k, v in results["ground_truth"].items()})
    expected = metrics.kendall_tau(last.replace(math.inf, 1e12), truth)
    assert ws["kendall_tau"]["0"]["tau"] == pytest.approx(expected)
    assert results["sharing"]["nonfinite"] == {"node": [62], "none": [62]}
    row62 = [r for r in results["sharing"]["table"] if r["arch_id"] == 62][0]
    assert row62["ws_rank"] == 12
    text = (tmp_path / "report.md").read_text()
    assert "non-finite" in text and "ranked last" in text
    json.dumps(results, allow_nan=False)
    for name in report.FIGURES:
        png_size(tmp_path / name)


def test_parts_not_run_are_skipped(tmp_path):
    spec = tiny_spec(gt_seeds=[], ws_seeds=[], ws_eval_epochs=[], sharing=False, seeds=[0, 1])
    study = run_study(tmp_path / "study", spec)
    try:
        results = report.write(study, tmp_path / "out", n_boot=100, n_perm=100)
    finally:
        study.close()
    assert results["ground_truth"] is None and results["exhaustive_best"] is None
    assert results["ws_ranking"] is None and results["sharing"] is None
    assert len(results["random"]["valid_ppl"]) == 2
    assert all(r["gt_rank"] is None for recs in results["picks"].values() for r in recs)
    out = tmp_path / "out"
    text = (out / "report.md").read_text()
    assert text.count("Skipped") >= 3 and "skipped" in text
    assert (out / "fig3_learning_curves.png").exists()
    for name in ("fig4_rank_changes.png", "fig5_sharing.png", "tau_vs_epoch.png", "ws_vs_gt.png",
                 "ground_truth.csv", "ws_tau.csv", "sharing.csv"):
        assert not (out / name).exists(), name
    for name in ("table_policies.csv", "paired.csv", "picks.csv"):
        assert (out / name).exists()


def test_unfinished_study(tmp_path):
    study = nas_eval.Study(str(tmp_path / "study"))
    try:
        study.configure(tiny_spec())
        results = report.write(study, tmp_path / "out", n_boot=50, n_perm=50)
    finally:
        study.close()
    assert results["random"]["valid_ppl"] == [None, None, None]
    assert results["table"][0]["n"] == 0 and results["ground_truth"] is None
    text = (tmp_path / "out" / "report.md").read_text()
    assert "incomplete" in text
    json.dumps(results, allow_nan=False)

    empty = nas_eval.Study(str(tmp_path / "empty"))
    try:
        with pytest.raises(ValueError, match="no study"):
            report.build(empty)
    finally:
        empty.close()


def test_figures_in_memory_and_command_line(tiny_study, tiny_study_path, tmp_path):
    import matplotlib.pyplot as plt

    with pytest.warns(DeprecationWarning, match="figures"):  # the old form builds the results itself
        figs = report.figures(tiny_study)
    assert set(figs) == set(report.FIGURES)
    for fig in figs.values():
        texts = " ".join(t.get_text() for t in fig.texts)
        assert "preset=smoke" in texts and CORPUS[:20] in texts.replace("\n", "")
        plt.close(fig)
    from nas_eval import cli

    assert cli.main(["report", str(tiny_study_path), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").exists() and (tmp_path / "results.json").exists()


def test_figures_are_drawn_from_the_results_alone(written):
    """issue 18: rendering reads the results object, never the store; results.json read back
    (no study open) gives every figure, with the same WS-vs-ground-truth τ that build computed."""
    import matplotlib.pyplot as plt

    out, results = written
    loaded = json.loads((out / "results.json").read_text())
    figs = report.figures(loaded)
    assert set(figs) == set(report.FIGURES)
    mv = loaded["ws_ranking"]["mean_vs_gt"]
    title = figs["ws_vs_gt.png"].axes[0].get_title()
    assert f"Kendall τ = {mv['tau']:.3f}" in title
    gt = pd.Series({int(k): v["valid_ppl_mean"] for k, v in loaded["ground_truth"].items()}).dropna()
    ws = pd.Series({r["arch_id"]: r["ws_ppl"] for r in mv["ws_ppl"]})
    assert mv["tau"] == pytest.approx(metrics.kendall_tau(ws, gt, align="inner"))
    for fig in figs.values():
        plt.close(fig)


def test_report_prints_one_p_value_per_paired_comparison(written):
    """The paired table and the Evidence section use one test (the exact signed-rank p): for a
    policy against random over the same seeds, the two sections print the same p."""
    out, results = written
    ev = pd.DataFrame(results["evidence"])
    rows = ev[(ev["check"] == "paired_test") & ev["scope"].str.endswith("-node space")]
    assert len(rows)
    for r in rows.itertuples(index=False):
        policy = r.subject.removesuffix(" vs random")
        assert results["paired"][policy]["wilcoxon_p"] == pytest.approx(r.p_value, rel=1e-12)
