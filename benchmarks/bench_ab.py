"""A/B of two nas_eval checkouts (each built in place): training steps alternating between
two worker processes, one per checkout (PYTHONPATH), n = 8, 2 threads, d = 64, 256, 850.

    python benchmarks/bench_ab.py PATH_NEW PATH_OLD            # d = 64, 256, 850
    python benchmarks/bench_ab.py PATH_NEW PATH_OLD 256:30 64:40  # d:alternating steps
"""
import json, os, statistics, subprocess, sys, time
B, T, V = 64, 35, 10_000
ARCH = "0:sigmoid 1:relu 1:relu 1:identity 2:tanh 5:sigmoid 3:tanh 5:relu"
WORKER = r'''
import sys, time, json, numpy as np, nas_eval
d, thr = int(sys.argv[1]), int(sys.argv[2])
nas_eval.set_num_threads(thr)
m = nas_eval.CellLM("%s", %d, d, seed=0)
tok = np.random.default_rng(0).integers(0, %d, size=400_000, dtype=np.int32)  # no wrap-around: every step is full
for line in sys.stdin:
    t0 = time.perf_counter(); m.fit_steps(tok, steps=1, batch_size=%d, bptt=%d); print(time.perf_counter() - t0, flush=True)
''' % (ARCH, V, V, B, T)
def start(path, d, thr):
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.Popen([sys.executable, "-c", WORKER, str(d), str(thr)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd="/tmp")
def step(p):
    p.stdin.write("x\n"); p.stdin.flush(); return float(p.stdout.readline())
CONFIGS = [tuple(map(int, a.split(":"))) for a in sys.argv[3:]] or [(64, 40), (256, 12), (850, 5)]
for d, n in CONFIGS:
    ps = {"new": start(os.path.abspath(sys.argv[1]), d, 2), "main": start(os.path.abspath(sys.argv[2]), d, 2)}
    for p in ps.values(): step(p); step(p)
    ts = {k: [] for k in ps}
    for i in range(n):
        for k in (("new", "main") if i % 2 == 0 else ("main", "new")):
            time.sleep(0.1); ts[k].append(step(ps[k]))
    for p in ps.values(): p.stdin.close(); p.wait()
    med = {k: statistics.median(v) for k, v in ts.items()}; best = {k: min(v) for k, v in ts.items()}
    print(f"d={d} thr=2 n=8: new {B*T/med['new']:.0f} tok/s (best {B*T/best['new']:.0f}), old {B*T/med['main']:.0f} (best {B*T/best['main']:.0f}); new/old median {med['main']/med['new']:.2f}, best {best['main']/best['new']:.2f}; load {os.getloadavg()[0]:.1f}", flush=True)
