"""Bad input to the model API raises a clear ValueError; nothing crashes the interpreter."""
import numpy as np
import pytest

import nas_eval
from nas_eval.engine.model import arch_table
from nas_eval.engine.native import core

V, D = 20, 4


@pytest.fixture()
def model():
    return nas_eval.CellLM("0:tanh 1:relu", V, D, seed=0)


def test_constructor_errors():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        nas_eval.CellLM("0:tanh", V, 0)
    with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
        nas_eval.CellLM("0:tanh", -3, D)
    with pytest.raises(ValueError, match="unknown dropout"):
        nas_eval.CellLM("0:tanh", V, D, dropout_everything=0.5)
    with pytest.raises(ValueError, match=r"dropouth must be in \[0, 1\)"):
        nas_eval.CellLM("0:tanh", V, D, dropouth=1.0)
    with pytest.raises(ValueError, match="predecessor"):
        nas_eval.CellLM("0:tanh 2:relu", V, D)
    with pytest.raises(ValueError, match="arch must be"):
        nas_eval.CellLM(42, V, D)
    with pytest.raises(ValueError, match="output must be"):
        nas_eval.CellLM("0:tanh", V, D, output="last")


def test_load_parameters_checks_names_shapes_dtypes_values(model):
    good = model.parameters()
    with pytest.raises(ValueError, match="missing \\['W2'\\]"):
        model.load_parameters({k: v for k, v in good.items() if k != "W2"})
    with pytest.raises(ValueError, match="unexpected \\['W3'\\]"):
        model.load_parameters({**good, "W3": good["W2"]})
    with pytest.raises(ValueError, match="W1 has shape"):
        model.load_parameters({**good, "W1": np.zeros((D, D), np.float32)})
    with pytest.raises(ValueError, match="dtype float64"):
        model.load_parameters({**good, "W0": good["W0"].astype(np.float64)})
    with pytest.raises(ValueError, match="non-finite"):
        bad = good["embedding"].copy()
        bad[0, 0] = np.nan
        model.load_parameters({**good, "embedding": bad})
    np.testing.assert_array_equal(model.parameters()["embedding"], good["embedding"])  # untouched


