"""nas_eval: evaluate the search phase of neural architecture search.

Public names are imported lazily (PEP 562) so that `import nas_eval` stays cheap and
the analysis layer (space, corpora, metrics, summaries, report, study) works without
touching the C core; the engine (``nas_eval.engine``: models, the training loop, policies'
networks) loads it on first use. See docs/design.md §13 for the layers.
"""
from importlib import import_module

from . import _source_tree

# A source checkout without its built core, shadowing an installed copy, fails here, at once
# (docs/design.md §13.1); without an install elsewhere the analysis layer still works.
_source_tree.check()

__version__ = "0.2.0"

# public name -> submodule that defines it
_EXPORTS = {
    "SearchSpace": "space",
    "Arch": "space",
    "OPS": "space",
    "TrainConfig": "config",
    "StudySpec": "spec",
    "GroundTruth": "summaries",
    "Study": "study",
    "CellLM": "engine",
    "SuperNet": "engine",
    "Trainer": "engine",
    "train": "engine",
    "TrainResult": "engine",
    "ground_truth": "engine",
    "ws_ranking": "engine",
    "set_num_threads": "engine",
    "get_num_threads": "engine",
    "build_info": "engine",
    "plan_study": "costplan",
}
_SUBMODULES = {"datasets", "metrics", "stats", "evidence", "plots", "sharing", "summaries", "policies",
               "report", "results", "render", "serial", "cli", "engine", "rng", "spec", "plan", "presets",
               "costplan"}

__all__ = sorted(set(_EXPORTS) | _SUBMODULES | {"__version__"})


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'nas_eval' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
