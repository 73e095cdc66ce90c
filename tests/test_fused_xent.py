"""The fused decoder + softmax cross-entropy (csrc/fused_xent.h): loss and the three gradients
against a float64 NumPy reference and finite differences, under every instruction-set level
this machine runs, at sizes that end in partial row blocks and vocabulary tiles; bitwise
determinism (twice, and 1 against 2 threads: its tiles do not depend on the thread count);
the model's steps with the fused and the stored-logits decoder agree; bad input is refused.
Both ways of the fused pass B run every check: with its exp tiles kept ('fused-store', what a
training step takes while they fit) and with the logits recomputed ('fused-recompute')."""
import numpy as np
import pytest

import nas_eval
from nas_eval.engine import native

from test_isa import LEVELS, _run, isa_level  # noqa: F401  (isa_level is a fixture)

# (N, d, V): N = 1 .. 70 and past one 96-row block; d odd and even; V not a multiple of the
# vocabulary tile (384 at d <= 48, 192 up to 96, 96 above) nor of the 32-column panel
SHAPES = [(1, 1, 5), (1, 3, 385), (7, 16, 400), (70, 33, 1001), (97, 17, 777), (70, 64, 193),
          (130, 100, 211)]


def _inputs(N, d, V, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    H = rng.normal(0, spread, (N, d)).astype(np.float32)
    E = rng.normal(0, 0.3, (V, d)).astype(np.float32)
    bias = rng.normal(0, 0.5, V).astype(np.float32)
    targets = rng.integers(0, V, N).astype(np.int32)
    return H, E, bias, targets


PASSES = ["fused-store", "fused-recompute"]


def _reference(H, E, bias, targets, scale):
    """float64: summed cross-entropy and the gradients of scale * loss"""
    H, E, bias = (x.astype(np.float64) for x in (H, E, bias))
    logits = H @ E.T + bias
    top = logits.max(axis=1, keepdims=True)
    p = np.exp(logits - top)
    s = p.sum(axis=1, keepdims=True)
    rows = np.arange(len(targets))
    loss = float((top[:, 0] + np.log(s[:, 0]) - logits[rows, targets]).sum())
    g = p / s
    g[rows, targets] -= 1.0
    g *= scale
    return loss, g @ E, g.T @ H, g.sum(axis=0)


def _assert_close(got, ref, rtol, what):
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
    assert err < rtol, f"{what}: max error {err:.2e} of the largest entry"


@pytest.mark.parametrize("method", PASSES)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("N, d, V", SHAPES)
def test_loss_and_gradients_match_float64(isa_level, level, N, d, V, method):
    isa_level(level)
    H, E, bias, targets = _inputs(N, d, V, seed=N * d)
    ref = _reference(H, E, bias, targets, 1.0 / N)
    for threads in (1, 2):
        nas_eval.set_num_threads(threads)
        loss, dH, dE, dbias = native.xent(H, E, bias, targets, scale=1.0 / N, method=method)
        assert loss == pytest.approx(ref[0], rel=2e-6)
        for got, want, name in zip((dH, dE, dbias), ref[1:], ("dH", "dE", "dbias")):
            _assert_close(got, want, 2e-5, f"{level} {threads}t {method} {name}")


@pytest.mark.parametrize("method", PASSES)
def test_large_logits_do_not_overflow(method):
    """The online max: logits up to ~200 in a row, the largest in a late vocabulary tile (the
    stored tiles of the early ones were taken at a running max far below the row's)."""
    N, d, V = 20, 9, 1500
    H, E, bias, targets = _inputs(N, d, V, seed=5, spread=10.0)
    bias[1400:] += 50.0
    ref = _reference(H, E, bias, targets, 1.0)
    loss, dH, dE, dbias = native.xent(H, E, bias, targets, method=method)
    assert np.isfinite(loss) and loss == pytest.approx(ref[0], rel=1e-5)
    for got, want, name in zip((dH, dE, dbias), ref[1:], ("dH", "dE", "dbias")):
        _assert_close(got, want, 1e-4, name)


@pytest.mark.parametrize("method", PASSES)
@pytest.mark.parametrize("level", LEVELS)
def test_gradients_match_finite_differences(isa_level, level, method):
    """Central differences of the core's own float32 loss on a few entries of H, E, bias."""
    isa_level(level)
    N, d, V = 11, 5, 401
    H, E, bias, targets = _inputs(N, d, V, seed=9)
    _, dH, dE, dbias = native.xent(H, E, bias, targets, method=method)
    rng = np.random.default_rng(10)
    args = {"H": H, "E": E, "bias": bias}
    grads = {"H": dH, "E": dE, "bias": dbias}
    # E's rows that are targets carry large gradients; others small ones: pick both kinds
    picks = {"H": [np.unravel_index(i, H.shape) for i in rng.choice(H.size, 4, replace=False)],
             "E": [(targets[0], 1), (targets[3], 4), (7, 2)], "bias": [(targets[1],), (200,)]}
    eps = 1e-2
    for name, idxs in picks.items():
        for idx in idxs:
            plus, minus = (dict(args) for _ in range(2))
            for sign, a in ((1, plus), (-1, minus)):
                a[name] = args[name].copy()
                a[name][idx] += sign * eps
            fd = (native.xent(plus["H"], plus["E"], plus["bias"], targets, grads=0)[0]
                  - native.xent(minus["H"], minus["E"], minus["bias"], targets, grads=0)[0]) / (2 * eps)
            assert grads[name][idx] == pytest.approx(fd, rel=2e-2, abs=2e-4), (name, idx)


@pytest.mark.parametrize("method", PASSES)
@pytest.mark.parametrize("level", LEVELS)
def test_bitwise_deterministic_and_independent_of_threads(isa_level, level, method):
    isa_level(level)
    H, E, bias, targets = _inputs(300, 32, 2000, seed=3)
    runs = []
    for threads in (1, 2, 2, 3):
        nas_eval.set_num_threads(threads)
        runs.append(native.xent(H, E, bias, targets, scale=1 / 300, method=method))
    for run in runs[1:]:
        assert run[0] == runs[0][0]
        for a, b in zip(run[1:], runs[0][1:]):
            np.testing.assert_array_equal(a, b)


def test_a_training_pass_keeps_its_tiles_and_both_passes_agree():
    """'fused' with every gradient is the stored-tiles pass at a size that fits; it shares
    loss and dH bit for bit with the recomputing pass (pass A is the same) and differs in dE
    and dbias by rounding only (exp(l - m) exp(m - lse) against exp(l - lse))."""
    H, E, bias, targets = _inputs(300, 32, 2000, seed=6)
    auto, store, again = (native.xent(H, E, bias, targets, scale=1 / 300, method=m)
                          for m in ("fused", "fused-store", "fused-recompute"))
    for a, b in zip(auto, store):
        np.testing.assert_array_equal(a, b)
    assert store[0] == again[0]
    np.testing.assert_array_equal(store[1], again[1])
    for a, b, name in zip(store[2:], again[2:], ("dE", "dbias")):
        _assert_close(a, b, 1e-5, name)
        assert not np.array_equal(a, b), f"{name}: the two passes should differ in rounding"


def test_forward_only_and_dH_only_give_the_same_numbers():
    H, E, bias, targets = _inputs(70, 33, 1001, seed=4)
    full = native.xent(H, E, bias, targets, scale=0.5)
    loss0, *none = native.xent(H, E, bias, targets, scale=0.5, grads=0)
    loss1, dH, dE, dbias = native.xent(H, E, bias, targets, scale=0.5, grads=1)
    assert none == [None, None, None] and dE is None and dbias is None
    assert loss0 == loss1 == full[0]
    np.testing.assert_array_equal(dH, full[1])


@pytest.mark.parametrize("N, d, V", [(70, 33, 1001), (130, 100, 211)])
def test_fused_and_stored_logits_agree(N, d, V):
    H, E, bias, targets = _inputs(N, d, V, seed=8)
    fused = native.xent(H, E, bias, targets, scale=1 / N)
    stored = native.xent(H, E, bias, targets, scale=1 / N, method="stored")
    assert fused[0] == pytest.approx(stored[0], rel=1e-6)
    for a, b in zip(fused[1:], stored[1:]):
        _assert_close(a, b, 2e-5, "fused vs stored")


@pytest.mark.parametrize("change, match", [
    (dict(targets=np.array([0, 5], np.int32)), "outside 0..V-1"),
    (dict(targets=np.array([0, -1], np.int32)), "outside 0..V-1"),
    (dict(H=np.full((2, 3), np.nan, np.float32)), "H holds a non-finite"),
    (dict(E=np.zeros((5, 4), np.float32)), "shapes must be"),
    (dict(bias=np.zeros((4,), np.float32)), "shapes must be"),
    (dict(H=np.zeros((0, 3), np.float32), targets=np.zeros(0, np.int32)), "non-empty"),
    (dict(method="lazy"), "method must be"),
    (dict(grads=3), "grads must be"),
])
def test_bad_input_is_refused(change, match):
    args = dict(H=np.zeros((2, 3), np.float32), E=np.zeros((5, 3), np.float32),
                bias=np.zeros(5, np.float32), targets=np.array([0, 4], np.int32))
    args.update(change)
    with pytest.raises(ValueError, match=match):
        native.xent(**args)


_STEPS = ("import hashlib, numpy as np, nas_eval\n"
          "nas_eval.set_num_threads(2)\n"
          "for d in (16, 40):\n"
          "    m = nas_eval.CellLM('0:tanh 1:relu 1:sigmoid', 500, d, seed=1, dropout=0.2, dropoute=0.1)\n"
          "    tok = np.random.default_rng(2).integers(0, 500, 20 * 13 * 4)\n"
          "    loss = m.fit_steps(tok, 3, batch_size=20, bptt=12, lr=1.0, clip=0.25)\n"
          "    ev = m.loss(tok[:400])\n"
          "    p = np.concatenate([v.ravel() for v in m.parameters().values()])\n"
          "    print(d, repr(loss), repr(ev), ' '.join(repr(float(x)) for x in p[::997]))\n")


def test_model_steps_agree_between_the_decoder_passes():
    """NAS_EVAL_DECODER forces either pass for training and evaluation: the same model trained
    and scored both ways agrees to float32 rounding."""
    out = {mode: _run(_STEPS, NAS_EVAL_DECODER=mode) for mode in ("fused", "stored")}
    for mode, res in out.items():
        assert res.returncode == 0, (mode, res.stderr[-2000:])
    lines = {mode: [line.split() for line in res.stdout.splitlines()] for mode, res in out.items()}
    assert len(lines["fused"]) == 2
    for a, b in zip(lines["fused"], lines["stored"]):
        assert a[0] == b[0]
        values_a, values_b = np.array(a[1:], float), np.array(b[1:], float)
        np.testing.assert_allclose(values_a, values_b, rtol=1e-4, atol=1e-5 * np.abs(values_b).max())


def test_unknown_decoder_value_fails_the_import():
    res = _run("import nas_eval; nas_eval.CellLM('0:tanh', 5, 4)", NAS_EVAL_DECODER="lazy")
    assert res.returncode != 0
    assert "NAS_EVAL_DECODER must be fused, stored or empty" in res.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("d", [20, 72, 136])
def test_evaluation_matches_the_training_pass(d):
    """loss() (a forward-only pass: fused at every d) against loss_and_grad (the training
    pass: fused below LM_STORED_TRAIN_MIN_D = 128, stored logits from there) on one window."""
    model = nas_eval.CellLM("0:tanh 1:relu", 300, d, seed=5)
    tokens = np.random.default_rng(6).integers(0, 300, 7 * 12).astype(np.int32)
    data = tokens.reshape(7, 12).T  # batchify: column b is tokens[12 b: 12 (b + 1)]
    loss, _, _ = model.loss_and_grad(data[:-1], data[1:])
    assert model.loss(tokens, batch_size=7, bptt=11) == pytest.approx(loss, rel=1e-6)
