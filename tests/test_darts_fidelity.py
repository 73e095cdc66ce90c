"""DARTS as the paper ran it (issue 19, docs/fidelity.md "DARTS"): the second-order alpha
gradient with dropout ON, each pass's masks drawn as the reference draws them (a fresh draw
per forward pass) or reused (this project's estimator), against finite differences of float64
objectives under exactly those masks; the paper code's cached unrolled model; the checks that
refuse a degenerate loop."""
import dataclasses

import numpy as np
import pytest

import nas_eval
from nas_eval import rng
from nas_eval.engine.mixed import MixedLM

import reference_mixed as ref

V, D, T, B = 11, 4, 3, 3
DROPOUTS = dict(dropout=0.3, dropouth=0.25, dropoutx=0.2, dropouti=0.1, dropoute=0.2)
# csrc/darts.h: pass p of step k keys its masks with k | 2^63 | p << 61 (0 validation,
# 1 virtual step, 2 and 3 the Hessian-vector passes at w + R v and w - R v)
VALID, VIRTUAL, PLUS, MINUS = range(4)


def pass_counter(k, p):
    return k | (1 << 63) | (p << 61)


def masks_of(seed, counter, dropouts=DROPOUTS, batch=B, d=D, vocab=V):
    """The masks the core draws under ``counter`` (csrc/lm.c draw_masks), in float64: an
    independent replica through nas_eval.rng (checked against the core below)."""
    def draw(stream, p, n):
        if p <= 0:
            return np.ones(n)
        key, keep = rng.key(seed, stream, counter), np.float32(1.0) - np.float32(p)
        u = np.array([rng.uniform(key, i) for i in range(n)], dtype=np.float32)
        return np.where(u < keep, np.float64(np.float32(1.0) / keep), 0.0)

    bd = batch * d
    x = draw(2, dropouts.get("dropoutx", 0), bd) * draw(6, dropouts.get("dropouti", 0), bd)
    return {"x": x.reshape(batch, d), "h": draw(3, dropouts.get("dropouth", 0), bd).reshape(batch, d),
            "out": draw(4, dropouts.get("dropout", 0), bd).reshape(batch, d),
            "emb": draw(5, dropouts.get("dropoute", 0), vocab)}


def _setup(seed, dropouts=DROPOUTS, scale=0.5):
    model = MixedLM(2, V, D, seed=seed, **dropouts)
    g = np.random.default_rng(seed)
    params = {k: g.uniform(-scale, scale, v.shape).astype(np.float32) for k, v in model.parameters().items()}
    model.load_parameters(params)
    model.alpha = g.normal(0.0, 1.0, model.alpha.shape)
    segs = []
    for _ in range(3):
        segs.append((g.integers(0, V, (T, B)).astype(np.int32), g.integers(0, V, (T, B)).astype(np.int32),
                     g.uniform(-0.5, 0.5, (B, D)).astype(np.float32)))
    return model, {k: v.astype(np.float64) for k, v in params.items()}, segs


def _grad_alpha_fd(fn, alpha, eps=1e-5):
    out = np.zeros_like(alpha)
    for idx in np.ndindex(alpha.shape):
        a = alpha.copy()
        a[idx] += eps
        up = fn(a)
        a[idx] -= 2 * eps
        out[idx] = (up - fn(a)) / (2 * eps)
    return out


def _norm(g, names):
    return np.sqrt(sum((g[k] ** 2).sum() for k in names))


def _rel(got, expected):
    return np.linalg.norm(got - expected) / np.linalg.norm(expected)


def test_the_mask_replica_is_the_cores():
    model, _, [(ti, tt, th), *_] = _setup(3)
    model._lm.step_count = 7
    model.loss_and_grads(ti, tt, th, train=True)
    got, want = model.last_masks(), masks_of(3, 7)
    for name in ("x", "h", "out", "emb"):
        np.testing.assert_array_equal(got[name].astype(np.float64), want[name], err_msg=name)
        assert (want[name] == 0).any() and (want[name] > 1).any(), name  # something dropped, rest scaled


