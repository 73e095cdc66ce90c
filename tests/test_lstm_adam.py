"""The shared double-precision LSTM step and Adam update of the C core (csrc/lstm.c, csrc/adam.c),
which the ENAS, DARTS and NAO controllers build on: the LSTM against a NumPy forward and central
finite differences over a 3-step sequence, Adam against torch.optim.Adam's update written out."""
import numpy as np
import pytest

from nas_eval.engine.native import core

B, I, H, T = 3, 4, 5, 3


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_step_numpy(x, h, c, W, b):
    z = np.concatenate([x, h], axis=1) @ W + b
    i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
    c_new = f * c + i * g
    return np.concatenate([i, f, g, o], axis=1), c_new, o * np.tanh(c_new)


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    p = {
        "W": rng.uniform(-0.5, 0.5, (I + H, 4 * H)),
        "b": rng.uniform(-0.5, 0.5, 4 * H),
        "xs": rng.normal(size=(T, B, I)),
        "h0": rng.normal(size=(B, H)) * 0.5,
        "c0": rng.normal(size=(B, H)) * 0.5,
    }
    # the loss weights every h_t and the last c: it reaches c both through h and directly
    weights = {"Rh": rng.normal(size=(T, B, H)), "Rc": rng.normal(size=(B, H))}
    return p, weights


def sequence_loss(p, weights):
    h, c = p["h0"], p["c0"]
    loss = 0.0
    for t in range(T):
        _, c, h = core.lstm_forward(p["xs"][t].copy(), h, c, p["W"], p["b"])
        loss += np.sum(weights["Rh"][t] * h)
    return loss + np.sum(weights["Rc"] * c)


def sequence_grads(p, weights):
    """Forward through T steps, then backward through time with lstm_backward."""
    hs, cs, gates = [p["h0"]], [p["c0"]], []
    for t in range(T):
        g, c, h = core.lstm_forward(p["xs"][t].copy(), hs[-1], cs[-1], p["W"], p["b"])
        gates.append(g), cs.append(c), hs.append(h)
    grads = {"W": np.zeros_like(p["W"]), "b": np.zeros_like(p["b"]), "xs": np.zeros_like(p["xs"])}
    dh_next, dc_next = np.zeros((B, H)), weights["Rc"].copy()
    for t in reversed(range(T)):
        dh = weights["Rh"][t] + dh_next
        dW, db, dx, dh_next, dc_next = core.lstm_backward(p["xs"][t].copy(), hs[t], cs[t], p["W"], gates[t],
                                                          cs[t + 1], dh, dc_next)
        grads["W"] += dW
        grads["b"] += db
        grads["xs"][t] = dx
    grads["h0"], grads["c0"] = dh_next, dc_next
    return grads


