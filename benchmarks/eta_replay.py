"""Replay the study ETA (nas_eval.eta) over a finished store: at each job's completion, what
the cost-weighted estimator says is left, against the time the study really still took; and
the same for tqdm's plain jobs-left x mean-rate estimate; then the plan of the same spec
(nas_eval.costplan) against the measured job and study times.

    python benchmarks/eta_replay.py STUDY_DIR
"""
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

# the plan (nas_eval.costplan, `nas-eval plan`) of the same spec against what the jobs took: per
# kind, planned CPU seconds (this machine's calibrated rate, 1 thread) and measured job seconds.
# On a loaded machine every measured time is stretched by about the same factor, so equal
# ratios across kinds say the model weighs the kinds right; the ratio itself is the slowdown.
from nas_eval.costplan import plan_study  # noqa: E402
from nas_eval.spec import StudySpec  # noqa: E402

store = Storage(sys.argv[1])
spec = StudySpec.from_dict(store.get_meta("spec"))
plan = plan_study(spec, workers=2)
planned = plan.jobs.groupby("kind")["cpu_seconds"].agg(["size", "sum"])
print(f"\nplan of {spec.name} ({plan.rate_source}):")
for kind, row in planned.iterrows():
    measured = sum(r["wall_time"] for r in recs if r["kind"] == kind)
    n = sum(1 for r in recs if r["kind"] == kind)
    print(f"  {kind:6s} planned {int(row['size']):3d} jobs, {row['sum']:8.1f} CPU s; measured {n:3d} jobs, "
          f"{measured:8.1f} s of job time (x{measured / row['sum']:.2f})")
print(f"  whole study on 2 workers: planned {plan.wall_seconds:.0f} s, measured {t_end - t0:.0f} s "
      f"(x{(t_end - t0) / plan.wall_seconds:.2f})")
