"""A Study: the evaluation protocol over a resumable job store.

>>> import nas_eval, tempfile
>>> from nas_eval.spec import study_preset
>>> study = nas_eval.Study(tempfile.mkdtemp())            # doctest: +SKIP
>>> study.run(study_preset("smoke"), executor="serial")   # doctest: +SKIP
>>> study.retrains().head()                               # doctest: +SKIP

Opening an existing store resumes it: finished jobs are never rerun, jobs a dead process
left running rerun. The store holds only JSON (SQLite, WAL).
"""
import os
import time

import pandas as pd

from . import datasets, jobkinds  # noqa: F401  (jobkinds registers the job kinds the plan uses)
from .executors import check_workers, make_executor, run_pending, shutdown
from . import policies
from .eta import Estimator, job_cost
from .plan import check_feasible, corpus_sizes, plan_first_phase, plan_retrains, train_job
from .space import Arch
from .spec import StudySpec
from .store import Storage
from .summaries import GroundTruth

SPEC_KEY = "spec"
HISTORY_KEY = "spec_history"
# settings that are part of finished jobs' parameters: a study cannot change them
FIXED_SETTINGS = ("n_nodes", "corpus", "train", "search", "train_seed", "ws_eval_epochs", "sharing_fixed")
# settings a study can grow: their values are the union of every spec it ran
GROWING_SETTINGS = ("policies", "seeds", "gt_seeds", "ws_seeds", "sharing_gt_seeds", "sharing_ws_seeds")


def _differences(old, new):
    """``"train.epochs: 2 -> 3"``-style lines for the fixed settings that differ."""
    out = []
    for name in FIXED_SETTINGS:
        a, b = getattr(old, name), getattr(new, name)
        if a == b:
            continue
        if hasattr(a, "to_dict"):
            da, db = a.to_dict(), b.to_dict()
            out += [f"{name}.{k}: {da.get(k)!r} -> {db.get(k)!r}" for k in sorted(set(da) | set(db))
                    if da.get(k) != db.get(k)]
        else:
            out.append(f"{name}: {a!r} -> {b!r}")
    for p in sorted(set(old.policies) & set(new.policies)):
        if old.options_for(p) != new.options_for(p):
            out.append(f"options of {p}: {old.options_for(p)!r} -> {new.options_for(p)!r}")
    return out


def grow(old, new):
    """The spec of a study that ran ``old`` and is now asked to run ``new``: the union of
    their policies and seeds (``sharing`` if either has it), each policy with the options it
    had. Raises ValueError naming every setting whose change would alter finished jobs'
    parameters (recipes, corpus, space, training seed, policy options)."""
    diff = _differences(old, new)
    if diff:
        raise ValueError("this directory already holds a study with another spec, and the change would alter "
                         "the parameters of its jobs: " + "; ".join(diff)
                         + ". A study can only grow (more policies or seeds); use a new directory")
    union = {name: tuple(dict.fromkeys(getattr(old, name) + getattr(new, name))) for name in GROWING_SETTINGS}
    options = {p: (old if p in old.policies else new).options_for(p) for p in union["policies"]}
    return new.replace(**union, sharing=old.sharing or new.sharing, policy_defaults={},
                       policy_options={p: o for p, o in options.items() if o})


MAIN_STUDY = os.path.join("runs", "standard")  # the main job's store (README: nas-eval reproduce)


def find_study(path=None, start=None):
    """The study directory to open: ``path`` if given (it must exist), else
    ``$NAS_EVAL_STUDY``, else the main job's ``runs/standard`` looked up from ``start``
    (default: the working directory) and each folder above it, then beside the package's
    source tree -- so a notebook finds it wherever Jupyter was started in the checkout."""
    explicit = path or os.environ.get("NAS_EVAL_STUDY")
    if explicit:
        if not os.path.exists(explicit):
            raise FileNotFoundError(f"no study store at {explicit!r}"
                                    + ("" if path else " (from $NAS_EVAL_STUDY)"))
        return explicit
    here = os.path.abspath(start or os.getcwd())
    bases = [here]
    while os.path.dirname(here) != here:
        here = os.path.dirname(here)
        bases.append(here)
    bases.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    tried = [os.path.join(b, MAIN_STUDY) for b in dict.fromkeys(bases)]
    for candidate in tried:
        if os.path.exists(os.path.join(candidate, "study.db")):
            return candidate
    raise FileNotFoundError(f"no study store found: looked for {MAIN_STUDY} in {', '.join(tried[:3])}, ... "
                            "Run the main job (nas-eval reproduce --preset standard --out runs/standard) "
                            "or set NAS_EVAL_STUDY to a study directory")


