"""The fuzzing campaign of issue 13: the properties of tests/test_fuzz.py, each driven with
its hypothesis strategy for N inputs (default 1,000,000 per target), counting every input and
every outcome, in one process per target. A crash (a signal), a hang or an exception that
the property does not allow stops that target and is reported with the input.

    nice -n 19 .venv/bin/python benchmarks/fuzz_campaign.py --inputs 1000000 --out fuzz.json
    nice -n 19 .venv/bin/python benchmarks/fuzz_campaign.py --targets arch,c_step --seconds 600

Hypothesis generates the inputs (generation phase only: no shrinking, no example database)
and every input it runs is counted, so the counts are exact; hypothesis may stop a target
early when its strategy has fewer distinct inputs than asked. Results are written
incrementally to ``--out``.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def _targets():
    import test_fuzz as F

    from nas_eval.engine import CellLM

    model = CellLM("0:tanh 1:relu", F.V, F.D, seed=0)
    tmp = tempfile.mkdtemp()
    from hypothesis import strategies as st

    return {
        "arch": (F.arch_text, F.check_arch_text),
        "arch_non_string": (st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=8)),
                            F.check_arch_non_string),
        "study_settings": (F.settings_dict, F.check_settings),
        "toml": (F.toml_text, lambda t: F.check_toml(t, tmp)),
        "corpus": (F.st.tuples(F.corpus_text, F.corpus_text, F.corpus_text), lambda t: F.check_corpus(t, tmp)),
        "corpus_spec": (F.synthetic_spec, F.check_synthetic_spec),
        "c_step": (st.tuples(F.token_arrays(), F.token_arrays(), F.hidden, F.floats, F.floats, st.booleans()),
                   lambda a: F.check_step(model, *a)),
        "c_evaluate": (st.tuples(F.token_arrays(), st.one_of(st.integers(-2, 8), st.sampled_from([2**31, 1.5, None])),
                                 st.one_of(st.integers(-2, 40), st.sampled_from([2**31 - 1, 2**31, 2**63, 0.5, None]))),
                       lambda a: F.check_loss(model, F.evaluate_stream(a[0]), a[1], a[2])),
        "c_arch_table": (F.arch_tables, F.check_arch_table),
    }


class _Stop(Exception):
    pass


def run_target(name, n, seconds, seed, report):
    """Drive the property with hypothesis itself (generation only, no shrinking, no example
    database), counting every input it runs."""
    from hypothesis import HealthCheck, Phase, given, seed as hseed, settings

    strategy, check = _targets()[name]
    counts, t0, done = {}, time.monotonic(), [0]
    warnings.simplefilter("ignore")

    @hseed(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(x):
        if time.monotonic() - t0 > seconds:
            raise _Stop()
        try:
            outcome = check(x)
        except Exception as e:
            report({"target": name, "inputs": done[0] + 1, "failure": repr(x)[:2000],
                    "error": "".join(traceback.format_exception(type(e), e, e.__traceback__))[-3000:]})
            os._exit(1)
        counts[outcome] = counts.get(outcome, 0) + 1
        done[0] += 1
        if done[0] % 20000 == 0:
            report({"target": name, "inputs": done[0], "counts": counts, "seconds": time.monotonic() - t0,
                    "partial": True})

    try:
        prop()
    except _Stop:
        pass
    except BaseException as e:  # hypothesis wraps a _Stop raised mid-run
        if "_Stop" not in repr(e) and not any(isinstance(x, _Stop) for x in getattr(e, "exceptions", [])):
            raise
    report({"target": name, "inputs": done[0], "counts": counts, "seconds": time.monotonic() - t0, "crashes": 0})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=float("inf"), help="time limit per target")
    ap.add_argument("--targets", default=None, help="comma-separated (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz_campaign.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:  # one target in this process; lines of JSON on stdout
        run_target(args.worker, args.inputs, args.seconds, args.seed, lambda d: print(json.dumps(d), flush=True))
        return
    import subprocess

    from nas_eval.engine import set_num_threads  # noqa: F401  (fail early without the core)

    names = args.targets.split(",") if args.targets else list(_targets())
    results = {}
    for name in names:
        cmd = [sys.executable, __file__, "--worker", name, "--inputs", str(args.inputs), "--seed", str(args.seed)]
        if args.seconds != float("inf"):
            cmd += ["--seconds", str(args.seconds)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        last = None
        for line in proc.stdout:
            last = json.loads(line)
            results[name] = {**last, "returncode": None}
            json.dump(results, open(args.out, "w"), indent=1)
        rc = proc.wait()
        results[name] = {**(last or {}), "returncode": rc, "crashed": rc < 0}
        json.dump(results, open(args.out, "w"), indent=1)
        print(name, json.dumps(results[name])[:400], flush=True)


if __name__ == "__main__":
    main()