def test_lstm_forward_matches_numpy():
    p, _ = make_problem()
    g, c, h = core.lstm_forward(p["xs"][0].copy(), p["h0"], p["c0"], p["W"], p["b"])
    g_ref, c_ref, h_ref = lstm_step_numpy(p["xs"][0], p["h0"], p["c0"], p["W"], p["b"])
    np.testing.assert_allclose(g, g_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(c, c_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(h, h_ref, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", ["W", "b", "xs", "h0", "c0"])
def test_lstm_backward_matches_finite_differences(name):
    p, weights = make_problem(seed=1)
    analytic = sequence_grads(p, weights)[name]
    numeric = np.zeros_like(p[name])
    eps = 1e-6
    flat = p[name].reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        up = sequence_loss(p, weights)
        flat[k] = old - eps
        down = sequence_loss(p, weights)
        flat[k] = old
        numeric.reshape(-1)[k] = (up - down) / (2 * eps)
    assert np.abs(analytic).max() > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_lstm_backward_accumulates_into_nothing_it_does_not_own():
    """dW and db come back fresh each call (the C function accumulates into zeroed arrays)."""
    p, weights = make_problem(seed=2)
    g, c, h = core.lstm_forward(p["xs"][0].copy(), p["h0"], p["c0"], p["W"], p["b"])
    args = (p["xs"][0].copy(), p["h0"], p["c0"], p["W"], g, c, weights["Rh"][0].copy(), weights["Rc"])
    first, second = core.lstm_backward(*args), core.lstm_backward(*args)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def lstm_step_backward_numpy(x, h, c, W, gates, c_new, dh, dc):
    """One step's backward written out in float64 (the chain rule of lstm_step_numpy)."""
    n = h.shape[1]
    i, f, g, o = (gates[:, k * n:(k + 1) * n] for k in range(4))
    tc = np.tanh(c_new)
    dc_tot = dc + dh * o * (1 - tc * tc)
    dz = np.concatenate([dc_tot * g * i * (1 - i), dc_tot * c * f * (1 - f), dc_tot * i * (1 - g * g),
                         dh * tc * o * (1 - o)], axis=1)
    dxh = dz @ W.T
    In = x.shape[1]
    return np.concatenate([x, h], axis=1).T @ dz, dz.sum(0), dxh[:, :In], dxh[:, In:], dc_tot * f


@pytest.mark.parametrize("batch, inputs, hidden", [(3, 4, 5), (23, 7, 50), (2, 3, 1100)],
                         ids=["one-tile", "row-tiles", "column-tiles"])
def test_lstm_backward_tiles_match_numpy(batch, inputs, hidden):
    """The batched backward walks the batch in tiles of its stack workspace (4096 doubles): whole
    rows (4H = 200: 20 rows a tile, so 23 rows take two) or, when one row does not fit
    (4H = 4400), blocks of gate columns; every tiling gives the float64 reference's gradients."""
    rng = np.random.default_rng(4)
    W = rng.uniform(-0.3, 0.3, (inputs + hidden, 4 * hidden))
    b = rng.uniform(-0.3, 0.3, 4 * hidden)
    x, h, c = rng.normal(size=(batch, inputs)), rng.normal(size=(batch, hidden)), rng.normal(size=(batch, hidden))
    dh, dc = rng.normal(size=(batch, hidden)), rng.normal(size=(batch, hidden))
    gates, c_new, _ = core.lstm_forward(x, h, c, W, b)
    z = np.concatenate([x, h], axis=1) @ W + b  # the forward's gemms at these sizes too
    act = np.concatenate([sigmoid(z[:, :2 * hidden]), np.tanh(z[:, 2 * hidden:3 * hidden]),
                          sigmoid(z[:, 3 * hidden:])], axis=1)
    np.testing.assert_allclose(gates, act, rtol=1e-12, atol=1e-13)
    got = core.lstm_backward(x, h, c, W, gates, c_new, dh, dc)
    want = lstm_step_backward_numpy(x, h, c, W, gates, c_new, dh, dc)
    for name, a, e in zip(["dW", "db", "dx", "dh_prev", "dc_prev"], got, want):
        assert np.abs(e).max() > 1e-3, name
        np.testing.assert_allclose(a, e, rtol=1e-11, atol=1e-12, err_msg=name)


def adam_numpy(param, grads, lr, beta1, beta2, eps, weight_decay):
    """torch.optim.Adam (amsgrad off, maximize off) written out: L2 decay folded into the gradient,
    step = lr / (1 - beta1^t), denominator sqrt(v) / sqrt(1 - beta2^t) + eps."""
    p, m, v = param.copy(), np.zeros_like(param), np.zeros_like(param)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = np.sqrt(v) / np.sqrt(1 - beta2 ** t) + eps
        p = p - (lr / (1 - beta1 ** t)) * m / denom
    return p, m, v


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_adam_matches_torch_formula(steps, weight_decay):
    rng = np.random.default_rng(3)
    n = 17
    param = rng.normal(size=n)
    grads = [rng.normal(size=n) for _ in range(steps)]
    hp = dict(lr=3.5e-4, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay)
    p, m, v = param.copy(), np.zeros(n), np.zeros(n)
    for t, g in enumerate(grads, start=1):
        core.adam_update(p, g, m, v, t, **hp)
    p_ref, m_ref, v_ref = adam_numpy(param, grads, **hp)
    np.testing.assert_allclose(m, m_ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(v, v_ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(p, p_ref, rtol=1e-14, atol=1e-17)
    # the first step of Adam moves every coordinate by about lr, against the sign of its gradient
    if steps == 1 and weight_decay == 0.0:
        np.testing.assert_allclose(param - p, hp["lr"] * np.sign(grads[0]), rtol=1e-6)


def test_adam_rejects_bad_arguments():
    p, g, m, v = (np.zeros(4) for _ in range(4))
    with pytest.raises(ValueError, match="grad"):
        core.adam_update(p, np.zeros(5), m, v, 1)
    with pytest.raises(ValueError, match="t must be"):
        core.adam_update(p, g, m, v, 0)
    with pytest.raises(ValueError, match="beta1"):
        core.adam_update(p, g, m, v, 1, beta1=1.0)
    with pytest.raises(ValueError, match="grad"):
        core.adam_update(p, np.full(4, np.nan), m, v, 1)
    with pytest.raises(ValueError, match="param is updated in place"):
        core.adam_update(np.zeros(4, dtype=np.float32), g, m, v, 1)
    with pytest.raises(ValueError, match="v is updated in place"):
        core.adam_update(p, g, m, np.zeros(8)[::2], 1)


def test_lstm_rejects_bad_arguments():
    p, _ = make_problem()
    x = p["xs"][0].copy()
    with pytest.raises(ValueError, match="c_prev"):
        core.lstm_forward(x, p["h0"], p["c0"][:, :2].copy(), p["W"], p["b"])
    with pytest.raises(ValueError, match="W"):
        core.lstm_forward(x, p["h0"], p["c0"], p["W"][:-1].copy(), p["b"])
    # one float64 contract for every binding (csrc/py_args.h): any layout converts, values are kept
    fortran = core.lstm_forward(np.asfortranarray(x), p["h0"], p["c0"], p["W"], p["b"])
    for a, b in zip(fortran, core.lstm_forward(x, p["h0"], p["c0"], p["W"], p["b"])):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="x must be a 2-D array of float64"):
        core.lstm_forward([["a"]], p["h0"], p["c0"], p["W"], p["b"])
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="x"):
        core.lstm_forward(bad, p["h0"], p["c0"], p["W"], p["b"])