def params_line(params):
    """A job's parameters in one line: scalars as they are, a recipe by its preset name and
    scale, lists of architectures by their count."""
    parts = []
    for k, v in sorted(params.items()):
        if k == "config" and isinstance(v, dict):
            v = f"{v.get('name')}(d={v.get('hidden_size')},epochs={v.get('epochs')})"
        elif isinstance(v, list) and len(v) > 4:
            v = f"[{len(v)} items]"
        parts.append(f"{k}={v}")
    return " ".join(parts)


def check_data(spec):
    """Check ``spec``'s jobs against its corpus (loaded here, in the driver) before any job
    runs or anything is written (nas_eval.plan.check_feasible)."""
    corpus = datasets.from_spec(spec.corpus, root=os.environ.get("NAS_EVAL_DATA"))
    check_feasible(spec, corpus_sizes(corpus))
    return corpus


def _checkpoint_dir(path):
    """The checkpoint directory, created and checked up front (not in every job)."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"checkpoint_dir {path} is a file, not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create checkpoint_dir {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"checkpoint_dir {path} is not writable")
    return path


class Study:
    """The protocol's jobs and results in one store (a directory or a ``.db`` file)."""

    def __init__(self, path):
        self.storage = Storage(path)
        self.path = path

    def __repr__(self):
        spec = self.spec
        return f"Study({self.path!r}, {spec.describe() if spec else 'not configured'})"

    # --- the spec ----------------------------------------------------------------------------
    @property
    def spec(self):
        d = self.storage.get_meta(SPEC_KEY)
        return StudySpec.from_dict(d) if d else None

    def configure(self, spec):
        """Record the spec. A store grows but never changes: a spec that adds policies or
        seeds extends the study (finished jobs are reused, being content-addressed; the
        study's spec becomes the union, see :func:`grow`, and every spec asked for is kept
        in :meth:`spec_history`); one that changes a recipe, the corpus, the space or a
        policy's options is refused, so results of two protocols never mix."""
        if not isinstance(spec, StudySpec):
            raise ValueError(f"spec must be a StudySpec, got {type(spec).__name__}")
        current = self.storage.get_meta(SPEC_KEY)
        if current == spec.to_dict():
            return spec
        merged = spec
        if current is not None:
            try:
                merged = grow(StudySpec.from_dict(current), spec)
            except ValueError as e:
                raise ValueError(f"{self.path}: {e}") from None
        history = self.storage.get_meta(HISTORY_KEY) or ([{"time": None, "spec": current}] if current else [])
        if merged.to_dict() != current:
            self.storage.set_meta(SPEC_KEY, merged.to_dict())
        if history[-1:] and history[-1]["spec"] == spec.to_dict():
            return merged
        history.append({"time": time.time(), "spec": spec.to_dict()})
        self.storage.set_meta(HISTORY_KEY, history)
        return merged

    def spec_history(self):
        """Every spec this study was asked to run, oldest first: ``[{"time": unix s or None,
        "spec": StudySpec}]`` (the study's :attr:`spec` is their union)."""
        return [{"time": h["time"], "spec": StudySpec.from_dict(h["spec"])}
                for h in self.storage.get_meta(HISTORY_KEY) or []]

    def _plan(self):
        spec = self.spec
        if spec is None:
            raise ValueError(f"{self.path} holds no study yet: run one first")
        return spec, plan_first_phase(spec)

    # --- running -------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self):
        """The default checkpoint directory: ``checkpoints/`` beside the store's file."""
        return os.path.join(os.path.dirname(os.path.abspath(self.storage.path)), "checkpoints")

    def run(self, spec=None, executor="process", workers=None, threads_per_job=1, progress=True,
            retry_failed=False, checkpoint_dir=None):
        """Run (or resume) the study: first ground truth, WS rankings, searches and random
        baselines; then the retraining of every pick. Returns this call's job counts.

        Long jobs (training, searches, super-nets) save a checkpoint every epoch in
        ``checkpoint_dir`` (default :attr:`checkpoint_dir`, ``<study dir>/checkpoints/``;
        give a shared path when workers run on other machines); a rerun resumes a killed
        job from its last epoch with the numbers of an uninterrupted run. On Dask, every
        worker must run the driver's nas_eval build and load the corpus
        (:func:`nas_eval.executors.check_workers`), else nothing runs."""
        if isinstance(threads_per_job, bool) or not isinstance(threads_per_job, int) or threads_per_job < 1:
            raise ValueError(f"threads_per_job must be a positive integer, got {threads_per_job!r}")
        if spec is not None:
            check_data(spec)  # before anything is written
            self.configure(spec)
        elif self.spec is not None:
            check_data(self.spec)
        spec, plan = self._plan()
        # longest jobs first (super-nets, searches), so the pool does not end on a straggler
        for role in ("ws", "sharing_ws", "search", "ground_truth", "random", "sharing_gt"):
            self.storage.add([job for _, job in plan[role]])
        own = isinstance(executor, str)
        ex = make_executor(executor, workers=workers, threads_per_job=threads_per_job) if own else make_executor(executor)
        counts = {"submitted": 0, "done": 0, "failed": 0, "retried": 0}
        checkpoint_dir = _checkpoint_dir(checkpoint_dir or self.checkpoint_dir)
        eta = self._estimator(spec, plan, retry_failed)
        try:
            check_workers(ex, corpus=spec.corpus)  # Dask: same code and the corpus on every worker
            for phase in (1, 2):
                if phase == 2:
                    retrains = [job for _, job in plan_retrains(spec, self._picks(plan))]
                    self.storage.add(retrains)
                    eta.drop([k for k in eta.costs if k.startswith("retrain:")])
                    eta.add(self._costs(retrains, retry_failed))
                got = run_pending(self.storage, ex, threads_per_job=threads_per_job, progress=progress,
                                  retry_failed=retry_failed, checkpoint_dir=checkpoint_dir, eta=eta)
                counts = {k: counts[k] + got[k] for k in counts}
        finally:
            if own:
                shutdown(ex)
        return counts

    def _costs(self, jobs, retry_failed=False):
        """Estimated cost (nas_eval.eta) of the jobs of ``jobs`` that will run."""
        runnable = {"pending", "stale", "running"} | ({"failed"} if retry_failed else set())
        return {job.key: job_cost(job.kind, job.params) for job in jobs
                if job.key not in self.storage or self.storage.get(job.key)["state"] in runnable}

    def _estimator(self, spec, plan, retry_failed=False):
        """The study's ETA: every job still to run, the retrains of phase 2 included (one
        training per policy pick, unless the ground truth already holds it)."""
        eta = Estimator(self._costs([job for items in plan.values() for _, job in items], retry_failed))
        space = spec.space
        reused = spec.train_seed in spec.gt_seeds
        if not reused:
            example = train_job(spec, policies.random_arch(space, 0), spec.train_seed)
            eta.add({f"retrain:{p}:{s}": job_cost(example.kind, example.params)
                     for p in spec.policies if p != "random" for s in spec.seeds})
        return eta

    def _picks(self, plan):
        picks = {}
        for (policy, seed), job in plan["search"]:
            rec = self._done(job)
            if rec is not None:
                picks[(policy, seed)] = Arch.parse(rec["result"]["arch"])
        return picks

    def _done(self, job):
        if job.key not in self.storage:
            return None
        rec = self.storage.get(job.key)
        return rec if rec["state"] == "done" else None

    # --- progress ------------------------------------------------------------------------------
    def status(self):
        """Jobs by state, overall and per role, as a DataFrame; each job counts once, under
        the first role that plans it (``shared``: a role's planned jobs counted under an
        earlier role), so ``jobs`` sums to the count ``nas-eval plan`` gives. Jobs marked ``running`` when
        no live driver holds the store (its driver was killed) count as ``interrupted``:
        they rerun, from their last checkpoint, when the study is run again."""
        spec, plan = self._plan()
        alive = self.storage.driver_alive()
        plan["retrain"] = plan_retrains(spec, self._picks(plan))
        rows, seen = [], set()
        for role, items in plan.items():
            # a job planned under two roles (a retraining with the training seed is that
            # architecture's ground-truth run) counts once, under its first role, as
            # `nas-eval plan` counts it; the later role lists it as "shared"
            states, shared = {}, 0
            for _, job in items:
                if job.key in seen:
                    shared += 1
                    continue
                seen.add(job.key)
                state = self.storage.get(job.key)["state"] if job.key in self.storage else "pending"
                if state == "running" and not alive:
                    state = "interrupted"
                states[state] = states.get(state, 0) + 1
            rows.append({"role": role, "jobs": len(items) - shared, "shared": shared, **states})
        table = pd.DataFrame(rows).fillna(0)
        for col in ("pending", "running", "done", "failed", "stale", "interrupted"):
            if col not in table:
                table[col] = 0
        cols = ["role", "jobs", "done", "running", "interrupted", "pending", "stale", "failed", "shared"]
        return table[cols].astype({c: int for c in cols[1:]})

    def failed(self):
        """The study's failed jobs, one dict each: role, kind, params, params_line (the
        parameters in one line), error (the full traceback) and error_line (its last line)."""
        spec, plan = self._plan()
        plan["retrain"] = plan_retrains(spec, self._picks(plan))
        out, seen = [], set()
        for role, items in plan.items():
            for _, job in items:
                if job.key in seen or job.key not in self.storage:
                    continue
                seen.add(job.key)
                rec = self.storage.get(job.key)
                if rec["state"] == "failed":
                    error = (rec.get("error") or "").rstrip()
                    out.append({"role": role, "kind": job.kind, "key": job.key, "params": job.params,
                                "params_line": params_line(job.params), "error": error,
                                "error_line": error.splitlines()[-1] if error else "(no error recorded)"})
        return out

    # --- results as DataFrames ---------------------------------------------------------------
    def _train_rows(self, items, label_names=()):
        """One row per finished training job; label_names name the parts of each item's
        label to keep as columns (a retrain's policy and search seed)."""
        rows = []
        for label, job in items:
            rec = self._done(job)
            if rec is None:
                continue
            label = label if isinstance(label, tuple) else (label,)
            r = rec["result"]
            rows.append({**dict(zip(label_names, label)), "arch_id": job.params["arch_id"],
                         "arch": job.params["arch"], "seed": job.params["seed"],
                         "valid_ppl": r["valid_ppl"], "test_ppl": r["test_ppl"],
                         "best_epoch": r["best_epoch"], "curve": r["curve"],
                         "wall_time": rec["wall_time"], "key": job.key})
        return pd.DataFrame(rows)

    def ground_truth(self):
        """The ground truth as a :class:`GroundTruth`: ``runs`` (arch_id, arch, seed,
        valid/test ppl, ...) and ``summary`` (per architecture), as ``nas_eval.ground_truth``
        returns it."""
        spec, plan = self._plan()
        return GroundTruth(self._train_rows(plan["ground_truth"]), spec.train, spec.corpus)

    def _search_records(self):
        _, plan = self._plan()
        for (policy, seed), job in plan["search"]:
            rec = self._done(job)
            if rec is not None:
                yield policy, seed, rec

    def searches(self):
        """One row per (policy, seed): the pick, the search's budget (super-net steps,
        training tokens, validation tokens scored, policy-specific costs), its ``info`` and
        its wall time."""
        rows = []
        for policy, seed, rec in self._search_records():
            r = rec["result"]
            budget = {k: v for k, v in r.get("budget", {}).items() if k != "wall_time"}
            rows.append({"policy": policy, "seed": seed, "arch_id": r["arch_id"], "arch": r["arch"],
                         **budget, "info": r.get("info", {}), "wall_time": rec["wall_time"]})
        return pd.DataFrame(rows)

    def traces(self):
        """Every search's trace (one row per epoch or round), with policy and seed columns."""
        frames = [pd.DataFrame(rec["result"]["trace"]).assign(policy=policy, seed=seed)
                  for policy, seed, rec in self._search_records() if rec["result"].get("trace")]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def beliefs(self):
        """Every search's beliefs (policy, seed, epoch, arch_id, belief): the policy's own
        preference for every architecture over its search, higher = preferred."""
        frames = [pd.DataFrame(rec["result"]["beliefs"]).assign(policy=policy, seed=seed)
                  for policy, seed, rec in self._search_records() if rec["result"].get("beliefs")]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def retrains(self):
        """Final training of each policy's pick and of the random architecture of each seed,
        with the same recipe and training seed: policy ('random' is the baseline r_s), seed,
        arch_id, arch, valid_ppl, test_ppl, curve."""
        spec, plan = self._plan()
        picks = self._train_rows(plan_retrains(spec, self._picks(plan)), ("policy", "search_seed"))
        random = self._train_rows([(("random", s), job) for s, job in plan["random"]],
                                  ("policy", "search_seed"))
        table = pd.concat([picks, random], ignore_index=True)
        if table.empty:
            return table
        return table.rename(columns={"seed": "train_seed", "search_seed": "seed"})

    def ws(self, role="ws"):
        """WS perplexities (tidy): sharing, seed, epoch, arch_id, arch, ws_ppl."""
        _, plan = self._plan()
        rows = []
        for label, job in plan[role]:
            rec = self._done(job)
            if rec is not None:
                for row in rec["result"]["rows"]:
                    rows.append({"sharing": job.params["sharing"], **row})
        return pd.DataFrame(rows)

    def sharing_ground_truth(self):
        """The amount-of-sharing subspace's ground truth (a :class:`GroundTruth`)."""
        spec, plan = self._plan()
        return GroundTruth(self._train_rows(plan["sharing_gt"]), spec.train, spec.corpus)

    def sharing_ws(self):
        return self.ws("sharing_ws")

    def events(self):
        return self.storage.events()

    def close(self):
        self.storage.close()
