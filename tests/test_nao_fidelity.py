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


def _code_rule(old, new, drawn, random_new):
    """nas-landmarkreg nao_policy_search.py's renewal, transcribed: random draws kept when new
    to the pool and to the proposals (not to each other); the cut is random_new whatever was
    kept, or only the proposals' when nothing was."""
    kept = [a for a in drawn if a not in old and a not in new]
    if kept:
        return old[:len(old) - len(new) - random_new] + new + kept
    return old[:len(old) - len(new)] + new


def test_paper_code_pool_update_shrinks_the_pool_as_the_code_does():
    from nas_eval.policies.nao import paper_code_pool
    from nas_eval.rng import STREAM_NAO_POOL, Draws

    space = nas_eval.SearchSpace(2)
    archs = list(space)
    sizes = []
    # (20, 2, 10): two equal draws both kept; (6, 3, 5): a cut of 8 from a pool of 6, a negative
    # slice end in the code (from the back); (30, 2, 3): pool and proposals fill the 32-cell
    # space, every draw is rejected and only the proposals' share is cut
    cases = [(20, 2, 10), (12, 3, 4), (6, 3, 5), (20, 0, 6), (30, 2, 3)]
    for seed, (n_pool, n_new, random_new) in enumerate(cases):
        pool, new = archs[:n_pool], archs[n_pool:n_pool + n_new]
        replay = Draws(seed, STREAM_NAO_POOL, 1)
        drawn = [space.arch(space.sample_ids(replay)) for _ in range(random_new)]
        got, kept = paper_code_pool(space, pool, new, Draws(seed, STREAM_NAO_POOL, 1), random_new)
        assert got == _code_rule(pool, new, drawn, random_new), seed
        assert kept == [a for a in drawn if a not in pool and a not in new]
        sizes.append((n_pool, len(got)))
    assert sizes[0][1] < sizes[0][0] and sizes[1][1] < sizes[1][0]  # rejected draws shrink the pool
    assert sizes[4] == (30, 30)  # nothing kept: the pool keeps its size


def test_a_paper_code_search_renews_its_pool_by_the_codes_rule(monkeypatch):
    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=3000, seed=0)
    recipe = nas_eval.TrainConfig.preset("tiny", hidden_size=8, epochs=4, train_tokens=2000, valid_tokens=500,
                                         test_tokens=500)
    asked, propose = [], NAOController.propose

    def spy(self, top_archs, n_new, *args, **kw):  # how many new ones each round asks for
        asked.append(n_new)
        return propose(self, top_archs, n_new, *args, **kw)

    monkeypatch.setattr(NAOController, "propose", spy)
    r = policies.search("nao", nas_eval.SearchSpace(2), corpus, recipe, 0, preset="smoke",
                        pool_update="paper-code", random_new=2, controller_epochs=5, max_new=8)
    assert asked and set(asked) == {8}  # the code's max_new_archs is not capped by the pool size
    rows = r.trace.to_dict("records")
    for row, following in zip(rows, rows[1:]):
        pool, cut = row["pool"], len(row["new"]) + (2 if row["random_added"] else 0)
        assert sorted(following["pool"]) == sorted(pool[:len(pool) - cut] + row["new"] + row["random_added"])
    sizes = [len(row["pool"]) for row in rows]
    assert sizes[0] == 6 and min(sizes) < 6, sizes  # it shrank, as the code's does
    asked.clear()
    keep = policies.search("nao", nas_eval.SearchSpace(2), corpus, recipe, 0, preset="smoke", random_new=2,
                           controller_epochs=5, max_new=8)
    assert {len(p) for p in keep.trace["pool"]} == {6}  # the default keeps the size
    assert asked and set(asked) == {6}  # and asks for at most a pool's worth
    with pytest.raises(ValueError, match="pool_update"):
        policies.check_options("nao", {"pool_update": "shrink"})


def test_describe_names_the_preset_and_each_deviation():
    from nas_eval.policies import describe
    from nas_eval.spec import study_preset

    same = ("as the paper's text, else its code (the pool keeps its size: the code's shrinking pool is "
            "pool_update='paper-code')")
    assert describe("nao", {"preset": "reference"}) == f"nao, preset reference: {same}"
    assert describe("nao", {"preset": "paper-2node"}) == f"nao, preset paper-2node: {same}"
    assert "pool renewed as the paper's code did" in describe("nao", {"preset": "paper-2node",
                                                                      "pool_update": "paper-code"})
    line = describe("nao", {"preset": "cpu"}, study_preset("standard").search)
    assert "scaled: 4 epochs, 3 controller rounds of 250 epochs, top 4, at most 3 new" in line
    assert "child_lr from the search recipe (reference 0.25)" in line
    assert "emb_size" not in line  # the cpu preset keeps the reference controller
    assert "emb_size 8 (reference 48)" in describe("nao", {"preset": "smoke"})
