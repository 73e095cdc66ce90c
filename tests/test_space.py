import json
import math
import pickle

import numpy as np
import pytest
from scipy import stats

from nas_eval.space import OPS, Arch, SearchSpace


@pytest.mark.parametrize("n", range(1, 9))
def test_size_is_n_factorial_times_4_to_the_n(n):
    space = SearchSpace(n)
    assert len(space) == space.size == math.factorial(n) * 4**n


def test_paper_sizes():
    assert len(SearchSpace(2)) == 32
    assert len(SearchSpace(3)) == 384
    assert len(SearchSpace(8)) == 2_642_411_520
    assert SearchSpace(3, ops=("tanh", "relu")).size == 6 * 2**3


@pytest.mark.parametrize("i, genotype", [
    (0, [("tanh", 0), ("tanh", 0)]),
    (2, [("tanh", 0), ("sigmoid", 0)]),
    (4, [("tanh", 0), ("tanh", 1)]),
    (31, [("identity", 0), ("identity", 1)]),
])
def test_id_mapping_matches_authors_framework(i, genotype):
    space = SearchSpace(2)
    arch = Arch.from_genotype(genotype)
    assert space[i] == arch
    assert space.index(arch) == i


def test_id_formula_for_two_nodes():
    space = SearchSpace(2)
    for arch in space:
        op1, op2 = arch.op_indices
        assert space.index(arch) == 8 * op1 + 4 * arch.preds[1] + op2


def test_round_trip_every_id_of_three_nodes():
    space = SearchSpace(3)
    archs = [space[i] for i in range(len(space))]
    assert [space.index(a) for a in archs] == list(range(384))
    assert len(set(archs)) == 384


def test_round_trip_random_ids_of_eight_nodes():
    space = SearchSpace(8)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, len(space), size=200)
    for i in ids:  # numpy integers are accepted
        arch = space[i]
        assert arch.n_nodes == 8
        assert space.index(arch) == i
    assert space.index(space[len(space) - 1]) == len(space) - 1


def test_iteration_is_in_id_order():
    space = SearchSpace(3)
    archs = list(space)
    assert archs == [space[i] for i in range(384)]
    assert np.array_equal(space.ids(), np.arange(384))
    assert space.ids().dtype == np.int64


def test_large_space_refuses_enumeration():
    with pytest.raises(ValueError, match="sample"):
        iter(SearchSpace(8))
    with pytest.raises(ValueError, match="too many"):
        SearchSpace(8).ids()


def test_str_parse_round_trip():
    space = SearchSpace(4)
    for arch in space.sample(0, size=50):
        s = str(arch)
        assert Arch.parse(s) == arch
        assert str(Arch.parse(s)) == s
    assert str(Arch([0, 0], ["tanh", "sigmoid"])) == "0:tanh 0:sigmoid"
    assert repr(Arch.parse("0:tanh 1:relu")) == "Arch('0:tanh 1:relu')"


def test_genotype_and_dict_round_trip():
    arch = Arch.parse("0:relu 1:identity 1:tanh")
    assert arch.genotype == (("relu", 0), ("identity", 1), ("tanh", 1))
    assert Arch.from_genotype(arch.genotype) == arch
    d = json.loads(json.dumps(arch.to_dict()))
    assert d == {"preds": [0, 1, 1], "ops": ["relu", "identity", "tanh"]}
    assert Arch.from_dict(d) == arch


def test_alpha_shape_layout_and_round_trip():
    arch = Arch.parse("0:relu 1:identity")
    alpha = arch.to_alpha()
    assert alpha.shape == (3, 4) and alpha.dtype == np.float32
    # rows: (0->1), (0->2), (1->2); columns: OPS order
    expected = np.zeros((3, 4), np.float32)
    expected[0, OPS.index("relu")] = 1
    expected[2, OPS.index("identity")] = 1
    assert np.array_equal(alpha, expected)
    for a in SearchSpace(3):
        assert Arch.from_alpha(a.to_alpha()) == a
    assert SearchSpace(8).sample(3).to_alpha().shape == (36, 4)


def test_alpha_with_own_op_vocabulary():
    ops = ("identity", "tanh")
    arch = Arch([0], ["tanh"], ops)
    assert arch.op_indices == (1,)
    assert np.array_equal(arch.to_alpha(), [[0, 1]])
    assert Arch.from_alpha(arch.to_alpha(), ops) == arch


