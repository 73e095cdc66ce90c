"""Every bad input of docs/bad_inputs.md, one parametrized case each (the table names the
case ids): the Python API raises the exception named there with a message naming the
problem; the CLI prints ``nas-eval: error: ...`` (no traceback), exits 2 and writes nothing.
Also the regressions of issue 13's silently wrong numbers."""
import json
import os

import numpy as np
import pytest

import nas_eval
from nas_eval import Arch, SearchSpace, TrainConfig, datasets, jobs, metrics, policies
from nas_eval.checkpoint import Checkpoint
from nas_eval.executors import make_executor
from nas_eval.plan import check_feasible
from nas_eval.spec import StudySpec, study_preset
from study_fixture import tiny_spec
from nas_eval.store import Storage, StoreError

V = 20
TOK = np.arange(200) % V
SEG = (np.arange(40) % V).reshape(10, 4)
SMALL_CORPUS = "synthetic:vocab_size=20,train_tokens=500,valid_tokens=200,test_tokens=200"


@pytest.fixture(scope="module")
def model():
    from nas_eval.engine import CellLM
    return CellLM("0:tanh 1:relu", V, 8, seed=0)


def _corpus():
    return datasets.synthetic(vocab_size=V, train_tokens=500, seed=0)


# (id, call(model, tmp_path), exception, message regex)
API = [
    # the C entry points' argument checks
    ("ids-above-int32-loss", lambda m, p: m.loss(TOK + 2**32, 4, 10), ValueError, "outside the vocabulary"),
    ("ids-above-int32-step", lambda m, p: m.loss_and_grad(SEG + 2**32, SEG), ValueError, "inputs holds token id 4294967"),
    ("ids-uint64-huge", lambda m, p: m.loss_and_grad(SEG.astype(np.uint64) + np.uint64(2**63), SEG), ValueError, "outside the vocabulary"),
    ("ids-float-loss", lambda m, p: m.loss(TOK.astype(float), 4, 10), ValueError, "token ids must be integers"),
    ("ids-float-step", lambda m, p: m.loss_and_grad(SEG + 0.5, SEG), ValueError, "inputs must hold integer token ids"),
    ("ids-negative", lambda m, p: m.loss_and_grad(SEG - 1, SEG), ValueError, "token id -1 outside the vocabulary"),
    ("ids-equal-vocab", lambda m, p: m.loss_and_grad(SEG, SEG + V), ValueError, "targets holds token id 20"),
    ("ids-negative-loss", lambda m, p: m.loss(TOK - 1, 4, 10), ValueError, "token id -1 is outside the vocabulary"),
    ("tar-nan", lambda m, p: m.loss_and_grad(SEG, SEG, tar=float("nan")), ValueError, "tar must be a finite number >= 0, got nan"),
    ("ar-negative", lambda m, p: m.loss_and_grad(SEG, SEG, ar=-1.0), ValueError, "ar must be a finite number >= 0"),
    ("tar-inf", lambda m, p: m.loss_and_grad(SEG, SEG, tar=float("inf")), ValueError, "tar must be a finite"),
    ("segment-shape-mismatch", lambda m, p: m.loss_and_grad(SEG, SEG[:5]), ValueError, "one shape"),
    ("segment-1d", lambda m, p: m.loss_and_grad(SEG[0], SEG[0]), ValueError, r"\(T, B\)"),
    ("segment-empty", lambda m, p: m.loss_and_grad(np.zeros((0, 4), int), np.zeros((0, 4), int)), ValueError, "inputs is empty"),
    ("hidden-wrong-shape", lambda m, p: m.loss_and_grad(SEG, SEG, hidden=np.zeros((3, 8), np.float32)), ValueError, r"hidden must have shape \(4, 8\)"),
    ("hidden-nan", lambda m, p: m.loss_and_grad(SEG, SEG, hidden=np.full((4, 8), np.nan)), ValueError, "hidden holds a non-finite value"),
    ("stream-2d", lambda m, p: m.loss(TOK.reshape(10, 20)), ValueError, "must be 1-D"),
    ("stream-too-short", lambda m, p: m.loss(TOK[:3], 4), ValueError, "too short for batch_size 4"),
    ("loss-batch-size-0", lambda m, p: m.loss(TOK, 0), ValueError, "batch_size must be a positive integer"),
    ("loss-bptt-0", lambda m, p: m.loss(TOK, 4, 0), ValueError, "bptt must be a positive integer"),
    ("fit-steps-bptt-0", lambda m, p: m.fit_steps(TOK, 2, batch_size=4, bptt=0), ValueError, "bptt must be a positive integer, got 0"),
    ("fit-steps-batch-none", lambda m, p: m.fit_steps(TOK, 2, batch_size=None), ValueError, "batch_size must be a positive integer, got None"),
    ("fit-steps-bptt-float", lambda m, p: m.fit_steps(TOK, 2, batch_size=4, bptt=2.5), ValueError, "bptt must be a positive integer, got 2.5"),
    ("fit-steps-steps-negative", lambda m, p: m.fit_steps(TOK, -1), ValueError, "steps must be a non-negative integer"),
    ("fit-steps-lr-nan", lambda m, p: m.fit_steps(TOK, 1, batch_size=4, lr=float("nan")), ValueError, "lr must be a finite number"),
    # models and architectures
    ("arch-empty", lambda m, p: Arch.parse(""), ValueError, "empty string"),
    ("arch-unknown-op", lambda m, p: Arch.parse("0:foo"), ValueError, "unknown op 'foo'"),
    ("arch-bad-predecessor", lambda m, p: Arch.parse("0:tanh 0:relu 9:tanh"), ValueError, "predecessor 9 is not an earlier node"),
    ("arch-not-a-string", lambda m, p: Arch.parse(5), ValueError, "expected a string"),
    ("model-vocab-0", lambda m, p: nas_eval.CellLM("0:tanh", 0, 8), ValueError, "vocab_size must be a positive integer"),
    ("model-hidden-negative", lambda m, p: nas_eval.CellLM("0:tanh", V, -1), ValueError, "hidden_size must be a positive integer"),
    ("model-unknown-dropout", lambda m, p: nas_eval.CellLM("0:tanh", V, 8, dropx=0.1), ValueError, r"unknown dropout\(s\) \['dropx'\]"),
    ("model-dropout-1.5", lambda m, p: nas_eval.CellLM("0:tanh", V, 8, dropout=1.5), ValueError, r"dropout must be in \[0, 1\)"),
    ("space-0-nodes", lambda m, p: SearchSpace(0), ValueError, "n_nodes must be >= 1"),
    # training configuration and runs
    ("config-epochs-0", lambda m, p: TrainConfig.preset("tiny", epochs=0), ValueError, "TrainConfig.epochs must be a positive integer"),
    ("config-lr-nan", lambda m, p: TrainConfig.preset("tiny", lr=float("nan")), ValueError, "TrainConfig.lr must be a finite number"),
    ("config-bptt-mode", lambda m, p: TrainConfig.preset("tiny", bptt_mode="x"), ValueError, "TrainConfig.bptt_mode must be one of"),
    ("config-unknown-preset", lambda m, p: TrainConfig.preset("nope"), ValueError, "unknown training preset 'nope'"),
    ("train-seed-negative", lambda m, p: nas_eval.train("0:tanh", _corpus(), TrainConfig.preset("tiny"), seed=-1), ValueError, "seed must be a non-negative integer"),
    ("train-config-a-string", lambda m, p: nas_eval.train("0:tanh", _corpus(), "tiny"), ValueError, "config must be a TrainConfig"),
    ("train-no-corpus", lambda m, p: nas_eval.train("0:tanh", None, TrainConfig.preset("tiny")), ValueError, "corpus has no train split"),
    # corpora
    ("corpus-spec-empty", lambda m, p: datasets.from_spec(""), ValueError, "corpus spec must be a non-empty string"),
    ("corpus-spec-bad-int", lambda m, p: datasets.from_spec("synthetic:vocab_size=x"), ValueError, "vocab_size must be an integer, got 'x'"),
    ("corpus-spec-unknown-key", lambda m, p: datasets.from_spec("synthetic:bogus=1"), ValueError, "synthetic:bogus=1"),
    ("corpus-dir-missing-files", lambda m, p: datasets.load(str(p)), FileNotFoundError, "lacks train.txt"),
    # study settings (TOML tables and dicts)
    ("study-seeds-a-string", lambda m, p: StudySpec.from_dict({"seeds": "abc"}), ValueError, "study setting 'seeds' must be a list"),
    ("study-train-not-a-table", lambda m, p: StudySpec.from_dict({"train": 5}), ValueError, "'train' must be a table"),
    ("study-train-epochs-string", lambda m, p: StudySpec.from_dict({"train": {"epochs": "x"}}), ValueError, "TrainConfig.epochs must be a positive integer, got 'x'"),
    ("study-sharing-no", lambda m, p: StudySpec.from_dict({"sharing": "no"}), ValueError, "sharing must be true or false"),
    ("study-train-seed-negative", lambda m, p: StudySpec.from_dict({"train_seed": -1}), ValueError, "train_seed must be a non-negative integer"),
    ("study-policy-options-not-table", lambda m, p: StudySpec.from_dict({"policy_options": 3}), ValueError, "policy_options must be a table"),
    ("study-unknown-setting", lambda m, p: StudySpec.from_dict({"unknown_key": 1}), ValueError, r"unknown study setting\(s\) \['unknown_key'\]"),
    ("study-toml-syntax", lambda m, p: StudySpec.from_toml(_write(p, "x.toml", "not toml [[[\n")), ValueError, "Expected '='"),
    # found by tests/test_fuzz.py (hypothesis): TypeErrors before the fix
    ("fuzz-toml-preset-not-a-name", lambda m, p: StudySpec.from_toml(_write(p, "x.toml", "preset=1\nname=[]\n")), ValueError, "study preset must be a name"),
    ("fuzz-toml-preset-and-name", lambda m, p: StudySpec.from_toml(_write(p, "x.toml", 'preset="smoke"\nname=3\n')), ValueError, "name"),
    ("fuzz-train-preset-a-list", lambda m, p: StudySpec.from_dict({"train": {"preset": [None]}}), ValueError, "training preset must be a name"),
    ("fuzz-policies-nested-list", lambda m, p: StudySpec.from_dict({"policies": [["ws-random"]]}), ValueError, "a policy is named by a string"),
    ("fuzz-big-space-with-ws-seeds", lambda m, p: StudySpec.from_dict({"n_nodes": 20}), ValueError, "WS ranking scores every architecture"),
    ("policy-unknown", lambda m, p: policies.check("bogus"), ValueError, "unknown policy 'bogus'"),
    ("policy-option-range", lambda m, p: policies.check_options("ws-random", {"candidates": 0}), ValueError, "candidates must be an integer in 1..100000"),
    ("policy-option-unknown", lambda m, p: policies.check_options("ws-random", {"bogus": 0}), ValueError, r"unknown ws-random option\(s\) \['bogus'\]"),
    # stores, jobs and checkpoints
    ("job-params-nan", lambda m, p: jobs.Job("train", {"x": float("nan")}), ValueError, "job params must be finite JSON"),
    ("store-path-a-file", lambda m, p: Storage(_write(p, "afile", "x")), StoreError, "is a file, not a study directory"),
    ("store-corrupt-db", lambda m, p: Storage(_write(p, "study.db", "garbage " * 200)), StoreError, "not a usable nas_eval store"),
    ("checkpoint-key-path", lambda m, p: Checkpoint(p, "../x"), ValueError, "job_key must be"),
    ("checkpoint-object-array", lambda m, p: Checkpoint(p, "k").save({"x": np.array([None], dtype=object)}), TypeError, "object arrays are not storable"),
    ("study-checkpoint-dir-a-file", lambda m, p: _study(p).run(executor="serial", progress=False, checkpoint_dir=_write(p, "cf", "x")), ValueError, "checkpoint_dir .* is a file"),
    # issue 22: explicit paths never fall back, wrong types are refused (not truncated), empty
    # collections where nothing can run are refused, None names the argument
    ("load-root-missing-no-fallback", lambda m, p: _with_data_env(p, lambda: datasets.load("ptb", root=os.path.join(str(p), "nowhere"))), FileNotFoundError, "root argument .*nowhere: no such directory"),
    ("load-root-without-corpus-no-fallback", lambda m, p: _with_data_env(p, lambda: datasets.load("ptb", root=str(p))), FileNotFoundError, "no other place is searched"),
    ("load-env-missing", lambda m, p: _with_data_env(p, lambda: datasets.load("ptb"), env="nowhere"), FileNotFoundError, r"\$NAS_EVAL_DATA .*nowhere: no such directory"),
    ("study-policies-empty", lambda m, p: StudySpec(policies=()), ValueError, "policies must name at least one policy"),
    ("policy-seed-float", lambda m, p: policies.search("random", SearchSpace(2), None, None, seed=2.7), ValueError, "seed must be a non-negative integer, got 2.7"),
    ("random-arch-seed-string", lambda m, p: policies.random_arch(SearchSpace(2), "3"), ValueError, "seed must be a non-negative integer, got '3'"),
    ("ws-eval-epochs-float", lambda m, p: nas_eval.ws_ranking(SearchSpace(1), _corpus(), TrainConfig.preset("tiny"), seeds=[0], eval_epochs=[1.5]), ValueError, "eval_epochs must be positive integers"),
    ("synthetic-seed-float", lambda m, p: datasets.synthetic(seed=2.7), ValueError, "seed must be a non-negative integer, got 2.7"),
    ("executor-workers-float", lambda m, p: make_executor("process", workers=2.5), ValueError, "workers must be a positive integer, got 2.5"),
    ("study-threads-per-job-float", lambda m, p: _study(p).run(executor="serial", threads_per_job=1.5, progress=False), ValueError, "threads_per_job must be a positive integer, got 1.5"),
    ("paired-stats-none", lambda m, p: metrics.paired_stats(None, [1.0, 2.0]), ValueError, "policy must be a sequence of numbers"),
    ("study-policy-option-infeasible", lambda m, p: check_feasible(study_preset("smoke", policy_options={"enas": {"preset": "reference", "reward_mode": "eval", "final_scoring": "split"}}), {"train": 6000, "valid": 1500, "test": 1500}), ValueError, "policy enas, option reward_batch_size=64: .*2,304 .* fix: "),
    ("study-grow-changes-a-recipe", lambda m, p: _study(p).configure(tiny_spec(sharing=False).replace(train=_study(p).spec.train.replace(epochs=3))), ValueError, r"train\.epochs: 2 -> 3.*use a new directory"),
]


