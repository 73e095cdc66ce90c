"""Checkpoints inside long jobs (issue 13): the file format's checks, and jobs killed by
SIGKILL at a random epoch that resume to bitwise the numbers of an uninterrupted run."""
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

import nas_eval
from nas_eval import checkpoint as ck_mod
from nas_eval import jobkinds, jobs  # noqa: F401
from nas_eval.checkpoint import Checkpoint
from nas_eval.jobs import Job

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = "synthetic:vocab_size=30,train_tokens=2400,valid_tokens=400,test_tokens=400,seed=1"
SMALL = dict(hidden_size=8, batch_size=8, bptt=10, train_tokens=None, valid_tokens=None, test_tokens=None)


def _state():
    return {"epoch": 7, "w": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.arange(3, dtype=np.int64),
            "best": float("inf"), "nan": float("nan"), "f32": np.float32(1.25), "i64": np.int64(2**40),
            "flag": True, "none": None, "name": "0:tanh 1:relu",
            "history": [{"epoch": 1, "loss": 0.1 + 0.2}, {"epoch": 2, "loss": 1e-300}],
            "nested": {"hidden": None, "pair": (1, 2)}}


def test_takes_checkpoint_reads_the_signature():
    """One test for the job runner and the policies (nas_eval.checkpoint), still importable
    from jobs; a callable without a readable signature does not take one."""
    assert ck_mod.takes_checkpoint(lambda x, checkpoint=None: x)
    assert not ck_mod.takes_checkpoint(lambda x, **options: x)
    assert not ck_mod.takes_checkpoint(1)
    assert jobs.takes_checkpoint is ck_mod.takes_checkpoint
    assert nas_eval.policies.takes_checkpoint is ck_mod.takes_checkpoint


def test_save_load_round_trips_every_type_exactly(tmp_path):
    ck = Checkpoint(tmp_path, "abc123")
    ck.save(_state())
    got = ck.load()
    assert got["epoch"] == 7 and got["w"].dtype == np.float32 and got["w"].shape == (2, 3)
    np.testing.assert_array_equal(got["w"], _state()["w"])
    assert got["ids"].dtype == np.int64 and got["i64"] == 2**40 and type(got["i64"]) is np.int64
    assert type(got["f32"]) is np.float32 and got["f32"] == np.float32(1.25)
    assert got["best"] == float("inf") and np.isnan(got["nan"])
    assert got["history"][0]["loss"] == 0.1 + 0.2 and got["history"][1]["loss"] == 1e-300
    assert got["flag"] is True and got["none"] is None and got["nested"] == {"hidden": None, "pair": [1, 2]}
    assert ck.events == []


def test_no_pickle_object_arrays_and_odd_types_are_refused(tmp_path):
    ck = Checkpoint(tmp_path, "abc123")
    with pytest.raises(TypeError, match="object arrays"):
        ck.save({"x": np.array([object()], dtype=object)})
    with pytest.raises(TypeError, match="keys must be strings"):
        ck.save({1: 2})
    with pytest.raises(TypeError, match="set is not storable"):
        ck.save({"s": {1, 2}})
    assert not ck.exists() and os.listdir(tmp_path) == []  # a failed save leaves nothing


@pytest.mark.parametrize("key", ["", "../x", "a/b", "a b", 5, None])
def test_job_key_must_be_a_plain_name(tmp_path, key):
    with pytest.raises(ValueError, match="job_key"):
        Checkpoint(tmp_path, key)


def test_missing_checkpoint_is_none_without_event(tmp_path):
    ck = Checkpoint(tmp_path / "not-yet", "k1")
    assert ck.load() is None and ck.events == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "header", "empty", "garbage-payload"])
def test_corrupt_or_truncated_checkpoint_is_ignored_with_an_event(tmp_path, damage):
    seen = []
    ck = Checkpoint(tmp_path, "k1", on_event=lambda kind, msg: seen.append((kind, msg)))
    ck.save(_state())
    data = bytearray(open(ck.path, "rb").read())
    if damage == "flip":
        data[-20] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "magic":
        data[:4] = b"XXXX"
    elif damage == "header":
        data = data[: len(ck_mod.MAGIC) + 5]
    elif damage == "empty":
        data = b""
    else:  # a valid envelope over bytes that are not an npz
        import hashlib
        payload = b"not an npz at all"
        env = {"job_key": "k1", "version": nas_eval.__version__, "sha256": hashlib.sha256(payload).hexdigest(),
               "size": len(payload)}
        data = ck_mod.MAGIC + json.dumps(env).encode() + b"\n" + payload
    open(ck.path, "wb").write(bytes(data))
    assert ck.load() is None
    assert [k for k, _ in seen] == ["checkpoint-corrupt"] and ck.path in seen[0][1]


