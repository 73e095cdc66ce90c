"""The ENAS controller (csrc/enas.c) against an independent float64 NumPy implementation of
the reference's forward pass (ENAS-pytorch's Controller as the paper's nasws/rnn/enas_policy
runs it, with the paper text's two-layer LSTM as torch.nn.LSTM stacks layers: layer l > 0
reads layer l - 1's new h, the heads read the top layer): a zero vector as the first LSTM input; node 1's activation, then for each node i >= 2
its predecessor and then its activation; each decision's own linear head; logits divided by
the temperature (5) then squashed to 2.5 * tanh; log-softmax; entropy -sum p log p. Also the
paper's search space: under restrict_s0 (the reference's rule) nodes >= 2 never read s0, so the
2-node controller -- and ENAS at the ``paper-2node`` preset -- reaches 16 of the 32 cells."""
import numpy as np
import pytest

import nas_eval
from nas_eval import policies
from nas_eval.engine.native import core
from nas_eval.policies.enas import Controller, ENASSearch

K = 4   # activations


def decision_plan(n, restrict):
    """(node, kind, n_choices) in the reference's order, written from the paper, not from C."""
    plan = [(1, "op", K)]
    for i in range(2, n + 1):
        plan += [(i, "pred", i - 1 if restrict else i), (i, "op", K)]
    return plan


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_cell(x, h, c, W, b):
    """torch.nn.LSTMCell's step, gates (i, f, g, o), W = [W_x; W_h] (In + H, 4H)."""
    H = h.size
    g = np.concatenate([x, h]) @ W + b
    i, f, gg, o = sigmoid(g[:H]), sigmoid(g[H:2 * H]), np.tanh(g[2 * H:3 * H]), sigmoid(g[3 * H:])
    c = f * c + i * gg
    return o * np.tanh(c), c


def numpy_score(params, layout, H, n, actions, restrict, temperature=5.0, tanh_c=2.5, layers=1):
    """log p and entropy per decision (count, n_dec) of the given action sequences."""
    def part(name):
        off, shape = layout[name]
        return params[off:off + int(np.prod(shape))].reshape(shape)

    emb = part("embedding")
    # layer 0's weights, then those of the stacked layers 1, 2, ...
    Ws = [part("lstm_W")] + [part(f"lstm_l{k}_W") for k in range(1, layers)]
    bs = [part("lstm_b")] + [part(f"lstm_l{k}_b") for k in range(1, layers)]
    plan = decision_plan(n, restrict)
    logp = np.zeros(actions.shape)
    ent = np.zeros(actions.shape)
    for r, seq in enumerate(actions):
        h, c = np.zeros((layers, H)), np.zeros((layers, H))
        x = np.zeros(H)                       # the reference's static zero input
        for d, (node, kind, width) in enumerate(plan):
            inp = x
            for k in range(layers):           # each layer reads the new h of the one below
                h[k], c[k] = lstm_cell(inp, h[k], c[k], Ws[k], bs[k])
                inp = h[k]
            z = h[-1] @ part(f"head{d}_W") + part(f"head{d}_b")
            assert z.shape == (width,)
            logits = tanh_c * np.tanh(z / temperature)
            lse = logits.max() + np.log(np.exp(logits - logits.max()).sum())
            lp = logits - lse
            a = int(seq[d])
            logp[r, d] = lp[a]
            ent[r, d] = -(np.exp(lp) * lp).sum()
            # the next input: the embedding of this choice (op k: row 1 + k; predecessor node p:
            # row 1 + K + p, where choice a means node a + 1 under the restriction)
            x = emb[1 + a] if kind == "op" else emb[1 + K + a + (1 if restrict else 0)]
    return logp, ent


@pytest.mark.parametrize("n, restrict, layers", [(2, True, 1), (3, True, 1), (3, False, 1), (4, True, 1),
                                                 (2, True, 2), (3, False, 2), (4, True, 2), (3, True, 3)])
