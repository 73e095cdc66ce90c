"""The ``nas-eval`` command line (also ``python -m nas_eval``).

    nas-eval reproduce --preset smoke --out runs/smoke     # the paper's 2-node study + report
    nas-eval run --config study.toml --out runs/mine       # any study from a TOML file / flags
    nas-eval plan --preset paper --workers 64              # jobs, FLOPs, CPU-hours, wall time: before a run
    nas-eval status runs/smoke                             # jobs by state, progress, ETA
    nas-eval report runs/smoke                             # report.md, results.json, CSVs, PNGs
    nas-eval train "0:tanh 1:relu" --preset laptop         # one architecture standalone

Rerunning the same command resumes: finished jobs are never rerun.
"""
import argparse
import os
import sys
import time

from . import __version__

EXIT_JOBS_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
DEFAULT_STUDY_PRESET = "smoke"


def _study_presets_help():
    from .spec import STUDY_PRESETS

    return "study preset; one of:\n  " + STUDY_PRESETS.describe("\n  ")


def _train_presets_help():
    from .config import PRESETS

    return "training preset; one of:\n  " + PRESETS.describe("\n  ")


def _int_list(text):
    try:
        return tuple(int(x) for x in text.split(",") if x.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _str_list(text):
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _add_study_options(p):
    p.add_argument("--out", required=True, help="study directory (store, report and figures)")
    p.add_argument("--data", help="directory holding ptb/ and wikitext-2/ (else $NAS_EVAL_DATA, "
                                  "the cache, or a download)")
    p.add_argument("--executor", choices=("process", "serial", "dask"), default="process",
                   help="where jobs run (default: local processes)")
    p.add_argument("--workers", type=int, help="processes for the local pool (default: cores / threads per job)")
    p.add_argument("--threads-per-job", type=int, default=1, help="core threads each job uses (default 1)")
    p.add_argument("--dask", metavar="ADDRESS", help="run jobs on a Dask cluster (scheduler address)")
    p.add_argument("--retry-failed", action="store_true", help="rerun jobs that failed before")
    p.add_argument("--checkpoint-dir", help="where long jobs keep their per-epoch checkpoints (default: "
                                            "<out>/checkpoints; give a shared path for workers on other machines)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_spec_options(p):
    p.add_argument("--config", help="TOML file with the study settings (see README)")
    p.add_argument("--preset", help=_study_presets_help())
    p.add_argument("--nodes", type=int, help="nodes of the search space (n_nodes)")
    p.add_argument("--corpus", help="ptb, wikitext-2, a directory, or synthetic:key=value,...")
    p.add_argument("--policies", type=_str_list, help="comma-separated policies")
    p.add_argument("--seeds", type=_int_list, help="search seeds, e.g. 0,1,2")
    p.add_argument("--train-seed", type=int, help="the fixed training seed of every retraining")
    p.add_argument("--gt-seeds", type=_int_list, help="ground-truth seeds ('' for none)")
    p.add_argument("--ws-seeds", type=_int_list, help="weight-sharing seeds ('' for none)")
    p.add_argument("--no-sharing", action="store_true", help="skip the amount-of-sharing experiment")


def build_parser():
    fmt = argparse.RawTextHelpFormatter
    parser = argparse.ArgumentParser(prog="nas-eval", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"nas_eval {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reproduce", help="the paper's 2-node study at a preset, then the report",
                       formatter_class=fmt)
    p.add_argument("--preset", default=DEFAULT_STUDY_PRESET, help=_study_presets_help())
    _add_study_options(p)
    p = sub.add_parser("run", help="run or resume a study from flags or a TOML file", formatter_class=fmt)
    _add_spec_options(p)
    _add_study_options(p)
    p = sub.add_parser("train", help="train one architecture standalone and print its perplexity",
                       formatter_class=fmt)
    p.add_argument("arch", help='the cell, e.g. "0:tanh 1:relu" (node i: predecessor:activation)')
    p.add_argument("--preset", default="laptop", help=_train_presets_help())
    p.add_argument("--corpus", default="ptb", help="ptb, wikitext-2, a directory, or synthetic:...")
    p.add_argument("--data", help="directory holding ptb/ (else $NAS_EVAL_DATA, the cache, a download)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="core threads (default: all cores)")
    _add_plan_parser(sub, fmt)
    p = sub.add_parser("status", help="jobs by state, progress and ETA; failed jobs and why")
    p.add_argument("dir")
    p.add_argument("--failed", action="store_true", help="print the full traceback of each failed job")
    p = sub.add_parser("report", help="write report.md, results.json, CSVs and figures")
    p.add_argument("dir")
    p.add_argument("--out", help="where to write (default: the study directory)")
    return parser


def _add_plan_parser(sub, fmt):
    p = sub.add_parser("plan", formatter_class=fmt,
                       help="a dry run of run/reproduce: jobs, FLOPs, CPU-hours and wall time, nothing run")
    _add_spec_options(p)
    p.add_argument("--workers", type=int, help="jobs at once (all the cluster's workers; default: this "
                                               "machine's cores / threads per job)")
    p.add_argument("--threads-per-job", type=int, default=1, help="core threads each job uses (default 1)")
    p.add_argument("--rate", type=float, metavar="GFLOPS",
                   help="GFLOP/s one job thread sustains (default: measured here by a short sgemm, cached)")
    p.add_argument("--remeasure", action="store_true", help="measure this machine's rate again")
    # accepted so that a run/reproduce command line can be planned as it is; they change nothing here
    for flag in ("--out", "--data", "--dask", "--checkpoint-dir", "--executor"):
        p.add_argument(flag, help=argparse.SUPPRESS)
    for flag in ("--retry-failed", "--no-progress"):
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)


def _plan(args):
    from .costplan import plan_study
    from .executors import default_workers

    if args.threads_per_job < 1:
        raise ValueError(f"--threads-per-job must be >= 1, got {args.threads_per_job}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    workers = args.workers or default_workers(args.threads_per_job)
    print(plan_study(_spec_from_args(args), workers=workers, threads_per_job=args.threads_per_job,
                     rate=args.rate, refresh=args.remeasure))


def _spec_from_args(args):
    from .spec import StudySpec, study_preset

    if getattr(args, "config", None):
        spec = StudySpec.from_toml(args.config)
        if args.preset:
            raise ValueError("give either --config or --preset, not both")
    else:
        spec = study_preset(args.preset or DEFAULT_STUDY_PRESET)
    changes = {}
    for flag, field in (("nodes", "n_nodes"), ("corpus", "corpus"), ("policies", "policies"), ("seeds", "seeds"),
                        ("train_seed", "train_seed"), ("gt_seeds", "gt_seeds"), ("ws_seeds", "ws_seeds")):
        value = getattr(args, flag, None)
        if value is not None:
            changes[field] = value
    if getattr(args, "no_sharing", False):
        changes["sharing"] = False
    if changes:
        spec = spec.replace(name=spec.name + "+cli", **changes)
        spec.validate()
    return spec


def _check_corpus(spec):
    """Load the corpus in the driver first and check every job's settings against it: a
    missing or corrupt corpus, or options the data cannot feed, fail before any job."""
    from .study import check_data

    check_data(spec)


def _executor(args):
    from .executors import make_executor

    if args.dask:
        return make_executor("dask", dask_address=args.dask)
    if args.executor == "dask":
        return make_executor("dask")
    return make_executor(args.executor, workers=args.workers, threads_per_job=args.threads_per_job)


def _run(args, spec):
    from .executors import shutdown
    from .study import Study

    if args.data:
        if not os.path.isdir(args.data):
            raise ValueError(f"--data {args.data}: no such directory")
        os.environ["NAS_EVAL_DATA"] = os.path.abspath(args.data)  # workers inherit it
    if args.threads_per_job < 1:
        raise ValueError(f"--threads-per-job must be >= 1, got {args.threads_per_job}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    _check_corpus(spec)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a file, not a directory")
    if args.checkpoint_dir and os.path.exists(args.checkpoint_dir) and not os.path.isdir(args.checkpoint_dir):
        raise ValueError(f"--checkpoint-dir: checkpoint_dir {args.checkpoint_dir} is a file, not a directory")
    os.makedirs(args.out, exist_ok=True)
    study = Study(args.out)
    spec = study.configure(spec)
    print(f"nas_eval {__version__}: {spec.describe()}", file=sys.stderr)
    print(f"store: {os.path.join(args.out, 'study.db')}", file=sys.stderr)
    reused = study.storage.state_counts().get("done", 0)  # finished before: never rerun
    t0 = time.time()
    ex = _executor(args)
    try:
        counts = study.run(executor=ex, threads_per_job=args.threads_per_job,
                           progress=not args.no_progress, retry_failed=args.retry_failed,
                           checkpoint_dir=args.checkpoint_dir)
    finally:
        shutdown(ex, wait=False)
    rerun = f", {counts['retried']} rerun after their worker died" if counts.get("retried") else ""
    print(f"ran {counts['done']} jobs ({counts['failed']} failed{rerun}) in {time.time() - t0:.0f}s; "
          f"{reused} finished jobs reused", file=sys.stderr)
    status = study.status()
    failed = int(status["failed"].sum())
    if failed:
        print(status.to_string(index=False), file=sys.stderr)
        print(f"{failed} job(s) failed; why: `nas-eval status {args.out}` (tracebacks: --failed); "
              "rerun with --retry-failed", file=sys.stderr)
    return study, failed


def _report(study, out):
    from . import report

    results = report.write(study, out)
    print(f"report: {os.path.join(out, 'report.md')}")
    return results


def _print_failed(study, tracebacks=False):
    """Each failed job: kind, parameters in one line, and the last line of its error (with
    ``tracebacks``, the whole traceback)."""
    failed = study.failed()
    for f in failed:
        print(f"failed {f['kind']} ({f['role']}, job {f['key']}): {f['params_line']}")
        if tracebacks:
            print("    " + f["error"].replace("\n", "\n    "))
        else:
            print(f"    {f['error_line']}")
    if failed and not tracebacks:
        print(f"full tracebacks: nas-eval status {study.path} --failed")
    elif tracebacks and not failed:
        print("no failed jobs")


def _status(path, tracebacks=False):
    from .study import Study

    if not os.path.exists(os.path.join(path, "study.db")):
        raise ValueError(f"{path} holds no study (no study.db)")
    study = Study(path)
    if tracebacks:
        _print_failed(study, tracebacks=True)
        return
    table = study.status()
    print(study.spec.describe())
    print(table.to_string(index=False))
    total, done = int(table["jobs"].sum()), int(table["done"].sum())
    from .eta import from_records

    left = from_records(study.storage.records()) if 0 < done < total else None
    eta = "" if left is None else f", ETA ~{left / 60:.1f} min at the rate so far (cost model of nas_eval.eta)"
    print(f"{done}/{total} jobs done{eta}")
    _print_failed(study)


def _train(args):
    import math

    from . import datasets
    from .config import TrainConfig
    from .engine import set_num_threads, train
    from .space import Arch

    arch = Arch.parse(args.arch)
    config = TrainConfig.preset(args.preset)
    if args.threads is not None:
        set_num_threads(args.threads)
    corpus = datasets.from_spec(args.corpus, root=args.data)
    print(f"nas_eval {__version__}: train {arch} on {corpus.name} with seed {args.seed}, {config.describe()}",
          file=sys.stderr)
    result = train(arch, corpus, config, seed=args.seed, progress=True)
    print(result.history[["epoch", "train_ppl", "valid_ppl", "asgd", "steps", "epoch_time"]].to_string(index=False))
    print(f"valid ppl {result.valid_ppl:.2f}, test ppl {result.test_ppl:.2f} (best epoch {result.best_epoch}, "
          f"{result.wall_time:.0f}s) — {arch}, seed {args.seed}, {config.describe()}, data {corpus.name}")
    return 0 if math.isfinite(result.valid_ppl) else 1


def _describe(exc):
    """One line for an error: OSErrors name the path and the reason, not the errno tuple."""
    if isinstance(exc, OSError) and exc.filename is not None:
        import errno

        hint = ""
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = " (write the output elsewhere: --out a writable directory)"
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = " (free some space and rerun: finished work is kept)"
        return f"{exc.filename}: {exc.strerror or exc}{hint}"
    return str(exc)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "plan":
            _plan(args)
        elif args.command == "status":
            _status(args.dir, tracebacks=args.failed)
        elif args.command == "report":
            from .study import Study

            if not os.path.exists(os.path.join(args.dir, "study.db")):
                raise ValueError(f"{args.dir} holds no study (no study.db)")
            _report(Study(args.dir), args.out or args.dir)
        else:
            if args.command == "reproduce":
                from .spec import study_preset

                spec = study_preset(args.preset)
            else:
                spec = _spec_from_args(args)
            study, failed = _run(args, spec)
            if args.command == "reproduce":
                _report(study, args.out)
            if failed:
                return EXIT_JOBS_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted: finished jobs are saved; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:  # bad input, or a path that cannot be read or written
        print(f"nas-eval: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
