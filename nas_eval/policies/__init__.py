"""Search policies behind one interface (docs/design.md §6):
``search(name, space, corpus, train_config, seed, **options) -> SearchResult``.

Each policy lives in its own module (``random``, ``ws_random``, ``enas``, ``darts``, ``nao``)
and registers a ``search`` function, a frozen dataclass config with the reference values as
defaults, and named presets. Policy modules import the engine (the C core) only inside
``search``, so a study can validate ``policy_options`` without the extension.

Options are a preset name and field overrides, e.g. ``{"preset": "cpu", "epochs": 5}``;
unknown fields and out-of-range values raise ``ValueError`` naming the field.

>>> import nas_eval
>>> space = nas_eval.SearchSpace(2)
>>> result = nas_eval.policies.search("random", space, None, None, seed=3)
>>> result.arch == random_arch(space, 3)
True
"""
import dataclasses
import time
from dataclasses import dataclass, field
from importlib import import_module
from typing import Callable, Optional

import numpy as np
import pandas as pd

from ..checkpoint import takes_checkpoint
from ..presets import Presets
from ..rng import STREAM_RANDOM_BASELINE, Draws
from ..space import Arch, SearchSpace

# built-in policies and the modules that register them (imported on first use)
_BUILTIN = {"random": "random", "ws-random": "ws_random", "enas": "enas", "darts": "darts",
            "nao": "nao"}

# beliefs (the policy's preference for every architecture) are recorded up to this size
MAX_BELIEF_SPACE = 10_000


@dataclass
class SearchOutcome:
    """What a policy's ``search`` returns.

    ``trace``: one row per epoch/round (policy-specific columns, ``epoch`` first);
    ``beliefs``: long table (epoch, arch_id, belief) of the policy's own preference for every
    architecture of an enumerable space, higher = preferred; ``budget``: work done
    (supernet_steps, train_tokens, valid_tokens, ...); ``info``: JSON-able extras.
    """
    arch: Arch
    trace: pd.DataFrame = field(default_factory=pd.DataFrame)
    beliefs: pd.DataFrame = field(default_factory=pd.DataFrame)
    budget: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


@dataclass
class SearchResult:
    """A policy's pick for one seed and what its search did on the way."""
    policy: str
    seed: int
    arch: Arch
    trace: pd.DataFrame = field(default_factory=pd.DataFrame)
    beliefs: pd.DataFrame = field(default_factory=pd.DataFrame)
    budget: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    wall_time: float = 0.0

    def to_dict(self, space):
        return {"policy": self.policy, "seed": self.seed, "arch": str(self.arch),
                "arch_id": space.parent.index(self.arch), "wall_time": self.wall_time,
                "trace": self.trace.to_dict(orient="list"),
                "beliefs": self.beliefs.to_dict(orient="list"), "budget": dict(self.budget),
                "info": dict(self.info), "options": dict(self.options)}


@dataclass(frozen=True)
class Policy:
    name: str
    search: Callable
    config: Optional[type] = None     # a frozen dataclass of the policy's hyper-parameters
    presets: Optional[Presets] = None

    def make_config(self, options):
        """The policy's config from ``{"preset": name, field: value, ...}``."""
        options = dict(options or {})
        if self.config is None:
            return options
        preset = options.pop("preset", None)
        base = self.presets.get(preset) if preset is not None else self.config()
        known = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown {self.name} option(s) {unknown}; known: {sorted(known)}")
        config = dataclasses.replace(base, **options) if options else base
        if hasattr(config, "validate"):
            config.validate()
        return config


_POLICIES = {}


def register(name, search=None, config=None, presets=None):
    """Add a policy. ``register(name, search=fn, config=Cls, presets=Presets)``, or as a
    decorator ``@register(name)`` over ``fn(space, corpus, train_config, seed, **options)``.
    ``fn`` returns a :class:`SearchOutcome`, an ``Arch`` or ``(Arch, trace DataFrame)``."""
    def add(fn):
        if name in _POLICIES and _POLICIES[name].search is not fn:
            raise ValueError(f"policy {name!r} is already registered")
        _POLICIES[name] = Policy(name, fn, config, presets)
        return fn
    return add(search) if search is not None else add


def _get(name):
    if not isinstance(name, str):
        raise ValueError(f"a policy is named by a string, got {name!r}")
    if name not in _POLICIES and name in _BUILTIN:
        import_module(f".{_BUILTIN[name]}", __name__)
    if name not in _POLICIES:
        raise ValueError(f"unknown policy {name!r}; available: {', '.join(available())}")
    return _POLICIES[name]


def available():
    return sorted(set(_POLICIES) | set(_builtin_present()))


