"""The decoder + softmax cross-entropy alone: the fused pass (csrc/fused_xent.h) against the
stored-logits pass (csrc/decoder.h), back to back in one process, calls alternating.

Each row: median wall and CPU milliseconds of one call over --reps calls at (N rows, d, V),
for the forward alone (grads 0: evaluation) and with all gradients (grads 2: training). The
stored pass runs on one thread (as the binding runs it); the fused pass at each --threads,
in training both ways: 'fused-store' (its exp tiles kept for the dE pass: what a training
step takes) and 'fused-recompute'. FLOPs counted as performed: forward 2NVd; training 6NVd
stored and fused-store, 8NVd fused-recompute. What lm.c's LM_STORED_TRAIN_MIN_D (training
steps from that d keep the stored pass) is set from. Each call allocates its workspace (the
binding does); a model's step reuses its arena.

    python benchmarks/bench_xent.py --d 16 32 64 128 --threads 1 2
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--d", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--rows", type=int, default=1120, help="N = B x T (default 32 x 35)")
    ap.add_argument("--vocab", type=int, default=10_000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args(argv)

    import numpy as np

    import nas_eval
    from nas_eval.engine import native

    print(f"isa {nas_eval.build_info()['isa']}, N = {args.rows}, V = {args.vocab}, "
          f"load {os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(0)
    for d in args.d:
        N, V = args.rows, args.vocab
        H = rng.normal(0, 1, (N, d)).astype(np.float32)
        E = rng.uniform(-0.04, 0.04, (V, d)).astype(np.float32)
        bias = np.zeros(V, np.float32)
        targets = rng.integers(0, V, N).astype(np.int32)
        for grads in (0, 2):
            fused = ["fused"] if grads == 0 else ["fused-store", "fused-recompute"]
            variants = [("stored", 1)] + [(m, t) for m in fused for t in args.threads]
            times = {v: ([], []) for v in variants}
            for rep in range(args.reps + 1):
                order = variants if rep % 2 else variants[::-1]
                for method, threads in order:
                    nas_eval.set_num_threads(threads)
                    w0, c0 = time.perf_counter(), time.process_time()
                    native.xent(H, E, bias, targets, scale=1.0 / N, grads=grads, method=method)
                    if rep:  # the first round warms up
                        times[method, threads][0].append(time.perf_counter() - w0)
                        times[method, threads][1].append(time.process_time() - c0)
            cells = []
            for (method, threads), (wall, cpu) in times.items():
                flops = (2 if grads == 0 else 8 if method == "fused-recompute" else 6) * N * V * d
                w, c = statistics.median(wall), statistics.median(cpu)
                cells.append(f"{method} {threads}t {1e3 * w:.1f} ms wall / {1e3 * c:.1f} ms cpu "
                             f"({flops / w / 1e9:.0f} GFLOP/s)")
            print(f"d={d} {'forward' if grads == 0 else 'training'}: " + "; ".join(cells)
                  + f"; load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