def test_log_prob_and_entropy_match_an_independent_numpy_forward(n, restrict, layers):
    H = 7
    ctrl = core.EnasController(n, hidden=H, restrict_s0=restrict, temperature=5.0, tanh_c=2.5, seed=n,
                               layers=layers)
    assert ctrl.layers == layers
    # weights well off the +-0.1 initialisation, so the tanh squashing and the LSTM gates
    # are far from linear and every term of the chain matters
    rng = np.random.default_rng(11 + n)
    params = rng.uniform(-2.0, 2.0, ctrl.n_params)
    ctrl.params = params
    plan = decision_plan(n, restrict)
    assert [(d["node"], d["kind"], d["n_choices"]) for d in ctrl.decisions] == plan
    # every action sequence of the space for small n, a random sample otherwise
    grids = np.array(np.meshgrid(*[np.arange(w) for _, _, w in plan], indexing="ij")).reshape(len(plan), -1).T
    actions = grids if len(grids) <= 400 else grids[rng.choice(len(grids), 400, replace=False)]
    actions = np.ascontiguousarray(actions, dtype=np.int32)
    logp, ent = ctrl.score(actions)
    ref_logp, ref_ent = numpy_score(params, ctrl.layout(), H, n, actions, restrict, layers=layers)
    np.testing.assert_allclose(logp, ref_logp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ent, ref_ent, rtol=1e-10, atol=1e-12)
    if layers > 1:
        # not vacuous: the top layer matters (a controller whose heads read layer 0 would differ)
        lower = numpy_score(params, ctrl.layout(), H, n, actions, restrict, layers=layers - 1)[0]
        assert np.abs(lower - ref_logp).max() > 0.1
    # not vacuous: the decisions are far from uniform
    assert np.ptp(ref_logp[:, -1]) > 0.5
    # the exact probabilities of the whole space sum to one over the same sequences
    if len(grids) <= 400:
        np.testing.assert_allclose(np.exp(ref_logp.sum(axis=1)).sum(), 1.0, rtol=1e-10)



@pytest.mark.parametrize("n, restrict, layers", [(3, True, 2), (2, False, 2), (2, True, 1)])
def test_gradients_match_finite_differences_of_the_numpy_forward(n, restrict, layers):
    """The C backward (every parameter, the stacked layers included) against central differences
    of the NumPy forward above, not of the C forward: of sum(glogp * logp + gent * entropy)."""
    H = 4
    ctrl = core.EnasController(n, hidden=H, restrict_s0=restrict, seed=5, layers=layers)
    rng = np.random.default_rng(23 + n)
    params = rng.uniform(-1.5, 1.5, ctrl.n_params)
    ctrl.params = params
    actions = np.ascontiguousarray(ctrl.sample(5, "controller")[0], dtype=np.int32)
    glogp, gent = rng.normal(size=actions.shape), rng.normal(size=actions.shape)
    analytic = ctrl.gradient(actions, glogp, gent)
    layout = ctrl.layout()

    def f(theta):
        lp, en = numpy_score(theta, layout, H, n, actions, restrict, layers=layers)
        return float(np.sum(glogp * lp) + np.sum(gent * en))

    eps, numeric = 1e-6, np.zeros_like(params)
    for k in range(params.size):
        e = np.zeros_like(params)
        e[k] = eps
        numeric[k] = (f(params + e) - f(params - e)) / (2 * eps)
    for name, (off, shape) in layout.items():
        size = int(np.prod(shape))
        np.testing.assert_allclose(analytic[off:off + size], numeric[off:off + size], rtol=1e-6, atol=1e-8,
                                   err_msg=f"d/d{name}")
        if name.startswith("lstm"):   # not vacuous: every LSTM layer has a gradient
            assert np.abs(analytic[off:off + size]).max() > 1e-3, name

def test_the_paper_2node_controller_reaches_exactly_16_architectures():
    space = nas_eval.SearchSpace(2)
    config = policies.check_options("enas", {"preset": "paper-2node"})
    assert config.restrict_s0
    ctrl = Controller(space, config, seed=0)
    p = ctrl.probabilities()
    reachable = {i for i, a in enumerate(space) if a.preds[1] == 1}
    assert len(reachable) == 16
    assert {i for i in range(len(space)) if p[i] > 0} == reachable
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    # the exhaustive best of the paper's Table 3 (node 2 reads s0) is outside
    assert p[space.index(nas_eval.Arch.parse("0:tanh 0:sigmoid"))] == 0
    for stream in ("shared", "controller", "final"):
        archs = ctrl.sample(2000, stream)[0]
        assert {space.index(a) for a in archs} == reachable   # all 16 drawn, nothing else


