"""The job kinds a study runs, registered with :mod:`nas_eval.jobs`: ``train``, ``search``
and ``ws`` (see :mod:`nas_eval.plan`). Each imports the engine (the C core) only when it
runs, in the worker; importing this module needs neither.

Every kind takes ``checkpoint=`` (a :class:`nas_eval.checkpoint.Checkpoint`, or None): it
resumes from the checkpoint's state when there is one and saves its whole state after every
epoch (at most once per ``checkpoint.min_interval`` seconds), so that a job killed at epoch
700 of 1,000 goes on from epoch 700 — with the numbers of a run never interrupted.
"""
import os
import time

from . import datasets, policies
from .config import TrainConfig
from .jobs import register
from .space import Arch, SearchSpace


def _corpus(params):
    return datasets.from_spec(params["corpus"], root=os.environ.get("NAS_EVAL_DATA"))


def _resume(checkpoint):
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        checkpoint.note("checkpoint-resumed", f"{checkpoint.path}: resumed")
    return state


@register("train")
def run_train(params, checkpoint=None):
    from .engine import ground_truth_run

    arch = Arch.parse(params["arch"])
    config = TrainConfig.from_dict(params["config"])
    resume = _resume(checkpoint)
    on_epoch = None
    if checkpoint is not None:
        t_start, before = time.perf_counter(), float(resume["seconds"]) if resume else 0.0

        def on_epoch(run):
            def state():
                s = run.state()
                s["seconds"] = before + time.perf_counter() - t_start
                return s
            checkpoint.maybe_save(state)

    record = ground_truth_run(arch, _corpus(params), config, params["seed"], on_epoch=on_epoch,
                              resume=resume)
    record["arch_id"] = params["arch_id"]
    return record


@register("search")
def run_search(params, checkpoint=None):
    space = SearchSpace(params["n_nodes"])
    config = TrainConfig.from_dict(params["config"])
    corpus = _corpus(params) if params["policy"] != "random" else None
    result = policies.search(params["policy"], space, corpus, config, params["seed"],
                             checkpoint=checkpoint, **params["options"])
    return result.to_dict(space)


@register("ws")
def run_ws(params, checkpoint=None):
    from .engine import ws_run

    archs = [Arch.parse(a) for a in params["archs"]]
    config = TrainConfig.from_dict(params["config"])
    resume = _resume(checkpoint)
    on_epoch = (lambda state: checkpoint.maybe_save(lambda: state)) if checkpoint is not None else None
    rows = ws_run(archs, _corpus(params), config, params["seed"], params["eval_epochs"],
                  sharing=params["sharing"], on_epoch=on_epoch, resume=resume)
    return {"rows": rows}