@pytest.mark.parametrize("alpha, match", [
    (np.zeros((3, 4)), "node 1: alpha block has 0 ones"),
    (np.ones((1, 4)), "node 1: alpha block has 4 ones"),
    (np.full((1, 4), 0.25), "one-hot"),
    (np.zeros((2, 4)), "not n\\(n\\+1\\)/2"),
    (np.zeros((3, 5)), "shape"),
    (np.zeros(4), "shape"),
])
def test_from_alpha_rejects_non_one_hot(alpha, match):
    with pytest.raises(ValueError, match=match):
        Arch.from_alpha(alpha)


def test_from_alpha_checks_every_block():
    alpha = Arch.parse("0:tanh 1:tanh").to_alpha()
    alpha[1, 0] = 1  # node 2 now has two incoming edges
    with pytest.raises(ValueError, match="node 2: alpha block has 2 ones"):
        Arch.from_alpha(alpha)


def test_arch_is_immutable_hashable_value_object():
    a, b = Arch([0, 1], ["tanh", "relu"]), Arch.parse("0:tanh 1:relu")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Arch.parse("0:tanh 0:relu")
    # equality is about the cell, not the op vocabulary used to index it
    other_vocab = Arch([0, 1], ["tanh", "relu"], ("relu", "tanh"))
    assert a == other_vocab and other_vocab.op_indices == (1, 0)
    with pytest.raises(AttributeError):
        a.preds = (0, 0)
    assert pickle.loads(pickle.dumps(a)) == a
    assert isinstance(a.preds, tuple) and isinstance(a.ops, tuple)


def test_loose_ends():
    assert Arch.parse("0:tanh 1:relu 1:tanh").loose_ends() == (2, 3)
    assert Arch.parse("0:tanh 1:relu 2:tanh").loose_ends() == (3,)
    assert Arch.parse("0:tanh 0:relu 0:tanh").loose_ends() == (1, 2, 3)


@pytest.mark.parametrize("preds, ops, match", [
    ([0, 2], ["tanh", "tanh"], r"node 2: predecessor 2 is not an earlier node \(must be in 0\.\.1\)"),
    ([1], ["tanh"], r"node 1: predecessor 1 is not an earlier node \(must be in 0\.\.0\)"),
    ([0, -1], ["tanh", "tanh"], "node 2: predecessor -1"),
    ([0, 0.0], ["tanh", "tanh"], "node 2: predecessor must be an integer, got 0.0"),
    ([0, True], ["tanh", "tanh"], "node 2: predecessor must be an integer"),
    ([0, "0"], ["tanh", "tanh"], "node 2: predecessor must be an integer"),
    ([0, 1], ["tanh", "gelu"], "node 2: unknown op 'gelu'"),
    ([0], ["tanh", "relu"], "preds has 1 entries but ops has 2"),
    ([], [], "at least one node"),
    ("01", ["tanh", "relu"], "sequences"),
])
def test_arch_validation(preds, ops, match):
    with pytest.raises(ValueError, match=match):
        Arch(preds, ops)


def test_arch_accepts_numpy_integers():
    assert Arch(np.array([0, 1]), ["tanh", "relu"]) == Arch.parse("0:tanh 1:relu")


@pytest.mark.parametrize("s, match", [
    ("", "empty"),
    ("0:tanh  1:relu", "node 2: bad token ''"),
    ("0:tanh 1:relu ", "node 3: bad token ''"),
    (" 0:tanh", "node 1: bad token ''"),
    ("0:tanh\t1:relu", "bad token"),
    ("0-tanh", "node 1: bad token '0-tanh'"),
    ("00:tanh", "bad token '00:tanh'"),
    ("0:tanh 1:relu x", "node 3: bad token 'x'"),
    ("0:tanh 2:relu", "node 2: predecessor 2 is not an earlier node"),
    ("0:gelu", "node 1: unknown op 'gelu'"),
    ("0:TANH", "unknown op 'TANH'"),
])
def test_parse_is_strict(s, match):
    with pytest.raises(ValueError, match=match):
        Arch.parse(s)


def test_parse_rejects_non_strings():
    with pytest.raises(ValueError, match="expected a string"):
        Arch.parse(["0:tanh"])


@pytest.mark.parametrize("genotype, match", [
    ([("tanh", 0), "relu"], "node 2: genotype entry must be an \\(op, pred\\) pair"),
    ([("tanh", 0), (0, "relu")], "node 2"),
    ([("tanh", 0, 1)], "node 1: genotype entry"),
])
def test_from_genotype_validation(genotype, match):
    with pytest.raises(ValueError, match=match):
        Arch.from_genotype(genotype)


@pytest.mark.parametrize("d", [{"preds": [0]}, {"preds": [0], "ops": ["tanh"], "x": 1}, [0]])
def test_arch_from_dict_validation(d):
    with pytest.raises(ValueError, match="'preds' and 'ops'"):
        Arch.from_dict(d)


