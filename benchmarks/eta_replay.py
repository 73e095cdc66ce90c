"""Replay the study ETA (nas_eval.eta) over a finished store: at each job's completion, what
the cost-weighted estimator says is left, against the time the study really still took; and
the same for tqdm's plain jobs-left x mean-rate estimate."""
import sys

import numpy as np

from nas_eval.eta import job_cost
from nas_eval.store import Storage

recs = [r for r in Storage(sys.argv[1]).records() if r["state"] == "done"]
t0 = min(r["started"] for r in recs)
t_end = max(r["finished"] for r in recs)
recs.sort(key=lambda r: r["finished"])
costs = [job_cost(r["kind"], r["params"]) for r in recs]
total = sum(costs)
done = 0.0
rows = []
for i, (r, c) in enumerate(zip(recs, costs), 1):
    done += c
    t = r["finished"] - t0
    actual = t_end - r["finished"]
    eta = (total - done) / (done / t)
    naive = (len(recs) - i) * t / i
    rows.append((i, t, actual, eta, naive))
print(f"{len(recs)} jobs, {t_end - t0:.0f} s from first start to last finish")
for skip in (3, 5, 10):
    sel = [x for x in rows if x[0] > skip and x[2] > 60]  # before the last minute
    err = np.array([x[3] / x[2] - 1 for x in sel])
    nai = np.array([x[4] / x[2] - 1 for x in sel])
    print(f"after {skip} jobs: cost ETA error median {np.median(np.abs(err)):.0%}, max {np.max(np.abs(err)):.0%}, "
          f"within ±25% at {np.mean(np.abs(err) <= 0.25):.0%} of completions; "
          f"naive jobs-left ETA median {np.median(np.abs(nai)):.0%}, max {np.max(np.abs(nai)):.0%}")
for x in rows[:: max(1, len(rows) // 12)]:
    print(f"job {x[0]:3d} at {x[1]:6.0f} s: really left {x[2]:6.0f} s, ETA {x[3]:6.0f} s ({x[3]/max(x[2],1)-1:+.0%}), naive {x[4]:6.0f} s")
