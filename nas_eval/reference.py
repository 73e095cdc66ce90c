"""Published reference data of the paper (Yu et al., "Evaluating the search phase of NAS"),
each fact with its source: the full-scale ground-truth ranking of the 2-node space, the
paper's Tables 2 and 3, and the WS Kendall tau values it reports.

The ranking is the authors' own, published with their code: a study's ground truth can be
set beside it to say whether a cheap recipe ranks the space as the expensive one did.

>>> from nas_eval import reference
>>> rank = reference.published_rank()
>>> int(rank.idxmin()), len(rank)  # the best architecture at full scale, by nas_eval id
(2, 32)
>>> str(reference.published_archs()[0])
'0:tanh 0:sigmoid'
"""
import pandas as pd

__all__ = ["RANKING_SOURCE", "RANKING_SETTING", "published_archs", "published_rank", "PAPER_SOURCE",
           "TABLE_2", "TABLE_3", "WS_TAU", "WS_TAU_SOURCE"]

PAPER_SOURCE = "Yu et al., Evaluating the search phase of neural architecture search (ICLR 2020)"

# kcyu2014/eval-nas, visualization/best_configs.py: space_2_genotypes lists the 32
# genotypes of the 2-node space, each node as (activation, index of its input; 0 = the cell
# input), and BEST_RANK_BY_GENOTYPE lists indices into that list, best first. The genotypes
# are kept here so that the ranking is mapped onto nas_eval's ids by genotype, not by
# trusting that the two id orders agree (they do: tests/test_reference.py).
RANKING_SOURCE = "kcyu2014/eval-nas visualization/best_configs.py (BEST_RANK_BY_GENOTYPE, space_2_genotypes)"
# the paper, section 4.3 "Without WS": every architecture trained 10 times, the mean is the
# ground truth; section 3: final training at d = 850 for 1000 epochs
RANKING_SETTING = "PTB, 2-node space, d = 850, 1000 epochs, mean of 10 seeds"
_GENOTYPES = (  # space_2_genotypes, in the source's order
    (("tanh", 0), ("tanh", 0)), (("tanh", 0), ("relu", 0)), (("tanh", 0), ("sigmoid", 0)), (("tanh", 0), ("identity", 0)),
    (("tanh", 0), ("tanh", 1)), (("tanh", 0), ("relu", 1)), (("tanh", 0), ("sigmoid", 1)), (("tanh", 0), ("identity", 1)),
    (("relu", 0), ("tanh", 0)), (("relu", 0), ("relu", 0)), (("relu", 0), ("sigmoid", 0)), (("relu", 0), ("identity", 0)),
    (("relu", 0), ("tanh", 1)), (("relu", 0), ("relu", 1)), (("relu", 0), ("sigmoid", 1)), (("relu", 0), ("identity", 1)),
    (("sigmoid", 0), ("tanh", 0)), (("sigmoid", 0), ("relu", 0)), (("sigmoid", 0), ("sigmoid", 0)),
    (("sigmoid", 0), ("identity", 0)), (("sigmoid", 0), ("tanh", 1)), (("sigmoid", 0), ("relu", 1)),
    (("sigmoid", 0), ("sigmoid", 1)), (("sigmoid", 0), ("identity", 1)),
    (("identity", 0), ("tanh", 0)), (("identity", 0), ("relu", 0)), (("identity", 0), ("sigmoid", 0)),
    (("identity", 0), ("identity", 0)), (("identity", 0), ("tanh", 1)), (("identity", 0), ("relu", 1)),
    (("identity", 0), ("sigmoid", 1)), (("identity", 0), ("identity", 1)),
)
# BEST_RANK_BY_GENOTYPE: indices into _GENOTYPES, best first
_BEST_FIRST = (2, 16, 12, 15, 6, 20, 26, 30, 23, 19, 8, 25, 1, 13, 11, 5,
               21, 29, 14, 22, 0, 17, 10, 18, 3, 24, 28, 9, 4, 7, 27, 31)


def _arch(genotype):
    from .space import Arch

    return Arch.parse(" ".join(f"{inp}:{op}" for op, inp in genotype))


def published_archs():
    """The 32 architectures of the 2-node space as ``Arch``, best first at full scale."""
    return [_arch(_GENOTYPES[i]) for i in _BEST_FIRST]


def published_rank():
    """The full-scale rank of every architecture (1 = best), indexed by nas_eval's
    ``SearchSpace(2)`` id: lower is better, like a perplexity, so ``kendall_tau(ppl, rank)``
    is positive when a ground truth agrees with the paper's."""
    from .space import SearchSpace

    space = SearchSpace(2)
    ids = [space.index(a) for a in published_archs()]
    return pd.Series(range(1, 33), index=pd.Index(ids, name="arch_id"), name="published_rank").sort_index()


# The paper's Table 2 (8-node space) and Table 3 (2-node space): final validation/test
# perplexity at d = 850 after 1000 epochs, over 10 search seeds: (mean, std) valid, (mean,
# std) test, best valid, best test. "exhaustive best" is the paper's REAL-BEST row.
TABLE_2 = {"setting": "PTB, 8-node space, 10 search seeds, final training d = 850, 1000 epochs",
           "source": PAPER_SOURCE + ", Table 2",
           "rows": {"DARTS": ((63.29, 1.18), (60.70, 1.12), 61.82, 59.38),
                    "NAO": ((63.22, 1.12), (60.79, 1.10), 61.59, 59.21),
                    "ENAS": ((61.91, 0.50), (59.25, 0.47), 61.10, 58.95),
                    "Random": ((62.50, 0.86), (60.01, 0.86), 60.69, 58.13)}}
TABLE_3 = {"setting": "PTB, 2-node space, 10 search seeds, final training d = 850, 1000 epochs",
           "source": PAPER_SOURCE + ", Table 3",
           "rows": {"DARTS": ((71.29, 2.45), (68.74, 2.42), 68.05, 65.55),
                    "NAO": ((68.66, 2.50), (66.03, 2.40), 66.22, 63.59),
                    "ENAS": ((69.99, 0.0), (66.61, 0.0), 69.99, 66.61),
                    "Random": ((69.69, 2.44), (67.21, 2.52), 66.16, 63.27),
                    "exhaustive best": ((65.67, 0.21), (62.95, 0.18), 65.38, 62.63)}}
# Kendall tau between WS rankings (10 super-net seeds) and the ground truth, 2-node space
WS_TAU = {"best": 0.282, "average": -0.004, "worst": -0.116}
WS_TAU_SOURCE = PAPER_SOURCE + ", section 4.3 and Figure 4"
