#!/usr/bin/env python3
"""Do two threads ever lose to one? nas_eval training steps at 1 and 2 threads, per d.

For each hidden size d a fresh worker process (so ``NAS_EVAL_ISA`` applies) builds two
identical cell LMs (n = 8, the DARTS-V2 genotype; B = 64, T = 35, V = 10,000, dropouts off),
one driven with 1 thread and one with 2, and alternates their training steps (so both see
the same machine drift); the median step gives tokens/s. With ``--busy`` a second phase
repeats the alternation while another process runs a busy loop pinned to CPU 0 (the
"someone else keeps one core busy" case). Each row also records the load average and the
cores the worker actually used (process CPU time / wall time).

    python benchmarks/bench_threads.py --busy                     # the 11 sizes of BENCHMARKS.md
    python benchmarks/bench_threads.py --d 64 128 --isa avx2 --busy
    python benchmarks/bench_threads.py --json threads.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

B, T, V = 64, 35, 10_000
ARCH = "0:sigmoid 1:relu 1:relu 1:identity 2:tanh 5:sigmoid 3:tanh 5:relu"
DS = [16, 32, 64, 96, 127, 128, 192, 256, 512, 850, 1024]
BUSY_LOOP = "import os\nos.sched_setaffinity(0, {0})\nwhile True:\n    pass\n"


def worker(spec):
    import numpy as np

    import nas_eval

    d = spec["d"]
    tokens = np.random.default_rng(0).integers(0, V, size=B * (T + 1) * 8, dtype=np.int32)
    models = {k: nas_eval.CellLM(ARCH, V, d, seed=0) for k in (1, 2)}

    def step(k):
        nas_eval.set_num_threads(k)
        c0, t0 = time.process_time(), time.perf_counter()
        models[k].fit_steps(tokens, steps=1, batch_size=B, bptt=T)
        return time.perf_counter() - t0, time.process_time() - c0

    for k in (1, 2):  # warm-up: arena, thread start-up, first touch
        step(k)
        step(k)
    t_one = step(1)[0]
    n_steps = spec["steps"] or max(4, min(25, int(spec["seconds"] / max(t_one, 1e-3))))
    phases = {"idle": None}
    if spec["busy"]:
        phases["busy"] = True
    out = {"d": d, "steps": n_steps, "isa": nas_eval.build_info()["isa"]}
    for phase in phases:
        busy = None
        if phase == "busy":
            busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
            time.sleep(0.3)
        try:
            load0 = os.getloadavg()
            times = {1: [], 2: []}
            cpu = {1: 0.0, 2: 0.0}
            for i in range(n_steps):
                for k in ((1, 2) if i % 2 == 0 else (2, 1)):
                    wall, c = step(k)
                    times[k].append(wall)
                    cpu[k] += c
            for k in (1, 2):
                med = statistics.median(times[k])
                out[f"{phase}_{k}t_tok_s"] = B * T / med
                out[f"{phase}_{k}t_best_tok_s"] = B * T / min(times[k])
                out[f"{phase}_{k}t_cores"] = cpu[k] / sum(times[k])
            out[f"{phase}_loadavg"] = [load0, os.getloadavg()]
        finally:
            if busy:
                busy.kill()
                busy.wait()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--d", type=int, nargs="+", default=DS)
    ap.add_argument("--isa", help="NAS_EVAL_ISA for the workers (default: the best level)")
    ap.add_argument("--busy", action="store_true", help="also measure with a busy loop pinned to CPU 0")
    ap.add_argument("--steps", type=int, help="timed steps per thread count (default: ~--seconds)")
    ap.add_argument("--seconds", type=float, default=3.0, help="aim for this much 1-thread time per phase")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    env = dict(os.environ)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(var, None)
    if args.isa:
        env["NAS_EVAL_ISA"] = args.isa
    rows = []
    head = ("| d | 1 thread | 2 threads | 2 / 1 | 1 thread, busy core | 2 threads, busy core | 2 / 1 busy | "
            "load avg (1 min) |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for d in args.d:
        spec = {"d": d, "busy": args.busy, "steps": args.steps, "seconds": args.seconds}
        res = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                             env=env, capture_output=True, text=True)
        if res.returncode:
            sys.stderr.write(res.stderr)
            return 1
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(r)
        busy = (f"{r['busy_1t_tok_s']:,.0f} | {r['busy_2t_tok_s']:,.0f} | {r['busy_2t_tok_s'] / r['busy_1t_tok_s']:.2f}"
                if args.busy else "– | – | –")
        loads = [r["idle_loadavg"][0][0]] + ([r["busy_loadavg"][1][0]] if args.busy else [])
        print(f"| {d} | {r['idle_1t_tok_s']:,.0f} | {r['idle_2t_tok_s']:,.0f} | "
              f"{r['idle_2t_tok_s'] / r['idle_1t_tok_s']:.2f} | {busy} | "
              f"{' / '.join(f'{x:.2f}' for x in loads)} |", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"isa": args.isa, "rows": rows, "argv": sys.argv[1:]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
