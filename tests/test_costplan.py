"""nas_eval.costplan / `nas-eval plan`: the planned jobs are the jobs a study runs, their
numbers follow from the ETA's cost model and the rate, the wall time from the workers, and
bad arguments are refused by name."""
import math

import pytest

from nas_eval import Study, costplan
from nas_eval.cli import main
from nas_eval.costplan import StudyCost, plan_study
from nas_eval.eta import job_cost
from nas_eval.spec import study_preset

TINY = {"preset": "tiny", "hidden_size": 8, "batch_size": 4, "bptt": 5, "epochs": 1, "train_tokens": 400,
        "valid_tokens": 100, "test_tokens": 100}


def tiny_spec(**kw):
    kw.setdefault("ws_eval_epochs", (1,))
    return study_preset("smoke", name="plan-test", corpus="synthetic:vocab_size=20,train_tokens=400,"
                        "valid_tokens=100,test_tokens=100", train=dict(TINY), search=dict(TINY), **kw)


def test_the_planned_jobs_are_the_jobs_the_study_runs(tmp_path):
    # train_seed 5 is no ground-truth seed: the policies' picks are retrained in phase 2
    spec = tiny_spec(policies=("random", "ws-random"), seeds=(0, 1), train_seed=5, gt_seeds=(), ws_seeds=(0,),
                     sharing=False)
    plan = plan_study(spec, workers=2, rate=1.0)
    study = Study(str(tmp_path))
    study.run(spec, executor="serial", progress=False)
    recs = study.storage.records()
    assert all(r["state"] == "done" for r in recs)
    planned = plan.jobs.groupby(["phase", "kind"]).size().to_dict()
    assert planned == {(1, "search"): 1 * 2, (1, "train"): 2, (1, "ws"): 1, (2, "train"): 2}
    assert len(plan.jobs) == len(recs)
    ran = sorted(job_cost(r["kind"], r["params"]) for r in recs)
    assert sorted(plan.jobs["gflop"] * 1e9) == pytest.approx(ran, rel=1e-12)


def test_numbers_follow_from_costs_rate_and_workers():
    spec = study_preset("smoke")
    one = plan_study(spec, workers=1, rate=2.0)
    assert one.cpu_hours == pytest.approx(one.jobs["gflop"].sum() / 2.0 / 3600)
    assert (one.jobs["cpu_seconds"] == one.jobs["gflop"] / 2.0).all()
    assert one.wall_seconds == pytest.approx(one.jobs["seconds"].sum())  # one worker: one after another
    walls = [plan_study(spec, workers=w, rate=2.0).wall_seconds for w in (1, 2, 4, 16, 1000)]
    assert all(a >= b for a, b in zip(walls, walls[1:])) and walls[0] > walls[1] > walls[2]
    assert walls[1] >= walls[0] / 2 - 1e-9 and walls[2] >= walls[0] / 4 - 1e-9  # no better than linear
    assert walls[-1] == pytest.approx(one.jobs["seconds"].max())  # a worker per job: the longest
    threaded = plan_study(spec, workers=1, threads_per_job=3, rate=2.0)
    speedup = 1 + 2 * costplan.THREAD_EFFICIENCY
    assert threaded.wall_seconds == pytest.approx(one.wall_seconds / speedup)
    assert threaded.cpu_hours == pytest.approx(one.cpu_hours)
    table = one.table
    assert table["jobs"].sum() == len(one.jobs) and table["cpu_hours"].sum() == pytest.approx(one.cpu_hours)


def test_paper_and_standard_plan_without_running_anything():
    paper = plan_study(study_preset("paper"), workers=64, threads_per_job=4, rate=50.0)
    gt = paper.jobs[paper.jobs["role"] == "ground_truth"]
    assert len(gt) == 32 * 3 and (gt["hidden_size"] == 850).all()
    assert paper.cpu_hours > 1e4 and math.isfinite(paper.wall_seconds)
    assert "CPU-hours" in str(paper) and "64 worker(s) x 4 thread(s)" in str(paper)


@pytest.mark.parametrize("kw, message", [
    ({"workers": 0}, "workers must be a positive integer"),
    ({"workers": 2.5}, "workers must be a positive integer"),
    ({"threads_per_job": 0}, "threads_per_job must be a positive integer"),
    ({"rate": -1.0}, "rate must be a positive number"),
    ({"rate": float("nan")}, "rate must be a positive number"),
    ({"rate": True}, "rate must be a positive number"),
])
def test_bad_arguments_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        plan_study(study_preset("smoke"), **{"rate": 1.0, **kw})
    with pytest.raises(ValueError, match="spec must be a StudySpec"):
        plan_study("smoke")


def test_the_rate_is_measured_once_then_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_EVAL_CACHE", str(tmp_path))
    calls = []
    real = costplan._measure
    monkeypatch.setattr(costplan, "_measure", lambda *a: calls.append(a) or real(*a))
    first = costplan.sgemm_gflops(40, 16)
    assert first > 0 and costplan.sgemm_gflops(40, 16) == first and len(calls) == 1
    assert (tmp_path / "sgemm-rate.json").is_file()
    plan = plan_study(tiny_spec(), workers=1)  # measured: d=8 B=4 bptt=5
    assert plan.rates == {"d=8 B=4 bptt=5": pytest.approx(costplan.GEMM_EFFICIENCY * costplan.sgemm_gflops(20, 8))}
    assert isinstance(plan, StudyCost)


def test_cli_plan_takes_a_run_command_line(capsys):
    assert main(["plan", "--preset", "standard", "--rate", "40", "--workers", "3", "--out", "x",
                 "--data", "y", "--dask", "tcp://127.0.0.1:1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    jobs = len(plan_study(study_preset("standard"), workers=3, rate=40).jobs)  # the same plan from Python
    assert "study preset=standard" in out and f"{jobs} jobs" in out and "3 worker(s) x 1 thread(s)" in out
    assert "given, 40 GFLOP/s" in out
    assert main(["plan", "--preset", "smoke", "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert main(["plan", "--preset", "smoke", "--rate", "0"]) == 2
    assert "rate must be a positive number" in capsys.readouterr().err