def _write(path, name, text):
    full = os.path.join(str(path), name)
    with open(full, "w") as f:
        f.write(text)
    return full


def _with_data_env(path, call, env="env"):
    """``call()`` with $NAS_EVAL_DATA naming ``<path>/<env>``, which holds a ptb/ corpus (when
    ``env`` is "env"): an explicit path elsewhere must not fall back to it."""
    for split in ("train", "valid", "test"):
        os.makedirs(os.path.join(str(path), "env", "ptb"), exist_ok=True)
        _write(os.path.join(str(path), "env", "ptb"), f"{split}.txt", "a b\n")
    old = os.environ.get("NAS_EVAL_DATA")
    os.environ["NAS_EVAL_DATA"] = os.path.join(str(path), env)
    try:
        return call()
    finally:
        if old is None:
            del os.environ["NAS_EVAL_DATA"]
        else:
            os.environ["NAS_EVAL_DATA"] = old


def _study(path):
    study = nas_eval.Study(os.path.join(str(path), "study"))
    study.configure(tiny_spec(sharing=False))
    return study


@pytest.mark.parametrize("case", API, ids=[c[0] for c in API])
def test_api_bad_input(case, model, tmp_path):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call(model, tmp_path)


def test_table_has_40_kinds_and_lists_every_case():
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "bad_inputs.md")).read()
    ids = [c[0] for c in API] + [c[0] for c in CLI]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    missing = [i for i in ids if f"`{i}`" not in doc]
    assert not missing, f"docs/bad_inputs.md lacks rows for {missing}"


