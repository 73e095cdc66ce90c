"""A float64 NumPy reference of the DARTS mixed-cell language model (DESIGN §3 search-time
variant, the reference's DARTSCellSearch), forward and an explicit backward through time,
written for clarity: the tests compare the C core against it and against finite
differences of its forward.

Parameters are named as the API: embedding (V, d), W0 (2d, 2d), W1..Wn (d, 2d),
decoder_bias (V,); alpha is (n(n+1)/2, 5) over (none, tanh, relu, sigmoid, identity).
"""
import numpy as np

EPS, MOMENTUM = 1e-5, 0.1


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(alpha):
    z = np.exp(alpha - alpha.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def edge(i, j):
    return i * (i - 1) // 2 + j


def _ops(b):
    """f_k(b) and f_k'(b) for tanh, relu, sigmoid, identity."""
    th, sg = np.tanh(b), sigmoid(b)
    pos = (b > 0).astype(b.dtype)
    return [th, b * pos, sg, b], [1 - th * th, pos, sg * (1 - sg), np.ones_like(b)]


def _bn(x, bn, running=None):
    """(y, invstd) with batch statistics, or with the running ones when given."""
    if not bn:
        return x, None
    if running is not None:
        mean, var = running
    else:
        mean, var = x.mean(axis=0), x.var(axis=0)
    inv = 1.0 / np.sqrt(var + EPS)
    return (x - mean) * inv, inv


def _bn_back(dy, y, inv):
    if inv is None:
        return dy
    return inv * (dy - dy.mean(axis=0) - y * (dy * y).mean(axis=0))


def forward(params, alpha, inputs, targets, hidden=None, masks=None, tar=0.0, ar=0.0,
            batch_norm=True, backward=False, running=None, track=None):
    """Objective (mean cross-entropy + TAR + AR), final hidden state, and with
    ``backward`` the gradients (dict with every parameter and ``alpha``).

    masks: optional x (B,d), h (B,d), out (B,d), emb (V,) multiplicative masks.
    running: (mean, var) to normalise with (evaluation mode) instead of batch statistics.
    track: a [mean, var] list updated in place like torch's running statistics.
    """
    masks = masks or {}
    E, W0, bias = params["embedding"], params["W0"], params["decoder_bias"]
    V, d = E.shape
    T, B = inputs.shape
    nE = alpha.shape[0]
    n = int((np.sqrt(8 * nE + 1) - 1) / 2)
    W = [None] + [params[f"W{i}"] for i in range(1, n + 1)]
    p = softmax(alpha)
    ones = np.ones((B, d))
    m_x, m_h, m_out = masks.get("x", ones), masks.get("h", ones), masks.get("out", ones)
    m_emb = masks.get("emb", np.ones(V))
    h = np.zeros((B, d)) if hidden is None else np.asarray(hidden, np.float64)
    hs, tape = [], []
    for t in range(T):
        x = E[inputs[t]] * m_emb[inputs[t]][:, None] * m_x
        xh = np.concatenate([x, h * m_h], axis=1)
        ab = xh @ W0
        c0, f0 = sigmoid(ab[:, :d]), np.tanh(ab[:, d:])
        s0, inv0 = _bn(h + c0 * (f0 - h), batch_norm, running)
        if track is not None and batch_norm:
            _track(track, h + c0 * (f0 - h))
        states, invs, edges = [s0], [inv0], {}
        for i in range(1, n + 1):
            pre = np.zeros((B, d))
            for j in range(i):
                e = edge(i, j)
                ab = (states[j] * m_h) @ W[i]
                c, b = sigmoid(ab[:, :d]), ab[:, d:]
                fs, _ = _ops(b)
                for k in range(4):
                    pre += p[e, k + 1] * (states[j] + c * (fs[k] - states[j]))
                edges[i, j] = (c, b)
            if track is not None and batch_norm:
                _track(track, pre)
            s, inv = _bn(pre, batch_norm, running)
            states.append(s)
            invs.append(inv)
        tape.append((x, xh, c0, f0, h, states, invs, edges))
        h = np.mean(states[1:], axis=0)
        hs.append(h)
    H = np.stack(hs)
    HD = H * m_out
    logits = HD @ E.T + bias
    logits -= logits.max(axis=-1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=-1, keepdims=True)
    N = T * B
    ce = -np.log(np.take_along_axis(prob, targets[..., None], axis=-1)).mean()
    reg = 0.0
    if tar > 0 and T > 1:
        reg += tar * np.mean((H[1:] - H[:-1]) ** 2)
    if ar > 0:
        reg += ar * np.mean(HD ** 2)
    if not backward:
        return ce + reg, h

    g = {k: np.zeros_like(v) for k, v in params.items()}
    dp = np.zeros_like(p)
    dlog = prob.copy()
    np.put_along_axis(dlog, targets[..., None], np.take_along_axis(dlog, targets[..., None], -1) - 1, -1)
    dlog /= N
    g["decoder_bias"] += dlog.sum(axis=(0, 1))
    g["embedding"] += np.einsum("tbv,tbd->vd", dlog, HD)
    dHD = dlog @ E
    if ar > 0:
        dHD += 2 * ar * HD / HD.size
    dH = dHD * m_out
    if tar > 0 and T > 1:
        diff = 2 * tar * (H[1:] - H[:-1]) / (H[1:].size)
        dH[1:] += diff
        dH[:-1] -= diff
    dh_next = np.zeros((B, d))
    for t in reversed(range(T)):
        x, xh, c0, f0, h_prev, states, invs, edges = tape[t]
        dS = [np.zeros((B, d))] + [(dH[t] + dh_next) / n for _ in range(n)]
        for i in range(n, 0, -1):
            dpre = _bn_back(dS[i], states[i], invs[i])
            for j in range(i):
                e = edge(i, j)
                c, b = edges[i, j]
                fs, fps = _ops(b)
                sj = states[j]
                P = p[e, 1:].sum()
                gsum = sum(p[e, k + 1] * fs[k] for k in range(4))
                gp = sum(p[e, k + 1] * fps[k] for k in range(4))
                da = dpre * (gsum - P * sj) * c * (1 - c)
                db = dpre * c * gp
                dab = np.concatenate([da, db], axis=1)
                g[f"W{i}"] += (sj * m_h).T @ dab
                dS[j] += P * (1 - c) * dpre + (dab @ W[i].T) * m_h
                for k in range(4):
                    dp[e, k + 1] += np.sum(dpre * (sj + c * (fs[k] - sj)))
        dpre0 = _bn_back(dS[0], states[0], invs[0])
        dh_prev = dpre0 * (1 - c0)
        da0 = dpre0 * (f0 - h_prev) * c0 * (1 - c0)
        db0 = dpre0 * c0 * (1 - f0 * f0)
        dab0 = np.concatenate([da0, db0], axis=1)
        g["W0"] += xh.T @ dab0
        dxh = dab0 @ W0.T
        dh_prev += dxh[:, d:] * m_h
        dx = dxh[:, :d] * m_x * m_emb[inputs[t]][:, None]
        np.add.at(g["embedding"], inputs[t], dx)
        dh_next = dh_prev
    g["alpha"] = p * (dp - (p * dp).sum(axis=1, keepdims=True))
    return ce + reg, h, g


def _track(track, x):
    B = x.shape[0]
    track[0] = (1 - MOMENTUM) * track[0] + MOMENTUM * x.mean(axis=0)
    track[1] = (1 - MOMENTUM) * track[1] + MOMENTUM * x.var(axis=0) * B / (B - 1)


def evaluate(params, alpha, tokens, batch_size, bptt, running=None, batch_norm=True):
    """Token-weighted mean cross-entropy of the DARTS evaluation protocol (no dropout,
    batch normalisation with the running statistics)."""
    n = len(tokens) // batch_size
    data = np.asarray(tokens[: n * batch_size]).reshape(batch_size, n).T
    h, total, count = None, 0.0, 0
    for i in range(0, n - 1, bptt):
        T = min(bptt, n - 1 - i)
        loss, h = forward(params, alpha, data[i: i + T], data[i + 1: i + 1 + T], h,
                          running=running, batch_norm=batch_norm)
        total += loss * T * batch_size
        count += T * batch_size
    return total / count
