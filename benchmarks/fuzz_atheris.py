"""Coverage-guided fuzzing of the input surfaces (issue 13) with atheris (libFuzzer for
Python): the same properties as tests/test_fuzz.py (its ``check_*`` functions are the
oracles), fed from libFuzzer's mutated byte strings instead of hypothesis strategies.
Hypothesis spends milliseconds per input generating; libFuzzer mutates at the speed of
the target, so a million inputs per target fit in minutes, and its coverage feedback
(the package's Python modules are instrumented) steers the bytes into new branches.

One process per target; libFuzzer's own counters are parsed and written to ``--out``:

    pip install atheris
    nice -n 19 .venv/bin/python benchmarks/fuzz_atheris.py --runs 1000000 --out fuzz_atheris.json
    .venv/bin/python benchmarks/fuzz_atheris.py --targets c_step --runs 20000   # one target

A failed property (an exception the property does not allow) or a crash (a signal in
the C core) stops that target; libFuzzer writes the input to ``--artifacts`` as
``crash-<sha1>`` and the target's record says so. Replay one with
``--worker NAME --replay FILE``.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

OPS = ["tanh", "relu", "sigmoid", "identity"]
BAD_OPS = OPS + ["", "foo", "TANH", "tanh ", "relu:"]
SCALARS = ["smoke", "tiny", "ws-random", "random", "node", "ptb"]


class Draw:
    """The strategy vocabulary of tests/test_fuzz.py over a FuzzedDataProvider."""

    def __init__(self, fdp):
        self.f = fdp

    def integer(self, lo, hi):
        return self.f.ConsumeIntInRange(lo, hi)

    def choice(self, values):
        return values[self.f.ConsumeIntInRange(0, len(values) - 1)]

    def boolean(self):
        return self.f.ConsumeBool()

    def text(self, max_size):
        return self.f.ConsumeUnicodeNoSurrogates(self.integer(0, max_size))

    def latin1(self, max_size):
        return self.f.ConsumeBytes(self.integer(0, max_size)).decode("latin-1")

    def float(self):
        return self.f.ConsumeFloat() if self.boolean() else self.choice([0.0, 1e-3, -1.0, math.nan, math.inf])

    def big_int(self):
        return self.f.ConsumeInt(9) if self.boolean() else self.integer(-5, 40)


def arch_text(dr):
    mode = dr.integer(0, 2)
    if mode == 0:
        return dr.text(40)
    nodes = [(dr.integer(-3, 12), dr.choice(BAD_OPS)) for _ in range(dr.integer(0, 10))]
    return (" " if mode == 1 else ",").join(f"{p}:{o}" for p, o in nodes)


def arch_non_string(dr):
    kind = dr.integer(0, 4)
    if kind == 0:
        return None
    if kind == 1:
        return dr.big_int()
    if kind == 2:
        return dr.f.ConsumeFloat()
    if kind == 3:
        return dr.f.ConsumeBytes(dr.integer(0, 8))
    return [dr.big_int() for _ in range(dr.integer(0, 3))]


def json_value(dr, depth=0):
    kind = dr.integer(0, 7 if depth < 2 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return dr.boolean()
    if kind == 2:
        return dr.big_int()
    if kind == 3:
        return dr.float()
    if kind == 4:
        return dr.text(6)
    if kind == 5:
        return dr.choice(SCALARS)
    if kind == 6:
        return [json_value(dr, depth + 1) for _ in range(dr.integer(0, 4))]
    return {dr.text(6): json_value(dr, depth + 1) for _ in range(dr.integer(0, 4))}


def settings_dict(dr):
    import test_fuzz as F

    out = {}
    for _ in range(dr.integer(0, 6)):
        key = dr.choice(F.KEYS)
        if dr.boolean():
            out[key] = {dr.choice(F.TRAIN_KEYS): json_value(dr) for _ in range(dr.integer(0, 4))}
        else:
            out[key] = json_value(dr)
    return out


def toml_text(dr):
    import test_fuzz as F

    mode = dr.integer(0, 2)
    if mode == 0:
        return dr.text(80)
    body = "\n".join(F._toml_lines(settings_dict(dr)))
    if mode == 1:
        return body
    return dr.choice(["", 'preset = "smoke"\n', 'preset = "nope"\n', "preset = 3\n"]) + body


def corpus_text(dr):
    mode = dr.integer(0, 2)
    if mode == 0:
        return dr.text(200)
    if mode == 1:
        return dr.latin1(200)
    return "".join(dr.choice(["a", "b", "<unk>", "\n", " ", "\t", "<eos>", "é"]) for _ in range(dr.integer(0, 60)))


def synthetic_spec(dr):
    if dr.boolean():
        return "synthetic:" + dr.text(30)
    keys = ["vocab_size", "train_tokens", "valid_tokens", "test_tokens", "seed", "order", "branching", "bogus"]
    fields = {dr.choice(keys): (str(dr.integer(-3, 60)) if dr.boolean() else dr.choice(["x", "", "1.5", "0x10"]))
              for _ in range(dr.integer(0, 4))}
    return "synthetic:" + ",".join(f"{k}={v}" for k, v in fields.items())


def token_array(dr, shape=None):
    """Half the time a well-formed (T, B) integer array of in-vocabulary ids (of ``shape``
    when given: the targets of a step), maybe with one element spoiled: valid steps are
    otherwise too rare (each element in range with odds 1/3) to exercise the accepting path."""
    import numpy as np

    import test_fuzz as F

    if dr.boolean():
        dtype = dr.choice([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32])
        shape = shape or (dr.integer(1, 5), dr.integer(1, 5))
        arr = np.array([dr.integer(0, F.V - 1) for _ in range(shape[0] * shape[1])], dtype=dtype).reshape(shape)
        if dr.integer(0, 7) == 0:
            arr.flat[dr.integer(0, arr.size - 1)] = dr.choice([F.V, 127, 0]) if arr.dtype.kind == "u" \
                else dr.choice([F.V, -1, 127])
        return arr
    dtype = dr.choice(F.DTYPES)
    ndim = dr.choice([0, 1, 2, 2, 2, 3])
    shape = tuple(dr.integer(0, 5) for _ in range(ndim))
    n = int(np.prod(shape)) if shape else 1
    if np.issubdtype(dtype, np.floating):
        vals = [dr.choice([0.0, 1.0, 2.5, -1.0, np.nan, np.inf, 12.0, 13.0, 2.0**33]) for _ in range(n)]
    elif dtype is np.bool_:
        vals = [dr.boolean() for _ in range(n)]
    else:
        info = np.iinfo(dtype)
        vals = []
        for _ in range(n):
            kind = dr.integer(0, 2)
            v = (dr.integer(0, F.V - 1) if kind == 0 else dr.integer(int(info.min), int(info.max)) if kind == 1
                 else dr.choice([F.V, -1, 2**31, 2**32 + 1]))
            vals.append(min(max(v, int(info.min)), int(info.max)))
    arr = np.array(vals, dtype=dtype).reshape(shape)
    if ndim == 2 and dr.boolean() and arr.shape[1] > 1:
        arr = np.repeat(arr, 2, axis=1)[:, ::2]  # a strided view of the same values
    if dr.boolean() and arr.ndim == 2 and arr.shape[0] and arr.shape[1]:
        arr = np.asfortranarray(arr)
    return arr


def hidden(dr):
    import numpy as np

    if dr.boolean():
        return None
    if dr.boolean():  # well-formed for the model (B, D) of the step's inputs is up to chance
        return (dr.integer(1, 5), 4, np.float32, 0.0)
    return (dr.integer(0, 6), dr.integer(0, 6), dr.choice([np.float32, np.float64, np.int32]),
            dr.choice([0.0, 1.0, np.nan, np.inf]))


def targets():
    """name -> (input builder over a Draw, the property's check returning an outcome)."""
    import test_fuzz as F

    from nas_eval.engine import CellLM

    model = CellLM("0:tanh 1:relu", F.V, F.D, seed=0)
    tmp = tempfile.mkdtemp(prefix="nas_eval_fuzz_")

    def evaluate_input(dr):
        tok = token_array(dr)
        batch = dr.integer(-2, 8) if dr.boolean() else dr.choice([2**31, 1.5, None])
        bptt = dr.integer(-2, 40) if dr.boolean() else dr.choice([2**31 - 1, 2**31, 2**63, 0.5, None])
        return F.evaluate_stream(tok), batch, bptt

    def step_input(dr):
        inputs = token_array(dr)
        targets = token_array(dr, inputs.shape if inputs.ndim == 2 and inputs.size and dr.boolean() else None)
        return inputs, targets, hidden(dr), dr.float(), dr.float(), dr.boolean()

    def arch_table(dr):
        import numpy as np

        return (dr.integer(1, 5), dr.integer(-2, 6), dr.integer(-1, 5), dr.integer(-1, 6), dr.integer(-1, 2),
                dr.choice([np.int32, np.int64, np.float64, np.int16]), dr.integer(0, 3))

    return {
        "arch": (arch_text, F.check_arch_text),
        "arch_non_string": (arch_non_string, F.check_arch_non_string),
        "study_settings": (settings_dict, F.check_settings),
        "toml": (toml_text, lambda t: F.check_toml(t, tmp)),
        "corpus": (lambda dr: (corpus_text(dr), corpus_text(dr), corpus_text(dr)), lambda t: F.check_corpus(t, tmp)),
        "corpus_spec": (synthetic_spec, F.check_synthetic_spec),
        "c_step": (step_input, lambda a: F.check_step(model, *a)),
        "c_evaluate": (evaluate_input, lambda a: F.check_loss(model, *a)),
        "c_arch_table": (arch_table, F.check_arch_table),
    }


TARGETS = ["arch", "arch_non_string", "study_settings", "toml", "corpus", "corpus_spec", "c_step", "c_evaluate",
           "c_arch_table"]


def worker(name, fuzzer_args, replay=False):
    """One target in this process, under libFuzzer (argv after ``--``)."""
    import atheris

    warnings.simplefilter("ignore")
    with atheris.instrument_imports(include=["nas_eval"]):
        import nas_eval  # noqa: F401
        import nas_eval.datasets  # noqa: F401
        import nas_eval.spec  # noqa: F401
        import nas_eval.space  # noqa: F401
        import nas_eval.engine.model  # noqa: F401
    if name == "corpus_spec":
        # the splits a spec leaves out default to 28k generated tokens (~5 ms each); the
        # property is about parsing and validation, so the campaign generates 280 instead
        import inspect

        from nas_eval import datasets

        defaults = dict(inspect.signature(datasets.synthetic).parameters)
        small = {"train_tokens": 200, "valid_tokens": 40, "test_tokens": 40}
        datasets.synthetic.__defaults__ = tuple(small.get(k, p.default) for k, p in defaults.items())
    build, check = targets()[name]
    outcomes = {}

    def one(data):
        x = build(Draw(atheris.FuzzedDataProvider(data)))
        if replay:
            print("input:", repr(x), file=sys.stderr, flush=True)
        outcome = check(x)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        done = sum(outcomes.values())
        if done % 10000 == 0 or replay:  # libFuzzer ends with _exit: no chance to report at the end
            print("OUTCOMES " + json.dumps(outcomes), file=sys.stderr, flush=True)

    atheris.Setup([sys.argv[0]] + fuzzer_args, one)
    atheris.Fuzz()


def _parse(stderr):
    """libFuzzer's final counters from its log."""
    out = {}
    m = re.search(r"Done (\d+) runs in (\d+) second", stderr)
    if m:
        out["runs"], out["seconds"] = int(m.group(1)), int(m.group(2))
    for key in ("stat::number_of_executed_units", "stat::average_exec_per_sec", "stat::new_units_added",
                "stat::peak_rss_mb"):
        m = re.search(re.escape(key) + r":\s*(\d+)", stderr)
        if m:
            out[key.split("::")[1]] = int(m.group(1))
    m = re.findall(r"cov: (\d+) ft: (\d+)", stderr)
    if m:
        out["coverage_edges"], out["features"] = map(int, m[-1])
    m = re.findall(r"OUTCOMES (\{.*\})", stderr)
    if m:
        out["outcomes"] = json.loads(m[-1])  # the last report (every 10,000 inputs)
    crash = re.findall(r"Test unit written to (\S+)", stderr)
    if crash:
        out["artifacts"] = crash
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    ap.add_argument("--seconds", type=int, default=0, help="time limit per target (0: none)")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: all)")
    ap.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--artifacts", default="fuzz_artifacts", help="folder for crash inputs")
    ap.add_argument("--out", default="fuzz_atheris.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--replay", help="with --worker: run one saved input")
    args, rest = ap.parse_known_args()
    if args.worker:
        worker(args.worker, [args.replay] if args.replay else rest, replay=bool(args.replay))
        return
    names = args.targets.split(",")
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        ap.error(f"unknown targets {unknown}; known: {TARGETS}")
    os.makedirs(args.artifacts, exist_ok=True)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NAS_EVAL_NUM_THREADS": "1"}
    results, running, pending = {}, {}, list(names)
    t0 = time.monotonic()
    while pending or running:
        while pending and len(running) < args.jobs:
            name = pending.pop(0)
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--", f"-runs={args.runs}",
                   f"-seed={args.seed}", "-print_final_stats=1", "-rss_limit_mb=4096", "-timeout=60",
                   f"-artifact_prefix={os.path.join(os.path.abspath(args.artifacts), name + '-')}"]
            if args.seconds:
                cmd.append(f"-max_total_time={args.seconds}")
            log = tempfile.TemporaryFile(mode="w+")
            running[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log, time.monotonic())
        time.sleep(0.5)
        for name, (proc, log, started) in list(running.items()):
            if proc.poll() is None:
                continue
            log.seek(0)
            text = log.read()
            rec = {**_parse(text), "returncode": proc.returncode, "wall_s": round(time.monotonic() - started, 1)}
            rec["crashes"] = 0 if proc.returncode == 0 and "artifacts" not in rec else 1
            if rec["crashes"]:
                rec["log_tail"] = text[-4000:]
            results[name] = rec
            del running[name]
            with open(args.out, "w") as f:
                json.dump({"runs_per_target": args.runs, "seed": args.seed, "wall_s": round(time.monotonic() - t0, 1),
                           "targets": results}, f, indent=1)
            print(name, json.dumps({k: v for k, v in rec.items() if k != "log_tail"}), flush=True)
    crashed = [n for n, r in results.items() if r["crashes"]]
    print(f"{sum(r.get('runs', 0) for r in results.values()):,} inputs over {len(results)} targets, "
          f"crashes: {crashed or 0}", flush=True)
    sys.exit(1 if crashed else 0)


if __name__ == "__main__":
    main()