def test_second_order_with_reused_masks_is_the_gradient_of_the_unrolled_objective():
    """masks='reuse', dropout on: the gradient estimates d/dalpha of
    L_valid(w - eta (grad_w L_train(w, alpha; M_k) + wd w), alpha; M_valid) with M_k the weight
    step's masks and M_valid the validation pass's; central differences of that objective in
    float64 under the same masks."""
    seed, k = 5, 4
    model, w, [(ti, tt, th), (vi, vt, vh), _] = _setup(seed)
    model._lm.step_count = k
    eta, wd = 1.0, 1e-3
    m_train, m_valid = masks_of(seed, k), masks_of(seed, pass_counter(k, VALID))

    def unrolled(alpha):
        _, _, g = ref.forward(w, alpha, ti, tt, th, m_train, backward=True)
        moved = {n: w[n] - eta * (g[n] + wd * w[n]) for n in w}
        return ref.forward(moved, alpha, vi, vt, vh, m_valid)[0]

    expected = _grad_alpha_fd(unrolled, model.alpha)
    got = model.alpha_gradient((ti, tt, th), (vi, vt, vh), order=2, eta=eta, clip=0.0, weight_decay=wd, r=1e-3,
                               per_pass=False)
    first = model.alpha_gradient((ti, tt, th), (vi, vt, vh), order=1, eta=eta, clip=0.0, weight_decay=wd)
    assert _rel(first, expected) > 0.1  # the implicit term matters at this size
    assert _rel(got, expected) < 5e-3


def test_second_order_with_per_pass_masks_follows_the_reference():
    """masks='per-pass' (the reference: every forward pass of Architect draws fresh masks),
    dropout on: the gradient is d/dalpha of the reference's surrogate
    L_valid(w', alpha; M_1) - eta c (L_train(w + R v, alpha; M_2) - L_train(w - R v, alpha; M_3)) / 2R
    with w' = w - eta (c g + wd w), g the training gradient under M_0, v the clipped
    validation weight gradient at w', R = r / ||v||, c = clip / (||g|| + 1e-6) — each mask the
    one its pass draws; central differences of that surrogate in float64 (w', v, R fixed)."""
    seed, k = 8, 2
    model, w, [(ti, tt, th), (vi, vt, vh), _] = _setup(seed)
    model._lm.step_count = k
    eta, wd, r = 1.5, 1e-3, 0.01
    alpha = model.alpha
    m = {p: masks_of(seed, pass_counter(k, p)) for p in (VALID, VIRTUAL, PLUS, MINUS)}
    _, _, g = ref.forward(w, alpha, ti, tt, th, m[VIRTUAL], backward=True)
    norm = _norm(g, w)
    clip = 0.5 * norm  # clipped: the implicit term is scaled by c < 1
    coef = clip / (norm + 1e-6)
    moved = {n: w[n] - eta * (coef * g[n] + wd * w[n]) for n in w}
    _, _, gv = ref.forward(moved, alpha, vi, vt, vh, m[VALID], backward=True)
    v = {n: gv[n] * min(1.0, clip / (_norm(gv, w) + 1e-6)) for n in w}
    R = r / _norm(v, w)
    plus = {n: w[n] + R * v[n] for n in w}
    minus = {n: w[n] - R * v[n] for n in w}

    def surrogate(a):
        implicit = (ref.forward(plus, a, ti, tt, th, m[PLUS])[0] - ref.forward(minus, a, ti, tt, th, m[MINUS])[0])
        return ref.forward(moved, a, vi, vt, vh, m[VALID])[0] - eta * coef * implicit / (2 * R)

    expected = _grad_alpha_fd(surrogate, alpha, eps=1e-6)
    kw = dict(order=2, eta=eta, clip=clip, weight_decay=wd, r=r)
    got = model.alpha_gradient((ti, tt, th), (vi, vt, vh), per_pass=True, **kw)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())
    reused = model.alpha_gradient((ti, tt, th), (vi, vt, vh), per_pass=False, **kw)
    assert _rel(reused, expected) > 0.05  # the two estimators differ: the test sees which ran


