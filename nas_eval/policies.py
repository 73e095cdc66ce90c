"""Search policies behind one interface (DESIGN §6):
``search(space, corpus, config, seed, **options) -> SearchResult``.

Shipped here: ``random`` (one uniform draw per seed, no training: the paper's baseline) and
``ws-random`` (a weight-sharing super-net trained with uniform sampling; the pick is the WS
top-1 among sampled candidates). ENAS, DARTS and NAO plug in through ``register``.

>>> import nas_eval
>>> space = nas_eval.SearchSpace(2)
>>> result = nas_eval.policies.search("random", space, None, None, seed=3)
>>> result.arch == space.sample(3)
True
"""
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .space import Arch, SearchSpace

_POLICIES = {}


@dataclass
class SearchResult:
    """A policy's pick for one seed, and what it sampled/scored on the way (``trace``)."""
    policy: str
    seed: int
    arch: Arch
    trace: pd.DataFrame = field(default_factory=pd.DataFrame)
    wall_time: float = 0.0

    def to_dict(self, space):
        return {"policy": self.policy, "seed": self.seed, "arch": str(self.arch),
                "arch_id": space.parent.index(self.arch), "wall_time": self.wall_time,
                "trace": self.trace.to_dict(orient="list")}


def register(name):
    """Decorator adding ``fn(space, corpus, config, seed, **options) -> Arch or
    (Arch, trace DataFrame)`` as the policy ``name``."""
    def deco(fn):
        if name in _POLICIES and _POLICIES[name] is not fn:
            raise ValueError(f"policy {name!r} is already registered")
        _POLICIES[name] = fn
        return fn
    return deco


def available():
    return sorted(_POLICIES)


def check(name):
    if name not in _POLICIES:
        raise ValueError(f"unknown policy {name!r}; available: {', '.join(available())}")
    return name


def search(name, space, corpus, config, seed, **options):
    """Run policy ``name`` with ``seed`` and return its :class:`SearchResult`."""
    fn = _POLICIES[check(name)]
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space must be a nas_eval.SearchSpace, got {type(space).__name__}")
    t0 = time.perf_counter()
    out = fn(space, corpus, config, int(seed), **options)
    arch, trace = out if isinstance(out, tuple) else (out, pd.DataFrame())
    if arch not in space:
        raise RuntimeError(f"policy {name!r} returned {arch}, which is not in {space!r}")
    return SearchResult(name, int(seed), arch, trace, time.perf_counter() - t0)


def random_arch(space, seed):
    """The uniformly random architecture of seed s (the baseline r_s of the protocol)."""
    return space.sample(np.random.default_rng([int(seed), 0xA4C4]))


@register("random")
def _random(space, corpus, config, seed):
    return random_arch(space, seed)


@register("ws-random")
def _ws_random(space, corpus, config, seed, candidates=100, sharing="node"):
    """Train a super-net with uniform sampling (``config``, the search-time recipe), score
    ``candidates`` uniformly drawn distinct architectures (all of a smaller space) on
    validation with the shared weights, and pick the best."""
    from .experiments import ws_run

    rng = np.random.default_rng([seed, 0xC4D5])
    if len(space) <= candidates:
        pool = list(space)
    else:
        ids = set()
        while len(ids) < candidates:
            ids.add(space.sample_ids(rng))
        pool = [space.arch(i) for i in sorted(ids)]
    rows = ws_run(pool, corpus, config, seed, [config.epochs], sharing=sharing)
    trace = pd.DataFrame(rows)
    best = trace.loc[trace["ws_ppl"].idxmin()]
    return Arch.parse(best["arch"]), trace[["arch_id", "arch", "ws_ppl"]]
