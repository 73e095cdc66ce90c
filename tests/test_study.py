"""The protocol as a resumable study: plan, resume after SIGKILL, Dask equals serial, CLI."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import nas_eval
from nas_eval.plan import plan_first_phase
from nas_eval.spec import StudySpec, study_preset

CORPUS = "synthetic:vocab_size=40,train_tokens=6000,valid_tokens=1500,test_tokens=1500,seed=3"

MICRO_TOML = f"""
preset = "smoke"
corpus = "{CORPUS}"
policies = ["random", "ws-random"]
seeds = [0, 1]
gt_seeds = [0]
ws_seeds = [0]
ws_eval_epochs = [1, 2]
sharing_gt_seeds = [0]
sharing_ws_seeds = [0]
[train]
hidden = 8
epochs = {{epochs}}
[search]
hidden = 8
"""


def micro(epochs=2):
    return study_preset("smoke", corpus=CORPUS, policies=["random", "ws-random"], seeds=[0, 1], gt_seeds=[0], ws_seeds=[0], ws_eval_epochs=[1, 2],
                        sharing_gt_seeds=[0], sharing_ws_seeds=[0], train={"hidden_size": 8, "epochs": epochs},
                        search={"hidden_size": 8})


def numbers(study):
    r = study.retrains().sort_values(["policy", "seed"])
    return list(zip(r["policy"], r["seed"], r["arch_id"], r["valid_ppl"], r["test_ppl"]))


@pytest.fixture(scope="module")
def serial_study(tmp_path_factory):
    study = nas_eval.Study(str(tmp_path_factory.mktemp("serial")))
    study.run(micro(), executor="serial", progress=False)
    return study


def test_plan_covers_the_protocol():
    spec = micro()
    plan = plan_first_phase(spec)
    assert len(plan["ground_truth"]) == 32
    assert len(plan["search"]) == 2  # ws-random x 2 seeds; random is the baseline itself
    assert len(plan["random"]) == 2
    assert len(plan["sharing_gt"]) == 12 and len(plan["sharing_ws"]) == 2
    # a retraining with the training seed and the ground-truth run of that seed are one job
    gt_keys = {job.key for _, job in plan["ground_truth"]}
    assert all(job.key in gt_keys for _, job in plan["random"])


def test_status_counts_each_job_once_as_the_plan_does(serial_study):
    # the retrainings with the training seed are ground-truth runs: listed as shared, not
    # counted twice, so the total is the plan's count and the store's
    from nas_eval.costplan import plan_study

    status = serial_study.status().set_index("role")
    assert status.loc["retrain", "jobs"] == 0 and status.loc["retrain", "shared"] == 2  # ws-random x 2 seeds
    assert status.loc["random", "shared"] == 2  # the random baseline x 2 seeds
    total = int(status["jobs"].sum())
    assert total == len(plan_study(serial_study.spec, rate=1.0).jobs)
    assert total == len(serial_study.storage.records())


def test_serial_study_results(serial_study):
    status = serial_study.status()
    assert (status["done"] == status["jobs"]).all()
    r = serial_study.retrains()
    assert sorted(set(r["policy"])) == ["random", "ws-random"]
    assert len(r) == 4 and r["train_seed"].eq(0).all()
    gt = serial_study.ground_truth()
    assert len(gt) == 32 and len(gt.runs) == 32 and gt.runs["valid_ppl"].lt(40).all()
    ws = serial_study.ws()
    assert set(ws["epoch"]) == {1, 2} and len(ws) == 64
    # the pick of ws-random is the WS top-1 of its own search trace
    s = serial_study.searches()
    assert set(s["policy"]) == {"ws-random"}


def test_rerunning_a_finished_study_runs_nothing(serial_study):
    before = numbers(serial_study)
    counts = serial_study.run(executor="serial", progress=False)
    assert counts["submitted"] == 0
    assert numbers(serial_study) == before


def test_a_store_keeps_one_spec(serial_study):
    with pytest.raises(ValueError, match="another spec"):
        serial_study.configure(micro(epochs=3))


def _done_count(db):
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(*) from jobs where state='done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_midway_then_rerun_resumes_and_matches(tmp_path, serial_study):
    config = tmp_path / "micro.toml"
    config.write_text(MICRO_TOML.replace("{epochs}", "2"))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "nas_eval", "run", "--config", str(config), "--out", str(out),
           "--executor", "serial", "--no-progress"]
    # cwd outside the checkout: `-m` must import the installed package, not the source tree
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    db = out / "study.db"
    deadline = time.time() + 60
    while _done_count(db) < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _done_count(db)
    assert 8 <= done_before
    with sqlite3.connect(db) as conn:
        finished = dict(conn.execute("select key, finished from jobs where state='done'").fetchall())
    assert subprocess.run(cmd, capture_output=True, cwd=tmp_path).returncode == 0
    study = nas_eval.Study(str(out))
    with sqlite3.connect(db) as conn:
        after = dict(conn.execute("select key, finished from jobs where state='done'").fetchall())
    assert all(after[k] == v for k, v in finished.items()), "a finished job was rerun"
    assert (study.status()["done"] == study.status()["jobs"]).all()
    assert numbers(study) == numbers(serial_study)


def test_dask_local_cluster_gives_the_serial_numbers(tmp_path, serial_study):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        study = nas_eval.Study(str(tmp_path / "dask"))
        study.run(micro(), executor=client.get_executor(pure=False), progress=False)
    assert numbers(study) == numbers(serial_study)
    gt = study.ground_truth().runs.sort_values(["arch_id", "seed"])["valid_ppl"].tolist()
    assert gt == serial_study.ground_truth().runs.sort_values(["arch_id", "seed"])["valid_ppl"].tolist()


def test_cli_rejects_bad_input_before_any_job(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "nas_eval", *args], capture_output=True, text=True,
                              cwd=tmp_path)

    r = run("reproduce", "--preset", "gigantic", "--out", str(tmp_path / "a"))
    assert r.returncode == 2 and "unknown study preset" in r.stderr
    r = run("run", "--preset", "smoke", "--policies", "random,evolution", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "unknown policy 'evolution'" in r.stderr
    r = run("run", "--preset", "smoke", "--out", str(tmp_path / "c"), "--data", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "no such directory" in r.stderr
    r = run("run", "--preset", "smoke", "--corpus", str(tmp_path), "--out", str(tmp_path / "d"))
    assert r.returncode != 0 and "train.txt" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('preset = "tiny"\nseedz = [1]\n')
    r = run("run", "--config", str(bad), "--out", str(tmp_path / "e"))
    assert r.returncode == 2 and "seedz" in r.stderr
    assert not (tmp_path / "e" / "study.db").exists()
    r = run("status", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "holds no study" in r.stderr


def test_spec_round_trip_and_validation():
    spec = study_preset("quick")
    assert StudySpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown policy"):
        study_preset("smoke", policies=["random", "nope"])
    with pytest.raises(ValueError, match="ws_eval_epochs"):
        study_preset("smoke", ws_eval_epochs=[99])
    with pytest.raises(ValueError, match="duplicates"):
        study_preset("smoke", seeds=[1, 1])


def test_cli_runs_a_study_on_a_dask_cluster(tmp_path, serial_study):
    distributed = pytest.importorskip("distributed")
    config = tmp_path / "micro.toml"
    config.write_text(MICRO_TOML.replace("{epochs}", "2"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        r = subprocess.run([sys.executable, "-m", "nas_eval", "run", "--config", str(config), "--out",
                            str(tmp_path / "d"), "--dask", cluster.scheduler_address, "--no-progress"],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert numbers(nas_eval.Study(str(tmp_path / "d"))) == numbers(serial_study)


def test_eta_cost_model_orders_jobs_by_work():
    from nas_eval.eta import Estimator, job_cost
    from nas_eval.plan import plan_first_phase

    plan = plan_first_phase(micro())
    ws = job_cost("ws", plan["ws"][0][1].params)
    train = job_cost("train", plan["ground_truth"][0][1].params)
    assert ws > train > 0  # a super-net scores every architecture; one training does not
    big = micro().replace(train=micro().train.replace(hidden_size=64))
    assert job_cost("train", plan_first_phase(big)["ground_truth"][0][1].params) > train
    est = Estimator({"a": 1.0, "b": 3.0})
    assert est.eta_seconds(elapsed=1.0) is None and est.text() == "?"
    est.done("a")
    assert est.eta_seconds(elapsed=2.0) == pytest.approx(6.0)


def test_status_eta_uses_the_cost_model():
    """`nas-eval status` computes its ETA with nas_eval.eta's cost model (issue 18), not jobs
    left x mean job time: a super-net left after two small trainings is not "one more job"."""
    from nas_eval import eta

    small = {"config": {"hidden_size": 8, "epochs": 1, "train_tokens": 1000, "valid_tokens": 100,
                        "test_tokens": 100}, "n_nodes": 2}
    big = {**small, "config": {**small["config"], "epochs": 20}}
    recs = [{"key": "a", "kind": "train", "params": small, "state": "done", "started": 100.0, "finished": 104.0},
            {"key": "b", "kind": "train", "params": small, "state": "done", "started": 101.0, "finished": 105.0},
            {"key": "c", "kind": "train", "params": big, "state": "pending", "started": None, "finished": None}]
    rate = 2 * eta.job_cost("train", small) / 5.0  # two done in 5 s of wall time (two workers)
    assert eta.from_records(recs) == pytest.approx(eta.job_cost("train", big) / rate)
    assert eta.from_records(recs) > 10 * 5.0 / 2  # far more than "one more mean job"
    assert eta.from_records([dict(r, state="pending") for r in recs]) is None
