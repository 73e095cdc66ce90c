"""Study-level speed: the main job's job mix, timed one sample job per kind.

From the plan of a study preset (``standard`` by default, the main job), one job of each kind
runs here exactly as a study worker runs it (``nas_eval.jobs.run_job``, PTB from ``--data``):
a ground-truth standalone run, a retrain (the random baseline's: the same recipe and cost as
a pick's retrain), the WS super-net, the amount-of-sharing experiment's standalone run and
super-nets (3-node subspace, node-level and no sharing), one search per policy, and
``eval`` (validation scoring alone, not a job: the rate that nas_eval/eta.py's EVAL_FACTOR
models). Per kind it reports:

* the arithmetic of the job (``nas_eval.eta.job_cost`` with eval_factor 1 and no overhead:
  the cell LM's products, 3x forward to train; for searches the policy's modelled work),
  wall and CPU seconds, achieved GFLOP/s;
* the fraction of the sgemm-bound rate: OpenBLAS sgemm (the core's library, through ctypes,
  as bench_cell.py) at the decoder's forward shape (batch x bptt rows, d, V) with the same
  thread count, measured in this run before and after the jobs (the best is used);
* the predicted wall time of the whole main job: every planned job (first phase and the
  retrains of the picks) at its kind's measured seconds per FLOP (plus the corpus-loading
  time each job pays), spread over ``--workers`` parallel jobs (no scheduling tail
  modelled); and what eta.py's cost model predicts from the ground-truth sample alone.

``--quick`` runs each sample job cut to 20,000 training tokens, one epoch (searches keep
their epochs: a policy's loop is counted in them); the per-FLOP rates carry over.

    python benchmarks/bench_study.py --data /work/shared/data --quick
    python benchmarks/bench_study.py --data /work/shared/data --json study.json      # full-size samples
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

QUICK_TOKENS, QUICK_EPOCHS = 20_000, 1


def _shrink(job, quick):
    """The sample job's params: as planned, or cut for --quick. A search keeps its epochs
    (only its tokens are cut): its policy's loop is counted in epochs (NAO's controller
    rounds come between them, and a preset that would run fewer than its minimum refuses)."""
    params = json.loads(json.dumps(job.params))
    if quick:
        params["config"].update(train_tokens=QUICK_TOKENS)
        if job.kind != "search":
            params["config"].update(epochs=QUICK_EPOCHS)
        if job.kind == "ws":
            params["eval_epochs"] = [QUICK_EPOCHS]
    return params


def _class(kind, params):
    """What a job's speed is taken from: its kind, nodes and sharing or policy."""
    extra = params.get("sharing") if kind == "ws" else params.get("policy", "")
    return f"{kind}/{params.get('n_nodes', 2)}/{extra}"


def samples(spec):
    """{label: Job}, one per kind of the plan, and every planned job of the main job."""
    from nas_eval import plan

    first = plan.plan_first_phase(spec)
    picked = {}
    if first["ground_truth"]:
        picked["ground truth"] = first["ground_truth"][0][1]
    if first["random"]:
        picked["retrain"] = first["random"][0][1]
    if first["ws"]:
        picked["WS super-net"] = first["ws"][0][1]
    if first["sharing_gt"]:
        picked["sharing: standalone"] = first["sharing_gt"][0][1]
    for (sharing, _), job in first["sharing_ws"]:
        picked.setdefault(f"sharing: WS {sharing}", job)
    for (policy, _), job in first["search"]:
        picked.setdefault(f"search {policy}", job)
    every = [job for jobs in first.values() for _, job in jobs]
    # each search's pick is retrained with the training seed: a train job of the same cost
    # as the random baseline's (the random policy's pick is that baseline itself)
    if first["random"]:
        every += [first["random"][0][1]] * len(first["search"])
    return picked, every


def sgemm_rate(threads, rows, d, reps=5):
    """Best GFLOP/s of OpenBLAS sgemm at the decoder's forward shape (rows x V, K = d)."""
    import bench_cell

    bench_cell.B = rows // bench_cell.T  # bench_cell's shapes use B x T rows
    side = bench_cell.SgemmSide({"threads": threads})
    return side.sgemm(d, reps, shapes=("fwd",))["fwd"], side.info()["corename"]


def run_sample(kind, params, threads):
    import nas_eval.jobkinds  # noqa: F401  (registers train, search, ws)
    from nas_eval.jobs import run_job

    w0, c0 = time.perf_counter(), time.process_time()
    run_job(kind, params, threads=threads)
    return time.perf_counter() - w0, time.process_time() - c0


def eval_sample(spec, data, threads):
    """Validation scoring of a fresh standard-size model alone (batch and bptt of the recipe)."""
    import nas_eval
    from nas_eval import datasets
    from nas_eval.eta import forward_flops_per_token

    nas_eval.set_num_threads(threads)
    c = spec.train
    corpus = datasets.load(spec.corpus, root=data)
    valid = corpus.valid[: c.valid_tokens]
    model = nas_eval.CellLM(list(spec.space)[0], corpus.vocab_size, c.hidden_size, seed=0)
    model.loss(valid[:1000], c.eval_batch_size, c.bptt)  # warm-up: arena, threads
    w0, c0 = time.perf_counter(), time.process_time()
    reps = 3
    for _ in range(reps):
        model.loss(valid, c.eval_batch_size, c.bptt)
    flops = reps * len(valid) * forward_flops_per_token(c.hidden_size, spec.n_nodes, corpus.vocab_size)
    return flops, time.perf_counter() - w0, time.process_time() - c0