def test_foreign_checkpoint_other_job_or_version_is_ignored(tmp_path, monkeypatch):
    a, b = Checkpoint(tmp_path, "job_a", on_event=lambda *e: None), Checkpoint(tmp_path, "job_b", on_event=lambda *e: None)
    a.save({"x": 1})
    os.replace(a.path, b.path)  # job a's file under job b's name
    assert b.load() is None and b.events[0]["kind"] == "checkpoint-foreign" and "job_a" in b.events[0]["message"]
    a.save({"x": 1})
    monkeypatch.setattr(ck_mod, "_version", lambda: "999.0")
    assert a.load() is None and a.events[0]["kind"] == "checkpoint-foreign" and "999.0" in a.events[0]["message"]


def test_default_event_goes_to_logging(tmp_path, caplog):
    ck = Checkpoint(tmp_path, "k1")
    open(ck.path, "wb").write(b"junk")
    with caplog.at_level("WARNING", logger="nas_eval.checkpoint"):
        assert ck.load() is None
    assert "checkpoint-corrupt" in caplog.text


def test_save_is_atomic_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ck = Checkpoint(tmp_path, "k1")
    ck.save({"epoch": 1})

    def boom(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ck_mod.os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        ck.save({"epoch": 2})
    monkeypatch.undo()
    assert ck.load() == {"epoch": 1} and os.listdir(tmp_path) == ["k1.ckpt"]  # no temporary left


def test_remove_deletes_the_checkpoint_and_stray_temporaries(tmp_path):
    ck = Checkpoint(tmp_path, "k1")
    ck.save({"epoch": 1})
    open(tmp_path / ".k1.123.abcd.tmp", "wb").write(b"half")
    open(tmp_path / "other.ckpt", "wb").write(b"x")
    ck.remove()
    ck.remove()  # twice is fine
    assert sorted(os.listdir(tmp_path)) == ["other.ckpt"]


def test_min_interval_limits_saves(tmp_path):
    ck = Checkpoint(tmp_path, "k1", min_interval=3600)
    assert ck.maybe_save(lambda: {"a": 1}) is False  # the interval starts at creation
    assert Checkpoint(tmp_path, "k1").maybe_save(lambda: {"a": 2}) is True
    with pytest.raises(ValueError, match="min_interval"):
        Checkpoint(tmp_path, "k1", min_interval=-1)


# --- jobs killed with SIGKILL and rerun ------------------------------------------------------
def _train_job(epochs=6):
    config = nas_eval.TrainConfig.preset("tiny", epochs=epochs, asgd=True, nonmono=1, **SMALL)
    space = nas_eval.SearchSpace(2)
    arch = "0:tanh 1:relu"
    return Job("train", {"n_nodes": 2, "arch": arch, "arch_id": space.index(nas_eval.Arch.parse(arch)),
                         "corpus": CORPUS, "config": config.to_dict(), "seed": 3})


def _ws_job(epochs=5):
    config = nas_eval.TrainConfig.preset("tiny", epochs=epochs, bptt_mode="search", **SMALL)
    archs = [str(a) for a in list(nas_eval.SearchSpace(2))[:6]]
    return Job("ws", {"n_nodes": 2, "archs": archs, "corpus": CORPUS, "config": config.to_dict(), "seed": 4,
                      "eval_epochs": [2, epochs], "sharing": "node"})


def _search_job(epochs=5, policy="ws-random", options=None):
    config = nas_eval.TrainConfig.preset("tiny", epochs=epochs, **SMALL)
    return Job("search", {"n_nodes": 2, "policy": policy, "corpus": CORPUS, "config": config.to_dict(),
                          "seed": 5, "options": options or {"candidates": 5}})


def _enas_job(epochs=4):
    return _search_job(epochs, "enas", {"preset": "smoke"})


def _nao_job(epochs=4):
    return _search_job(epochs, "nao", {"preset": "smoke"})


def _darts_job(epochs=3):
    return _search_job(epochs, "darts", {"preset": "cpu", "max_steps_per_epoch": 3})


def _numbers(kind, result):
    """The result without wall-clock fields: what must be bitwise identical."""
    result = json.loads(json.dumps(result))
    if kind == "train":
        result.pop("wall_time")
    elif kind == "ws":
        for row in result["rows"]:
            row.pop("wall_time")
    else:
        result.pop("wall_time")
        result["budget"] = {k: v for k, v in result["budget"].items()  # clock readings, not numbers
                            if k != "wall_time" and not k.endswith("_seconds")}
    return json.dumps(result, sort_keys=True, allow_nan=True)  # repr of floats: bitwise


def _run_killed(job, ckdir, kill_at, where, out):
    script = os.path.join(HERE, "killable_job.py")
    return subprocess.run([sys.executable, script, json.dumps({"kind": job.kind, "params": job.params}),
                           str(ckdir), str(kill_at), where, str(out)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("make,epochs,where", [(_train_job, 6, "after"), (_train_job, 6, "mid-write"),
                                                (_ws_job, 5, "after"), (_search_job, 5, "after"),
                                                (_enas_job, 4, "after"), (_nao_job, 4, "after"),
                                                (_darts_job, 3, "after")],
                         ids=["train", "train-mid-write", "ws", "search-ws-random", "search-enas", "search-nao",
                              "search-darts"])
def test_job_killed_at_a_random_epoch_resumes_bitwise(tmp_path, make, epochs, where):
    job = make(epochs)
    kill_at = random.Random(f"{job.kind}{where}").randint(1, epochs - 1)  # fixed, but not hand-picked
    full = jobs.run_job(job.kind, job.params, 1, None, None)["result"]

    ckdir = tmp_path / "ck"
    killed = _run_killed(job, ckdir, kill_at, where, tmp_path / "never.json")
    assert killed.returncode == -9, killed.stderr  # really SIGKILLed
    assert not (tmp_path / "never.json").exists()
    state = Checkpoint(ckdir, job.key).load()
    expected = kill_at if where == "after" else kill_at - 1  # mid-write: the previous epoch's survives
    assert (state is None) if expected == 0 else (state["trainer"]["epoch"] == expected)

    rerun = jobs.run_job(job.kind, job.params, 1, None, str(ckdir))
    assert [e["kind"] for e in rerun["provenance"].get("checkpoint", [])] == (["checkpoint-resumed"] if expected else [])
    assert _numbers(job.kind, rerun["result"]) == _numbers(job.kind, full)


def test_train_state_checkpoint_has_the_trainer_epoch(tmp_path):
    """The train kind saves StandaloneTraining.state(): its trainer's epoch is the epoch done."""
    job = _train_job(2)
    ckdir = tmp_path / "ck"
    jobs.run_job(job.kind, job.params, 1, None, str(ckdir))
    state = Checkpoint(ckdir, job.key).load()  # run_job leaves it: the driver removes it
    assert state["trainer"]["epoch"] == 2 and len(state["history"]) == 2 and state["best_weights"].dtype == np.float32


def test_corrupt_checkpoint_makes_the_job_start_over_with_the_same_numbers(tmp_path):
    job = _train_job(3)
    full = jobs.run_job(job.kind, job.params, 1, None, None)["result"]
    ckdir = tmp_path / "ck"
    os.makedirs(ckdir)
    open(Checkpoint(ckdir, job.key).path, "wb").write(b"NAS-EVAL-CHECKPOINT 1\n{broken")
    rerun = jobs.run_job(job.kind, job.params, 1, None, str(ckdir))
    assert [e["kind"] for e in rerun["provenance"]["checkpoint"]] == ["checkpoint-corrupt"]
    assert _numbers("train", rerun["result"]) == _numbers("train", full)


def test_study_removes_checkpoints_of_finished_jobs_and_logs_events(tmp_path):
    from study_fixture import tiny_spec

    study = nas_eval.Study(str(tmp_path / "s"))
    spec = tiny_spec(sharing=False)
    study.configure(spec)
    # a stale checkpoint of some ground-truth job from a "killed" earlier run: corrupt
    from nas_eval.plan import plan_first_phase
    key = plan_first_phase(spec)["ground_truth"][0][1].key
    os.makedirs(study.checkpoint_dir)
    open(os.path.join(study.checkpoint_dir, key + ".ckpt"), "wb").write(b"junk")
    counts = study.run(executor="serial", progress=False)
    assert counts["failed"] == 0
    assert os.listdir(study.checkpoint_dir) == []
    events = study.events()
    assert ((events["kind"] == "checkpoint-corrupt") & (events["key"] == key)).sum() == 1


def test_study_checkpoint_dir_option(tmp_path):
    from study_fixture import tiny_spec

    shared = tmp_path / "shared-ck"
    study = nas_eval.Study(str(tmp_path / "s"))
    seen = []
    real = Checkpoint.save

    def save(self, state):
        seen.append(self.directory)
        real(self, state)
    Checkpoint.save = save
    try:
        study.run(tiny_spec(sharing=False, policies=("random",), gt_seeds=()), executor="serial", progress=False,
                  checkpoint_dir=str(shared))
    finally:
        Checkpoint.save = real
    assert seen and set(seen) == {str(shared)} and os.listdir(shared) == []
    assert not os.path.exists(study.checkpoint_dir)
