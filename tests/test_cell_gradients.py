"""The C core's gradients against finite differences of the float64 NumPy reference, for
n = 1, 2, 8 and every activation, with dropouts off and on (masks read back from the core)."""
import numpy as np
import pytest

import nas_eval
from nas_eval.space import Arch

import reference

V, D, T, B = 23, 6, 5, 3

ARCHS = {
    "n1-tanh": "0:tanh",
    "n1-relu": "0:relu",
    "n2-sigmoid-identity": "0:sigmoid 1:identity",
    "n2-relu-tanh-shared-pred": "0:relu 0:tanh",
    "n8-all-ops": "0:tanh 1:relu 1:sigmoid 0:identity 3:tanh 2:relu 6:sigmoid 4:identity",
}


def _as64(params):
    return {k: v.astype(np.float64) for k, v in params.items()}


def _segment(seed):
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, V, (T, B)).astype(np.int32)
    targets = rng.integers(0, V, (T, B)).astype(np.int32)
    hidden = rng.uniform(-0.5, 0.5, (B, D)).astype(np.float32)
    return inputs, targets, hidden


def _perturb(model, seed):
    """Larger weights than the ±0.04 initialisation, so every nonlinearity is exercised."""
    rng = np.random.default_rng(seed)
    params = {k: rng.uniform(-0.6, 0.6, v.shape).astype(np.float32) for k, v in model.parameters().items()}
    model.load_parameters(params)
    return params


def _check(grads, params64, fn, rng, per_param=12):
    for name, g in grads.items():
        flat = rng.choice(g.size, size=min(per_param, g.size), replace=False)
        for f in flat:
            idx = np.unravel_index(f, g.shape)
            expected = reference.finite_difference(params64, name, idx, fn)
            assert g[idx] == pytest.approx(expected, rel=2e-3, abs=2e-6), (name, idx)


@pytest.mark.parametrize("arch", list(ARCHS.values()), ids=list(ARCHS))
def test_gradients_without_dropout(arch):
    a = Arch.parse(arch)
    model = nas_eval.CellLM(a, V, D, seed=1)
    params64 = _as64(_perturb(model, 2))
    inputs, targets, hidden = _segment(3)
    loss, grads, h = model.loss_and_grad(inputs, targets, hidden, tar=0.3, ar=0.2)

    def fn(p):
        return reference.forward(p, a.preds, a.ops, inputs, targets, hidden, tar=0.3, ar=0.2)[0]

    ref_loss, ref_h = reference.forward(params64, a.preds, a.ops, inputs, targets, hidden, tar=0.3, ar=0.2)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(h, ref_h, rtol=1e-4, atol=1e-5)
    assert set(grads) == set(params64)
    _check(grads, params64, fn, np.random.default_rng(4))


@pytest.mark.parametrize("arch", [ARCHS["n2-sigmoid-identity"], ARCHS["n8-all-ops"]])
def test_gradients_with_dropout(arch):
    a = Arch.parse(arch)
    model = nas_eval.CellLM(a, V, D, seed=5, dropout=0.3, dropouth=0.25, dropoutx=0.2,
                            dropouti=0.1, dropoute=0.3)
    params64 = _as64(_perturb(model, 6))
    inputs, targets, hidden = _segment(7)
    # a training step that computes gradients with this step's masks but does not update
    loss_sum, reg, _, n, h = model.forward_backward(inputs, targets, hidden, train=True, tar=0.2, ar=0.1)
    masks = {k: v.astype(np.float64) for k, v in model.dropout_masks().items() if v is not None}
    assert set(masks) == {"x", "h", "out", "emb"}
    assert all((m == 0).any() for m in masks.values()), "every mask should drop something"
    grads = model.gradients()

    def fn(p):
        return reference.forward(p, a.preds, a.ops, inputs, targets, hidden, masks, tar=0.2, ar=0.1)[0]

    assert loss_sum / n + reg == pytest.approx(fn(params64), rel=1e-5)
    _check(grads, params64, fn, np.random.default_rng(8))


