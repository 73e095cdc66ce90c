"""NAO: the C encoder-predictor-decoder (csrc/nao.c) and the NAO search policy.

Core: the loss against a float64 NumPy forward; every parameter gradient (encoder, predictor,
decoder) against central finite differences, with and without dropout; the predictor's
gradients w.r.t. the embedding and the contexts; autoencoder round trip on all architectures
of the 2- and 3-node spaces; constrained decoding of 10,000 random embeddings; determinism,
state round trip and argument errors."""
import itertools
import os

import numpy as np
import pytest

import nas_eval
from nas_eval.engine.native import core
from nas_eval.engine.nao import NAOController, normalise_scores

# small sizes for the gradient checks: every parameter is checked
N_NODES, N_OPS, E, H, LAYERS, M = 3, 4, 3, 4, 2, 3


def random_tokens(rng, B, n=N_NODES, k=N_OPS):
    tok = np.zeros((B, 2 * n), np.int64)
    for i in range(1, n + 1):
        tok[:, 2 * (i - 1)] = rng.integers(1, i + 1, B)
        tok[:, 2 * i - 1] = rng.integers(n + 1, n + k + 1, B)
    return tok


def small_model(dropout=0.0, seed=1):
    m = core.NAO(N_NODES, ops=N_OPS, emb_size=E, hidden_size=H, mlp_layers=LAYERS, mlp_hidden_size=M,
                 dropout=dropout, seed=seed, max_batch=8)
    # O(1) random parameters: at the reference's U(+-0.04) predictor init, tiny ReLU layers can
    # be dead for every row, which would make the predictor checks vacuous
    params = np.random.default_rng(seed).uniform(-0.7, 0.7, m.num_params)
    m.set_state(params)
    return m, params