def test_enas_at_paper_2node_trains_and_picks_only_its_16(tmp_path):
    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=3000, valid_tokens=1500,
                                         test_tokens=300, seed=0)
    recipe = nas_eval.TrainConfig.preset("tiny", hidden_size=8, batch_size=8, bptt=10, epochs=2)
    # the paper-2node preset with its budgets cut, nothing else (its derive every epoch, as the
    # code's every 30 would only derive after the first of 2)
    config = policies.check_options("enas", {"preset": "paper-2node", "epochs": 2, "shared_archs": 3,
                                             "controller_steps": 5, "controller_hidden": 8,
                                             "reward_batch_size": 8, "reward_bptt": 10, "derive_every": 1})
    s = ENASSearch(nas_eval.SearchSpace(2), corpus, recipe, 1, config)
    assert s.net.output == "loose_ends"
    seen = []
    for _ in range(2):
        s.run_epoch()
        # 3 architectures x 10 consecutive mini-batches each
        archs = s.trainer.last_archs
        assert len(archs) == 30
        assert all(archs[k] == archs[k - k % 10] for k in range(30))
        seen += archs
    out = s.finish()
    seen.append(out.arch)
    assert all(a.preds[1] == 1 for a in seen)
    assert set(out.beliefs.loc[out.beliefs["belief"] > 0, "arch_id"]) <= \
        {i for i, a in enumerate(nas_eval.SearchSpace(2)) if a.preds[1] == 1}


def test_train_mode_rewards_draw_fresh_dropout_and_eval_mode_does_not():
    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=2000, valid_tokens=1500,
                                         test_tokens=300, seed=0)
    recipe = nas_eval.TrainConfig.preset("tiny", hidden_size=8, batch_size=8, bptt=10, epochs=1, dropout=0.5,
                                         dropouth=0.3, dropoutx=0.3)
    config = policies.check_options("enas", {"preset": "smoke"})
    s = ENASSearch(nas_eval.SearchSpace(2), corpus, recipe, 0, config)
    s.run_epoch()     # off the uniform initial output, where every mask gives ~ the vocabulary size
    # the controller phase scored its rewards through the train-mode path: full windows
    assert s.reward_tokens == config.controller_steps * config.reward_batch_size * config.reward_bptt
    arch = nas_eval.Arch.parse("0:tanh 1:relu")
    a, _ = s._train_mode_ppl(arch, 0, None)
    b, _ = s._train_mode_ppl(arch, 0, None)
    assert a != b                               # dropout on: new masks every call
    window = s.valid[:config.reward_batch_size * (config.reward_bptt + 1)]
    e1 = s.net.perplexity([arch], window, config.reward_batch_size, config.reward_bptt)
    e2 = s.net.perplexity([arch], window, config.reward_batch_size, config.reward_bptt)
    assert e1[0] == e2[0]


@pytest.mark.parametrize("options, words", [
    ({"controller_steps": 0}, ["enas", "controller_steps=0", "controller_steps >= 1"]),
    ({"lr": 0.0}, ["enas", "lr=0.0", "lr > 0"]),
])
def test_degenerate_configs_refuse_to_run(options, words):
    config = policies.check_options("enas", {"preset": "smoke", **options})
    with pytest.raises(ValueError) as e:
        config.check_feasible()
    for w in words:
        assert w in str(e.value)
    with pytest.raises(ValueError, match=words[1]):     # the study-level entry point
        policies.check_feasible("enas", {"preset": "smoke", **options}, None, nas_eval.SearchSpace(2))
    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=2000, valid_tokens=1500, seed=0)
    recipe = nas_eval.TrainConfig.preset("tiny", hidden_size=8, batch_size=8, bptt=10, epochs=1)
    with pytest.raises(ValueError, match="enas"):
        policies.search("enas", nas_eval.SearchSpace(2), corpus, recipe, 0, preset="smoke", **options)


def test_every_preset_is_feasible_and_alternates_every_epoch():
    for name in policies.presets("enas").names():
        config = policies.check_options("enas", {"preset": name}).check_feasible()
        assert config.controller_steps >= 1 and config.lr > 0


def test_the_baseline_restarts_in_every_controller_phase():
    """The reference's baseline is a local variable of train_controller: each epoch's first
    reward starts it again. With reset_baseline=False it carries over (the old behaviour)."""
    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=2000, valid_tokens=1500, seed=0)
    recipe = nas_eval.TrainConfig.preset("tiny", hidden_size=8, batch_size=8, bptt=10, epochs=2)
    traces = {}
    for reset in (True, False):
        config = policies.check_options("enas", {"preset": "smoke", "reset_baseline": reset})
        s = ENASSearch(nas_eval.SearchSpace(2), corpus, recipe, 3, config)
        s.run_epoch()
        first = s.controller.state()
        assert first["has_baseline"]
        s.run_epoch()
        traces[reset] = s.trace
    assert traces[True][0] == traces[False][0]                    # the first phase is the same
    assert traces[True][1]["baseline"] != traces[False][1]["baseline"]
