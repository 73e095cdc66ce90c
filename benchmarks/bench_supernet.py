#!/usr/bin/env python3
"""Training throughput of the weight-sharing super-net against a standalone cell of the same
shape (n = 8, node-level sharing, one uniformly drawn architecture per step).

The super-net runs the same C step as CellLM with a per-step table of which bank matrix each
node uses, so its step should cost the same; this checks that the mapping, the hidden-state
reset on an architecture change and the sparse update add nothing measurable.

    python benchmarks/bench_supernet.py [--d 64 256] [--threads 2] [--steps 8]
"""
import argparse
import time

import numpy as np

import nas_eval

V, B, T = 10_000, 64, 35


def median_step(fit, steps):
    fit()  # warm-up: lays out the activation arena
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fit()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--d", type=int, nargs="+", default=[64, 256])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    args = p.parse_args()
    nas_eval.set_num_threads(args.threads)
    tokens = np.random.default_rng(0).integers(0, V, B * T * (args.steps + 4))
    space = nas_eval.SearchSpace(8)
    print(f"n=8 V={V} B={B} T={T} threads={args.threads}, OpenBLAS core "
          f"{nas_eval.engine.openblas_info()['corename']}")
    for d in args.d:
        net = nas_eval.SuperNet(space, V, d, sharing="node", seed=0, archs=space.sample(1, size=100))
        lm = nas_eval.CellLM(space.sample(2), V, d, seed=0)
        for name, model in (("CellLM", lm), ("SuperNet(node)", net)):
            t = median_step(lambda: model.fit_steps(tokens, 1, batch_size=B, bptt=T), args.steps)
            print(f"d={d:4d} {name:15s} median step {t * 1e3:7.1f} ms  {B * T / t:8.0f} tok/s")


if __name__ == "__main__":
    main()