def test_loose_ends_output_gradients():
    a = Arch.parse("0:tanh 1:relu 1:sigmoid")  # node 1 feeds nodes 2 and 3: loose ends are 2, 3
    model = nas_eval.CellLM(a, V, D, seed=9, output="loose_ends")
    params64 = _as64(_perturb(model, 10))
    inputs, targets, hidden = _segment(11)
    loss, grads, _ = model.loss_and_grad(inputs, targets, hidden)

    def fn(p):
        return reference.forward(p, a.preds, a.ops, inputs, targets, hidden, outputs=[2, 3])[0]

    assert loss == pytest.approx(fn(params64), rel=1e-5)
    _check(grads, params64, fn, np.random.default_rng(12))


@pytest.mark.parametrize("arch", [ARCHS["n1-tanh"], ARCHS["n8-all-ops"]])
def test_evaluate_matches_reference(arch):
    a = Arch.parse(arch)
    model = nas_eval.CellLM(a, V, D, seed=13)
    params64 = _as64(_perturb(model, 14))
    tokens = np.random.default_rng(15).integers(0, V, 407)
    for batch_size, bptt in [(10, 35), (3, 7), (4, 100)]:
        expected = reference.evaluate(params64, a.preds, a.ops, tokens, batch_size, bptt)
        assert model.loss(tokens, batch_size, bptt) == pytest.approx(expected, rel=1e-5)


def test_sgd_step_matches_reference_update():
    """fit_steps = clip the global gradient norm, then p -= lr * (g * scale + wd * p)."""
    a = Arch.parse("0:tanh 1:relu")
    model = nas_eval.CellLM(a, V, D, seed=16)
    before = model.parameters()
    tokens = np.random.default_rng(17).integers(0, V, 200)
    data = nas_eval.engine.batchify(tokens, 4)
    _, grads, _ = model.loss_and_grad(data[:10], data[1:11])
    norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    lr, clip, wd = 2.0, 0.05, 1e-3
    assert norm > clip  # the clip is active in this check
    model.fit_steps(tokens, 1, batch_size=4, bptt=10, lr=lr, clip=clip, weight_decay=wd)
    scale = clip / (norm + 1e-6)
    after = model.parameters()
    for name in before:
        expected = before[name] - lr * (grads[name] * scale + wd * before[name])
        np.testing.assert_allclose(after[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_wide_cells_split_across_workers_match_the_reference(threads):
    """A d = 128 cell with dropouts split across 1-3 workers (by batch-row work items; the
    column split, from d = 512, is checked in test_isa.py) gives the reference's gradients."""
    a = Arch.parse(ARCHS["n8-all-ops"])
    d = 128
    before = nas_eval.get_num_threads()
    nas_eval.set_num_threads(threads)
    try:
        model = nas_eval.CellLM(a, V, d, seed=21, dropouth=0.3, dropout=0.2)
        rng = np.random.default_rng(22)
        params = {k: rng.uniform(-0.15, 0.15, v.shape).astype(np.float32) for k, v in model.parameters().items()}
        model.load_parameters(params)
        params64 = _as64(params)
        inputs, targets, _ = _segment(23)
        hidden = rng.uniform(-0.5, 0.5, (B, d)).astype(np.float32)
        loss_sum, reg, _, n, h = model.forward_backward(inputs, targets, hidden, train=True, tar=0.1)
        masks = {k: v.astype(np.float64) for k, v in model.dropout_masks().items() if v is not None}
        grads = model.gradients()
    finally:
        nas_eval.set_num_threads(before)

    def fn(p):
        return reference.forward(p, a.preds, a.ops, inputs, targets, hidden, masks, tar=0.1)[0]

    ref_loss, ref_h = reference.forward(params64, a.preds, a.ops, inputs, targets, hidden, masks, tar=0.1)
    assert loss_sum / n + reg == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(h, ref_h, rtol=1e-4, atol=1e-5)
    _check(grads, params64, fn, np.random.default_rng(24), per_param=4)