@pytest.mark.parametrize("nodes, ops, match", [
    (0, OPS, "n_nodes must be >= 1, got 0"),
    (-2, OPS, "n_nodes must be >= 1"),
    (2.0, OPS, "n_nodes must be an integer"),
    (True, OPS, "n_nodes must be an integer"),
    (2, (), "at least one op"),
    (2, ("tanh", "gelu"), "unknown op 'gelu'"),
    (2, ("tanh", "tanh"), "duplicates"),
    (2, "tanh", "not the string"),
    (2, 3, "sequence of op names"),
])
def test_space_validation(nodes, ops, match):
    with pytest.raises(ValueError, match=match):
        SearchSpace(nodes, ops)


def test_space_with_op_subset_uses_its_own_radix():
    space = SearchSpace(2, ops=("relu", "tanh"))
    assert len(space) == 2 * 2**2
    # digit of node i = 2*p_i + op_i, radix 2*i: id = 4*op_1 + 2*p_2 + op_2
    assert space[0] == Arch.parse("0:relu 0:relu")
    assert space[4 + 2 + 1] == Arch.parse("0:tanh 1:tanh")
    assert space.index(Arch.parse("0:tanh 1:tanh")) == 7
    assert Arch.parse("0:sigmoid 0:relu") not in space
    with pytest.raises(ValueError, match="node 1: op 'sigmoid' is not in this space's ops"):
        space.index(Arch.parse("0:sigmoid 0:relu"))


def test_out_of_range_ids():
    space = SearchSpace(2)
    with pytest.raises(IndexError, match="architecture id 32 out of range .*0\\.\\.31"):
        space[32]
    with pytest.raises(IndexError, match="-1 out of range"):
        space[-1]
    with pytest.raises(ValueError, match="architecture id 32 out of range"):
        space.arch(32)
    with pytest.raises(ValueError, match="architecture id must be an integer"):
        space["3"]
    assert space[np.int64(31)] == space.arch(np.uint8(31))


def test_index_and_contains():
    space = SearchSpace(3)
    arch = Arch.parse("0:relu 1:tanh 2:identity")
    assert arch in space and "0:relu 1:tanh 2:identity" in space
    assert space.index("0:relu 1:tanh 2:identity") == space.index(arch)
    assert Arch.parse("0:relu") not in space
    assert 5 not in space
    with pytest.raises(ValueError, match="has 1 nodes, this space has 3"):
        space.index(Arch.parse("0:relu"))
    with pytest.raises(ValueError, match="expected an Arch"):
        space.index(5)


def test_sample_is_uniform_over_the_32_arch_space():
    space = SearchSpace(2)
    ids = space.sample_ids(12345, size=32000)
    counts = np.bincount(ids, minlength=32)
    assert counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3


def test_sample_is_deterministic_and_matches_sample_ids():
    space = SearchSpace(8)
    assert space.sample(7, size=20) == space.sample(7, size=20)
    assert space.sample(7, size=20) != space.sample(8, size=20)
    assert [space.index(a) for a in space.sample(7, size=20)] == space.sample_ids(7, size=20)
    one = space.sample(np.random.default_rng(3))
    assert isinstance(one, Arch) and one == space.sample(3)
    assert isinstance(space.sample_ids(3), int)
    assert space.sample(0, size=0) == []
    with pytest.raises(ValueError, match="size must be >= 0"):
        space.sample(0, size=-1)


def test_sample_advances_a_shared_generator():
    rng = np.random.default_rng(0)
    space = SearchSpace(3)
    first, second = space.sample(rng, size=50), space.sample(rng, size=50)
    assert first != second


