"""The WS super-net as the paper's WS code trained it (issue 19, docs/fidelity.md "WS
super-net"): the hidden state carried across architecture switches or reset, the carried
state's row norms clipped (nas-landmarkreg handle_hidden_mode 'NORM'), NT-ASGD on the mean
WS perplexity, and the ``paper`` study preset using that recipe for its WS rankings."""
import numpy as np
import pytest

import nas_eval
from nas_eval.engine import loop
from nas_eval.engine.loop import Trainer, clip_hidden_rows
from nas_eval.engine.model import StepResult
from nas_eval.space import Arch

B, D = 4, 6


def test_clip_hidden_rows_rescales_only_rows_over_the_threshold():
    h = np.zeros((3, 4), np.float32)
    h[0] = [30.0, 40.0, 0.0, 0.0]   # norm 50
    h[1] = [1.0, 2.0, 2.0, 0.0]     # norm 3
    h[2] = [-6.0, 0.0, 8.0, 0.0]    # norm 10
    out = clip_hidden_rows(h, 5.0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [5.0, 3.0, 5.0], rtol=1e-6)
    np.testing.assert_allclose(out[0], [3.0, 4.0, 0.0, 0.0], rtol=1e-6)  # direction kept
    np.testing.assert_array_equal(out[1], h[1])
    assert out.dtype == np.float32 and h[0, 0] == 30.0  # the input is not modified


class _Spy:
    """A model that records the hidden state each step receives and returns a large one."""
    averaging = False

    def __init__(self):
        self.seen = []

    def train_step(self, inputs, targets, hidden=None, **kw):
        self.seen.append(None if hidden is None else np.array(hidden))
        return StepResult(1.0, inputs.size, 1.0, np.full((inputs.shape[1], D), 100.0, np.float32))

    def state(self):
        return {}

    def restore(self, state):
        pass


@pytest.mark.parametrize("carry, clip", [(False, 0.0), (True, 0.0), (True, 30.0)])
def test_a_switch_resets_or_carries_the_hidden_state_and_clips_it(carry, clip):
    archs = [Arch.parse("0:tanh 0:relu"), Arch.parse("0:sigmoid 1:identity")]
    tokens = np.arange(2000) % 50
    config = nas_eval.TrainConfig.preset("tiny", batch_size=B, bptt=10, bptt_mode="fixed")
    spy = _Spy()
    trainer = Trainer(spy, tokens, config, seed=0, carry_hidden=carry, hidden_clip=clip)
    trainer.run_steps(4, sampler=lambda step: archs[step % 2])  # a switch before every step after the first
    assert spy.seen[0] is None  # the stream's start
    for h in spy.seen[1:]:
        if not carry:
            assert h is None
        else:
            want = clip if clip else 100.0 * np.sqrt(D)
            np.testing.assert_allclose(np.linalg.norm(h, axis=1), want, rtol=1e-5)


def test_without_a_switch_the_state_is_carried_either_way():
    arch = Arch.parse("0:tanh 0:relu")
    spy = _Spy()
    config = nas_eval.TrainConfig.preset("tiny", batch_size=B, bptt=10, bptt_mode="fixed")
    Trainer(spy, np.arange(2000) % 50, config, seed=0).run_steps(3, sampler=lambda step: arch)
    assert all(h is not None for h in spy.seen[1:])


@pytest.fixture(scope="module")
def corpus():
    return nas_eval.datasets.synthetic(vocab_size=30, train_tokens=3000, valid_tokens=600, test_tokens=300, seed=1)


def _ws(corpus, **recipe):
    from nas_eval.engine import ws_run

    config = nas_eval.TrainConfig.preset("tiny", hidden_size=8, batch_size=6, bptt=10, epochs=1,
                                         max_steps_per_epoch=12, **recipe)
    archs = list(nas_eval.SearchSpace(2))[:6]
    return np.array([r["ws_ppl"] for r in ws_run(archs, corpus, config, 0, [1])])


def test_ws_run_follows_the_recipes_carry_and_clip(corpus):
    base = _ws(corpus)
    assert not np.array_equal(_ws(corpus, carry_hidden=True), base)  # deterministic runs: any change is the option
    assert not np.array_equal(_ws(corpus, carry_hidden=True, hidden_clip=1e-4), _ws(corpus, carry_hidden=True))
    np.testing.assert_array_equal(_ws(corpus, hidden_clip=1e-4), _ws(corpus, hidden_clip=1e-4))


