"""ENAS as a study policy (nas_eval/policies/enas.py): determinism of the pick, the trace and
the beliefs for a seed, checkpoints, the budget, and option validation."""
import numpy as np
import pandas as pd
import pytest

import nas_eval
from nas_eval import policies
from nas_eval.policies.enas import ENASConfig, ENASSearch, PRESETS


@pytest.fixture(scope="module")
def corpus():
    return nas_eval.datasets.synthetic(vocab_size=30, train_tokens=3000, valid_tokens=1200,
                                       test_tokens=600, seed=0)


def tiny_recipe(**kw):
    return nas_eval.TrainConfig.preset("tiny", **{"hidden_size": 8, "batch_size": 8, "bptt": 10, "epochs": 2,
                                                  "max_steps_per_epoch": 6, **kw})


def smoke(**kw):
    return {"preset": "smoke", "controller_steps": 4, **kw}


def run(corpus, seed, **kw):
    return policies.search("enas", nas_eval.SearchSpace(2), corpus, tiny_recipe(), seed, **smoke(**kw))


def test_same_seed_same_pick_and_bitwise_identical_trace(corpus):
    a, b = run(corpus, 3), run(corpus, 3)
    assert a.arch == b.arch
    pd.testing.assert_frame_equal(a.trace, b.trace, check_exact=True)
    pd.testing.assert_frame_equal(a.beliefs, b.beliefs, check_exact=True)
    assert a.trace.to_json() == b.trace.to_json()
    assert {k: v for k, v in a.budget.items() if "seconds" not in k and k != "wall_time"} == \
        {k: v for k, v in b.budget.items() if "seconds" not in k and k != "wall_time"}
    other = run(corpus, 4)
    assert not other.beliefs["belief"].equals(a.beliefs["belief"])


def test_trace_beliefs_and_budget(corpus):
    r = run(corpus, 1)
    space = nas_eval.SearchSpace(2)
    t = r.trace
    assert list(t["epoch"]) == [1, 2]
    for col in ("entropy", "entropy_exact", "reward", "baseline", "argmax_arch", "p_argmax", "p_pick"):
        assert col in t
    assert t["reward"].between(0, 80).all() and np.isfinite(t["baseline"]).all()
    b = r.beliefs
    assert set(b.columns) == {"epoch", "arch_id", "belief"} and len(b) == 2 * 32
    sums = b.groupby("epoch")["belief"].sum()
    np.testing.assert_allclose(sums.values, 1.0, atol=1e-12)
    last = b[b["epoch"] == 2].set_index("arch_id")["belief"]
    assert t["p_pick"].iloc[-1] == last[space.index(r.arch)]
    assert t["argmax_arch"].iloc[-1] == str(space.arch(int(last.idxmax())))
    assert t["p_argmax"].iloc[-1] == last.max()
    # near-uniform over the 16 architectures of the paper's rule (nodes >= 2 never read s0)
    # after a few updates at the reference temperature and learning rate
    assert abs(t["entropy_exact"].iloc[-1] - np.log(16)) < 0.05
    assert list(t["shared_lr"]) == [20.0, 20.0]    # no decay before epoch 17
    assert 1 <= r.info["final_candidates"] <= 10 and r.info["pick_ws_ppl"] > 1
    assert r.info["pick_is_mode"] == (t["argmax_arch"].iloc[-1] == str(r.arch))
    budget = r.budget
    assert budget["controller_steps"] == 2 * 4
    assert budget["supernet_steps"] == sum(t["shared_steps"])
    assert budget["train_tokens"] > 0 and budget["valid_tokens"] > 0
    # reward batches (smoke: 4 rows x 10 steps) plus the final pick's scoring of the full split
    assert budget["controller_seconds"] > 0 and budget["wall_time"] >= budget["controller_seconds"]


def test_restricted_space_never_samples_s0_for_later_nodes(corpus):
    r = run(corpus, 2)    # restrict_s0 is the default (the paper's rule)
    assert r.arch.preds[1] == 1
    b = r.beliefs
    space = nas_eval.SearchSpace(2)
    to_s0 = [i for i, a in enumerate(space) if a.preds[1] == 0]
    assert (b[b["arch_id"].isin(to_s0)]["belief"] == 0).all()


