"""nas_eval: evaluate the search phase of neural architecture search.

Public names are imported lazily (PEP 562) so that `import nas_eval` stays cheap and
the pure-Python parts (search space, corpora, metrics) work without touching the C core.
"""
from importlib import import_module

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "SearchSpace": "space",
    "Arch": "space",
    "OPS": "space",
    "CellLM": "model",
    "set_num_threads": "_threads",
    "get_num_threads": "_threads",
    "build_info": "_build_info",
    "TrainConfig": "config",
    "train": "training",
    "TrainResult": "training",
    "SuperNet": "supernet",
    "ground_truth": "experiments",
    "ws_ranking": "experiments",
    "Study": "study",
}
_SUBMODULES = {"datasets", "metrics", "plots", "sharing", "policies", "report", "cli"}

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
