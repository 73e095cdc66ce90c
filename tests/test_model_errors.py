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
    with pytest.raises(ValueError, match="dropout h must be in"):
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
