"""The main job is the paper's experiment (issue 22): study presets run the paper's policies at
the policy presets that fit them, impossible settings fail before anything runs, studies grow,
the 8-node preset reports Table 2 and Figure 3, one version, the notebook finds the main job."""
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nas_eval
from nas_eval.plan import check_feasible, plan_first_phase
from nas_eval.spec import PAPER_POLICIES, STUDY_PRESETS, study_preset
from nas_eval.study import find_study

ROOT = Path(__file__).resolve().parents[1]
CORPUS = "synthetic:vocab_size=40,train_tokens=3000,valid_tokens=600,test_tokens=600"
SMALL = {"train_tokens": None, "valid_tokens": None, "test_tokens": None, "hidden_size": 8, "epochs": 2}
PTB = {"train": 929_589, "valid": 73_760, "test": 82_430}


def micro(**overrides):
    """The smoke preset at d = 8 on a synthetic corpus, one ground-truth seed, two search seeds."""
    base = dict(corpus=CORPUS, train=dict(SMALL), search=dict(SMALL), seeds=[0, 1], gt_seeds=[0], ws_seeds=[0],
                ws_eval_epochs=[2], sharing=False, policies=["random", "ws-random"])
    return study_preset("smoke", **{**base, **overrides})


# --- item 1 / 2: the paper's policies, at the presets that fit the study --------------------
@pytest.mark.parametrize("name", ["smoke", "quick", "small", "standard", "8node", "paper"])
def test_every_study_preset_runs_the_papers_policies_and_fits_ptb(name):
    spec = study_preset(name)
    assert spec.policies == PAPER_POLICIES  # random, enas, darts, nao, then ws-random
    check_feasible(spec, PTB)  # every job of every preset fits the data it gets
    searched = {job.params["policy"] for _, job in plan_first_phase(spec)["search"]}
    assert searched == {"enas", "darts", "nao", "ws-random"}


def test_policy_presets_follow_the_study_preset_and_explicit_options_win():
    smoke, standard = study_preset("smoke"), study_preset("standard")
    assert smoke.options_for("enas") == {"preset": "smoke"} and standard.options_for("nao") == {"preset": "cpu"}
    assert smoke.options_for("nao") == {"preset": "smoke", "epochs": 4}  # NAO's 3 controller rounds
    assert smoke.options_for("ws-random") == {}  # one preset only: the reference
    # a field on top of the study's preset; an explicit preset replaces it whole
    spec = study_preset("smoke", policy_options={"enas": {"controller_steps": 3},
                                                 "darts": {"preset": "cpu-first-order"}})
    assert spec.options_for("enas") == {"preset": "smoke", "controller_steps": 3}
    assert spec.options_for("darts") == {"preset": "cpu-first-order"}
    job = dict(plan_first_phase(spec)["search"])[("enas", 0)]
    assert job.params["options"] == {"preset": "smoke", "controller_steps": 3}
    # the study preset's choice survives a policies override (the smoke command)
    assert study_preset("smoke", policies=["enas", "random"]).options_for("enas") == {"preset": "smoke"}


# --- item 3: plan-time validation ------------------------------------------------------------
@pytest.mark.parametrize("options, words", [
    ({"enas": {"preset": "reference", "reward_mode": "eval", "final_scoring": "split"}},
     ["policy enas", "reward_batch_size=64", "2,304", "1,500", "fix:"]),
    ({"enas": {"reward_batch_size": 1000}}, ["policy enas", "reward_batch_size=1000", "2,000", "fix:"]),
    ({"nao": {"eval_every": 5}}, ["nao option eval_every=5", "0 controller round(s)", "min_controller_rounds=3"]),
    ({"darts": {"batch_size": 1000}}, ["policy darts", "batch_size=1000", "fix: batch_size <= 750"]),
    ({"nao": {"pool_fraction": 0.01}}, ["nao option pool_size/pool_fraction", "pool of 1", "at least 2"]),
])
def test_an_impossible_policy_option_names_policy_option_value_and_fix(options, words):
    spec = study_preset("smoke", policy_options=options)
    with pytest.raises(ValueError) as err:
        check_feasible(spec, PTB)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_an_impossible_recipe_is_refused_too():
    with pytest.raises(ValueError, match=r"\[train\] batch_size=16: the train split gives 20 tokens"):
        check_feasible(study_preset("smoke"), {"train": 20, "valid": 1500, "test": 1500})


def test_study_run_checks_before_any_job_or_write(tmp_path):
    study = nas_eval.Study(str(tmp_path / "s"))
    spec = micro(policies=["random", "enas"], policy_options={"enas": {"reward_batch_size": 500}})
    with pytest.raises(ValueError, match="policy enas, option reward_batch_size=500"):
        study.run(spec, executor="serial", progress=False)
    assert study.spec is None and len(study.storage) == 0  # no spec, no job recorded


