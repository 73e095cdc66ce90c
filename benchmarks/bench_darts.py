#!/usr/bin/env python3
"""The DARTS search step of nas_eval (issue 9): the mixed-cell training step, and the search
step of first and second order, against the sgemm-bound rate measured in the same run.

Model: the mixed cell at n = 8 (36 edges), V = 10,000, B = 64, T = 35 (as benchmarks/
bench_cell.py), the search recipe's dropouts (0.75 / 0.25 / 0.75 / 0.2 / 0), batch norm on.
Three variants, timed in rotation one call at a time:

* ``train``: one weight step (forward, backward, clip, SGD) of the mixed-cell LM;
* ``search-1``: one DARTS search step, first order: the architecture step on a validation
  batch (forward + backward for d/dalpha, Adam) and the weight step on a training batch;
* ``search-2``: the same with the unrolled second-order architecture step: a virtual SGD
  step on the training batch, the validation gradient at the moved weights, two training
  passes at w +- R v for the Hessian-vector product, Adam; then the weight step.

FLOPs are the matrix products each performs, per training token (validation batch of the
same shape): forward F = 8d² (W0) + 4·36·d² (the mixed cell: every edge's (B x d)(d x 2d)
product) + 2dV (decoder); a weight step 3F; an alpha-only pass 2F + 2dV - 4d² (no weight
gradients, but the decoder's embedding-gradient product is done); so search-1 = 5F + 2dV - 4d²
and search-2 = 13F + 4dV - 8d². Elementwise work (gates, the four activations, batch norm,
softmax) is not counted. The sgemm rate is the best of the probe calls, one per round, by
bench_cell's sgemm worker (the core's OpenBLAS in its own process, the same thread count) at
the decoder forward shape (B·T x V x d); *% limit* = achieved FLOP rate / sgemm rate.

On a shared machine wall times measure the neighbours as much as the code, so each step's
process CPU time is recorded too, and an in-process single-thread sgemm at the same shape is
timed in CPU seconds each round: *% per cpu-s* = (FLOPs / CPU seconds of the step) / (sgemm
FLOPs / CPU second), the efficiency of the cores while they ran nas_eval (time spent
descheduled counts against neither; barrier spinning counts against nas_eval).

    python benchmarks/bench_darts.py                    # d = 64 and 256, 2 threads
    python benchmarks/bench_darts.py --d 256 --rounds 8 --json out.json
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cell  # noqa: E402  (the sgemm probe worker and the shared shapes)

B, T, V = bench_cell.B, bench_cell.T, bench_cell.V
N_NODES, EDGES = 8, 36
LR, CLIP, WD, TAR = 20.0, 0.25, 5e-7, 1e-3
DROPOUTS = dict(dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2, dropoute=0.0)
VARIANTS = ("train", "search-1", "search-2")


def flops_per_token(d, variant):
    F = 8 * d * d + 4 * EDGES * d * d + 2 * d * V
    return {"train": 3 * F, "search-1": 5 * F + 2 * d * V - 4 * d * d,
            "search-2": 13 * F + 4 * d * V - 8 * d * d}[variant]


def load():
    return os.getloadavg()[0]


class CpuSgemm:
    """The core's OpenBLAS in this process (single-threaded, as the core keeps it) at the
    decoder forward shape, timed in process CPU seconds."""

    def __init__(self, d):
        import ctypes

        import numpy as np
        import scipy_openblas32

        lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(fullname=True)))
        self.f = lib.scipy_cblas_sgemm
        self.f.restype = None
        self.f.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                                ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
        rng = np.random.default_rng(1)
        self.d = d
        self.H = rng.standard_normal((B * T, d), dtype=np.float32)
        self.E = rng.standard_normal((V, d), dtype=np.float32)
        self.C = np.empty((B * T, V), np.float32)

    def __call__(self):
        c0 = time.process_time()
        self.f(101, 111, 112, B * T, V, self.d, 1.0, self.H.ctypes.data, self.d, self.E.ctypes.data, self.d, 0.0,
               self.C.ctypes.data, V)
        return 2.0 * B * T * V * self.d / (time.process_time() - c0) / 1e9


class Search:
    """One model and its two token streams; ``run(variant)`` does one timed call."""

    def __init__(self, d, seed=0):
        import numpy as np
        from nas_eval.engine import MixedLM

        self.np = np
        self.model = MixedLM(N_NODES, V, d, seed=seed, **DROPOUTS)
        rng = np.random.default_rng(seed)
        self.train = rng.integers(0, V, (40 * T + 1, B)).astype(np.int32)
        self.valid = rng.integers(0, V, (40 * T + 1, B)).astype(np.int32)
        self.pos, self.hidden, self.vhidden = 0, None, None

    def _segments(self):
        if self.pos + T + 1 > len(self.train):
            self.pos, self.hidden, self.vhidden = 0, None, None
        p = self.pos
        self.pos += T
        return ((self.train[p: p + T], self.train[p + 1: p + T + 1], self.hidden),
                (self.valid[p: p + T], self.valid[p + 1: p + T + 1], self.vhidden))

    def run(self, variant):
        train, valid = self._segments()
        m = self.model
        if variant != "train":
            _, _, self.vhidden = m.alpha_step(train, valid, order=int(variant[-1]), eta=LR, clip=CLIP,
                                              weight_decay=WD)
        r = m.train_step(*train, lr=LR, clip=CLIP, weight_decay=WD, tar=TAR, ar=0.0)
        self.hidden = r.hidden
        return r.loss_sum / r.tokens


def measure(d, threads, rounds, sgemm_worker, log):
    import nas_eval

    nas_eval.set_num_threads(threads)
    search = Search(d)
    cpu_sgemm = CpuSgemm(d)
    cpu_sgemm()
    for v in VARIANTS:  # warm-up: first-touch of the arenas, the pool's threads
        search.run(v)
    times = {v: [] for v in VARIANTS}
    cpus = {v: [] for v in VARIANTS}
    sgemm, loads, cpu_rates = [], [], []
    for r in range(rounds):
        sgemm.append(sgemm_worker("sgemm", d=d, reps=1, shapes=["fwd"])["gflops"]["fwd"])
        cpu_rates.append(cpu_sgemm())
        order = VARIANTS[r % 3:] + VARIANTS[: r % 3]  # rotate who goes first
        for v in order:
            time.sleep(0.05)
            c0, t0 = time.process_time(), time.perf_counter()
            loss = search.run(v)
            times[v].append(time.perf_counter() - t0)
            cpus[v].append(time.process_time() - c0)
            if not search.np.isfinite(loss):
                raise RuntimeError(f"non-finite loss in {v} at d={d}")
        loads.append(load())
        log(f"  d={d} round {r + 1}/{rounds}: " + ", ".join(f"{v} {times[v][-1] * 1e3:.0f} ms" for v in VARIANTS)
            + f"; sgemm {sgemm[-1]:.0f} GFLOP/s; load {loads[-1]:.2f}")
    best_sgemm, cpu_rate = max(sgemm), max(cpu_rates)
    rows = []
    for v in VARIANTS:
        med, best = statistics.median(times[v]), min(times[v])
        fl = flops_per_token(d, v) * B * T
        rows.append({"n": N_NODES, "d": d, "threads": threads, "variant": v, "B": B, "T": T, "V": V,
                     "median_ms": med * 1e3, "best_ms": best * 1e3, "tok_s_median": B * T / med,
                     "gflop_per_step": fl / 1e9, "gflops_median": fl / med / 1e9, "gflops_best": fl / best / 1e9,
                     "sgemm_gflops": best_sgemm, "sgemm_all": sgemm,
                     "pct_limit_median": fl / med / 1e9 / best_sgemm, "pct_limit_best": fl / best / 1e9 / best_sgemm,
                     # each step against its own round's probe (bench_cell: the host's drift)
                     "pct_limit_paired": statistics.median(fl / t / 1e9 / g for t, g in zip(times[v], sgemm)),
                     "cores_used": statistics.median(c / t for c, t in zip(cpus[v], times[v])),
                     "gflop_per_cpu_s": fl / statistics.median(cpus[v]) / 1e9, "sgemm_gflop_per_cpu_s": cpu_rate,
                     "pct_per_cpu_s": fl / statistics.median(cpus[v]) / 1e9 / cpu_rate,
                     "times_ms": [t * 1e3 for t in times[v]], "load_avg": loads})
    return rows


def table(rows):
    out = ["| d | step | GFLOP/step | median ms (best) | train tok/s | GFLOP/s median (best) | sgemm GFLOP/s "
           "| % limit median (best) | % limit paired | cores used | GFLOP/cpu-s (sgemm) | % per cpu-s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['d']} | {r['variant']} | {r['gflop_per_step']:.1f} | {r['median_ms']:.0f} "
                   f"({r['best_ms']:.0f}) | {r['tok_s_median']:.0f} | {r['gflops_median']:.0f} ({r['gflops_best']:.0f})"
                   f" | {r['sgemm_gflops']:.0f} | {r['pct_limit_median']:.0%} ({r['pct_limit_best']:.0%}) | {r['pct_limit_paired']:.0%} "
                   f"| {r['cores_used']:.2f} | {r['gflop_per_cpu_s']:.0f} ({r['sgemm_gflop_per_cpu_s']:.0f}) "
                   f"| {r['pct_per_cpu_s']:.0%} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--d", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6, help="timed calls of each variant per d")
    ap.add_argument("--json", metavar="PATH", help="write the rows (with every timing) here")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    env = {k: v for k, v in os.environ.items() if k not in bench_cell.OPENBLAS_FORCING}
    for k in bench_cell.OPENBLAS_FORCING:  # as bench_cell: no forced (slower) OpenBLAS kernel
        os.environ.pop(k, None)
    sgemm_worker = bench_cell.Worker("sgemm", {"impl": "sgemm", "threads": args.threads}, env)
    try:
        from nas_eval.engine import openblas_info

        header = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                  "openblas": openblas_info()["corename"], "sgemm_worker": sgemm_worker.hello["info"],
                  "load_before": os.getloadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        log(f"nas_eval DARTS step benchmark: n={N_NODES}, B={B}, T={T}, V={V}, threads={args.threads}, "
            f"OpenBLAS {header['openblas']}, load {header['load_before'][0]:.2f}")
        t0 = time.perf_counter()
        rows = []
        for d in args.d:
            rows.extend(measure(d, args.threads, args.rounds, sgemm_worker, log))
        header["wall_s"] = time.perf_counter() - t0
        header["load_after"] = os.getloadavg()
    finally:
        sgemm_worker.close()
    print(table(rows))
    print(f"\nload average before/after: {header['load_before'][0]:.2f} / {header['load_after'][0]:.2f}; "
          f"wall {header['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