def corpus_seconds(spec, data):
    from nas_eval import datasets

    t0 = time.perf_counter()
    datasets.load(spec.corpus, root=data)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("NAS_EVAL_DATA"), help="folder holding ptb/")
    ap.add_argument("--preset", default="standard", help="study preset (default: the main job's)")
    ap.add_argument("--quick", action="store_true", help="one epoch of 20k tokens per sample job")
    ap.add_argument("--threads", type=int, default=1, help="threads per job (the executor's default: 1)")
    ap.add_argument("--workers", type=int, default=None, help="jobs in parallel (default: cores / threads)")
    ap.add_argument("--only", nargs="*", help="labels (prefixes) of the kinds to run")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if not args.data:
        ap.error("--data (or $NAS_EVAL_DATA) must name the folder holding ptb/")
    os.environ["NAS_EVAL_DATA"] = args.data
    workers = args.workers or max(1, (os.cpu_count() or 1) // args.threads)

    import nas_eval
    from nas_eval import eta
    from nas_eval.spec import study_preset

    spec = study_preset(args.preset)
    picked, every = samples(spec)
    c = spec.train
    rows = c.batch_size * c.bptt
    t_start = time.perf_counter()
    sg_before, corename = sgemm_rate(args.threads, rows, c.hidden_size)
    load_s = corpus_seconds(spec, args.data)
    results = {}
    for label, job in picked.items():
        if args.only and not any(label.startswith(p) for p in args.only):
            continue
        params = _shrink(job, args.quick)
        flops = eta.job_cost(job.kind, params, eval_factor=1.0, overhead=0.0)
        wall, cpu = run_sample(job.kind, params, args.threads)
        results[label] = {"kind": job.kind, "class": _class(job.kind, params), "flops": flops,
                          "wall_s": wall, "cpu_s": cpu, "load1": os.getloadavg()[0]}
        print(f"  {label}: {wall:.1f} s", file=sys.stderr, flush=True)
    if not args.only or any("eval".startswith(p) for p in args.only):
        flops, wall, cpu = eval_sample(spec, args.data, args.threads)
        results["eval"] = {"kind": "eval", "class": "eval", "flops": flops, "wall_s": wall, "cpu_s": cpu,
                           "load1": os.getloadavg()[0]}
    sg_after, _ = sgemm_rate(args.threads, rows, c.hidden_size)
    sgemm = max(sg_before, sg_after)

    # the main job: each planned job at its kind's measured seconds per FLOP
    per_flop = {r["class"]: max(r["wall_s"] - load_s, 0.0) / r["flops"]
                for r in results.values() if r["kind"] != "eval" and r["flops"] > 0}
    total, missing = 0.0, set()
    for job in every:
        cls = _class(job.kind, job.params)
        flops = eta.job_cost(job.kind, job.params, eval_factor=1.0, overhead=0.0)
        if cls in per_flop:
            total += load_s + flops * per_flop[cls]
        elif flops > 0:
            missing.add(cls)
    predicted = total / workers
    gt = results.get("ground truth")
    eta_pred = None
    if gt:  # eta.py's own model, calibrated on the ground-truth sample's rate
        rate = eta.job_cost(gt["kind"], _shrink(picked["ground truth"], args.quick)) / gt["wall_s"]
        eta_pred = sum(eta.job_cost(j.kind, j.params) for j in every) / rate / workers

    train_rate = gt["flops"] / gt["wall_s"] if gt else None
    print(f"preset {args.preset}{' (--quick samples)' if args.quick else ''}, threads {args.threads}, "
          f"isa {nas_eval.build_info()['isa']}, OpenBLAS {corename}; sgemm at ({rows} x {10_000}, K = "
          f"{c.hidden_size}): {sgemm:.1f} GFLOP/s (before {sg_before:.1f}, after {sg_after:.1f}); "
          f"corpus load {load_s:.2f} s")
    # GFLOP per CPU second: what survives a loaded machine (a one-thread job's CPU time is its
    # wall time on an idle core)
    print(f"{'kind':24} {'GFLOP':>9} {'wall s':>8} {'cpu s':>8} {'GFLOP/s':>8} {'% sgemm':>8} {'GFLOP/cpu-s':>11} {'load1':>6}")
    for label, r in results.items():
        rate = r["flops"] / r["wall_s"] / 1e9
        r["gflops_per_s"], r["fraction_of_sgemm"] = rate, rate / sgemm
        print(f"{label:24} {r['flops'] / 1e9:9.1f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {rate:8.1f} "
              f"{100 * rate / sgemm:7.0f}% {r['flops'] / max(r['cpu_s'], 1e-9) / 1e9:11.1f} {r['load1']:6.1f}")
    if train_rate and "eval" in results:
        ratio = results["eval"]["flops"] / results["eval"]["wall_s"] / train_rate
        print(f"evaluation at {ratio:.2f} of the ground-truth run's rate per FLOP (eta.EVAL_FACTOR = "
              f"{eta.EVAL_FACTOR}, i.e. {1 / eta.EVAL_FACTOR:.2f})")
    print(f"main job ({len(every)} jobs, {workers} in parallel): predicted {predicted / 60:.1f} min from the "
          f"per-kind rates" + (f"; eta.py's cost model: {eta_pred / 60:.1f} min" if eta_pred else "")
          + (f"; no sample for {sorted(missing)}" if missing else ""))
    print(f"(benchmark wall time {time.perf_counter() - t_start:.0f} s; 1-minute load {os.getloadavg()[0]:.1f})")
    if args.json:
        doc = {"preset": args.preset, "quick": args.quick, "threads": args.threads, "workers": workers,
               "sgemm_gflops": sgemm, "openblas": corename, "build": nas_eval.build_info(),
               "corpus_load_s": load_s, "kinds": results, "predicted_main_job_s": predicted,
               "eta_predicted_main_job_s": eta_pred, "jobs": len(every), "unmodelled": sorted(missing)}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