# --- the CLI -----------------------------------------------------------------------------
CLI = [
    ("cli-out-a-file", ["run", "--out", "{afile}", "--corpus", SMALL_CORPUS], "is a file, not a directory"),
    ("cli-status-corrupt-db", ["status", "{corrupt}"], "not a usable nas_eval store"),
    ("cli-report-corrupt-db", ["report", "{corrupt}"], "not a usable nas_eval store"),
    ("cli-status-no-study", ["status", "{tmp}/nowhere"], "holds no study"),
    ("cli-report-no-study", ["report", "{tmp}/nowhere"], "holds no study"),
    ("cli-config-missing", ["run", "--out", "{tmp}/o", "--config", "{tmp}/missing.toml"], "missing.toml: No such file"),
    ("cli-config-syntax", ["run", "--out", "{tmp}/o", "--config", "{toml:not toml [[[}"], "Expected '='"),
    ("cli-config-train-not-table", ["run", "--out", "{tmp}/o", "--config", "{toml:train = 5}"], "'train' must be a table"),
    ("cli-config-sharing-no", ["run", "--out", "{tmp}/o", "--config", '{toml:sharing = "no"}'], "sharing must be true or false"),
    ("cli-config-train-seed-negative", ["run", "--out", "{tmp}/o", "--config", "{toml:train_seed = -1}"], "train_seed must be a non-negative"),
    ("cli-config-policy-options", ["run", "--out", "{tmp}/o", "--config", "{toml:policy_options = 3}"], "policy_options must be a table"),
    ("cli-config-and-preset", ["run", "--out", "{tmp}/o", "--config", "{toml:train_seed = 1}", "--preset", "smoke"], "either --config or --preset"),
    ("cli-unknown-preset", ["run", "--out", "{tmp}/o", "--preset", "nope"], "unknown study preset 'nope'"),
    ("cli-workers-0", ["run", "--out", "{tmp}/o", "--workers", "0", "--corpus", SMALL_CORPUS], "--workers must be >= 1"),
    ("cli-threads-per-job-0", ["run", "--out", "{tmp}/o", "--threads-per-job", "0", "--corpus", SMALL_CORPUS], "--threads-per-job must be >= 1"),
    ("cli-unknown-policy", ["run", "--out", "{tmp}/o", "--policies", "bogus"], "unknown policy 'bogus'"),
    ("cli-duplicate-seeds", ["run", "--out", "{tmp}/o", "--seeds", "1,1"], "seeds has duplicates"),
    ("cli-seeds-not-integers", ["run", "--out", "{tmp}/o", "--seeds", "a,b"], "expected comma-separated integers"),
    ("cli-nodes-0", ["run", "--out", "{tmp}/o", "--nodes", "0"], "n_nodes must be an integer in 1..32"),
    ("cli-corpus-missing-dir", ["run", "--out", "{tmp}/o", "--corpus", "{tmp}/nocorpus"], "nocorpus"),
    ("cli-data-missing-dir", ["run", "--out", "{tmp}/o", "--data", "{tmp}/nodata", "--corpus", SMALL_CORPUS], "--data .*: no such directory"),
    ("cli-checkpoint-dir-a-file", ["run", "--out", "{tmp}/o", "--checkpoint-dir", "{afile}", "--corpus", SMALL_CORPUS, "--executor", "serial", "--no-progress"], "checkpoint_dir .* is a file"),
    ("cli-train-unknown-op", ["train", "0:foo", "--corpus", "synthetic"], "unknown op 'foo'"),
    ("cli-train-unknown-preset", ["train", "0:tanh", "--preset", "nope"], "unknown training preset 'nope'"),
    ("cli-train-threads-0", ["train", "0:tanh", "--threads", "0", "--corpus", "synthetic"], "threads must be a positive integer"),
    ("cli-train-seed-negative", ["train", "0:tanh", "--seed", "-1", "--corpus", "synthetic", "--preset", "tiny"], "seed must be a non-negative integer"),
    ("cli-unknown-command", ["frobnicate"], "invalid choice"),
    ("cli-policies-empty", ["run", "--out", "{tmp}/o", "--policies", ""], "policies must name at least one policy"),
    ("cli-train-data-missing", ["train", "0:tanh", "--data", "{tmp}/nodata"], "root argument .*nodata: no such directory"),
    ("cli-policy-option-infeasible", ["run", "--out", "{tmp}/o", "--corpus", SMALL_CORPUS, "--config", '{toml:preset = "smoke"\npolicies = ["random", "enas"]\n[policy_options]\nenas = {reward_batch_size = 150}}'], "policy enas, option reward_batch_size=150: .*fix: "),
]