def tensors(m, params):
    return {name: params[o:o + r * c].reshape(r, c) for name, o, r, c in m.tensors()}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm(x, h, c, W, b):
    z = np.concatenate([x, h], 1) @ W + b
    k = h.shape[1]
    i, f, g, o = sigmoid(z[:, :k]), sigmoid(z[:, k:2 * k]), np.tanh(z[:, 2 * k:3 * k]), sigmoid(z[:, 3 * k:])
    c = f * c + i * g
    return o * np.tanh(c), c


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def reference_loss(T, tok, y, trade_off, n=N_NODES, layers=LAYERS):
    """NAO-WS's forward (encoder.py, decoder.py, controller.py) written out in NumPy."""
    B, L = tok.shape
    x = np.concatenate([T["enc_emb"][tok[:, 0::2]], T["enc_emb"][tok[:, 1::2]]], axis=2)  # (B, n, 2E)
    h = c = np.zeros((B, T["enc_b"].shape[1] // 4))
    ctx = []
    for t in range(n):
        h, c = lstm(x[:, t], h, c, T["enc_W"], T["enc_b"][0])
        ctx.append(unit(h))
    ctx = np.stack(ctx, 1)
    emb = unit(ctx.mean(1))
    a = emb
    for k in range(layers):
        a = np.maximum(a @ T[f"mlp_W{k}"] + T[f"mlp_b{k}"][0], 0)
    pred = sigmoid(a @ T["pred_W"] + T["pred_b"][0])[:, 0]
    mse = np.mean((pred - y) ** 2)
    inputs = np.concatenate([np.zeros((B, 1), np.int64), tok[:, :-1]], 1)
    h = c = emb
    nll = 0.0
    for t in range(L):
        h, c = lstm(T["dec_emb"][inputs[:, t]], h, c, T["dec_W"], T["dec_b"][0])
        s = np.einsum("bh,bjh->bj", h, ctx)
        att = np.exp(s - s.max(1, keepdims=True))
        att /= att.sum(1, keepdims=True)
        mix = np.einsum("bj,bjh->bh", att, ctx)
        o = np.tanh(np.concatenate([mix, h], 1) @ T["att_W"] + T["att_b"][0])
        z = o @ T["out_W"] + T["out_b"][0]
        logp = z - z.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        nll -= logp[np.arange(B), tok[:, t]].sum()
    nll /= B * L
    return trade_off * mse + (1 - trade_off) * nll, mse, nll, ctx, emb, pred


def test_loss_and_encoding_match_numpy_reference():
    m, params = small_model()
    rng = np.random.default_rng(0)
    tok, y = random_tokens(rng, 5), rng.uniform(0, 1, 5)
    loss, mse, nll, _ = m.loss_grad(tok, y, trade_off=0.8)
    ref = reference_loss(tensors(m, params), tok, y, 0.8)
    np.testing.assert_allclose([loss, mse, nll], ref[:3], rtol=1e-12)
    ctx, emb, pred = m.encode(tok)
    np.testing.assert_allclose(ctx, ref[3], atol=1e-13)
    np.testing.assert_allclose(emb, ref[4], atol=1e-13)
    np.testing.assert_allclose(pred, ref[5], atol=1e-13)


PARTS = {
    # part checked -> (trade_off, dropout): the MSE alone reaches encoder + predictor, the NLL
    # alone encoder + decoder, the mixed loss with dropout everything at once
    "predictor": (1.0, 0.0),
    "decoder": (0.0, 0.0),
    "encoder": (0.8, 0.3),
}
PART_TENSORS = {
    "predictor": ["mlp_W0", "mlp_b0", "mlp_W1", "mlp_b1", "pred_W", "pred_b"],
    "decoder": ["dec_emb", "dec_W", "dec_b", "att_W", "att_b", "out_W", "out_b"],
    "encoder": ["enc_emb", "enc_W", "enc_b"],
}


@pytest.mark.parametrize("part", list(PARTS))
def test_gradients_match_finite_differences(part):
    trade_off, dropout = PARTS[part]
    m, p0 = small_model(dropout=dropout)
    rng = np.random.default_rng(1)
    tok, y = random_tokens(rng, 4), rng.uniform(0, 1, 4)
    kw = dict(trade_off=trade_off, train=dropout > 0, step=11)
    _, _, _, grad = m.loss_grad(tok, y, **kw)
    eps = 1e-6
    fd = np.empty_like(p0)
    for k in range(len(p0)):
        p = p0.copy()
        p[k] = p0[k] + eps
        m.set_state(p)
        up = m.loss_grad(tok, y, **kw)[0]
        p[k] = p0[k] - eps
        m.set_state(p)
        down = m.loss_grad(tok, y, **kw)[0]
        fd[k] = (up - down) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)
    G = tensors(m, grad)
    for name in PART_TENSORS[part] + PART_TENSORS["encoder"]:
        assert np.abs(G[name]).max() > 1e-4, f"{name} gets no gradient: the check would be vacuous"
    if part == "predictor":  # the MSE does not reach the decoder
        assert all(np.abs(G[name]).max() == 0 for name in PART_TENSORS["decoder"])
    if part == "decoder":  # nor the NLL the predictor
        assert all(np.abs(G[name]).max() == 0 for name in PART_TENSORS["predictor"])


def test_dropout_masks_follow_the_step():
    m, _ = small_model(dropout=0.5)
    rng = np.random.default_rng(2)
    tok, y = random_tokens(rng, 4), rng.uniform(0, 1, 4)
    a = m.loss_grad(tok, y, train=True, step=3)[0]
    assert m.loss_grad(tok, y, train=True, step=3)[0] == a
    assert m.loss_grad(tok, y, train=True, step=4)[0] != a
    assert m.loss_grad(tok, y, train=False, step=3)[0] != a


@pytest.mark.parametrize("wrt", ["embedding", "contexts"])
def test_predictor_gradients_wrt_embedding_and_contexts(wrt):
    m, _ = small_model()
    rng = np.random.default_rng(3)
    ctx, emb, pred = m.encode(random_tokens(rng, 6))
    x, predict = (emb, m.predict_emb) if wrt == "embedding" else (ctx, m.predict_ctx)
    p, g = predict(x)
    np.testing.assert_allclose(p, pred, rtol=1e-14)
    eps = 1e-6
    fd = np.empty_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        fd[idx] = (predict(up)[0][idx[0]] - predict(down)[0][idx[0]]) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-10)
    if wrt == "contexts":
        assert np.abs(g).max() > 1e-3