def test_fix_restricts_space():
    space = SearchSpace(3)
    sub = space.fix({1: ("tanh", 0), 2: ("relu", 1)})
    assert len(sub) == 12
    archs = list(sub)
    assert all(a.genotype[:2] == (("tanh", 0), ("relu", 1)) for a in archs)
    parent_ids = [space.index(a) for a in archs]
    assert parent_ids == sorted(parent_ids) == list(range(parent_ids[0], parent_ids[0] + 12))
    assert [sub.index(a) for a in archs] == list(range(12))
    assert sub.parent == space and sub.fixed == {1: ("tanh", 0), 2: ("relu", 1)}
    assert archs == space.block(parent_ids[0] // 12)
    assert Arch.parse("0:relu 1:relu 0:tanh") not in sub
    with pytest.raises(ValueError, match="node 1: .* differs from the fixed"):
        sub.index(Arch.parse("0:relu 1:relu 0:tanh"))


def test_fix_middle_node_keeps_parent_order_and_samples_uniformly():
    space = SearchSpace(3)
    sub = space.fix({2: ("identity", 0)})
    assert len(sub) == 4 * 12
    parent_ids = [space.index(a) for a in sub]
    assert parent_ids == sorted(parent_ids)
    assert all(a.genotype[1] == ("identity", 0) for a in sub)
    counts = np.bincount(sub.sample_ids(0, size=24000), minlength=len(sub))
    assert len(counts) == 48 and stats.chisquare(counts).pvalue > 1e-3
    assert all(a in sub for a in sub.sample(1, size=100))


def test_fix_composes_and_rejects_conflicts():
    space = SearchSpace(3)
    sub = space.fix({1: ("tanh", 0)}).fix({3: ("relu", 2)})
    assert sub == space.fix({1: ("tanh", 0), 3: ("relu", 2)})
    assert len(sub) == 8
    assert space.fix({1: ("tanh", 0)}).fix({1: ("tanh", 0)}) == space.fix({1: ("tanh", 0)})
    with pytest.raises(ValueError, match="node 1 is already fixed to \\('tanh', 0\\)"):
        sub.fix({1: ("relu", 0)})
    assert len(space.fix({1: ("tanh", 0), 2: ("tanh", 0), 3: ("tanh", 0)})) == 1


@pytest.mark.parametrize("fixed, match", [
    ({0: ("tanh", 0)}, "fixed node 0 is not a node of this space \\(must be in 1..3\\)"),
    ({4: ("tanh", 0)}, "fixed node 4"),
    ({"1": ("tanh", 0)}, "fixed node must be an integer"),
    ({2: ("tanh", 2)}, "node 2: predecessor 2 is not an earlier node"),
    ({2: ("gelu", 0)}, "node 2: unknown op 'gelu'"),
    ({2: (0, "tanh")}, "node 2: unknown op 0"),
    ({2: "tanh"}, "node 2: fixed value must be an \\(op, pred\\) pair"),
    ({2: ("tanh",)}, "node 2: fixed value"),
])
def test_fix_validation(fixed, match):
    with pytest.raises(ValueError, match=match):
        SearchSpace(3).fix(fixed)


def test_fix_rejects_ops_outside_the_space():
    with pytest.raises(ValueError, match="node 1: unknown op 'relu'"):
        SearchSpace(2, ops=("tanh",)).fix({1: ("relu", 0)})


def test_blocks_of_three_node_space():
    space = SearchSpace(3)
    blocks = [space.block(b) for b in range(384 // 12)]
    assert all(len(b) == 12 for b in blocks)
    assert [a for b in blocks for a in b] == list(space)
    first = blocks[0]
    assert {a.genotype[:2] for a in first} == {(("tanh", 0), ("tanh", 0))}
    assert len({a.genotype[2] for a in first}) == 12
    with pytest.raises(ValueError, match="block 32 out of range"):
        space.block(32)


def test_space_equality_repr_and_dict():
    assert SearchSpace(3) == SearchSpace(3, list(OPS))
    assert hash(SearchSpace(3)) == hash(SearchSpace(3))
    assert SearchSpace(3) != SearchSpace(2)
    assert SearchSpace(3) != SearchSpace(3, ("relu", "tanh"))
    assert repr(SearchSpace(3)) == "SearchSpace(n_nodes=3)"
    assert repr(SearchSpace(2, ("relu",))) == "SearchSpace(n_nodes=2, ops=('relu',))"
    sub = SearchSpace(3, ("relu", "tanh")).fix({2: ("tanh", 1)})
    assert repr(sub) == "SearchSpace(n_nodes=3, ops=('relu', 'tanh'), fixed={2: ('tanh', 1)})"
    for space in (SearchSpace(8), sub):
        d = json.loads(json.dumps(space.to_dict()))
        assert SearchSpace.from_dict(d) == space
    with pytest.raises(ValueError, match="keys 'n_nodes', 'ops'"):
        SearchSpace.from_dict({"n_nodes": 3})
    with pytest.raises(ValueError, match="fixed node 'a' is not an integer"):
        SearchSpace.from_dict({"nodes": 3, "ops": ["tanh"], "fixed": {"a": ["tanh", 0]}})


def test_space_archs_carry_space_ops():
    space = SearchSpace(2, ops=("sigmoid", "identity"))
    arch = space[0]
    assert arch.op_names == ("sigmoid", "identity")
    assert arch.to_alpha().shape == (3, 2)


def test_package_exports():
    import nas_eval

    assert nas_eval.SearchSpace is SearchSpace and nas_eval.Arch is Arch and nas_eval.OPS == OPS