def test_checkpoint_restore_continues_bitwise(corpus):
    space, config = nas_eval.SearchSpace(2), policies.check_options("enas", smoke())
    straight = ENASSearch(space, corpus, tiny_recipe(), 5, config)
    straight.run_epoch()
    state = straight.state()
    straight.run_epoch()
    resumed = ENASSearch(space, corpus, tiny_recipe(), 5, config)
    resumed.restore(state)
    resumed.run_epoch()
    assert pd.DataFrame(resumed.trace).to_json() == pd.DataFrame(straight.trace).to_json()
    assert all(np.array_equal(x, y) for x, y in zip(resumed.beliefs, straight.beliefs))
    assert resumed.finish().arch == straight.finish().arch


def test_presets_validate_and_reference_is_the_design():
    for name in PRESETS.names():
        PRESETS.get(name).validate()
    ref = PRESETS.get("reference")
    assert ref == ENASConfig()
    # the paper's rule, model and schedule (docs/fidelity.md, "ENAS")
    assert (ref.restrict_s0, ref.output, ref.reward_mode, ref.carry_hidden, ref.reset_baseline,
            ref.final_scoring, ref.epochs, ref.shared_archs, ref.controller_steps) == \
        (True, "loose_ends", "train", True, True, "batch", 250, 200, 2000)
    # the text's two-layer controller in every preset (the code's one layer is an option); the
    # pick derived as the code's every 30 epochs at the paper's presets, after the last epoch at
    # the scaled ones (whose few epochs would leave the every-30 pick at epoch 1)
    assert {PRESETS.get(name).controller_layers for name in PRESETS.names()} == {2}
    assert {name: PRESETS.get(name).derive_every for name in PRESETS.names()} == \
        {"reference": 30, "paper-2node": 30, "cpu": None, "smoke": None}
    assert [ref.shared_lr(20.0, e) for e in (1, 16, 17, 30)] == \
        [20.0, 20.0, 20.0 * 0.96, 20.0 * 0.96 ** 14]
    two = PRESETS.get("paper-2node")
    assert (two.shared_archs, two.batches_per_arch, two.controller_steps) == (20, 10, 20)
    assert (ref.controller_hidden, ref.temperature, ref.tanh_c, ref.lr, ref.baseline_decay,
            ref.entropy_weight, ref.reward_c, ref.final_samples, ref.sharing) == \
        (100, 5.0, 2.5, 3.5e-4, 0.95, 1e-4, 80.0, 100, "edge")


def test_fixed_subspace_beliefs_use_full_space_ids(corpus):
    space = nas_eval.SearchSpace(3).fix({1: ("tanh", 0), 2: ("relu", 1)})
    r = policies.search("enas", space, corpus, tiny_recipe(epochs=1), 0, **smoke())
    assert r.arch in space
    b = r.beliefs
    assert len(b) == len(space) == 12
    assert sorted(b["arch_id"]) == sorted(space.parent.index(a) for a in space)
    assert b["belief"].sum() == pytest.approx(1.0, abs=1e-12)
    assert r.trace["argmax_arch"].iloc[0] in {str(a) for a in space}


def test_large_space_has_no_beliefs_but_a_likeliest_sample(corpus):
    space = nas_eval.SearchSpace(5)    # 122,880 architectures: not enumerated
    r = policies.search("enas", space, corpus, tiny_recipe(epochs=1), 0, **smoke())
    assert r.beliefs.empty
    row = r.trace.iloc[0]
    assert np.isnan(row["entropy_exact"]) and row["argmax_id"] == space.index(nas_eval.Arch.parse(row["argmax_arch"]))
    assert 0 < row["p_argmax"] < 1e-3 and 0 < row["p_pick"] < 1e-3