def _builtin_present():
    """Built-in policies whose module exists in this installation."""
    from importlib.util import find_spec

    return [n for n, m in _BUILTIN.items() if find_spec(f"{__name__}.{m}") is not None]


def check(name):
    _get(name)
    return name


def check_options(name, options):
    """Validate ``options`` for policy ``name``; returns the config they make."""
    return _get(name).make_config(options)


def check_feasible(name, options, train_config=None, space=None, sizes=None):
    """Validate ``options`` for policy ``name`` and check that, with the search recipe
    ``train_config`` and ``space``, the policy runs its own algorithm (ENAS: a controller that
    learns; NAO: at least ``min_controller_rounds`` controller rounds) and, given ``sizes``
    (tokens per split under ``train_config``), that the data can feed it (ENAS's reward
    windows, DARTS's validation batches); raises ValueError naming the policy, the option, the
    value and the fix. Returns the config. A study calls this for every policy before any job
    runs (nas_eval.plan.check_feasible)."""
    config = check_options(name, options)
    check = getattr(config, "check_feasible", None)
    if check is not None:
        check(train_config, space, sizes=sizes)
    return config


def describe(name, options=None, recipe=None):
    """One line naming policy ``name``'s preset and each deviation of ``options`` from the
    paper's behaviour (docs/fidelity.md); the report's policy table prints it."""
    from .fidelity import describe_config

    options = dict(options or {})
    config = check_options(name, options) if name != "random" else None
    return describe_config(name, config, options.get("preset"), recipe)


def presets(name):
    """The :class:`Presets` of a policy (None for a policy without a config)."""
    return _get(name).presets


def resume_from(checkpoint, search):
    """Restore ``search`` (an object with ``state()`` / ``restore()``) from ``checkpoint`` when
    it holds a saved state; return the function to call after each epoch or round, which
    saves ``search.state()`` there (a no-op without a checkpoint)."""
    if checkpoint is None:
        return lambda: None
    state = checkpoint.load()
    if state is not None:
        search.restore(state)
        checkpoint.note("checkpoint-resumed", f"{checkpoint.path}: resumed")
    return lambda: checkpoint.maybe_save(search.state)


def run_epochs(search, checkpoint=None):
    """Run ``search`` (an object with ``epoch``, ``epochs``, ``run_epoch()``, ``finish()`` and
    ``state()`` / ``restore()``) to its last epoch, resumed from ``checkpoint`` when that holds
    a saved state and saved there after every epoch; return ``search.finish()``."""
    save = resume_from(checkpoint, search)
    while search.epoch < search.epochs:
        search.run_epoch()
        save()
    return search.finish()


def _seed(seed):
    """A search seed: a non-negative integer (a float or a string is refused, not truncated)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def search(name, space, corpus, train_config, seed, checkpoint=None, **options):
    """Run policy ``name`` with ``seed`` and return its :class:`SearchResult`.

    ``checkpoint``: a :class:`nas_eval.checkpoint.Checkpoint` (or None). A policy whose
    ``search`` takes ``checkpoint=`` calls ``checkpoint.load()`` at its start (None: start
    afresh; else a state it saved, to continue from) and ``checkpoint.save(state)`` (or
    ``maybe_save(lambda: state)``) after every epoch, its whole state: weights, optimiser,
    RNG counters, its own controller and history; resumed, it must reach the numbers of a
    search never interrupted. Policies without the keyword simply run from the start."""
    policy = _get(name)
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space must be a nas_eval.SearchSpace, got {type(space).__name__}")
    seed = _seed(seed)
    config = policy.make_config(options)
    t0 = time.perf_counter()
    extra = {"checkpoint": checkpoint} if checkpoint is not None and takes_checkpoint(policy.search) else {}
    if policy.config is None:
        out = policy.search(space, corpus, train_config, int(seed), **config, **extra)
    else:
        out = policy.search(space, corpus, train_config, int(seed), config, **extra)
    if not isinstance(out, SearchOutcome):
        arch, trace = out if isinstance(out, tuple) else (out, pd.DataFrame())
        out = SearchOutcome(arch, trace)
    if out.arch not in space:
        raise RuntimeError(f"policy {name!r} returned {out.arch}, which is not in {space!r}")
    wall = time.perf_counter() - t0
    budget = {"supernet_steps": 0, "train_tokens": 0, "valid_tokens": 0, **out.budget,
              "wall_time": wall}
    used = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    info = {**out.info, "algorithm": describe(name, options, train_config)}  # which algorithm ran
    return SearchResult(name, int(seed), out.arch, out.trace, out.beliefs, budget, info, used, wall)


def random_arch(space, seed):
    """The uniformly random architecture of seed s (the baseline r_s of the protocol;
    docs/design.md §12, stream 33)."""
    return space.sample(Draws(_seed(seed), STREAM_RANDOM_BASELINE, 0))