def test_paper_code_architect_validates_at_alpha0_and_accumulates_v():
    """architect='paper-code' (nas-landmarkreg darts_policy/architect.py): the unrolled model
    built once keeps the initial alpha in its validation pass and never zeroes its weight
    gradients, which Architect._clip rescales in place; with accumulation the alpha gradient
    sums over steps too. Two steps against the float64 formula (dropouts off)."""
    model, w, [(ti, tt, th), (vi, vt, vh), (ui, ut, uh)] = _setup(11, dropouts={})
    alpha0 = model.alpha
    cache, cache_acc = model.architect_cache(), model.architect_cache()
    model.alpha = alpha0 + np.random.default_rng(0).normal(0, 0.5, alpha0.shape)  # alpha has moved since
    alpha = model.alpha
    eta, wd, r, clip = 1.0, 1e-3, 0.01, 1.0  # ||g|| ~ 1.4, ||grad_w L_valid|| ~ 1.6: both clipped
    vsum, gsum = {n: np.zeros_like(w[n]) for n in w}, 0.0
    for train, valid in (((ti, tt, th), (vi, vt, vh)), ((ui, ut, uh), (vi, vt, vh))):
        _, _, g = ref.forward(w, alpha, *train, backward=True)
        coef = clip / (_norm(g, w) + 1e-6)
        moved = {n: w[n] - eta * (min(coef, 1.0) * g[n] + wd * w[n]) for n in w}
        _, _, gv = ref.forward(moved, alpha0, *valid, backward=True)  # at alpha0
        vsum = {n: vsum[n] + gv[n] for n in w}
        vsum = {n: vsum[n] * min(1.0, clip / (_norm(vsum, w) + 1e-6)) for n in w}
        R = r / _norm(vsum, w)
        plus = ref.forward({n: w[n] + R * vsum[n] for n in w}, alpha, *train, backward=True)[2]["alpha"]
        minus = ref.forward({n: w[n] - R * vsum[n] for n in w}, alpha, *train, backward=True)[2]["alpha"]
        expected = gv["alpha"] - eta * coef * (plus - minus) / (2 * R)
        gsum = gsum + expected
        kw = dict(order=2, eta=eta, clip=clip, weight_decay=wd, r=r)
        got = model.alpha_gradient(train, valid, cache=cache, **kw)
        got_acc = model.alpha_gradient(train, valid, cache=cache_acc, accumulate=True, **kw)
        np.testing.assert_allclose(got, expected, rtol=3e-3, atol=3e-3 * np.abs(expected).max())
        implicit = expected - gv["alpha"]  # the Hessian-vector term alone, checked on its own scale
        np.testing.assert_allclose(got - gv["alpha"], implicit, rtol=1e-2, atol=1e-2 * np.abs(implicit).max())
        assert np.abs(implicit).max() > 0.1 * np.abs(expected).max()  # and it is not negligible
        np.testing.assert_allclose(got_acc, gsum, rtol=3e-3, atol=3e-3 * np.abs(gsum).max())
    plain = model.alpha_gradient((ui, ut, uh), (vi, vt, vh), **kw)
    assert _rel(plain, expected) > 0.05  # without the cache the step differs
    with pytest.raises(ValueError, match="cache"):
        model.alpha_gradient((ui, ut, uh), (vi, vt, vh), cache=np.zeros(3), **kw)


# --- the policy's options and loop checks ---------------------------------------------------

@pytest.fixture(scope="module")
def corpus():
    return nas_eval.datasets.synthetic(vocab_size=30, train_tokens=3000, valid_tokens=800, test_tokens=400, seed=0)


def _recipe(**kw):
    return nas_eval.TrainConfig.preset("tiny", hidden_size=8, batch_size=6, bptt=10, epochs=2,
                                       bptt_mode="search", **kw)


def test_presets_draw_masks_per_pass_and_options_change_the_search(corpus):
    from nas_eval.policies.darts import PRESETS

    for name in ("reference", "paper-2node"):
        c = PRESETS.get(name)
        assert (c.masks, c.architect, c.order) == ("per-pass", "reference", 2), name
    assert PRESETS.get("cpu-reuse-masks").masks == "reuse"
    space = nas_eval.SearchSpace(2)
    runs = [nas_eval.policies.search("darts", space, corpus, _recipe(), seed=3, preset="cpu",
                                     max_steps_per_epoch=5, **opt)
            for opt in ({}, {"masks": "reuse"}, {"architect": "paper-code"})]
    alphas = [np.asarray(r.trace["alpha"].iloc[-1]) for r in runs]
    assert not np.allclose(alphas[0], alphas[1]) and not np.allclose(alphas[0], alphas[2])
    assert [r.info["masks"] for r in runs] == ["per-pass", "reuse", "per-pass"]
    assert [r.info["architect"] for r in runs] == ["reference", "reference", "paper-code"]


