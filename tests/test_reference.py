"""The paper's published reference data (nas_eval.reference) is internally consistent."""
import math

from nas_eval import SearchSpace
from nas_eval import reference


def test_the_published_ranking_covers_the_2_node_space_once():
    archs = reference.published_archs()
    assert len(archs) == 32 and len({str(a) for a in archs}) == 32
    space = SearchSpace(2)
    assert sorted(space.index(a) for a in archs) == list(range(32))  # every genotype parses in the space
    rank = reference.published_rank()
    assert sorted(rank) == list(range(1, 33)) and list(rank.index) == list(range(32))
    assert rank[space.index(archs[0])] == 1 and rank[space.index(archs[-1])] == 32


def test_the_source_genotype_order_is_nas_eval_id_order():
    # eval-nas lists the 2-node genotypes in the order nas_eval enumerates SearchSpace(2)
    space = SearchSpace(2)
    for i, genotype in enumerate(reference._GENOTYPES):
        assert space.index(reference._arch(genotype)) == i
    assert sorted(reference._BEST_FIRST) == list(range(32))
    # best at full scale: tanh then sigmoid, both on the cell input; worst: two identities in a chain
    assert str(reference.published_archs()[0]) == "0:tanh 0:sigmoid"
    assert str(reference.published_archs()[-1]) == "0:identity 1:identity"


def test_tables_and_ws_taus_hold_the_papers_numbers():
    for table, n_rows in ((reference.TABLE_2, 4), (reference.TABLE_3, 5)):
        assert len(table["rows"]) == n_rows and "source" in table and "setting" in table
        for (vm, vs), (tm, ts), best_v, best_t in table["rows"].values():
            # test below valid, best no worse than the mean, spreads non-negative
            assert tm < vm and best_v <= vm and best_t <= tm and vs >= 0 and ts >= 0
    assert reference.TABLE_3["rows"]["exhaustive best"][0] == (65.67, 0.21)
    ws = reference.WS_TAU
    assert ws["worst"] < ws["average"] < ws["best"] and ws == {"best": 0.282, "average": -0.004, "worst": -0.116}
    assert all(math.isfinite(v) for v in ws.values())
