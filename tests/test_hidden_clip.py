"""The paper code's hidden-norm clipping inside the cell (issue 19; docs/fidelity.md "WS
super-net"; nas-landmarkreg darts_model.py DARTSCell.forward, handle_hidden_mode 'NORM'):
after every time step each row of h_t whose L2 norm exceeds the threshold is multiplied by
threshold / norm, in training and in evaluation, and the gradient passes through that
constant factor, not through the norm. Checked against the float64 reference
(tests/reference.py) with the factors frozen at the forward's, under the cell's rows split
and its columns split (d >= 512 with 2 threads), 1 and 2 threads, generic and AVX2 kernels,
dropout on and rows both clipped and left alone."""
import numpy as np
import pytest

import nas_eval
from nas_eval.engine import native
from nas_eval.space import Arch

import reference

LEVELS = [lv for lv in ("generic", "avx2") if lv in native.isa_info()["supported"]]
ARCH = "0:tanh 1:relu 1:sigmoid 0:identity"
V, T, B = 23, 5, 10  # B > 8: the columns split's clipping phase has two tickets
DROPOUTS = dict(dropout=0.2, dropouth=0.25, dropoutx=0.2, dropouti=0.1, dropoute=0.1)


@pytest.fixture
def core_settings():
    """The tests switch the kernels' level and the threads; put back what they found."""
    level, threads = native.isa_info()["isa"], nas_eval.get_num_threads()
    yield
    native.set_isa(level)
    nas_eval.set_num_threads(threads)


def _setup(d, seed, output="mean"):
    arch = Arch.parse(ARCH)
    model = nas_eval.CellLM(arch, V, d, seed=seed, output=output, **DROPOUTS)
    g = np.random.default_rng(seed)
    scale = 0.6 if d < 64 else 0.15  # states of norm ~1 at either size
    params = {k: g.uniform(-scale, scale, v.shape).astype(np.float32) for k, v in model.parameters().items()}
    model.load_parameters(params)
    segment = (g.integers(0, V, (T, B)).astype(np.int32), g.integers(0, V, (T, B)).astype(np.int32),
               g.uniform(-0.5, 0.5, (B, d)).astype(np.float32))
    outputs = arch.loose_ends() if output == "loose_ends" else None
    return arch, model, {k: v.astype(np.float64) for k, v in params.items()}, segment, outputs


def _threshold(norms, quantile=0.5):
    """Halfway between two neighbouring row norms near ``quantile``: that share of the rows
    stays, the rest clips, and none sits on the threshold, where float32 and float64 could
    decide differently."""
    v = np.sort(np.concatenate(norms))
    k = int(len(v) * quantile)
    return float(0.5 * (v[k] + v[k + 1]))


def _factors(norms, clip):
    norms = np.array(norms)
    return np.where(norms > clip, clip / norms, 1.0), norms


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("d, output", [(6, "mean"), (6, "loose_ends"), (512, "mean")],
                         ids=["rows-mean", "rows-loose-ends", "columns"])
def test_clipping_forward_and_backward_match_the_reference(core_settings, level, threads, d, output):
    native.set_isa(level)
    nas_eval.set_num_threads(threads)
    arch, model, p64, (inputs, targets, hidden), outputs = _setup(d, 3, output)
    tar = 0.2
    # this step's masks (the counter is put back so that the clipped pass draws them again)
    model.forward_backward(inputs, targets, hidden, train=True, tar=tar)
    masks = {k: v.astype(np.float64) for k, v in model.dropout_masks().items() if v is not None}
    assert set(masks) == {"x", "h", "out", "emb"}
    kw = dict(masks=masks, tar=tar, outputs=outputs)
    free = []
    reference.forward(p64, arch.preds, arch.ops, inputs, targets, hidden, norms=free, hidden_clip=np.inf, **kw)
    clip = _threshold(free)
    seen = []
    ref_loss, ref_h = reference.forward(p64, arch.preds, arch.ops, inputs, targets, hidden, hidden_clip=clip,
                                        norms=seen, **kw)
    factors, norms = _factors(seen, clip)
    assert (factors < 1).any() and (factors == 1).any()  # some rows clipped, some left alone
    assert np.abs(norms / clip - 1).min() > 1e-4
    model._lm.step_count = 0
    model.hidden_clip = clip
    loss_sum, reg, _, n, h = model.forward_backward(inputs, targets, hidden, train=True, tar=tar)
    grads = model.gradients()
    assert loss_sum / n + reg == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(h, ref_h, rtol=1e-4, atol=1e-5)
    assert np.linalg.norm(h, axis=1).max() <= clip * (1 + 1e-5)

    def frozen(p):  # the code's rule: the factors are constants of the backward
        return reference.forward(p, arch.preds, arch.ops, inputs, targets, hidden, hidden_clip=clip,
                                 clip_factors=factors, **kw)[0]

    def through_norm(p):  # what differentiating through the norm would give
        return reference.forward(p, arch.preds, arch.ops, inputs, targets, hidden, hidden_clip=clip, **kw)[0]

    g = np.random.default_rng(4)
    differs = []
    for name in ("W0", "W2", "W4", "embedding"):
        for f in g.choice(grads[name].size, size=3 if d < 64 else 1, replace=False):
            idx = np.unravel_index(f, grads[name].shape)
            expected = reference.finite_difference(p64, name, idx, frozen)
            assert grads[name][idx] == pytest.approx(expected, rel=2e-3, abs=2e-6), (name, idx)
            if d < 64:
                other = reference.finite_difference(p64, name, idx, through_norm)
                differs.append(abs(other - expected) > 1e-2 * abs(expected) + 1e-5)
    if d < 64:
        assert any(differs)  # the rule is visible: the gradient is not the one through the norm