def test_ws_run_clips_every_step_in_step_mode(corpus, monkeypatch):
    """hidden_clip_mode='step' (the paper code's): the super-net's cell clips after every time
    step, in training and in the WS evaluation (tests/test_hidden_clip.py checks the cell);
    the carry is then not clipped again."""
    from nas_eval.engine import experiments

    seen = {}
    real = experiments.Trainer.__init__

    def spy(self, model, *args, **kw):
        seen["cell"], seen["carry"] = model.hidden_clip, kw.get("hidden_clip")
        real(self, model, *args, **kw)

    monkeypatch.setattr(experiments.Trainer, "__init__", spy)
    step = _ws(corpus, carry_hidden=True, hidden_clip=1e-4, hidden_clip_mode="step")
    assert seen == {"cell": pytest.approx(1e-4), "carry": 0.0}
    carry = _ws(corpus, carry_hidden=True, hidden_clip=1e-4)
    assert seen == {"cell": 0.0, "carry": 1e-4}
    assert not np.array_equal(step, carry)
    np.testing.assert_array_equal(_ws(corpus, carry_hidden=True, hidden_clip=1e-4, hidden_clip_mode="step"), step)


def test_ws_run_switches_to_averaging_by_nt_asgd_on_the_mean_ws_perplexity(corpus, monkeypatch):
    """With asgd the super-net averages once an evaluation's mean WS perplexity is worse than
    the best but the last ``nonmono`` (weight_sharing_ranking_random_on_batch.py), and
    scores with the average from then on; a resumed run keeps the judged history."""
    from nas_eval.engine import experiments

    means = iter([5.0, 4.0, 4.5, 3.0, 3.5, 3.2])  # worse than min(all but last 1) at the 3rd

    def fake_perplexity(self, archs, tokens, batch_size=10, bptt=35, progress=False):
        return np.full(len(archs), next(means))

    monkeypatch.setattr(experiments.SuperNet, "perplexity", fake_perplexity)
    config = nas_eval.TrainConfig.preset("tiny", hidden_size=8, batch_size=6, bptt=10, epochs=6,
                                         max_steps_per_epoch=2, asgd=True, nonmono=1)
    archs = list(nas_eval.SearchSpace(2))[:3]
    states = []
    experiments.ws_run(archs, corpus, config, 0, [1, 2, 3, 4], on_epoch=states.append)
    averaging = [s["trainer"]["model"]["average"] is not None for s in states]
    assert averaging == [False, False, True, True]
    assert states[2]["judged"] == [5.0, 4.0, 4.5]
    assert states[3]["judged"] == [5.0, 4.0, 4.5]  # judged only until the switch


def test_the_paper_study_ranks_with_the_papers_ws_recipe():
    from nas_eval.plan import plan_first_phase
    from nas_eval.spec import study_preset

    spec = study_preset("paper")
    ws = spec.ws_recipe
    assert (ws.hidden_size, ws.batch_size, ws.epochs, ws.asgd, ws.eval_batch_size) == (850, 64, 1000, True, 256)
    assert (ws.carry_hidden, ws.hidden_clip, ws.hidden_clip_mode) == (True, 30.0, "step")
    assert (ws.step_hidden_clip, ws.carry_hidden_clip) == (30.0, 0.0)
    assert spec.search.name == "search" and not spec.search.carry_hidden
    plan = plan_first_phase(spec.replace(ws_seeds=(0,), gt_seeds=(), seeds=(0,), sharing=False,
                                         policies=("random", "darts")))
    ws_job, search_job = plan["ws"][0][1], plan["search"][0][1]
    assert ws_job.params["config"]["carry_hidden"] is True and ws_job.params["config"]["hidden_clip"] == 30.0
    assert "carry_hidden" not in search_job.params["config"]
    for name in ("smoke", "standard"):  # the scaled studies keep the reset, no clipping
        s = study_preset(name)
        assert s.ws is None and not s.ws_recipe.carry_hidden and s.ws_recipe.hidden_clip == 0


def test_bad_recipe_options_raise_named_errors():
    for field, value in (("carry_hidden", 1), ("hidden_clip", -1.0), ("hidden_clip", float("inf")),
                         ("hidden_clip_mode", "every")):
        with pytest.raises(ValueError, match=field):
            nas_eval.TrainConfig.preset("tiny", **{field: value})


def test_the_clip_mode_stays_out_of_job_keys_at_its_default():
    tiny = nas_eval.TrainConfig.preset("tiny")
    assert "hidden_clip_mode" not in tiny.to_dict()
    assert nas_eval.TrainConfig.preset("paper-ws").to_dict()["hidden_clip_mode"] == "step"
    assert tiny.replace(hidden_clip_mode="step").hash() != tiny.hash()


def test_the_loop_module_exposes_the_clip():
    assert loop.clip_hidden_rows is clip_hidden_rows