def test_paper_code_search_resumes_bitwise(corpus, resume_halfway):
    import pandas.testing as pd_testing

    from nas_eval.policies.darts import PRESETS, DARTSSearch

    config = dataclasses.replace(PRESETS.get("cpu"), max_steps_per_epoch=4, architect="paper-code-accumulate")
    space = nas_eval.SearchSpace(2)
    full, resumed = resume_halfway(lambda: DARTSSearch(space, corpus, _recipe(), 7, config))
    pd_testing.assert_frame_equal(full.finish().trace, resumed.finish().trace)


@pytest.mark.parametrize("options, recipe, tokens, field", [
    ({"epochs": 1, "max_steps_per_epoch": 1}, {}, (None, None), "max_steps_per_epoch=1"),
    ({}, {"lr": 0.0}, (None, None), "lr=0.0"),
    ({"batch_size": 500}, {}, (3000, 800), "batch_size=500"),
    ({"batch_size": 300}, {}, (3000, 500), "batch_size=300"),
])
def test_a_degenerate_loop_is_refused(options, recipe, tokens, field):
    from nas_eval.policies.darts import DARTSConfig

    with pytest.raises(ValueError, match=f"darts: {field}.*alternating"):
        DARTSConfig(**options).check_loop(_recipe(**recipe), *tokens)


def test_the_plan_time_check_refuses_a_degenerate_darts():
    with pytest.raises(ValueError, match="darts: max_steps_per_epoch=1"):
        nas_eval.policies.check_feasible("darts", {"epochs": 1, "max_steps_per_epoch": 1}, _recipe())
    with pytest.raises(ValueError, match="darts: batch_size=3000"):  # the recipe's 5000-token valid slice
        nas_eval.policies.check_feasible("darts", {"batch_size": 3000}, _recipe())
    with pytest.raises(ValueError, match="darts: max_steps_per_epoch=1"):  # with the split sizes too
        nas_eval.policies.check_feasible("darts", {"epochs": 1, "max_steps_per_epoch": 1}, _recipe(),
                                         sizes={"train": 20000, "valid": 5000, "test": 5000})
    nas_eval.policies.check_feasible("darts", {"preset": "cpu"}, _recipe())


def test_every_preset_passes_its_loop_check():
    from nas_eval.policies.darts import PRESETS

    for name in PRESETS.names():
        PRESETS.get(name).check_loop(_recipe(), 3000, 800)


@pytest.mark.parametrize("options, field", [({"masks": "fresh"}, "masks"), ({"architect": "paper"}, "architect"),
                                             ({"architect": "paper-code", "order": 1}, "architect")])
def test_bad_fidelity_options_name_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        nas_eval.policies.check_options("darts", options)


def test_describe_names_the_preset_and_each_deviation():
    from nas_eval.policies import describe

    assert describe("darts", {"preset": "reference"}) == ("darts, preset reference: as the paper's code "
                                                          "(second order, per-pass dropout masks)")
    assert describe("darts", {"preset": "reference"}, _recipe()).endswith(
        "scaled: d=300, batch 256, 50 epochs, 20000 training tokens (reference d=300, batch 256, 50 epochs)")
    line = describe("darts", {"preset": "cpu-reuse-masks"}, _recipe())
    assert line.startswith("darts, preset cpu-reuse-masks: ")
    for part in ("reuse the weight step's dropout masks", "alpha lr 0.03 (reference 0.003)",
                 "scaled: d=8, batch 6, 2 epochs"):
        assert part in line, part
    assert "first order" in describe("darts", {"preset": "cpu-first-order"})
    assert "cached unrolled model" in describe("darts", {"architect": "paper-code"})
    assert "this project's addition, not a policy of the paper" in describe("ws-random", {"preset": "reference"})
    assert describe("random").startswith("random: the paper's baseline")