def test_cli_fails_in_seconds_and_writes_nothing(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(f'preset = "smoke"\ncorpus = "{CORPUS}"\npolicies = ["enas", "random"]\n'
                      "[policy_options]\nenas = {reward_batch_size = 400}\n")
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "nas_eval", "run", "--config", str(config), "--out",
                        str(tmp_path / "out"), "--gt-seeds", "0", "--ws-seeds", "", "--no-sharing"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "policy enas, option reward_batch_size=400" in r.stderr, r.stderr
    assert "fix:" in r.stderr and time.time() - t0 < 60
    assert not (tmp_path / "out").exists()


# --- item 8: studies that grow ---------------------------------------------------------------
def _finished(db):
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select key, finished from jobs where state='done'").fetchall())


def test_a_study_grows_with_a_policy_and_reruns_no_finished_job(tmp_path):
    path = tmp_path / "s"
    study = nas_eval.Study(str(path))
    first = study.run(micro(), executor="serial", progress=False)
    before = _finished(path / "study.db")
    assert first["failed"] == 0 and len(before) == first["done"] > 0
    grown = micro(policies=["random", "ws-random", "enas"], seeds=[0, 1, 2])
    counts = study.run(grown, executor="serial", progress=False)
    after = _finished(path / "study.db")
    assert all(after[k] == v for k, v in before.items()), "a finished job was rerun"
    # what ran is exactly what is new: enas for 3 seeds, ws-random's third seed, r_2, their retrains
    assert counts["done"] == len(after) - len(before) and counts["failed"] == 0
    assert counts["done"] == 4  # r_2 and every retraining are ground-truth runs (training seed 0)
    spec = study.spec
    assert spec.policies == ("random", "ws-random", "enas") and spec.seeds == (0, 1, 2)
    assert [h["spec"].policies for h in study.spec_history()] == [("random", "ws-random"),
                                                                 ("random", "ws-random", "enas")]
    r = study.retrains()
    assert set(r["policy"]) == {"random", "ws-random", "enas"} and len(r) == 9  # the report covers the union
    # running the first spec again is a subset: nothing runs, the study keeps the union
    assert study.run(micro(), executor="serial", progress=False)["submitted"] == 0
    assert study.spec.policies == ("random", "ws-random", "enas") and len(study.spec_history()) == 3


def test_a_change_to_finished_jobs_parameters_is_refused_naming_the_fields(tmp_path):
    study = nas_eval.Study(str(tmp_path / "s"))
    study.configure(micro())
    with pytest.raises(ValueError, match=r"train\.epochs: 2 -> 3") as err:
        study.configure(micro(train={**SMALL, "epochs": 3}, corpus=CORPUS + ",seed=9"))
    assert "corpus:" in str(err.value) and "use a new directory" in str(err.value)
    with pytest.raises(ValueError, match="options of ws-random"):
        study.configure(micro(policy_options={"ws-random": {"candidates": 5}}))
    assert study.spec == micro()  # nothing recorded


# --- item 5: the 8-node experiment -----------------------------------------------------------
def test_8node_micro_study_reports_table_2_and_figure_3(tmp_path):
    from nas_eval import report

    smoke = {p: {"preset": "smoke"} for p in ("enas", "darts")}
    spec = study_preset("8node", corpus=CORPUS, train=dict(SMALL), search=dict(SMALL), seeds=[0, 1],
                        policy_defaults={**smoke, "nao": {"preset": "smoke", "pool_fraction": None, "pool_size": 4,
                                                         "epochs": 4}},
                        policy_options={"ws-random": {"candidates": 4}})
    assert spec.n_nodes == 8 and not spec.gt_seeds and not spec.ws_seeds and not spec.sharing
    study = nas_eval.Study(str(tmp_path / "s"))
    counts = study.run(spec, executor="serial", progress=False)
    assert counts["failed"] == 0
    report.write(study, str(tmp_path / "s"))
    text = (tmp_path / "s" / "report.md").read_text()
    assert "## Policies against random (the paper's Tables 2/3)" in text
    for policy in PAPER_POLICIES:
        assert f"| {policy} " in text, policy
    assert (tmp_path / "s" / "fig3_learning_curves.png").stat().st_size > 0
    assert "8node" in STUDY_PRESETS.describe() and "measured" in STUDY_PRESETS.info("8node").duration


# --- item 7: one version; the notebook opens the main job --------------------------------------
def test_the_version_is_written_in_one_place():
    tomllib = pytest.importorskip("tomllib")
    from importlib.metadata import version

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in data["project"] and "version" in data["project"]["dynamic"]
    assert data["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "nas_eval.__version__"}
    # what pip installed (built with the build backend pyproject names, not this venv's setuptools)
    assert version("nas_eval") == nas_eval.__version__


def test_find_study_opens_the_main_job_from_anywhere_in_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("NAS_EVAL_STUDY", raising=False)
    main = tmp_path / "repo" / "runs" / "standard"
    main.mkdir(parents=True)
    (main / "study.db").write_bytes(b"")
    (tmp_path / "repo" / "notebooks").mkdir()
    for start in ("repo", "repo/notebooks", "repo/runs"):
        assert Path(find_study(start=tmp_path / start)) == main
    monkeypatch.setenv("NAS_EVAL_STUDY", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="NAS_EVAL_STUDY"):
        find_study(start=tmp_path / "repo")  # an explicit path that does not exist is no fallback
    os.makedirs(tmp_path / "elsewhere")
    assert find_study(start=tmp_path / "repo") == str(tmp_path / "elsewhere")