def all_archs(nodes):
    return list(nas_eval.SearchSpace(nodes))


# Autoencoder alone (trade_off = 0): E = 8, H = 16, no predictor layers, Adam lr 3e-3, batch 16,
# no dropout. Measured here: every architecture reconstructed after 100 epochs (2 nodes) and
# 50 epochs (3 nodes); the test trains twice that.
@pytest.mark.parametrize("nodes,epochs", [(2, 200), (3, 100)])
def test_autoencoder_reconstructs_every_architecture(nodes, epochs):
    space = nas_eval.SearchSpace(nodes)
    archs = all_archs(nodes)
    nao = NAOController(space, emb_size=8, hidden_size=16, mlp_layers=0, dropout=0.0, lr=3e-3,
                        trade_off=0.0, batch_size=16, seed=0)
    before = nao.decode(nao.encode(archs))
    assert sum(a == b for a, b in zip(before, archs)) < len(archs)  # not trivially true
    stats = nao.fit(archs, np.zeros(len(archs)), epochs=epochs)
    assert stats["nll"] < 0.1
    assert nao.decode(nao.encode(archs)) == archs


@pytest.mark.parametrize("nodes", [2, 3, 8])
def test_decoding_random_embeddings_always_gives_valid_architectures(nodes):
    space = nas_eval.SearchSpace(nodes)
    nao = NAOController(space, emb_size=8, hidden_size=16, mlp_layers=1, mlp_hidden_size=8, seed=nodes)
    rng = np.random.default_rng(nodes)
    # scaled so that the decoder sees both near-zero and large contexts
    ctx = rng.normal(size=(10_000, nodes, 16)) * rng.choice([1e-14, 1.0, 1e3], size=(10_000, 1, 1))
    tok = nao.decode_tokens(ctx)
    assert tok.shape == (10_000, 2 * nodes)
    i = np.arange(1, nodes + 1)
    assert ((tok[:, 0::2] >= 1) & (tok[:, 0::2] <= i)).all()
    assert ((tok[:, 1::2] >= nodes + 1) & (tok[:, 1::2] <= nodes + 4)).all()
    archs = nao.archs(tok)
    assert all(a in space for a in archs)
    assert len(set(archs)) > 1  # the decoder does depend on the embedding


def test_propose_moves_down_the_predictor_and_returns_new_architectures():
    space = nas_eval.SearchSpace(3)
    archs = all_archs(3)
    rng = np.random.default_rng(4)
    pool = [archs[i] for i in rng.choice(len(archs), 40, replace=False)]
    nao = NAOController(space, emb_size=8, hidden_size=16, mlp_layers=2, mlp_hidden_size=16, lr=3e-3,
                        batch_size=16, seed=0)
    nao.fit(pool, normalise_scores(rng.normal(size=40)), epochs=60)
    top = pool[:5]
    new, lam = nao.propose(top, 6, exclude=pool, max_step=30)
    assert 1 <= lam <= 30 and 1 <= len(new) <= 6
    assert len(set(new)) == len(new) and not set(new) & set(pool) and all(a in space for a in new)
    # lambda = 1 is a step against the predictor's gradient: the predicted score goes down
    ctx = nao.encode(top)
    pred, grad = nao.gradient(ctx)
    moved = ctx - 1e-3 * grad
    after = nao.gradient(moved)[0]
    assert (after <= pred).all() and (after < pred).any()  # a row with dead ReLUs does not move
    assert nao.propose(top, 0) == ([], 0)


