"""Estimated wall time of a study preset from the cost model of nas_eval.eta, calibrated on
one measured study: the FLOPs of every job the preset plans (a retraining per pick that the
ground truth does not already hold), divided by the rate the measured study reached.

The default calibration is the issue-22 measurement: ``nas-eval reproduce --preset standard``
with policies random and ws-random ran 103 jobs in 19 min 34 s on an idle 2-vCPU AMD EPYC
Zen 3 (AVX2). An estimate is only as good as the model: ENAS's reward batches and the 8-node
mixed cell of DARTS are folded into nas_eval.eta's per-policy factors, not counted.

    python benchmarks/estimate_study.py standard 8node
    python benchmarks/estimate_study.py smoke --calibrate standard:random,ws-random:1174
"""
import argparse

from nas_eval import policies
from nas_eval.eta import job_cost
from nas_eval.plan import plan_first_phase, train_job
from nas_eval.spec import study_preset


def costs(spec):
    """FLOPs per part of ``spec``'s plan (each job counted once) and the number of jobs."""
    per, seen = {}, set()
    for role, items in plan_first_phase(spec).items():
        for _, job in items:
            if job.key in seen:
                continue
            seen.add(job.key)
            part = f"search:{job.params['policy']}" if role == "search" else role
            per[part] = per.get(part, 0.0) + job_cost(job.kind, job.params)
    picks = sum(p != "random" for p in spec.policies) * len(spec.seeds)
    if spec.train_seed not in spec.gt_seeds:  # else a pick's retraining is a ground-truth run
        example = train_job(spec, policies.random_arch(spec.space, 0), spec.train_seed)
        per["retrain"] = picks * job_cost(example.kind, example.params)
        seen.update(range(picks))
    return per, len(seen)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("presets", nargs="+")
    ap.add_argument("--calibrate", default="standard:random,ws-random:1174",
                    help="PRESET:POLICIES:SECONDS of a measured study (default: issue 22's)")
    args = ap.parse_args(argv)
    preset, pols, seconds = args.calibrate.split(":")
    per, _ = costs(study_preset(preset, policies=pols.split(",")))
    rate = sum(per.values()) / float(seconds)
    print(f"calibration: {preset} with {pols} measured {float(seconds) / 60:.1f} min -> {rate:.3g} FLOP/s")
    for name in args.presets:
        per, n = costs(study_preset(name))
        parts = ", ".join(f"{k} {v / rate / 60:.1f}" for k, v in per.items() if v)
        print(f"{name}: {n} jobs, ~{sum(per.values()) / rate / 60:.0f} min estimated ({parts})")


if __name__ == "__main__":
    main()