@pytest.mark.parametrize("level", LEVELS)
def test_clipped_training_is_deterministic_and_thread_counts_agree(core_settings, level):
    """Bitwise the same for a given (level, threads); 1 and 2 threads (rows vs columns split at
    d = 512) agree to float32 rounding."""
    native.set_isa(level)
    tokens = np.random.default_rng(4).integers(0, 50, 8 * 13 * 3)

    def train(threads):
        nas_eval.set_num_threads(threads)
        model = nas_eval.CellLM(ARCH, 50, 512, seed=3, **DROPOUTS)
        model.hidden_clip = 1e-3  # below every state's norm: every row clips
        loss = model.fit_steps(tokens, 2, batch_size=8, bptt=12, lr=1.0, clip=0.25)
        return loss, model.weights()

    results = {}
    for threads in (1, 2):
        first, again = train(threads), train(threads)
        assert first[0] == again[0]
        np.testing.assert_array_equal(first[1], again[1])
        results[threads] = first
    assert results[2][0] == pytest.approx(results[1][0], rel=1e-5)
    scale = np.abs(results[1][1]).max()
    np.testing.assert_allclose(results[2][1], results[1][1], rtol=0, atol=2e-5 * scale)


def test_evaluation_clips_too():
    arch, model, p64, _, _ = _setup(6, 7)
    tokens = np.random.default_rng(8).integers(0, V, 240)
    free = []
    reference.forward(p64, arch.preds, arch.ops, tokens[:40].reshape(4, 10), tokens[1:41].reshape(4, 10),
                      hidden_clip=np.inf, norms=free)
    clip = _threshold(free, 0.1)  # most rows clip: the evaluation differs clearly from the unclipped
    model.hidden_clip = clip
    expected = reference.evaluate(p64, arch.preds, arch.ops, tokens, 6, 7, hidden_clip=clip)
    assert model.loss(tokens, 6, 7) == pytest.approx(expected, rel=1e-5)
    # the unclipped evaluation is far outside that tolerance: the test sees the clip
    assert abs(reference.evaluate(p64, arch.preds, arch.ops, tokens, 6, 7) - expected) > 30 * 1e-5 * expected
    model.hidden_clip = 0.0
    assert model.loss(tokens, 6, 7) == pytest.approx(reference.evaluate(p64, arch.preds, arch.ops, tokens, 6, 7),
                                                     rel=1e-5)


def test_off_is_bitwise_the_unclipped_model():
    arch, model, _, (inputs, targets, hidden), _ = _setup(6, 9)
    out = model.forward_backward(inputs, targets, hidden, train=False)
    grads = model.gradients()
    model.hidden_clip = 1e30  # never reached: every factor 1
    again = model.forward_backward(inputs, targets, hidden, train=False)
    assert out[0] == again[0]
    np.testing.assert_array_equal(out[4], again[4])
    for name, g in model.gradients().items():
        np.testing.assert_array_equal(g, grads[name])


def test_bad_values_and_the_mixed_cell_are_refused():
    model = nas_eval.CellLM("0:tanh", 5, 4)
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="hidden_clip"):
            model.hidden_clip = bad
    assert model.hidden_clip == 0.0
    net = nas_eval.SuperNet(nas_eval.SearchSpace(2), 5, 4, seed=0)
    net.hidden_clip = 2.0
    assert net.extract(Arch.parse("0:tanh 1:relu")).hidden_clip == 2.0
    from nas_eval.engine.mixed import MixedLM

    with pytest.raises(ValueError, match="discrete cell"):
        MixedLM(2, 5, 4, seed=0).hidden_clip = 1.0