def _fill(arg, tmp):
    if arg.startswith("{toml:"):
        return _write(tmp, f"c{abs(hash(arg))}.toml", arg[6:-1] + "\n")
    return arg.format(tmp=tmp, afile=os.path.join(tmp, "afile"), corrupt=os.path.join(tmp, "corrupt"))


@pytest.mark.parametrize("case", CLI, ids=[c[0] for c in CLI])
def test_cli_bad_input(case, tmp_path, capsys):
    from nas_eval import cli

    _, argv, pattern = case
    tmp = str(tmp_path)
    _write(tmp, "afile", "precious")
    os.makedirs(os.path.join(tmp, "corrupt"))
    _write(os.path.join(tmp, "corrupt"), "study.db", "garbage " * 200)
    argv = [_fill(a, tmp) for a in argv]
    before = sorted(os.listdir(tmp))
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    import re
    assert "Traceback" not in err and re.search(r"^nas-eval( \w+)?: error: ", err, re.M), err
    assert re.search(pattern, err), err
    assert sorted(os.listdir(tmp)) == before  # nothing written: no store, no output directory
    assert open(os.path.join(tmp, "afile")).read() == "precious"
    assert open(os.path.join(tmp, "corrupt", "study.db")).read() == "garbage " * 200


# --- silently wrong numbers (issue 13): regressions ----------------------------------------
def test_int64_ids_above_int32_are_refused_not_wrapped(model):
    assert np.isfinite(model.loss(TOK, 4, 10))
    with pytest.raises(ValueError):
        model.loss(TOK + 2**32, 4, 10)  # used to equal model.loss(TOK)


