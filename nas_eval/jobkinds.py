"""The job kinds a study runs, registered with :mod:`nas_eval.jobs`: ``train``, ``search``
and ``ws`` (see :mod:`nas_eval.plan`). Each imports the engine (the C core) only when it
runs, in the worker; importing this module needs neither.
"""
import os

from . import datasets, policies
from .config import TrainConfig
from .jobs import register
from .space import Arch, SearchSpace


def _corpus(params):
    return datasets.from_spec(params["corpus"], root=os.environ.get("NAS_EVAL_DATA"))


@register("train")
def run_train(params):
    from .engine import ground_truth_run

    arch = Arch.parse(params["arch"])
    config = TrainConfig.from_dict(params["config"])
    record = ground_truth_run(arch, _corpus(params), config, params["seed"])
    record["arch_id"] = params["arch_id"]
    return record


@register("search")
def run_search(params):
    space = SearchSpace(params["n_nodes"])
    config = TrainConfig.from_dict(params["config"])
    corpus = _corpus(params) if params["policy"] != "random" else None
    result = policies.search(params["policy"], space, corpus, config, params["seed"], **params["options"])
    return result.to_dict(space)


@register("ws")
def run_ws(params):
    from .engine import ws_run

    archs = [Arch.parse(a) for a in params["archs"]]
    config = TrainConfig.from_dict(params["config"])
    rows = ws_run(archs, _corpus(params), config, params["seed"], params["eval_epochs"],
                  sharing=params["sharing"])
    return {"rows": rows}
