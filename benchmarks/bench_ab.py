"""A/B of two nas_eval checkouts (each built in place): training steps alternating between
two worker processes, one per checkout (PYTHONPATH), so that both see the same minutes of a
machine whose speed drifts. Default: n = 8, B = 64, 2 threads, d = 64, 256, 850.

    python benchmarks/bench_ab.py PATH_NEW PATH_OLD                 # d = 64, 256, 850
    python benchmarks/bench_ab.py PATH_NEW PATH_OLD 256:30 64:40    # d:alternating steps
    python benchmarks/bench_ab.py PATH_NEW PATH_OLD 32:120 --n 2 --batch 32 --threads 1
                                                     # the main job's standalone step
    python benchmarks/bench_ab.py PATH_NEW PATH_OLD 256:16 --mixed train
                                                     # the DARTS mixed-cell step (bench_darts.py)

--mixed VARIANT steps bench_darts.py's model instead (the mixed cell at n = 8, B = 64, its
search recipe's dropouts; VARIANT train, search-1 or search-2), from this checkout's
benchmarks/ with each checkout's nas_eval.
"""
import argparse, os, statistics, subprocess, sys, time
T, V = 35, 10_000
ARCHS = {2: "0:relu 1:tanh", 8: "0:sigmoid 1:relu 1:relu 1:identity 2:tanh 5:sigmoid 3:tanh 5:relu"}
WORKER = r'''
import sys, time, numpy as np, nas_eval
arch, d, thr, B, T, V = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
nas_eval.set_num_threads(thr)
m = nas_eval.CellLM(arch, V, d, seed=0)
tok = np.random.default_rng(0).integers(0, V, size=400_000, dtype=np.int32)  # no wrap-around: every step is full
for line in sys.stdin:
    t0 = time.perf_counter(); m.fit_steps(tok, steps=1, batch_size=B, bptt=T); print(time.perf_counter() - t0, flush=True)
'''
MIXED_WORKER = r'''
import sys, time, nas_eval
sys.path.insert(0, sys.argv[1])
from bench_darts import Search
d, thr, variant = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
nas_eval.set_num_threads(thr)
s = Search(d)
for line in sys.stdin:
    t0 = time.perf_counter(); s.run(variant); print(time.perf_counter() - t0, flush=True)
'''


def start(path, arch, d, a):
    env = dict(os.environ, PYTHONPATH=path)
    if a.mixed:
        here = os.path.dirname(os.path.abspath(__file__))
        argv = [sys.executable, "-c", MIXED_WORKER, here, str(d), str(a.threads), a.mixed]
    else:
        argv = [sys.executable, "-c", WORKER, arch, str(d), str(a.threads), str(a.batch), str(T), str(V)]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd="/tmp")


def step(p):
    p.stdin.write("x\n")
    p.stdin.flush()
    return float(p.stdout.readline())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("new")
    ap.add_argument("old")
    ap.add_argument("configs", nargs="*", default=["64:40", "256:12", "850:5"], help="d:alternating steps")
    ap.add_argument("--n", type=int, choices=sorted(ARCHS), default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mixed", choices=["train", "search-1", "search-2"],
                    help="step the DARTS mixed cell (n 8, B 64) with this bench_darts variant")
    a = ap.parse_args()
    if a.mixed:
        a.n, a.batch = 8, 64  # bench_darts' model
    tokens = a.batch * T
    for d, n in (tuple(map(int, c.split(":"))) for c in a.configs):
        ps = {k: start(os.path.abspath(p), ARCHS[a.n], d, a) for k, p in (("new", a.new), ("old", a.old))}
        for p in ps.values():
            step(p), step(p)
        ts = {k: [] for k in ps}
        for i in range(n):
            for k in (("new", "old") if i % 2 == 0 else ("old", "new")):
                time.sleep(0.1)
                ts[k].append(step(ps[k]))
        for p in ps.values():
            p.stdin.close()
            p.wait()
        med = {k: statistics.median(v) for k, v in ts.items()}
        best = {k: min(v) for k, v in ts.items()}
        what = f"mixed {a.mixed}" if a.mixed else "cell"
        print(f"{what} d={d} n={a.n} B={a.batch} thr={a.threads}: new {tokens / med['new']:.0f} tok/s (best "
              f"{tokens / best['new']:.0f}), old {tokens / med['old']:.0f} (best {tokens / best['old']:.0f}); "
              f"new/old median {med['old'] / med['new']:.2f}, best {best['old'] / best['new']:.2f}; "
              f"median step {1e3 * med['new']:.1f} vs {1e3 * med['old']:.1f} ms; load {os.getloadavg()[0]:.1f}",
              flush=True)


if __name__ == "__main__":
    main()