def test_fit_is_deterministic_and_state_round_trips():
    space = nas_eval.SearchSpace(2)
    archs = all_archs(2)
    y = normalise_scores(np.arange(len(archs)) % 7)

    def make():
        return NAOController(space, emb_size=6, hidden_size=8, mlp_layers=2, mlp_hidden_size=8,
                             batch_size=10, seed=5)

    a, b = make(), make()
    a.fit(archs, y, 3)
    b.fit(archs, y, 3)
    np.testing.assert_array_equal(a.state()["params"], b.state()["params"])
    state = a.state()
    a.fit(archs, y, 2)
    c = make()
    c.restore(state)
    c.fit(archs, y, 2)
    np.testing.assert_array_equal(a.state()["params"], c.state()["params"])
    assert a.state()["shuffles"] == c.state()["shuffles"] == 5
    d = NAOController(space, emb_size=6, hidden_size=8, mlp_layers=2, mlp_hidden_size=8, batch_size=10, seed=6)
    assert not np.array_equal(d.state()["params"], make().state()["params"])


def test_normalise_scores():
    np.testing.assert_allclose(normalise_scores([3.0, 1.0, 2.0]), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(normalise_scores([2.0, np.inf, 4.0, np.nan]), [0.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(normalise_scores([5.0, 5.0]), [0.0, 0.0])
    with pytest.raises(ValueError, match="losses"):
        normalise_scores([])


def test_tokens_round_trip():
    space = nas_eval.SearchSpace(3)
    nao = NAOController(space, emb_size=4, hidden_size=4, mlp_layers=0)
    archs = all_archs(3)
    tok = nao.tokens(archs)
    assert tok[0].tolist() == [1, 4, 1, 4, 1, 4]  # id 0: every node tanh on s0
    assert nao.tokens(["0:relu 1:identity 2:sigmoid"]).tolist() == [[1, 5, 2, 7, 3, 6]]
    assert nao.archs(tok) == archs


@pytest.mark.parametrize("kwargs,field", [
    (dict(nodes=0), "nodes"), (dict(emb_size=0), "emb_size"), (dict(hidden_size=-1), "hidden_size"),
    (dict(mlp_layers=9), "mlp_layers"), (dict(mlp_hidden_size=0), "mlp_hidden_size"),
    (dict(dropout=1.0), "dropout"), (dict(dropout=float("nan")), "dropout"), (dict(max_batch=0), "max_batch"),
    (dict(ops=0), "ops"),
])
def test_bad_constructor_arguments_name_the_field(kwargs, field):
    args = dict(nodes=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        core.NAO(**args)


def test_bad_call_arguments_name_the_argument():
    m, params = small_model()
    rng = np.random.default_rng(5)
    tok, y = random_tokens(rng, 3), rng.uniform(0, 1, 3)
    bad_tok = tok.copy()
    bad_tok[1, 4] = 3  # node 3's predecessor token 3 = node 2: fine; make it 4 (node 3 itself)
    bad_tok[1, 4] = 4
    cases = [
        (lambda: m.loss_grad(bad_tok, y), "tokens\\[1, 4\\]"),
        (lambda: m.loss_grad(tok.astype(float), y), "tokens"),
        (lambda: m.loss_grad(tok[:, :5], y), "tokens"),
        (lambda: m.loss_grad(np.zeros((0, 6), np.int64), np.zeros(0)), "tokens"),
        (lambda: m.loss_grad(tok, y[:2]), "targets"),
        (lambda: m.loss_grad(tok, y + 1.5), "targets"),
        (lambda: m.loss_grad(tok, np.array([0.1, np.nan, 0.2])), "targets"),
        (lambda: m.loss_grad(tok, y, trade_off=1.5), "trade_off"),
        (lambda: m.loss_grad(random_tokens(rng, 9), rng.uniform(0, 1, 9)), "max_batch"),
        (lambda: m.train_step(tok, y, lr=-1.0), "lr"),
        (lambda: m.train_step(tok, y, max_grad_norm=float("nan")), "max_grad_norm"),
        (lambda: m.train_step(tok, y, beta1=1.0), "beta1"),
        (lambda: m.fit(tok, y, -1, 2), "epochs"),
        (lambda: m.fit(tok, y, 1, 0), "batch_size"),
        (lambda: m.fit(tok, y, 1, 9), "batch_size"),
        (lambda: m.encode(np.array([[1, 4, 1, 4, 1, 9]])), "tokens"),
        (lambda: m.decode(np.zeros((2, 3, H + 1))), "ctx"),
        (lambda: m.decode(np.full((2, 3, H), np.nan)), "ctx"),
        (lambda: m.decode(np.full((2, 3, H), "x")), "ctx must be a 3-D array of float64"),
        (lambda: m.predict_emb(np.zeros((2, H + 1))), "emb"),
        (lambda: m.predict_ctx(np.zeros((2, 2, H))), "ctx"),
        (lambda: m.set_state(params[:-1]), "params"),
        (lambda: m.set_state(params, -np.ones_like(params), -np.ones_like(params)), "adam_v"),
        (lambda: m.set_state(params, step=-1), "step"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()
    # nothing above changed the model
    np.testing.assert_array_equal(m.get_state()["params"], params)
    # one float64 contract for every binding (csrc/py_args.h): other real dtypes and layouts convert
    ctx = np.random.default_rng(6).normal(size=(2, 3, 2 * H)).astype(np.float32)[:, :, ::2]
    np.testing.assert_array_equal(m.decode(ctx), m.decode(np.ascontiguousarray(ctx, dtype=np.float64)))


def test_controller_rejects_bad_options():
    space = nas_eval.SearchSpace(2)
    for kwargs, field in [(dict(batch_size=0), "batch_size"), (dict(lr=-1.0), "lr"),
                          (dict(trade_off=2.0), "trade_off"), (dict(hidden_size=0), "hidden_size")]:
        with pytest.raises(ValueError, match=field):
            NAOController(space, **kwargs)
    nao = NAOController(space, emb_size=4, hidden_size=4, mlp_layers=0)
    with pytest.raises(ValueError, match="archs\\[0\\]"):
        nao.tokens([nas_eval.SearchSpace(3)[0]])
    with pytest.raises(ValueError, match="scores"):
        nao.fit(all_archs(2)[:3], [0.0, 1.0], 1)
    with pytest.raises(ValueError, match="n_new"):
        nao.propose(all_archs(2)[:2], -1)


# ---------------------------------------------------------------------------------------------
# The NAO search policy (nas_eval/policies/nao.py), on a synthetic corpus and a tiny recipe


def tiny_setup(epochs=4):
    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=4000, seed=0)
    config = nas_eval.TrainConfig.preset("tiny", hidden_size=8, epochs=epochs, train_tokens=3000,
                                         valid_tokens=600, test_tokens=600)
    return corpus, config


def run_nao(seed=0, space=None, epochs=4, **options):
    from nas_eval import policies

    corpus, config = tiny_setup(epochs)
    options = {"preset": "smoke", **options}
    return policies.search("nao", space or nas_eval.SearchSpace(2), corpus, config, seed=seed, **options)


def test_nao_same_seed_same_pick_trace_and_beliefs():
    a, b = run_nao(seed=0), run_nao(seed=0)
    assert a.arch == b.arch
    import pandas as pd

    pd.testing.assert_frame_equal(a.trace, b.trace)
    pd.testing.assert_frame_equal(a.beliefs, b.beliefs)
    assert a.info == b.info
    budget = {k: v for k, v in a.budget.items() if not k.endswith("seconds") and k != "wall_time"}
    assert budget == {k: b.budget[k] for k in budget}
    c = run_nao(seed=1)
    assert c.info["initial_pool"] != a.info["initial_pool"]


def test_nao_search_trace_pool_and_beliefs():
    import pandas as pd

    from nas_eval.policies.nao import CONTROLLER_COLUMNS

    space = nas_eval.SearchSpace(2)
    r = run_nao(seed=2, random_new=1, max_new=2)
    t = r.trace
    assert list(t["epoch"]) == [1, 2, 3, 4] and list(t["round"]) == [1, 2, 3, 4]
    assert set(CONTROLLER_COLUMNS) <= set(t.columns) and (t["grad_norm_top"].iloc[:3] > 0).all()
    pools = [[nas_eval.Arch.parse(a) for a in p] for p in t["pool"]]
    assert r.info["pool_size"] == 6 == len(r.info["initial_pool"])  # 20 % of 32, rounded
    assert set(map(str, pools[0])) == set(r.info["initial_pool"])
    for k, pool in enumerate(pools):
        assert len(pool) == 6 and len(set(pool)) == 6 and all(a in space for a in pool)
        ppl = t["ws_ppl"][k]
        assert ppl == sorted(ppl)  # the pool is listed best first
        assert t["best_arch"][k] == str(pool[0])
    for k in range(3):  # controller rounds: the next pool = kept best + new + random
        row = t.iloc[k]
        assert not any(np.all(pd.isna(row[c])) for c in CONTROLLER_COLUMNS if c not in ("new", "random_added"))
        new = [nas_eval.Arch.parse(a) for a in row["new"]]
        extra = [nas_eval.Arch.parse(a) for a in row["random_added"]]
        assert not set(new) & set(pools[k]) and not set(extra) & set(pools[k])
        assert 1 <= row["lambda"] <= 10 and len(new) <= 2 and len(extra) == 1
        kept = pools[k][:6 - len(new) - len(extra)]
        assert set(pools[k + 1]) == set(kept) | set(new) | set(extra)
        assert row["dropped"] == [str(a) for a in pools[k][len(kept):]]
    assert all(np.all(pd.isna(t.iloc[3][c])) for c in CONTROLLER_COLUMNS)  # the last round trains nothing
    assert str(r.arch) == t["best_arch"].iloc[-1]
    assert r.info["pick_in_initial_pool"] == (str(r.arch) in r.info["initial_pool"])
    # beliefs: every architecture after each controller round, from the predictor
    b = r.beliefs
    assert list(b.columns) == ["epoch", "arch_id", "belief"]
    assert sorted(b["epoch"].unique()) == [1, 2, 3]
    assert (b.groupby("epoch")["arch_id"].apply(sorted) == [list(range(32))] * 3).all()
    assert ((b["belief"] > 0) & (b["belief"] < 1)).all()
    assert r.budget["supernet_steps"] > 0 and r.budget["controller_steps"] == 3 * 30
    assert r.budget["rounds"] == 4 and r.budget["valid_tokens"] > 0


def test_nao_pool_never_asks_for_more_than_the_space_holds():
    space = nas_eval.SearchSpace(1)  # 4 architectures
    r = run_nao(space=space, epochs=2, pool_size=1000, random_new=50, max_new=300, pool_fraction=None,
                min_controller_rounds=1)
    assert r.info["pool_size"] == 4
    assert all(len(p) == 4 and len(set(p)) == 4 for p in r.trace["pool"])
    sub = nas_eval.SearchSpace(3).fix({1: ("tanh", 0), 2: ("relu", 1)})  # 12 architectures
    r = run_nao(space=sub, epochs=2, pool_fraction=1.0, random_new=5, min_controller_rounds=1)
    assert r.info["pool_size"] == 12 and r.arch in sub
    assert all(nas_eval.Arch.parse(a) in sub for p in r.trace["pool"] for a in p)


def test_nao_search_state_restores_between_rounds():
    from nas_eval.policies import check_options
    from nas_eval.policies.nao import NAOSearch

    corpus, config = tiny_setup(4)
    options = check_options("nao", {"preset": "smoke", "random_new": 1})
    space = nas_eval.SearchSpace(2)
    whole = NAOSearch(space, corpus, config, 4, options).run()
    first = NAOSearch(space, corpus, config, 4, options)
    first.run_round()
    state = first.state()
    resumed = NAOSearch(space, corpus, config, 4, options)
    resumed.restore(state)
    out = resumed.run()
    assert out.arch == whole.arch
    drop = ["controller_seconds"]
    import pandas as pd

    pd.testing.assert_frame_equal(out.trace, whole.trace)
    pd.testing.assert_frame_equal(out.beliefs, whole.beliefs)
    assert {k: v for k, v in out.budget.items() if k not in drop} == \
        {k: v for k, v in whole.budget.items() if k not in drop}


def test_nao_presets():
    from nas_eval.policies import check_options, presets

    names = presets("nao").names()
    assert {"reference", "paper-2node", "cpu", "smoke"} <= set(names)
    for name in names:
        check_options("nao", {"preset": name})
    paper = check_options("nao", {"preset": "paper-2node"})
    assert (paper.pool_for(32), paper.controller_epochs, paper.eval_every, paper.top_k, paper.max_new) == \
        (6, 250, 50, 4, 3)
    ref = check_options("nao", {})
    assert (ref.pool_size, ref.controller_epochs, ref.schedule(1000), ref.top_k, ref.max_new, ref.random_new,
            ref.max_step, ref.hidden_size, ref.emb_size, ref.mlp_layers, ref.sharing, ref.trade_off,
            ref.child_lr, ref.child_clip, ref.batch_size, ref.drop_partial) == \
        (1000, 1000, [200, 400, 600, 800, 1000], 100, 300, 50, 30, 96, 48, 4, "edge_op", 0.8, 0.25, 10.0, 100,
         True)
    assert (paper.child_lr, paper.child_clip, paper.random_new, paper.drop_partial) == (0.25, 10.0, 0, False)
    assert paper.controller_rounds(1000) == 19
    assert check_options("nao", {"preset": "cpu", "controller_epochs": 7}).controller_epochs == 7


@pytest.mark.parametrize("options,field", [
    ({"pool_size": 0}, "pool_size"), ({"pool_fraction": 0.0}, "pool_fraction"),
    ({"pool_fraction": 1.5}, "pool_fraction"), ({"eval_every": 0}, "eval_every"),
    ({"epochs": 0}, "epochs"), ({"controller_epochs": -1}, "controller_epochs"), ({"top_k": 0}, "top_k"),
    ({"max_new": -1}, "max_new"), ({"random_new": 1.5}, "random_new"), ({"max_step": 0}, "max_step"),
    ({"sharing": "cell"}, "sharing"), ({"hidden_size": 0}, "hidden_size"), ({"mlp_layers": 9}, "mlp_layers"),
    ({"dropout": 1.0}, "dropout"), ({"lr": float("nan")}, "lr"), ({"trade_off": 1.2}, "trade_off"),
    ({"batch_size": True}, "batch_size"), ({"shuffle": "yes"}, "shuffle"), ({"weight_decay": -1}, "weight_decay"),
    ({"max_grad_norm": float("inf")}, "max_grad_norm"), ({"emb_size": "48"}, "emb_size"),
    ({"mlp_hidden_size": 0}, "mlp_hidden_size"), ({"pool": 3}, "pool"), ({"preset": "gpu"}, "gpu"),
])
def test_nao_bad_options_name_the_field(options, field):
    from nas_eval.policies import check_options

    with pytest.raises(ValueError, match=field):
        check_options("nao", options)


def test_nao_policy_module_does_not_load_the_engine():
    import subprocess
    import sys

    code = ("import sys, nas_eval.policies as p; p.check_options('nao', {'preset': 'cpu'}); "
            "import nas_eval.policies.nao; print(any(m.startswith('nas_eval.engine') for m in sys.modules))")
    # from the tests folder: in the repository root the source tree would shadow an install
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    assert out.stdout.strip() == "False"


def test_docstring_examples():
    import doctest

    import nas_eval.engine.nao
    import nas_eval.policies.nao

    for module in (nas_eval.engine.nao, nas_eval.policies.nao):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