def test_bptt_beyond_the_stream_is_one_window_not_nan(model):
    """lm_evaluate's i + bptt overflowed int for bptt = 2**31 - 1 and returned NaN."""
    one_window = model.loss(TOK, 4, len(TOK) // 4 - 1)
    assert model.loss(TOK, 4, 2**31 - 1) == one_window and np.isfinite(one_window)
    # found by the fuzz campaign: bptt = 2**63 raised OverflowError from the binding
    assert model.loss(TOK, 4, 2**63) == one_window and model.loss(TOK, 4, 2**40) == one_window


def test_float64_hidden_is_cast_and_gives_the_float32_numbers(model):
    h = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    a = model.loss_and_grad(SEG, SEG, hidden=h)[0]
    b = model.loss_and_grad(SEG, SEG, hidden=h.astype(np.float64))[0]
    assert a == b


def test_run_exits_1_when_jobs_failed_and_report_still_works(tmp_path, monkeypatch, capsys):
    """A failed amount-of-sharing ground-truth job: `run` exits 1, `report` still writes a
    report (exit 0) and shows no NaN as a number for the missing job."""
    from nas_eval import cli, engine

    real = engine.ground_truth_run
    failed = []

    def flaky(arch, corpus, config, seed, **kw):
        if arch.n_nodes == 3 and not failed:
            failed.append(str(arch))
            raise FloatingPointError(f"training {arch} diverged (deliberate)")
        return real(arch, corpus, config, seed, **kw)

    monkeypatch.setattr(engine, "ground_truth_run", flaky)
    out = str(tmp_path / "s")
    rc = cli.main(["run", "--out", out, "--preset", "smoke", "--corpus", SMALL_CORPUS, "--seeds", "0", "--policies", "random,ws-random",
                   "--gt-seeds", "0", "--ws-seeds", "0", "--executor", "serial", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "1 job(s) failed" in err and failed
    assert f"nas-eval status {out}" in err.strip().splitlines()[-1]  # the run's last line says where to look
    # status says which job failed and why: kind, parameters in one line, the error's last line
    assert cli.main(["status", out]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("failed train"))
    assert f"arch={failed[0]}" in lines[at] and "n_nodes=3" in lines[at] and "seed=0" in lines[at]
    assert lines[at + 1].strip() == f"FloatingPointError: training {failed[0]} diverged (deliberate)"
    # --failed: the whole traceback
    assert cli.main(["status", out, "--failed"]) == 0
    full = capsys.readouterr().out
    assert "Traceback (most recent call last)" in full and "in flaky" in full and "diverged (deliberate)" in full
    assert cli.main(["report", out]) == 0
    results = json.load(open(os.path.join(out, "results.json")))
    assert results  # written
    report = open(os.path.join(out, "report.md")).read()
    assert "| nan" not in report.lower() and " nan " not in report.lower()


def test_nan_weights_reach_fast_expf_without_undefined_behaviour():
    """A NaN reaching fast_expf got past its clamp and was shifted as a negative int (UB,
    mathfun.h). With the NaN-safe clamp the loss is simply not finite; .ci/sanitize runs this
    under UBSan."""
    from nas_eval.engine import CellLM

    m = CellLM("0:sigmoid 1:tanh", V, 8, seed=0)
    w = m.weights()
    w[: len(w) // 2] = np.nan
    m.set_weights(w)
    assert not np.isfinite(m.loss(TOK, 4, 10))
    loss, _, _ = m.loss_and_grad(SEG, SEG)
    assert not np.isfinite(loss)
