"""Weight-sharing super-net: matrix mapping per granularity, equivalence with CellLM."""
import numpy as np
import pytest

import nas_eval
from nas_eval.space import Arch

V, D = 31, 8


@pytest.fixture(scope="module")
def tokens():
    return nas_eval.datasets.synthetic(vocab_size=V, train_tokens=3000, valid_tokens=600,
                                       test_tokens=600, seed=1)


def test_none_sharing_single_arch_matches_celllm(tokens):
    arch = Arch.parse("0:relu 1:sigmoid")
    space = nas_eval.SearchSpace(2)
    net = nas_eval.SuperNet(space, V, D, sharing="none", archs=[arch], seed=3, dropout=0.2, dropouth=0.1)
    model = nas_eval.CellLM(arch, V, D, seed=3, dropout=0.2, dropouth=0.1)
    model.load_parameters(net.extract(arch).parameters())
    a = net.fit_steps(tokens.train, 6, batch_size=4, bptt=9, lr=2.0, clip=0.5, weight_decay=1e-4, tar=1e-3)
    b = model.fit_steps(tokens.train, 6, batch_size=4, bptt=9, lr=2.0, clip=0.5, weight_decay=1e-4, tar=1e-3)
    assert a == b  # same masks (same seed and step counter), same arithmetic: bitwise
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(net.extract(arch).parameters()[name], value)
    ws = net.perplexity([arch], tokens.valid)[0]
    assert ws == pytest.approx(np.exp(model.loss(tokens.valid)), rel=1e-12)


@pytest.mark.parametrize("sharing", ["node", "edge", "edge_op"])
def test_extract_evaluates_like_the_supernet(tokens, sharing):
    space = nas_eval.SearchSpace(3)
    net = nas_eval.SuperNet(space, V, D, sharing=sharing, seed=4)
    net.fit_steps(tokens.train, 10, batch_size=4, bptt=8, lr=1.0)
    archs = space.sample(5, size=4)
    ws = net.perplexity(archs, tokens.valid)
    standalone = [np.exp(net.extract(a).loss(tokens.valid)) for a in archs]
    np.testing.assert_allclose(ws, standalone, rtol=1e-12)


def test_matrix_mapping_per_granularity():
    space = nas_eval.SearchSpace(3)
    a, b = Arch.parse("0:tanh 1:relu 2:sigmoid"), Arch.parse("0:relu 1:tanh 0:sigmoid")
    node = nas_eval.SuperNet(space, V, D, sharing="node")
    assert node.matrices(a) == node.matrices(b) == [0, 1, 2]
    edge = nas_eval.SuperNet(space, V, D, sharing="edge")
    # edges j->i in the order of Arch.to_alpha rows: 1<-0 is 0, 2<-1 is 2, 3<-2 is 5, 3<-0 is 3
    assert edge.matrices(a) == [0, 2, 5] and edge.matrices(b) == [0, 2, 3]
    edge_op = nas_eval.SuperNet(space, V, D, sharing="edge_op")
    assert edge_op.matrices(a) == [0 * 4 + 0, 2 * 4 + 1, 5 * 4 + 2]
    assert edge_op.matrices(b)[:2] == [0 * 4 + 1, 2 * 4 + 0]
    assert len([k for k in edge_op.parameters() if k.startswith("W_")]) == 6 * 4
    none = nas_eval.SuperNet(space, V, D, sharing="none", archs=[a, b])
    assert none.matrices(b) == [3, 4, 5]
    assert {"arch0/W0", "arch1/W0", "arch1/W3"} <= set(none.parameters())


def test_a_step_only_moves_the_matrices_of_its_architecture(tokens):
    space = nas_eval.SearchSpace(3)
    net = nas_eval.SuperNet(space, V, D, sharing="edge_op", seed=6)
    before = net.parameters()
    arch = Arch.parse("0:tanh 0:relu 2:identity")
    net.fit_steps(tokens.train, 1, sampler=lambda step: arch, batch_size=4, bptt=8)
    after = net.parameters()
    used = {net._mat_name(k) for k in net.matrices(arch)}
    for name in before:
        moved = not np.array_equal(before[name], after[name])
        expected = name in used or not name.startswith("W_")
        assert moved == expected, name
    assert net.last_archs == [arch]


def test_sampler_draws_and_uniform_default(tokens):
    space = nas_eval.SearchSpace(2)
    net = nas_eval.SuperNet(space, V, D, seed=7)
    net.fit_steps(tokens.train, 40, batch_size=4, bptt=5)
    assert len(set(net.last_archs)) > 20  # 40 uniform draws from 32 architectures


def test_bad_inputs():
    space = nas_eval.SearchSpace(2)
    with pytest.raises(ValueError, match="sharing must be one of"):
        nas_eval.SuperNet(space, V, D, sharing="layer")
    with pytest.raises(ValueError, match="needs the set of architectures"):
        nas_eval.SuperNet(space, V, D, sharing="none")
    net = nas_eval.SuperNet(space, V, D, sharing="none", archs=[space[0], space[1]])
    with pytest.raises(ValueError, match="not in this super-net's set"):
        net.perplexity([space[2]], np.arange(100) % V)
    with pytest.raises(ValueError, match="not in"):
        nas_eval.SuperNet(space, V, D).matrices(Arch.parse("0:tanh 1:tanh 2:tanh"))
    with pytest.raises(ValueError, match="space must be"):
        nas_eval.SuperNet(3, V, D)