def test_derive_every_returns_the_pick_derived_at_the_last_multiple(corpus):
    """derive_every=2 over 4 epochs: the paper code's derive() runs after the epochs of 0-based
    index 0 and 2, and the search returns the pick of 1-based epoch 3, not a fresh one."""
    space = nas_eval.SearchSpace(2)
    stale = ENASSearch(space, corpus, tiny_recipe(epochs=4), 6, policies.check_options("enas", smoke(derive_every=2)))
    twin = ENASSearch(space, corpus, tiny_recipe(epochs=4), 6, policies.check_options("enas", smoke()))
    for epoch in range(4):
        stale.run_epoch()
        twin.run_epoch()
        if epoch in (0, 2):    # the twin derives by hand where the code's schedule does
            derived = twin.pick()
    out = stale.finish()
    arch, pool, ppl = derived
    assert out.arch == arch and out.info["pick_epoch"] == 3
    assert out.info["final_candidates"] == len(pool) and out.info["pick_ws_ppl"] == float(np.min(ppl))
    # deriving leaves the search itself alone, and finish() derives nothing more
    assert pd.DataFrame(stale.trace).to_json() == pd.DataFrame(twin.trace).to_json()
    final = policies.check_options("enas", smoke()).final_samples
    assert stale.controller.state()["drawn"][2] == 2 * final
    fresh = twin.finish()
    assert fresh.info["pick_epoch"] == 4 and twin.controller.state()["drawn"][2] == 3 * final
    # the derived pick survives a checkpoint
    resumed = ENASSearch(space, corpus, tiny_recipe(epochs=4), 6, policies.check_options("enas", smoke(derive_every=2)))
    resumed.restore(stale.state())
    again = resumed.finish()
    assert (again.arch, again.info) == (out.arch, out.info)


def test_describe_names_the_preset_and_each_deviation():
    from nas_eval.policies import describe
    recipe = tiny_recipe()
    same = "as the paper's text, else its code (the text's two-layer controller; the code's one layer: " \
           "controller_layers=1)"
    assert describe("enas", {"preset": "reference"}) == f"enas, preset reference: {same}"
    assert describe("enas", {"preset": "paper-2node"}, recipe) == f"enas, preset paper-2node: {same}"
    line = describe("enas", {"preset": "paper-2node", "controller_layers": 1, "derive_every": None})
    assert "1-layer controller as the paper's code" in line and "the pick derived after the last epoch" in line
    line = describe("enas", {"preset": "cpu"}, recipe)
    assert "scaled: 2 epochs, shared phase one pass, 200 controller steps" in line
    assert "lr 0.0035 (reference 0.00035)" in line and "reward_batch_size 10 (reference 64)" in line
    assert "controller" not in line.split("scaled")[0]     # two layers at cpu: not a deviation
    assert "the pick derived after the last epoch (the paper's code: every 30 epochs" in line
    assert "full space" in describe("enas", {"restrict_s0": False})


@pytest.mark.parametrize("options, recipe_epochs, ok", [
    ({"epochs": 30}, 2, False),                          # only epoch 0 is a multiple of 30
    ({"epochs": 31}, 2, True),                           # epochs 0 and 30: the pick of epoch 31
    ({"epochs": 1}, 2, True),                            # one epoch: its derive is the last
    ({"epochs": None, "derive_every": 5}, 5, False),
    ({"epochs": None, "derive_every": 5}, 6, True),
    ({"epochs": 30, "derive_every": None}, 2, True),
])
def test_a_derive_schedule_that_only_derives_after_the_first_epoch_is_refused(options, recipe_epochs, ok):
    config = policies.check_options("enas", options)
    check = lambda: config.check_feasible(tiny_recipe(epochs=recipe_epochs))  # noqa: E731
    if ok:
        assert check() is config
    else:
        with pytest.raises(ValueError, match="derive_every=.* only after the first epoch"):
            check()


def test_final_pool_draws_scores_every_draw_again_as_the_code_derives(corpus):
    """final_pool="draws" (the reference, the code's derive()): every one of the draws is scored,
    a repeated architecture again with new dropout masks, and the first best draw wins;
    "samples" scores the same draws' distinct architectures once each."""
    space = nas_eval.SearchSpace(2)
    pools = {}
    for name in ("draws", "samples"):
        s = ENASSearch(space, corpus, tiny_recipe(epochs=1), 2,
                       policies.check_options("enas", smoke(final_pool=name, final_samples=40)))
        s.run_epoch()
        pools[name] = s.pick()
    arch, pool, ppl = pools["draws"]
    assert len(pool) == 40 and sorted(set(pool), key=space.index) == pools["samples"][1]  # the same draws
    assert arch == pool[int(np.argmin(ppl))] and ppl.min() < ppl.max()
    # 40 draws of 16 cells repeat some; each repeat is scored again, under new dropout masks
    repeated = [a for a in set(pool) if pool.count(a) > 1]
    assert repeated and any(np.ptp(ppl[[k for k, b in enumerate(pool) if b == a]]) > 0 for a in repeated)
