"""NAO does what the algorithm says (docs/fidelity.md, "NAO"): its predictor learns a ranking
planted in synthetic scores, its propose step moves architectures toward better predicted
scores, every preset runs controller rounds (or refuses to run), partial controller batches
are dropped as the reference's batchify dropped them, and the child super-net uses the
reference's lr / clip."""
import numpy as np
import pytest

import nas_eval
from nas_eval import policies
from nas_eval.engine import NAOController, normalise_scores
from nas_eval.metrics import kendall_tau
from nas_eval.spec import STUDY_PRESETS

# a planted score over the 3-node space (lower = better): additive in the activations, plus a
# penalty for reading s0 -- a structure an encoder + MLP predictor can learn from 80 examples
W_OP = {"tanh": 0.0, "relu": 0.3, "sigmoid": 1.0, "identity": 0.6}


def planted(a):
    return sum(W_OP[op] for op in a.ops) + 0.5 * sum(p == 0 for p in a.preds[1:])


@pytest.fixture(scope="module")
def trained():
    space = nas_eval.SearchSpace(3)
    archs = list(space)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(archs), 80, replace=False)
    pool = [archs[i] for i in idx]
    nao = NAOController(space, emb_size=16, hidden_size=32, mlp_layers=2, mlp_hidden_size=32, lr=3e-3,
                        batch_size=20, seed=0)
    nao.fit(pool, normalise_scores([planted(a) for a in pool]), epochs=80)
    taken = set(pool)
    return nao, pool, [a for a in archs if a not in taken]


def test_predictor_ranks_a_planted_target_on_unseen_architectures(trained):
    nao, pool, rest = trained
    assert kendall_tau(nao.predict(pool), [planted(a) for a in pool]) > 0.8
    assert kendall_tau(nao.predict(rest), [planted(a) for a in rest]) > 0.8    # held out: 304 architectures


def test_propose_moves_toward_better_predicted_and_true_scores(trained):
    nao, pool, rest = trained
    order = np.argsort(nao.predict(pool))
    top = [pool[i] for i in order[:10]]
    new, lam = nao.propose(top, 10, exclude=pool)
    assert len(new) >= 5 and not set(new) & set(pool)
    # NAO's step is *down* the predictor (scores are normalised losses): the proposals are
    # predicted better than the architectures it has not seen, and are truly better
    assert nao.predict(new).mean() < 0.5 * nao.predict(rest).mean()
    assert np.mean([planted(a) for a in new]) < 0.5 * np.mean([planted(a) for a in rest])


def test_partial_batches_are_dropped_like_the_reference():
    space = nas_eval.SearchSpace(2)
    archs = list(space)[:6]
    scores = np.linspace(0, 1, 6)
    kw = dict(emb_size=4, hidden_size=8, mlp_layers=1, mlp_hidden_size=8, seed=0)
    keep = NAOController(space, batch_size=4, **kw)
    drop = NAOController(space, batch_size=4, drop_partial=True, **kw)
    keep.fit(archs, scores, 5)
    drop.fit(archs, scores, 5)
    assert (keep.steps, drop.steps) == (10, 5)    # ceil(6/4) vs floor(6/4) steps per epoch
    # a pool smaller than one batch trains nothing at all, as in the reference
    none = NAOController(space, batch_size=8, drop_partial=True, **kw)
    before = none.state()["params"].copy()
    none.fit(archs, scores, 5)
    assert none.steps == 0 and np.array_equal(none.state()["params"], before)
    assert none.propose(archs[:4], 3) == ([], 0)     # 4 top architectures, batches of 8: none moved
    # bitwise resumable: the Python-side shuffles are keyed by a counter in the state
    a = NAOController(space, batch_size=4, drop_partial=True, **kw)
    a.fit(archs, scores, 3)
    b = NAOController(space, batch_size=4, drop_partial=True, **kw)
    b.restore(a.state())
    a.fit(archs, scores, 2)
    b.fit(archs, scores, 2)
    assert np.array_equal(a.state()["params"], b.state()["params"])


def test_every_preset_runs_controller_rounds_or_refuses_naming_the_fix():
    """Each NAO preset under each study preset's search recipe: at least one controller round
    (min_controller_rounds of them), or a ValueError that names the policy, the option, the
    value and the fix. The paper-scale presets must run under the paper study."""
    for name in policies.presets("nao").names():
        config = policies.check_options("nao", {"preset": name})
        for study in STUDY_PRESETS.names():
            recipe = STUDY_PRESETS.get(study).search
            epochs = config.epochs or recipe.epochs
            try:
                config.check_feasible(recipe)
            except ValueError as e:
                msg = str(e)
                assert "nao option" in msg and "min_controller_rounds" in msg and str(epochs) in msg
                assert config.controller_rounds(epochs) < config.min_controller_rounds
                continue
            assert config.controller_rounds(epochs) >= max(1, config.min_controller_rounds)
    paper = STUDY_PRESETS.get("paper").search
    for name in ("reference", "paper-2node"):
        config = policies.check_options("nao", {"preset": name}).check_feasible(paper)
        assert config.controller_rounds(config.epochs or paper.epochs) >= 3
    # the old reference schedule (every 200 epochs) in a 4-epoch study ran no controller round
    with pytest.raises(ValueError, match=r"nao option eval_every=200 with 4 search epochs .* 0 controller"):
        policies.check_options("nao", {"eval_every": 200}).check_feasible(STUDY_PRESETS.get("standard").search)


def test_scaled_presets_keep_three_rounds_in_a_run():
    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=3000, seed=0)
    recipe = nas_eval.TrainConfig.preset("tiny", hidden_size=8, epochs=4, train_tokens=2000, valid_tokens=500,
                                         test_tokens=500)
    r = policies.search("nao", nas_eval.SearchSpace(2), corpus, recipe, 0, preset="cpu", controller_epochs=5)
    assert r.budget["rounds"] == 4 and r.trace["controller_mse"].notna().sum() == 3
    with pytest.raises(ValueError, match="nao option rounds=20 with 3 search epochs"):
        policies.search("nao", nas_eval.SearchSpace(2), corpus, recipe.replace(epochs=3), 0, preset="cpu")


def test_child_supernet_uses_the_reference_lr_and_clip():
    from nas_eval.policies.nao import NAOSearch

    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=3000, seed=0)
    recipe = nas_eval.TrainConfig.preset("tiny", hidden_size=8, epochs=4, train_tokens=2000, valid_tokens=500)
    space = nas_eval.SearchSpace(2)
    # the reference's batches of 100 in a 32-architecture space would train nothing: refused
    with pytest.raises(ValueError, match="drop_partial=True with batch_size=100 > the pool of 32"):
        policies.check_feasible("nao", {}, recipe, space)
    ref = policies.check_options("nao", {"batch_size": 8})
    s = NAOSearch(space, corpus, recipe, 0, ref)
    assert (s.trainer.config.lr, s.trainer.config.clip, s.trainer.carry_hidden) == (0.25, 10.0, True)
    s = NAOSearch(space, corpus, recipe, 0, policies.check_options("nao", {"preset": "smoke"}))
    assert (s.trainer.config.lr, s.trainer.config.clip) == (recipe.lr, recipe.clip)
