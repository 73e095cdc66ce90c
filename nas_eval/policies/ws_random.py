"""ws-random: a weight-sharing super-net trained with uniform sampling; the pick is the WS
top-1 among uniformly drawn candidates (all of a smaller space) — weight sharing without a
search policy, the paper's WS experiment turned into a policy."""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._validate import Fields
from ..presets import Presets
from ..rng import STREAM_CANDIDATES, Draws
from ..space import SEARCH_SHARINGS as SHARINGS
from ..space import Arch
from . import MAX_BELIEF_SPACE, SearchOutcome, register


@dataclass(frozen=True)
class WSRandomConfig:
    """candidates: architectures scored with the shared weights (all of a smaller space);
    sharing: the super-net's granularity (docs/design.md §5)."""
    candidates: int = 100
    sharing: str = "node"

    def validate(self):
        f = Fields(self, "ws-random option ")
        f.integer("candidates", 1, 100_000)
        f.choice("sharing", SHARINGS)


PRESETS = Presets("ws-random")
PRESETS.add("reference", WSRandomConfig, "100 candidates, node-level sharing (the paper's WS setting)")


def candidates(space, seed, n):
    """``n`` distinct uniformly drawn architectures of ``space`` (all of it when smaller)."""
    if len(space) <= n:
        return list(space)
    ids, draw = set(), 0
    while len(ids) < n:  # one key per draw (docs/design.md §12, stream 34)
        ids.add(space.sample_ids(Draws(seed, STREAM_CANDIDATES, draw)))
        draw += 1
    return [space.arch(i) for i in sorted(ids)]


def search(space, corpus, train_config, seed, config, checkpoint=None):
    """Train a super-net with uniform sampling (``train_config``, the search-time recipe),
    score the candidates on validation with the shared weights, and pick the best.
    With a ``checkpoint``, resumes from its state and saves the super-net's after each epoch."""
    from ..engine import ws_run

    pool = candidates(space, seed, config.candidates)
    resume = checkpoint.load() if checkpoint is not None else None
    if resume is not None:
        checkpoint.note("checkpoint-resumed", f"{checkpoint.path}: resumed")
    on_epoch = (lambda state: checkpoint.maybe_save(lambda: state)) if checkpoint is not None else None
    rows, budget = ws_run(pool, corpus, train_config, seed, [train_config.epochs],
                          sharing=config.sharing, with_budget=True, on_epoch=on_epoch, resume=resume)
    trace = pd.DataFrame(rows)
    best = trace.loc[trace["ws_ppl"].idxmin()]
    # its belief: the shared weights' log-likelihood (-log WS ppl; a blown-up state ranks last)
    beliefs = pd.DataFrame({"epoch": trace["epoch"], "arch_id": trace["arch_id"],
                            "belief": -np.log(trace["ws_ppl"].clip(upper=1e300))})
    return SearchOutcome(Arch.parse(best["arch"]), trace[["epoch", "arch_id", "arch", "ws_ppl"]],
                         beliefs=beliefs if len(space) <= MAX_BELIEF_SPACE else pd.DataFrame(),
                         budget=budget)


register("ws-random", search, WSRandomConfig, PRESETS)
