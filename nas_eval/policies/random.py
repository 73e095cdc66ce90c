"""The random policy: one architecture drawn uniformly per seed, no training (the paper's
baseline r_s, docs/design.md §6-§7)."""
from . import SearchOutcome, random_arch, register


def search(space, corpus, train_config, seed):
    """The random architecture of ``seed`` (:func:`nas_eval.policies.random_arch`)."""
    return SearchOutcome(random_arch(space, seed))


register("random", search)