def test_token_and_shape_errors(model):
    x = np.zeros((5, 2), np.int32)
    with pytest.raises(ValueError, match="token id 20 outside the vocabulary"):
        model.loss_and_grad(x + 20, x)
    with pytest.raises(ValueError, match="token id -1"):
        model.loss(np.full(100, -1))
    with pytest.raises(ValueError, match="must be \\(T, B\\) arrays of one shape"):
        model.loss_and_grad(x, x[:3])
    with pytest.raises(ValueError, match="hidden must have shape \\(2, 4\\)"):
        model.loss_and_grad(x, x, hidden=np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="too short for batch_size"):
        model.loss(np.arange(15) % V, batch_size=10)
    with pytest.raises(ValueError, match="must be 1-D"):
        model.loss(np.zeros((10, 10), np.int64))
    with pytest.raises(ValueError, match="integers"):
        model.loss(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="bptt must be a positive integer"):
        model.loss(np.arange(100) % V, bptt=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit_steps(np.arange(100) % V, 1, batch_size=0)
    with pytest.raises(ValueError, match="lr must be a finite"):
        model.fit_steps(np.arange(1000) % V, 1, batch_size=2, lr=float("inf"))
    with pytest.raises(ValueError, match="steps must be"):
        model.fit_steps(np.arange(1000) % V, -1, batch_size=2)


def test_core_rejects_malformed_architecture_tables():
    x = np.zeros((3, 2), np.int32)
    lm = core.Model(V, D, 2, 2, 0)  # the C core directly, as the engine drives it
    table = arch_table(nas_eval.Arch.parse("0:tanh 1:relu"), [0, 1])
    with pytest.raises(ValueError, match="shape \\(4, n\\)"):
        lm.step(np.zeros((3, 2), np.int32), x, x)
    bad = table.copy()
    bad[0, 1] = 5  # node 2 reading node 5
    with pytest.raises(ValueError, match="predecessor is not an earlier node"):
        lm.step(bad, x, x)
    bad = table.copy()
    bad[1, 0] = 9
    with pytest.raises(ValueError, match="operation index"):
        lm.step(bad, x, x)
    bad = table.copy()
    bad[3, :] = 0
    with pytest.raises(ValueError, match="no node feeds the output"):
        lm.step(bad, x, x)
    with pytest.raises(ValueError, match="input-node matrix"):
        lm.step(table, x, x, w0=3)
    with pytest.raises(ValueError, match=r"dropout_h must be a finite number in \[0, 1\)"):
        core.Model(V, D, 2, 2, 0, dropout_h=1.5)


def test_set_num_threads_validation():
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        nas_eval.set_num_threads(0)
    before = nas_eval.get_num_threads()
    nas_eval.set_num_threads(1)
    assert nas_eval.get_num_threads() == 1
    nas_eval.set_num_threads(before)


def test_results_do_not_depend_on_thread_count_beyond_rounding():
    """Same seed, 1 vs 2 threads: the same training up to float rounding (the split of the
    decoder's sums differs), and bitwise equal for a repeated thread count."""
    tokens = nas_eval.datasets.synthetic(vocab_size=V, train_tokens=3000, seed=1).train
    losses = {}
    before = nas_eval.get_num_threads()
    try:
        for threads in (1, 2, 2):
            nas_eval.set_num_threads(threads)
            m = nas_eval.CellLM("0:tanh 1:relu 0:sigmoid", V, 8, seed=3, dropout=0.2, dropouth=0.1)
            losses.setdefault(threads, []).append(m.fit_steps(tokens, 8, batch_size=6, bptt=10, lr=2.0))
    finally:
        nas_eval.set_num_threads(before)
    assert losses[2][0] == losses[2][1]
    assert losses[1][0] == pytest.approx(losses[2][0], rel=1e-5)


# --- one model stack: every model class over the same core model and the same verbs -----------

def _models():
    from nas_eval.engine import MixedLM, SuperNet
    space = nas_eval.SearchSpace(2)
    return [nas_eval.CellLM("0:tanh 1:relu", V, D, seed=0), SuperNet(space, V, D, seed=0),
            MixedLM(space, V, D, seed=0)]


def test_every_model_is_the_one_core_model_with_one_name_per_verb():
    from nas_eval.engine.model import _LMBase
    x = np.arange(12).reshape(3, 4) % V
    for m in _models():
        assert isinstance(m, _LMBase) and isinstance(m._lm, core.Model)
        arch = m.sample(np.random.default_rng(0)) if hasattr(m, "sample") else None
        m.train_step(x, x, lr=0.1, arch=arch)
        assert m.step_count == 1 and set(m.dropout_masks()) == {"x", "h", "out", "emb"}
        loss, grads, h = m.loss_and_grad(x, x, train=True, arch=arch)
        assert np.isfinite(loss) and h.shape == (4, D) and set(m.parameters()) <= set(grads)
        assert m.step_count == 2
        with pytest.warns(DeprecationWarning, match="last_masks is deprecated; use dropout_masks"):
            m.last_masks()


def test_evaluate_means_perplexity_on_every_model():
    from nas_eval.engine import MixedLM, SuperNet
    tokens = np.arange(200) % V
    cell = nas_eval.CellLM("0:tanh 1:relu", V, D, seed=0)
    mixed = MixedLM(2, V, D, seed=0)
    net = SuperNet(nas_eval.SearchSpace(2), V, D, seed=0)
    arch = nas_eval.Arch.parse("0:tanh 1:relu")
    for m, args in ((cell, (tokens,)), (mixed, (tokens,)), (net, ([arch], tokens))):
        with pytest.warns(DeprecationWarning, match=f"{type(m).__name__}.evaluate is deprecated; use perplexity"):
            got = m.evaluate(*args)
        np.testing.assert_array_equal(got, m.perplexity(*args))
        assert np.all(np.asarray(got) > 1.0)  # a perplexity, not nats (log V ~ 3 here)


def test_mixed_loss_and_grads_keeps_its_old_tuple_with_a_warning():
    from nas_eval.engine import MixedLM
    m = MixedLM(2, V, D, seed=3)
    x = np.arange(12).reshape(3, 4) % V
    loss, grads, h = m.loss_and_grad(x, x)
    with pytest.warns(DeprecationWarning, match="loss_and_grads is deprecated; use loss_and_grad"):
        old = m.loss_and_grads(x, x)
    assert old[0] == loss and "alpha" not in old[1]
    np.testing.assert_array_equal(old[2], grads["alpha"])
    np.testing.assert_array_equal(old[3], h)
    assert grads["alpha"].shape == m.alpha.shape and np.abs(grads["alpha"]).max() > 0


@pytest.mark.parametrize("kind", ["cell", "mixed"])
def test_asgd_before_averaging_raises_the_same_on_every_model(kind):
    from nas_eval.engine import MixedLM
    m = nas_eval.CellLM("0:tanh 1:relu", V, D, seed=0) if kind == "cell" else MixedLM(2, V, D, seed=0)
    x = np.arange(12).reshape(3, 4) % V
    before = m.weights()
    with pytest.raises(ValueError, match=r"asgd=True before averaging started: call start_averaging\(\) first"):
        m.train_step(x, x, lr=0.5, asgd=True)
    np.testing.assert_array_equal(m.weights(), before)  # nothing moved
    m.start_averaging()
    m.train_step(x, x, lr=0.5, asgd=True)
    assert m._lm.avg_count == 1 and not np.array_equal(m.averaged_weights(), before)
