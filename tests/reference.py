"""A float64 NumPy reference of the cell language model (docs/design.md §3, §4), written for
clarity, not speed: the tests compare the C core against it."""
import numpy as np

ACTS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "identity": lambda x: x,
}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def forward(params, preds, ops, inputs, targets, hidden=None, masks=None, tar=0.0, ar=0.0,
            outputs=None, mats=None, hidden_clip=0.0, clip_factors=None, norms=None):
    """Objective (mean cross-entropy + TAR + AR) and the final hidden state.

    params: dict of float64 arrays named as the API (embedding, W0, W1.., decoder_bias)
    masks: dict with optional x (B,d), h (B,d), out (B,d), emb (V,) multiplicative masks
    outputs: node indices (1-based) averaged into h_t (default: all)
    mats: name of the matrix node i uses (default W{i})
    hidden_clip: > 0, the paper code's hidden-norm clipping (nas-landmarkreg darts_model.py,
    handle_hidden_mode 'NORM'): after every step each row of h_t whose L2 norm exceeds it is
    multiplied by hidden_clip / norm. clip_factors: a (T, B) array of factors to use instead
    (frozen factors: the derivative of this function is then the gradient of the code's
    constant-factor rule); norms: a list that receives each step's row norms before the clip.
    """
    masks = masks or {}
    E = params["embedding"]
    V, d = E.shape
    T, B = inputs.shape
    n = len(preds)
    outputs = outputs or list(range(1, n + 1))
    mats = mats or [f"W{i}" for i in range(1, n + 1)]
    ones = np.ones((B, d))
    m_x = masks.get("x", ones)
    m_h = masks.get("h", ones)
    m_out = masks.get("out", ones)
    m_emb = masks.get("emb", np.ones(V))
    W0 = params["W0"]
    h = np.zeros((B, d)) if hidden is None else np.asarray(hidden, np.float64)
    hs = []
    for t in range(T):
        x = E[inputs[t]] * m_emb[inputs[t]][:, None] * m_x
        ab = np.concatenate([x, h * m_h], axis=1) @ W0
        c0, b0 = sigmoid(ab[:, :d]), np.tanh(ab[:, d:])
        states = [h + c0 * (b0 - h)]
        for i in range(1, n + 1):
            sp = states[preds[i - 1]]
            ab = (sp * m_h) @ params[mats[i - 1]]
            c, f = sigmoid(ab[:, :d]), ACTS[ops[i - 1]](ab[:, d:])
            states.append(sp + c * (f - sp))
        h = np.mean([states[i] for i in outputs], axis=0)
        if hidden_clip > 0:
            norm = np.linalg.norm(h, axis=1)
            if norms is not None:
                norms.append(norm)
            f = clip_factors[t] if clip_factors is not None else np.where(norm > hidden_clip, hidden_clip / norm, 1.0)
            h = h * f[:, None]
        hs.append(h)
    H = np.stack(hs)                  # (T, B, d) raw outputs
    HD = H * m_out
    logits = HD @ E.T + params["decoder_bias"]
    logits -= logits.max(axis=-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    ce = -np.take_along_axis(logp, targets[..., None], axis=-1).mean()
    reg = 0.0
    if tar > 0 and T > 1:
        reg += tar * np.mean((H[1:] - H[:-1]) ** 2)
    if ar > 0:
        reg += ar * np.mean(HD ** 2)
    return ce + reg, h


def finite_difference(params, name, index, fn, eps=1e-6):
    """Central difference of fn(params) with respect to params[name][index]."""
    p = {k: v.copy() for k, v in params.items()}
    p[name][index] += eps
    up = fn(p)
    p[name][index] -= 2 * eps
    down = fn(p)
    return (up - down) / (2 * eps)


def evaluate(params, preds, ops, tokens, batch_size, bptt, hidden_clip=0.0):
    """Token-weighted mean cross-entropy of the DARTS evaluation protocol."""
    n = len(tokens) // batch_size
    data = np.asarray(tokens[: n * batch_size]).reshape(batch_size, n).T
    h, total, count = None, 0.0, 0
    for i in range(0, n - 1, bptt):
        T = min(bptt, n - 1 - i)
        loss, h = forward(params, preds, ops, data[i : i + T], data[i + 1 : i + 1 + T], h,
                          hidden_clip=hidden_clip)
        total += loss * T * batch_size
        count += T * batch_size
    return total / count
